#!/usr/bin/python3
"""Before/after check for fix msm refactorings: runs the same LAMMPS inputs with two builds of
the plugin and compares what they write.

    /usr/bin/python3 tests/tools/compare_plugin_outputs.py --lmp LMP \
        --ref-plugin-dir OLD_BUILD --new-plugin-dir build --ionmsm build/ionmsm --work /tmp/cmp

Inputs: tests/integration/in.brownian (200 Brownian particles on a cubic lattice of 64 sites)
with history full and multitau, assign core, blocks with checkpoints every Nout, a sites file,
and a write_restart / read_restart continuation; each on 1 and 2 MPI ranks. Both plugins run
the same lmp binary in directories of the same name, so their inputs are identical.

Compared: each counts file as `ionmsm export` CSV (the same ionmsm binary reads both) and by
content with h5compare.py (every group, dataset and attribute with dtype, shape, chunks,
filters and exact values; the attribute `command` and `ionmsm_version`/`lammps_version` are
compared too, nothing is left out), and every LAMMPS restart file byte for byte. Exit status 0
when everything is identical.
"""
import argparse
import filecmp
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from itest_common import lammps_env  # noqa: E402  (lmp with the plugin, also under mpirun)
from h5compare import compare_files  # noqa: E402  (HDF5 files by content)

BROWNIAN = os.path.join(HERE, "..", "integration", "in.brownian")

# (name, in.brownian variables); lags in timesteps (Nevery 5)
CASES = [
    ("full", {}),
    ("multitau", {"extra": "history multitau 4", "lags": "5 10 20 40"}),
    ("core", {"extra": "assign core 0.7"}),
    ("blocks", {"extra": "blocks 200", "every": "100"}),
    ("sitesfile", {"sitesmode": "file", "sitesfile": "sites.txt", "extra": "history full"}),
]

RESTART_PART2 = """read_restart part1.restart
pair_style zero 3.0
pair_coeff * *
variable fx atom 0.08*PI/2.0*sin(2*PI*x/2.0)
variable fy atom 0.08*PI/2.0*sin(2*PI*y/2.0)
variable fz atom 0.08*PI/2.0*sin(2*PI*z/2.0)
fix m mobile msm 5 sites group sites lags {lags} file counts.h5 {extra}
fix f mobile addforce v_fx v_fy v_fz
fix bd mobile brownian 500 777 gamma_t {gamma} rng gaussian
run 300
write_restart part2.restart
"""


def run_lmp(args, plugin_dir, cwd, infile, variables, nprocs):
    cmd = ["mpirun", "-np", str(nprocs)] if nprocs > 1 else []
    cmd += [args.lmp, "-in", infile, "-log", "log.lammps", "-screen", "none"]
    for k, v in variables.items():
        cmd += ["-var", k, str(v)]
    p = subprocess.run(cmd, cwd=cwd, env=lammps_env(plugin_dir), capture_output=True, text=True)
    if p.returncode != 0:
        log = os.path.join(cwd, "log.lammps")
        tail = open(log).read()[-2000:] if os.path.exists(log) else p.stdout[-2000:]
        sys.exit(f"lmp failed in {cwd} ({' '.join(cmd)}):\n{tail}\n{p.stderr[-2000:]}")


def write_sites(path):
    with open(path, "w") as fh:
        fh.write("coordinates fractional\n")
        for i in range(4):
            for j in range(4):
                for k in range(4):
                    fh.write(f"{(i + 0.5) / 4:.6f} {(j + 0.5) / 4:.6f} {(k + 0.5) / 4:.6f}\n")


def run_case(args, plugin_dir, cwd, name, variables, nprocs):
    os.makedirs(cwd, exist_ok=True)
    write_sites(os.path.join(cwd, "sites.txt"))
    base = {"nsteps": 600, "out": "counts.h5"}
    if name == "restart":
        with open(BROWNIAN) as fh:
            deck = fh.read()
        # part 1: one run, then a restart file; part 2 continues the counts from it
        deck = deck.replace("run             ${half}\nrun             ${half}",
                            "run             ${half}\nwrite_restart   part1.restart")
        with open(os.path.join(cwd, "in.part1"), "w") as fh:
            fh.write(deck)
        run_lmp(args, plugin_dir, cwd, "in.part1", dict(base, **variables), nprocs)
        gamma = 8.617333262e-5 * 500 * 9648.5332 / 10.0
        with open(os.path.join(cwd, "in.part2"), "w") as fh:
            fh.write(RESTART_PART2.format(extra=variables.get("extra", ""), gamma=gamma,
                                         lags=variables.get("lags", "5 10 25 50")))
        run_lmp(args, plugin_dir, cwd, "in.part2", {}, nprocs)
        return
    run_lmp(args, plugin_dir, cwd, BROWNIAN, dict(base, **variables), nprocs)


def compare_dirs(args, ref, new, label):
    problems = []
    files = sorted(f for f in os.listdir(ref) if f.endswith((".h5", ".restart")))
    if sorted(f for f in os.listdir(new) if f.endswith((".h5", ".restart"))) != files:
        problems.append(f"{label}: different output files")
    for f in files:
        a, b = os.path.join(ref, f), os.path.join(new, f)
        if not os.path.exists(b):
            continue
        if f.endswith(".restart"):
            if not filecmp.cmp(a, b, shallow=False):
                problems.append(f"{label}: {f} differs byte-wise")
            continue
        csv = [subprocess.run([args.ionmsm, "export", p], capture_output=True, text=True).stdout
               for p in (a, b)]
        if csv[0] != csv[1] or not csv[0]:
            problems.append(f"{label}: `ionmsm export {f}` differs (or is empty)")
        problems += [f"{label}: {f}: {d}" for d in compare_files(a, b)]
    return problems, len(files)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lmp", required=True)
    ap.add_argument("--ref-plugin-dir", required=True, help="folder with the old ionmsmplugin.so")
    ap.add_argument("--new-plugin-dir", required=True, help="folder with the new ionmsmplugin.so")
    ap.add_argument("--ionmsm", required=True, help="ionmsm binary used to export both")
    ap.add_argument("--work", required=True)
    ap.add_argument("--ranks", default="1,2")
    args = ap.parse_args()
    for key in ("lmp", "ref_plugin_dir", "new_plugin_dir", "ionmsm", "work"):
        setattr(args, key, os.path.abspath(getattr(args, key)))
    cases = CASES + [("restart", {}), ("restart_multitau_core",
                                       {"extra": "history multitau 4 assign core 0.7"})]
    problems, compared = [], 0
    for nprocs in (int(n) for n in args.ranks.split(",")):
        for name, variables in cases:
            case = name if not name.startswith("restart") else "restart"
            label = f"{name} on {nprocs} rank(s)"
            if name == "restart_multitau_core":
                variables = dict(variables, lags="5 10 20 40")
            dirs = []
            for side, plugin in (("ref", args.ref_plugin_dir), ("new", args.new_plugin_dir)):
                # the same path for both sides: the command line stored in the files matches
                cwd = os.path.join(args.work, "run")
                shutil.rmtree(cwd, ignore_errors=True)
                run_case(args, plugin, cwd, case, variables, nprocs)
                keep = os.path.join(args.work, side, f"{name}_{nprocs}")
                shutil.rmtree(keep, ignore_errors=True)
                shutil.move(cwd, keep)
                dirs.append(keep)
            p, n = compare_dirs(args, dirs[0], dirs[1], label)
            problems += p
            compared += n
            print(f"{'ok' if not p else 'DIFFERS'}: {label} ({n} files)", flush=True)
    for p in problems:
        print("  " + p)
    print(f"{compared} files compared, {len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
