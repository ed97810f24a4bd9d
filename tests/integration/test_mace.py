#!/usr/bin/python3
"""Integration tests with a real MACE potential (label `mace`): pair_style mace (ACEsuit's, as
the plugin scripts/setup-mace builds) runs next to fix msm in our LAMMPS.

Usage: test_mace.py CASE --lmp LMP --plugin-dir DIR --ionmsm IONMSM --work DIR [--model-dir DIR]

Needs the MACE stack of scripts/setup-mace ($IONMSM_CACHE/mace, default ~/.cache/ionmsm/mace):
without it every case prints "SKIP: ..." naming what is missing and exits 77 (CTest reports the
test as skipped). Cases:
  model     a small untrained MACE model (tests/integration/mace_tiny_model.py) exported with
            create_lammps_model, into --model-dir (the other cases' fixture)
  load      pairmaceplugin.so and ionmsmplugin.so load together (plugin list); pair_style mace
            energy and forces equal mace's own Python calculator on the same positions
  serial    1 rank, pair_style mace no_domain_decomposition, 40 MD steps: fix msm's counts equal
            the slow reference (slow_counts.py) on the run's own dump
  dd        the same on 2 ranks in pair_style mace's domain-decomposition mode (20 steps: this
            mode is about 20x slower)
The Li13Si4 unit cell (34 atoms) at 2500 K with a ~0.7 A grid of 1584 sites makes site changes
frequent within tens of steps (the cases fail if there are fewer than 20 at lag 1).
"""
import json
import os
import re
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from itest_common import driver_parser, fail, lammps_env, ok, run_case  # noqa: E402

SKIP = 77
SRC = os.path.dirname(os.path.dirname(HERE))
DECK = os.path.join(SRC, "examples", "mace_pipeline", "in.md")
LAGS = [1, 2, 5, 10]
ARGS = None
STACK = {}


def find_stack():
    """The MACE stack of scripts/setup-mace, or exit 77 naming what is missing."""
    cache = os.environ.get("IONMSM_CACHE", os.path.expanduser("~/.cache/ionmsm"))
    mace = os.path.join(cache, "mace")
    need = {"stamp": os.path.join(mace, ".ionmsm-complete"),
            "python": os.path.join(mace, "venv", "bin", "python"),
            "plugin": os.path.join(mace, "plugin", "pairmaceplugin.so")}
    missing = [f"{k} ({v})" for k, v in need.items() if not os.path.exists(v)]
    if missing:
        print(f"SKIP: the MACE stack is not set up: missing {', '.join(missing)}; run "
              f"IONMSM_MACE_SOURCES=DIR scripts/setup-mace (see examples/mace/README.md)",
              flush=True)
        sys.exit(SKIP)
    # pairmaceplugin.so loads only into the LAMMPS it was compiled for (scripts/setup-mace
    # builds it against the default version); under another version the cases do not apply
    built_for = lammps_version_of(plugin_lammps_source(
        os.path.join(os.path.dirname(need["plugin"]), ".ionmsm-complete")))
    running = lammps_version_of(os.path.join(
        os.path.dirname(os.path.dirname(os.path.realpath(ARGS.lmp))), "source"))
    if built_for != running:
        print(f"SKIP: the MACE stack's pair_style mace plugin was built for LAMMPS {built_for}, "
              f"these tests run LAMMPS {running} ({ARGS.lmp}); scripts/setup-mace builds it "
              f"for the default LAMMPS only", flush=True)
        sys.exit(SKIP)
    STACK.update(need)
    STACK["plugin_dir"] = os.path.dirname(need["plugin"])


def plugin_lammps_source(stamp):
    """The LAMMPS source tree named in scripts/setup-mace's plugin stamp ('lammps=DIR ...')."""
    with open(stamp) as f:
        m = re.search(r"lammps=(\S+)", f.read())
    return m.group(1) if m else ""


def lammps_version_of(source_dir):
    """LAMMPS_VERSION of a source tree's src/version.h ('unknown' where it cannot be read)."""
    try:
        with open(os.path.join(source_dir, "src", "version.h")) as f:
            m = re.search(r'LAMMPS_VERSION\s+"([^"]+)"', f.read())
        return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


def env():
    e = lammps_env(f"{ARGS.plugin_dir}:{STACK['plugin_dir']}")
    e["OMP_NUM_THREADS"] = "1"
    return e


def run(cmd, timeout=900):
    p = subprocess.run(cmd, cwd=ARGS.work, env=env(), capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        print(p.stdout[-4000:], p.stderr[-3000:])
        fail(f"{' '.join(map(str, cmd))} exited {p.returncode}")
    return p.stdout + p.stderr


def model_path():
    path = os.path.join(ARGS.model_dir, "tiny.model-lammps.pt")
    if not os.path.exists(path):
        fail(f"{path} missing: the mace.model test (fixture) did not run or failed")
    return path


def lmp_md(nprocs, macemode, out, steps):
    """STEPS steps of in.md with pair_style mace, fix msm every step on a grid of sites, a dump of
    every step."""
    cmd = ["mpirun", "-np", str(nprocs)] if nprocs > 1 else []
    cmd += [ARGS.lmp, "-in", DECK, "-log", "log.lammps", "-screen", "none",
            "-var", "pot", "mace", "-var", "macemode", macemode, "-var", "model", model_path(),
            "-var", "nx", "1", "-var", "ny", "1", "-var", "nz", "1", "-var", "T", "2500",
            "-var", "neq", "0", "-var", "nprod", str(steps), "-var", "frames", "1",
            "-var", "nevery", "1", "-var", "lags", " ".join(map(str, LAGS)), "-var", "blocks", "10",
            "-var", "out", out, "-var", "sitesfile", "grid.txt", "-var", "thermo", "10",
            "-var", "datadir", os.path.join(SRC, "examples", "li13si4")]
    run(cmd)
    with open(os.path.join(ARGS.work, "log.lammps")) as fh:
        return fh.read()


def write_grid_sites():
    """A grid of about 0.7 A spacing over the Li13Si4 unit cell (orthorhombic), fractional."""
    n = (12, 22, 6)
    with open(os.path.join(ARGS.work, "grid.txt"), "w") as fh:
        fh.write("# ionmsm-sites 1\n# test grid\ncoordinates fractional\n")
        for i in range(n[0]):
            for j in range(n[1]):
                for k in range(n[2]):
                    fh.write(f"{(i + 0.5) / n[0]:.10f} {(j + 0.5) / n[1]:.10f} "
                             f"{(k + 0.5) / n[2]:.10f}\n")


def compare_with_slow(out, what):
    exp = run([ARGS.ionmsm, "export", os.path.join(ARGS.work, out)])
    cmd = [sys.executable, os.path.join(HERE, "slow_counts.py"),
           os.path.join(ARGS.work, "frames.dump"), "--nevery", "1", "--lags", *map(str, LAGS),
           "--types", "1", "--sites-file", os.path.join(ARGS.work, "grid.txt"),
           "--summary", os.path.join(ARGS.work, "slow.json")]
    ref = run(cmd)
    exp_rows = [r for r in exp.splitlines() if r and r[0].isdigit() or r.startswith("lag")]
    ref_rows = [r for r in ref.splitlines() if r and r[0].isdigit() or r.startswith("lag")]
    if exp_rows != ref_rows:
        only_a = sorted(set(exp_rows) - set(ref_rows))[:10]
        only_b = sorted(set(ref_rows) - set(exp_rows))[:10]
        fail(f"{what}: fix msm counts differ from the slow reference; only fix msm: {only_a}; "
             f"only reference: {only_b}")
    changes = sum(int(r.split(",")[-1]) for r in ref_rows[1:]
                  if r.split(",")[0] == "1" and r.split(",")[1] != r.split(",")[2])
    if changes < 20:
        fail(f"{what}: only {changes} site changes at lag 1: the run does not exercise counting")
    ok(f"{what}: fix msm counts == slow reference ({len(ref_rows) - 1} rows, {changes} site "
       f"changes at lag 1)")


# ---------------------------------------------------------------------------- cases

def case_model():
    os.makedirs(ARGS.model_dir, exist_ok=True)
    for f in ("tiny.model", "tiny.model-lammps.pt"):
        if os.path.exists(os.path.join(ARGS.model_dir, f)):
            os.remove(os.path.join(ARGS.model_dir, f))
    run([STACK["python"], os.path.join(HERE, "mace_tiny_model.py"),
         os.path.join(ARGS.model_dir, "tiny")])
    ok(f"model exported: {model_path()}")


FORCE_DECK = """
units metal
atom_style atomic
atom_modify map array
newton on
boundary p p p
read_data {data}
replicate 1 1 2
displace_atoms all random 0.1 0.1 0.1 7 units box
pair_style mace no_domain_decomposition
pair_coeff * * {model} Li Si
plugin list
thermo_style custom step pe
thermo_modify format float %.15g
dump f all custom 1 forces.dump id type x y z fx fy fz
dump_modify f sort id format float %.15g
run 0
print "PE_TOTAL $(pe:%.15g)"
"""

CALC = """
import json, sys
import numpy as np, torch
torch.set_num_threads(1)
from ase import Atoms
from mace.calculators import MACECalculator
d = json.load(open(sys.argv[2]))
at = Atoms(symbols=d["symbols"], positions=d["positions"], cell=d["cell"], pbc=True)
at.calc = MACECalculator(model_paths=sys.argv[1], device="cpu", default_dtype="float64")
json.dump({"energy": at.get_potential_energy(), "forces": at.get_forces().tolist()},
          open(sys.argv[3], "w"))
"""


def case_load():
    data = os.path.join(SRC, "examples", "li13si4", "data.Li13Si4.unitcell.lmp")
    with open(os.path.join(ARGS.work, "in.forces"), "w") as fh:
        fh.write(FORCE_DECK.format(data=data, model=model_path()))
    text = run([ARGS.lmp, "-in", "in.forces", "-log", "log.lammps", "-screen", "none"])
    with open(os.path.join(ARGS.work, "log.lammps")) as fh:
        text += fh.read()
    for style in ("pair style plugin mace", "fix style plugin msm", "compute style plugin msm"):
        if style not in text:
            fail(f"'plugin list' does not show '{style}'")
    ok("pairmaceplugin.so and ionmsmplugin.so loaded together (pair mace, fix msm, compute msm)")
    found = re.findall(r"^PE_TOTAL ([-+0-9.eE]+)$", text, re.M)
    if not found:
        fail("no 'PE_TOTAL' line in the log")
    pe = float(found[-1])
    with open(os.path.join(ARGS.work, "forces.dump")) as fh:
        lines = fh.read().splitlines()
    n = int(lines[3])
    box = np.array([[float(v) for v in lines[5 + k].split()[:2]] for k in range(3)])
    rows = np.array([[float(v) for v in r.split()] for r in lines[9:9 + n]])
    frame = {"symbols": ["Li" if t == 1 else "Si" for t in rows[:, 1].astype(int)],
             "positions": (rows[:, 2:5] - box[:, 0]).tolist(),
             "cell": np.diag(box[:, 1] - box[:, 0]).tolist()}
    with open(os.path.join(ARGS.work, "frame.json"), "w") as fh:
        json.dump(frame, fh)
    with open(os.path.join(ARGS.work, "calc.py"), "w") as fh:
        fh.write(CALC)
    run([STACK["python"], "calc.py", model_path().replace("-lammps.pt", ""), "frame.json",
         "calc.json"])
    with open(os.path.join(ARGS.work, "calc.json")) as fh:
        ref = json.load(fh)
    df = np.abs(np.array(ref["forces"]) - rows[:, 5:8]).max()
    de = abs(ref["energy"] - pe)
    fmax = np.abs(rows[:, 5:8]).max()
    if not fmax > 1e-4:
        fail(f"largest force {fmax} eV/A: the model does not exercise the comparison")
    if df > 1e-8 or de > 1e-8 * max(1.0, abs(pe)):
        fail(f"pair_style mace vs mace's calculator: |dF| {df:.3g} eV/A, |dE| {de:.3g} eV")
    ok(f"pair_style mace == mace's Python calculator on 68 displaced atoms: |dF| <= {df:.1e} "
       f"eV/A (largest |F| {fmax:.3g}), |dE| = {de:.1e} eV")


def case_serial():
    write_grid_sites()
    text = lmp_md(1, "serial", "counts.h5", 40)
    if "pair style plugin mace" not in text and "pair_style mace" not in text:
        fail("the log does not show pair_style mace")
    compare_with_slow("counts.h5", "1 rank, pair_style mace no_domain_decomposition")


def case_dd():
    write_grid_sites()
    lmp_md(2, "dd", "counts.h5", 20)
    compare_with_slow("counts.h5", "2 ranks, pair_style mace (domain decomposition)")


CASES = {"model": case_model, "load": case_load, "serial": case_serial, "dd": case_dd}


def main():
    global ARGS
    ap = driver_parser(CASES)
    ap.add_argument("--model-dir", default="")
    ARGS = ap.parse_args()
    ARGS.model_dir = ARGS.model_dir or os.path.join(os.path.dirname(ARGS.work), "model")
    find_stack()
    run_case(CASES, ARGS)


if __name__ == "__main__":
    main()
