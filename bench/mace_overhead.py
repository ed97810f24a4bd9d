#!/usr/bin/python3
"""fix msm's own time as a share of a MACE MD step (pair_style mace, built by scripts/setup-mace).

Runs examples/mace_pipeline/in.md with pair_style mace (serial mode, one rank, one thread) and
fix msm, and reads fix msm's self-timing line ("Fix msm ID: N samples in this run, T s sampling
...", slowest rank) and LAMMPS's loop time: share = T / loop time; per sample and per MD step in
ms. A MACE step costs hundreds of ms here, so the share is small and the loop time's run-to-run
variation (several percent on a shared machine) does not enter it.

Usage:
  bench/mace_overhead.py --model out/mace_pipeline/fit/LiSi.model-lammps.pt \
      --cell 2 1 3 --nevery 1 10 --steps 200 [--lags "10 20 50 100 200 500"]
Prints a Markdown table (append it to bench/README.md with the command line).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mace_env():
    cache = os.environ.get("IONMSM_CACHE", os.path.expanduser("~/.cache/ionmsm"))
    plugin_dir = os.path.join(cache, "mace", "plugin")
    if not os.path.exists(os.path.join(plugin_dir, "pairmaceplugin.so")):
        sys.exit(f"mace_overhead.py: {plugin_dir}/pairmaceplugin.so missing; run scripts/setup-mace")
    env = dict(os.environ)
    env["LAMMPS_PLUGIN_PATH"] = plugin_dir
    env["OMP_NUM_THREADS"] = "1"
    return env


def run(model, cell, nevery, steps, lags, work):
    cmd = [os.path.join(ROOT, "scripts", "lmp"), "-in",
           os.path.join(ROOT, "examples", "mace_pipeline", "in.md"), "-log", "log.lammps",
           "-screen", "none", "-var", "pot", "mace", "-var", "model", os.path.abspath(model),
           "-var", "nx", str(cell[0]), "-var", "ny", str(cell[1]), "-var", "nz", str(cell[2]),
           "-var", "neq", "0", "-var", "nprod", str(steps), "-var", "nevery", str(nevery),
           "-var", "lags", lags, "-var", "blocks", str(steps), "-var", "thermo", str(steps),
           "-var", "datadir", os.path.join(ROOT, "examples", "li13si4")]
    p = subprocess.run(cmd, cwd=work, env=mace_env(), capture_output=True, text=True)
    with open(os.path.join(work, "log.lammps"), errors="replace") as fh:
        text = fh.read()
    if p.returncode != 0:
        sys.exit(f"lmp failed: {text[-2000:]}{p.stderr[-2000:]}")
    loop = re.findall(r"Loop time of ([0-9.eE+-]+) on \d+ procs for (\d+) steps with (\d+) atoms",
                      text)[-1]
    fix = re.findall(r"Fix msm \S+: (\d+) samples in this run, ([0-9.eE+-]+) s sampling", text)[-1]
    loop_s, nsteps, natoms = float(loop[0]), int(loop[1]), int(loop[2])
    samples, sampling_s = int(fix[0]), float(fix[1])
    return {"natoms": natoms, "steps": nsteps, "loop_s": loop_s, "samples": samples,
            "sampling_s": sampling_s}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--cell", type=int, nargs=3, default=[2, 1, 3])
    ap.add_argument("--nevery", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lags", default="10 20 50 100 200 500")
    a = ap.parse_args()
    print("| atoms | Nevery | steps | MD steps/s | ms per MD step | fix msm ms per sample | "
          "fix msm share of the loop |")
    print("|---|---|---|---|---|---|---|")
    for nevery in a.nevery:
        with tempfile.TemporaryDirectory(prefix="mace_overhead_") as work:
            r = run(a.model, a.cell, nevery, a.steps, a.lags, work)
        print(f"| {r['natoms']} | {nevery} | {r['steps']} | {r['steps'] / r['loop_s']:.3g} | "
              f"{1e3 * r['loop_s'] / r['steps']:.4g} | "
              f"{1e3 * r['sampling_s'] / max(1, r['samples']):.3g} | "
              f"{100 * r['sampling_s'] / r['loop_s']:.3f} % |", flush=True)


if __name__ == "__main__":
    main()
