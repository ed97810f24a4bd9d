"""Helpers shared by the integration test drivers (itest.py, test_examples.py, test_faults.py,
test_mace.py)."""
import argparse
import os
import shutil
import sys


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def ok(msg):
    print(f"ok: {msg}", flush=True)


def lammps_env(plugin_dir):
    """Environment for running lmp (also under mpirun as root, oversubscribed) with the
    plugin found through LAMMPS_PLUGIN_PATH."""
    env = dict(os.environ)
    env["LAMMPS_PLUGIN_PATH"] = plugin_dir
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
    env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def driver_parser(cases):
    """The command line every driver takes: CASE --lmp --plugin-dir --ionmsm --work (a driver
    adds its own options to the returned parser)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(cases))
    for opt in ("--lmp", "--plugin-dir", "--ionmsm", "--work"):
        ap.add_argument(opt, required=True)
    return ap


def run_case(cases, args):
    """Runs one case in a fresh work folder (a rerun never sees the last run's files)."""
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    cases[args.case]()
    print("PASS", flush=True)
