#!/usr/bin/python3
"""Overhead of fix msm relative to the same MD without it, from PAIRED runs.

For each configuration the same input runs with and without `fix msm`, alternating, REPEATS
times; the reported overhead is the median over pairs of (loop time with / loop time without - 1).
Pairs run back to back, so slow drifts of the machine cancel. On a shared VM the loop time of
identical runs still varies by several percent, so the table also reports the fix's own cost:
the extra time in LAMMPS's "Modify" timer section (which holds every fix's work) of the run
with fix msm, divided by the loop time without it. That estimator resolves far below 1 %.
A third column divides the sampling time fix msm reports in the log ("Fix msm ID: N samples
in this run, T s sampling", slowest rank) by the loop time without it: the other fixes'
run-to-run variation (which enters the Modify difference) does not enter it. Lags are geometric from 1 to
CAP = 64 samples (multitau: 1..8, 10, 12, ...), and an untimed warm-up run of CAP samples
precedes the timed run (in both members of a pair) so that every lag is active while timed.

Systems:
  meam     Li13Si4 2x1x3 (204 atoms, 156 Li), Cui 2012 MEAM, Si held (examples/li13si4)
  cheap    N non-interacting particles in a periodic potential (fix brownian), >= 50,000 atoms

Usage:
  bench/overhead.py --system meam  --nevery 1 10 100 --nlags 8 32 --ranks 1 2 --steps 2000
  bench/overhead.py --system cheap --natoms 50000 --nevery 1 10 --nlags 8 32 --steps 200
Prints a Markdown table (append it to bench/README.md with the command line).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MEAM = """
units metal
atom_style atomic
boundary p p p
read_data {root}/examples/li13si4/data.Li13Si4.unitcell.lmp
replicate 2 1 3
pair_style meam
pair_coeff * * {pot}/library.meam Li Si {pot}/LiSi.meam Li Si
group li type 1
group si type 2
timestep 0.001
write_dump li custom li_sites.txt x y z modify sort id header no format float %.12f
velocity li create 500 4928 dist gaussian
fix nve li nve
fix lang li langevin 500 500 0.1 4928
thermo 0
run 200
{fixmsm}
run {warm}
run {steps}
"""

CHEAP = """
units metal
atom_style atomic
boundary p p p
atom_modify map array sort 1000 0.0
variable n equal {nside}
region box block 0 $(2.0*v_n) 0 $(2.0*v_n) 0 $(2.0*v_n)
create_box 2 box
lattice sc 2.0 origin 0.5 0.5 0.5
create_atoms 2 box
create_atoms 1 random {natoms} 4242 box
mass * 6.941
pair_style zero 1.0
pair_coeff * *
neighbor 0.5 bin
group li type 1
group sites type 2
timestep 0.001
variable fx atom {u0}*PI/2.0*sin(2*PI*x/2.0)
variable fy atom {u0}*PI/2.0*sin(2*PI*y/2.0)
variable fz atom {u0}*PI/2.0*sin(2*PI*z/2.0)
fix f li addforce v_fx v_fy v_fz
fix bd li brownian 500 4242 gamma_t 41.57 rng gaussian
thermo 0
run 20
{fixmsm}
run {warm}
run {steps}
"""


def loop_time(log):
    """(loop time, Modify section time, fix msm's own sampling time or None) of the last run."""
    times = re.findall(r"Loop time of ([0-9.eE+-]+) on", log)
    mods = re.findall(r"^Modify\s*\|\s*[0-9.eE+-]+\s*\|\s*([0-9.eE+-]+)", log, re.M)
    if not times or not mods:
        raise RuntimeError("no 'Loop time' / 'Modify' timing in the log:\n" + log[-2000:])
    own = re.findall(r"^Fix msm \S+: \d+ samples in this run, ([0-9.eE+-]+) s sampling", log, re.M)
    return float(times[-1]), float(mods[-1]), (float(own[-1]) if own else None)


def run(deck, ranks, workdir):
    path = os.path.join(workdir, "in.bench")
    with open(path, "w") as fh:
        fh.write(deck)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1")
    cmd = [os.path.join(ROOT, "scripts", "lmp"), "-in", path, "-log", "log.bench", "-screen", "none"]
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks)] + cmd
    p = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    with open(os.path.join(workdir, "log.bench")) as fh:
        log = fh.read()
    if p.returncode != 0:
        raise RuntimeError(log[-3000:] + p.stderr[-2000:])
    return loop_time(log)


def lags_for(nlags, nevery, multitau=False):
    if multitau:
        # 1..8, then 10 12 14 16, 20 24 28 32, ...: every lag m 2^j with m <= 16 (any M >= 16)
        cands = sorted({m << j for j in range(20) for m in range(1, 17)})
        picked = [c for c in cands if c <= 8] + [c for c in cands if c > 8 and
                                                   (c >> (c.bit_length() - 4)) % 2 == 0 and
                                                   c % (1 << max(0, c.bit_length() - 4)) == 0]
        return " ".join(str(l * nevery) for l in sorted(set(picked))[:nlags])
    # nlags distinct, roughly geometric lags from 1 to CAP samples
    lags = []
    for i in range(nlags):
        v = int(round(CAP ** (i / max(1, nlags - 1))))
        lags.append(max(v, lags[-1] + 1) if lags else v)
    return " ".join(str(l * nevery) for l in lags)


CAP = 64  # longest lag in samples; a warm-up run of CAP samples precedes the timed run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--system", choices=["meam", "cheap"], required=True)
    ap.add_argument("--nevery", type=int, nargs="+", default=[10])
    ap.add_argument("--nlags", type=int, nargs="+", default=[8])
    ap.add_argument("--ranks", type=int, nargs="+", default=[1])
    ap.add_argument("--history", nargs="+", default=["full"],
                    help="history modes to pass to fix msm (e.g. full 'multitau 16')")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--natoms", type=int, default=50000)
    ap.add_argument("--u0", type=float, default=0.08,
                    help="cheap system: amplitude U0 (eV) of the cosine potential; the barrier "
                         "between sites is U0 (0.08: ~2 kT at 500 K, near-free diffusion with a "
                         "site change every ~20 fs; 0.3: ~7 kT, hopping)")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()

    print(f"| system | atoms | ranks | Nevery | lags | history | steps | t without (s) | t with (s) | "
          f"total-time ratio - 1 (median of {a.repeats} pairs) | fix cost: extra Modify time / t without | "
          f"fix msm's own sampling time / t without |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for ranks in a.ranks:
        for nevery in a.nevery:
            for nlags in a.nlags:
                for hist in a.history:
                    with tempfile.TemporaryDirectory() as wd:
                        lags = lags_for(nlags, nevery, hist.startswith("multitau"))
                        hkw = "" if hist == "full" else f" history {hist}"
                        if a.system == "meam":
                            fixmsm = (f"fix m li msm {nevery} sites file li_sites.txt lags {lags} "
                                      f"file counts.h5 overwrite yes{hkw}")
                            tmpl = dict(root=ROOT, pot=os.path.join(ROOT, "potentials", "LiSi_Cui2012"),
                                        steps=a.steps, warm=CAP * nevery)
                            deck = MEAM
                            natoms = 204
                        else:
                            nside = max(2, int(round((a.natoms * 1.0) ** (1 / 3))))
                            fixmsm = (f"fix m li msm {nevery} sites group sites lags {lags} "
                                      f"file counts.h5 overwrite yes{hkw}")
                            tmpl = dict(nside=nside, natoms=a.natoms, u0=a.u0, steps=a.steps,
                                        warm=CAP * nevery)
                            deck = CHEAP
                            natoms = a.natoms
                        ratios, t0s, t1s, fixfrac, ownfrac = [], [], [], [], []
                        for _ in range(a.repeats):
                            t0, m0, _ = run(deck.format(fixmsm="", **tmpl), ranks, wd)
                            t1, m1, own = run(deck.format(fixmsm=fixmsm, **tmpl), ranks, wd)
                            t0s.append(t0)
                            t1s.append(t1)
                            ratios.append(t1 / t0 - 1.0)
                            # the fix's own cost: the extra time in LAMMPS's Modify section
                            fixfrac.append((m1 - m0) / t0)
                            # and as fix msm times itself (slowest rank, sampling only)
                            ownfrac.append(own / t0 if own is not None else float("nan"))
                        print(f"| {a.system} | {natoms} | {ranks} | {nevery} | {nlags} | {hist} | "
                              f"{a.steps} | {statistics.median(t0s):.3f} | {statistics.median(t1s):.3f} | "
                              f"{100 * statistics.median(ratios):+.2f} % | "
                              f"{100 * statistics.median(fixfrac):+.3f} % | "
                              f"{100 * statistics.median(ownfrac):.3f} % |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
