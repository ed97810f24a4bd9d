"""Helpers shared by the integration test drivers (itest.py, test_examples.py)."""
import os
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
