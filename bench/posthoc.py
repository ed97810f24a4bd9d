#!/usr/bin/python3
"""The post-hoc route against in-situ counting, for the same counts.

Post-hoc: the MD writes a dump (id x y z ix iy iz) every Nevery steps; afterwards a numpy/scipy
script (periodic KD-tree for the nearest site, vectorised sliding-window counting) builds the
same counts. In situ: the same MD with fix msm and no dump.

Reports bytes on disk and CPU seconds for both routes, and checks that both give the same
number of counts per lag (the exact equality of the counts themselves is what
tests/integration checks; here we time).

Usage: bench/posthoc.py [--natoms 20000] [--steps 500] [--nevery 10] [--nlags 8]
Needs Debian's python3-numpy and python3-scipy (run with /usr/bin/python3).
"""
import argparse
import os
import resource
import subprocess
import tempfile
import time

import numpy as np
from scipy.spatial import cKDTree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DECK = """
units metal
atom_style atomic
boundary p p p
atom_modify map array sort 1000 0.0
region box block 0 {L} 0 {L} 0 {L}
create_box 2 box
lattice sc 2.0 origin 0.5 0.5 0.5
create_atoms 2 box
create_atoms 1 random {natoms} 4242 box
mass * 6.941
pair_style zero 1.0
pair_coeff * *
group li type 1
group sites type 2
timestep 0.001
variable fx atom 0.08*PI/2.0*sin(2*PI*x/2.0)
variable fy atom 0.08*PI/2.0*sin(2*PI*y/2.0)
variable fz atom 0.08*PI/2.0*sin(2*PI*z/2.0)
fix f li addforce v_fx v_fy v_fz
fix bd li brownian 500 4242 gamma_t 41.57 rng gaussian
write_dump sites custom sites.txt x y z modify sort id header no format float %.12f
thermo 0
{extra}
run {steps}
"""


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_lmp(deck, wd):
    with open(os.path.join(wd, "in.posthoc"), "w") as fh:
        fh.write(deck)
    c0 = children_cpu()
    subprocess.run([os.path.join(ROOT, "scripts", "lmp"), "-in", "in.posthoc", "-log", "none",
                    "-screen", "none"], cwd=wd, check=True)
    return children_cpu() - c0


def count_posthoc(dump, sites, L, nevery, lags):
    """Vectorised post-hoc counting from a dump: returns counts per lag (total only)."""
    tree = cKDTree(np.mod(sites, L), boxsize=L)
    frames = []
    with open(dump) as fh:
        while True:
            line = fh.readline()
            if not line:
                break
            if line.startswith("ITEM: NUMBER OF ATOMS"):
                n = int(fh.readline())
                for _ in range(5):
                    fh.readline()
                arr = np.loadtxt(fh, max_rows=n)
                arr = arr[np.argsort(arr[:, 0])]
                frames.append(arr)
    site_idx, images = [], []
    for arr in frames:
        x = arr[:, 1:4]
        img = arr[:, 4:7]
        _, idx = tree.query(np.mod(x, L))
        # image of the chosen site nearest the unwrapped position
        xu = x + img * L
        n_img = np.round((xu - sites[idx]) / L).astype(np.int64)
        site_idx.append(idx)
        images.append(n_img)
    S = np.array(site_idx)
    N = np.array(images)
    totals = {}
    for lag in lags:
        l = lag // nevery
        if l >= len(S):
            totals[lag] = 0
            continue
        frm, to = S[:-l], S[l:]
        shift = N[l:] - N[:-l]
        keys = np.stack([frm.ravel(), to.ravel(), *shift.reshape(-1, 3).T], axis=1)
        uniq, cnt = np.unique(keys, axis=0, return_counts=True)
        totals[lag] = int(cnt.sum())
    return totals


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--natoms", type=int, default=20000)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--nevery", type=int, default=10)
    ap.add_argument("--nlags", type=int, default=8)
    a = ap.parse_args()
    nside = int(round(a.natoms ** (1 / 3)))
    L = 2.0 * nside
    lags = [a.nevery * (1 << k) for k in range(a.nlags)]
    lagstr = " ".join(map(str, lags))
    with tempfile.TemporaryDirectory() as wd:
        base = dict(L=L, natoms=a.natoms, steps=a.steps)
        cpu_dump = run_lmp(DECK.format(extra=f"dump d li custom {a.nevery} traj.dump id x y z ix iy iz\n"
                                             "dump_modify d format float %.6f", **base), wd)
        dump_bytes = os.path.getsize(os.path.join(wd, "traj.dump"))
        sites = np.loadtxt(os.path.join(wd, "sites.txt"))
        t0 = time.process_time()
        totals = count_posthoc(os.path.join(wd, "traj.dump"), sites, L, a.nevery, lags)
        cpu_count = time.process_time() - t0
        cpu_insitu = run_lmp(DECK.format(extra=f"fix m li msm {a.nevery} sites group sites "
                                               f"lags {lagstr} file counts.h5", **base), wd)
        h5_bytes = os.path.getsize(os.path.join(wd, "counts.h5"))
        cpu_plain = run_lmp(DECK.format(extra="", **base), wd)
    print(f"| route | bytes on disk | CPU s (MD) | CPU s (counting) | CPU s total |")
    print(f"|---|---|---|---|---|")
    print(f"| MD only, no output | 0 | {cpu_plain:.2f} | - | {cpu_plain:.2f} |")
    print(f"| post-hoc: dump every {a.nevery} + numpy/scipy | {dump_bytes:,} | {cpu_dump:.2f} | "
          f"{cpu_count:.2f} | {cpu_dump + cpu_count:.2f} |")
    print(f"| in situ: fix msm | {h5_bytes:,} | {cpu_insitu:.2f} | (included) | {cpu_insitu:.2f} |")
    print(f"\n{a.natoms} atoms, {a.steps} steps, Nevery {a.nevery}, lags {lagstr}; "
          f"post-hoc totals per lag: {totals}")


if __name__ == "__main__":
    main()
