#!/usr/bin/python3
"""Writes a small SYNTHETIC "AIMD-like" trajectory to try the rerun workflow without AIMD data:
Li13Si4 (examples/li13si4 data file, replicated --cells times along a), Si fixed with small
noise, every Li a random walk between Li sites closer than --hop-radius (minimum image, so
walks cross the cell faces), plus Gaussian rattling of --noise A. Positions are written WRAPPED
into the cell, as AIMD codes do, so image flags must be recovered by unwrapping.

  /usr/bin/python3 make_test_trajectory.py --frames 200 --out synthetic.extxyz
  /usr/bin/python3 make_test_trajectory.py --format cp2k --out synthetic-pos-1.xyz   # no cell
  ... --shear 0.3 --rotate   # triclinic cell in a general orientation (converter test)

--truth FILE.npz also stores the unwrapped fractional coordinates (frames, atoms, 3) and the
cell rows, for tests. Needs numpy only.
"""
import argparse
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def read_lammps_data(path):
    lines = open(path).read().splitlines()
    box = {}
    atoms = []
    i = 0
    while i < len(lines):
        t = lines[i].split("#")[0].split()
        if len(t) == 4 and t[2].endswith("lo"):
            box[t[2][0]] = float(t[1]) - float(t[0])
        if t[:1] == ["Atoms"]:
            i += 2
            while i < len(lines) and lines[i].strip():
                v = lines[i].split()
                atoms.append((int(v[0]), int(v[1]), float(v[2]), float(v[3]), float(v[4])))
                i += 1
            break
        i += 1
    atoms.sort()
    return np.diag([box["x"], box["y"], box["z"]]), atoms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(HERE, "..", "li13si4", "data.Li13Si4.unitcell.lmp"))
    ap.add_argument("--cells", type=int, default=1, help="replicas along a (default 1)")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--hop-prob", type=float, default=0.05, help="per Li and frame")
    ap.add_argument("--hop-radius", type=float, default=3.2, help="A")
    ap.add_argument("--noise", type=float, default=0.15, help="A (Gaussian, per component)")
    ap.add_argument("--shear", type=float, default=0.0, help="b += shear * a (triclinic)")
    ap.add_argument("--rotate", action="store_true", help="rotate cell and atoms (general frame)")
    ap.add_argument("--format", choices=["extxyz", "cp2k"], default="extxyz")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--truth")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)

    H0, atoms = read_lammps_data(a.data)            # rows = a, b, c (orthogonal here)
    f0 = np.array([[x, y, z] for _, _, x, y, z in atoms]) @ np.linalg.inv(H0)
    types = np.array([t for _, t, *_ in atoms])
    reps = [f0 + [k, 0, 0] for k in range(a.cells)]
    frac = np.vstack(reps) / [a.cells, 1, 1]
    types = np.tile(types, a.cells)
    A = H0.copy()
    A[0] *= a.cells
    A[1] = A[1] + a.shear * A[0]
    if a.rotate:
        th, ph = 0.4, 0.7
        R = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1]]) @ \
            np.array([[1, 0, 0], [0, np.cos(ph), -np.sin(ph)], [0, np.sin(ph), np.cos(ph)]])
        A = A @ R.T
    Ainv = np.linalg.inv(A)
    species = np.where(types == 1, "Li", "Si")
    li = np.flatnonzero(types == 1)
    sites = frac[li]                                  # fractional, in [0, 1)
    # neighbour lists (minimum image) between Li sites
    nbrs = []
    for s in range(len(sites)):
        d = sites - sites[s]
        d -= np.round(d)
        dist = np.linalg.norm(d @ A, axis=1)
        # a hop must stay well below half a cell vector along every axis, or unwrapping
        # consecutive frames (minimum-image steps) could not tell its direction
        short = np.all(np.abs(d) < 0.4, axis=1)
        nbrs.append(np.flatnonzero((dist > 1e-6) & (dist < a.hop_radius) & short))
    site_of = np.arange(len(li))
    shift = np.zeros((len(li), 3))                    # lattice translation of each Li's walk
    nat = len(frac)
    truth = np.empty((a.frames, nat, 3))
    with open(a.out, "w") as fh:
        for k in range(a.frames):
            if k > 0:
                for j in range(len(li)):
                    if nbrs[site_of[j]].size and rng.random() < a.hop_prob:
                        s = site_of[j]
                        t = rng.choice(nbrs[site_of[j]])
                        d = sites[t] - sites[s]
                        shift[j] += -np.round(d)      # crossing a face adds a lattice vector
                        site_of[j] = t
            u = frac.copy()
            u[li] = sites[site_of] + shift
            u += rng.normal(0.0, a.noise, u.shape) @ Ainv
            truth[k] = u
            x = (u - np.floor(u)) @ A                # wrapped Cartesian positions
            fh.write(f"{nat}\n")
            if a.format == "extxyz":
                lat = " ".join(f"{v:.10f}" for v in A.reshape(-1))
                fh.write(f'Lattice="{lat}" Properties=species:S:1:pos:R:3 Time={k * 5.0:.1f} '
                         f'pbc="T T T"\n')
            else:
                fh.write(f" i = {k:8d}, time = {k * 5.0:12.3f}, E = {-100.0:20.10f}\n")
            for i in range(nat):
                fh.write(f"{species[i]:>2} {x[i, 0]:18.10f} {x[i, 1]:18.10f} {x[i, 2]:18.10f}\n")
    if a.truth:
        np.savez(a.truth, unwrapped_fractional=truth, cell=A, types=types)
    print(f"wrote {a.out}: {a.frames} frames, {nat} atoms ({len(li)} Li), cell rows\n{A}")


if __name__ == "__main__":
    main()
