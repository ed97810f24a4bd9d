#!/usr/bin/python3
"""A synthetic disordered host: Gaussian potential wells at random positions in a triclinic
cell, felt by non-interacting mobile ions (LAMMPS type 1) through `pair_style table` with fixed
well atoms (types 2, 3, ...: one type per well depth).

    U(r) = -A exp(-r^2 / (2 w^2))   for r < 5 w   (between an ion and a well atom)

Writes into --out:
  landscape.lmp    region, create_box, the well atoms, masses, pair style and coefficients
                   (include it before creating the ions)
  landscape.table  the tabulated wells, one section per depth
  wells.txt        the true well centres as a sites file (fractional coordinates; label
                   w<index>_<depth in kT>), to compare with what `ionmsm sites` finds

usage: make_landscape.py --out DIR [--wells N] [--seed S] [--cell "LX LY LZ XY XZ YZ"]
                         [--min-separation D] [--width W] [--depths-kT "A1 A2 ..."] [--T K]
Lengths in Angstrom (LAMMPS metal units).
"""
import argparse
import math
import os
import random

import numpy as np

KB_EV = 8.617333262e-5
# inner end of the table: LAMMPS stops when an ion comes closer than this to a well centre
RLO = 1e-6


def cell_matrix(lx, ly, lz, xy, xz, yz):
    # columns a, b, c (LAMMPS restricted triclinic)
    return np.array([[lx, xy, xz], [0.0, ly, yz], [0.0, 0.0, lz]])


IMAGES = np.array([(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])


def periodic_distances(h, f, others):
    """Distances from fractional point f to each row of `others` (nearest of 27 images)."""
    if len(others) == 0:
        return np.zeros(0)
    d = np.asarray(others) - f
    d -= np.round(d)
    r = (d[:, None, :] + IMAGES[None, :, :]) @ h.T
    return np.sqrt((r * r).sum(axis=2)).min(axis=1)


def random_wells(h, n, min_sep, depths, rng):
    """Random sequential addition: uniform positions, rejected when closer than min_sep."""
    pos, kind = [], []
    tries = 0
    while len(pos) < n:
        tries += 1
        if tries > 200000:
            raise SystemExit(f"cannot place {n} wells {min_sep} apart in this cell")
        f = np.array([rng.random(), rng.random(), rng.random()])
        if len(pos) == 0 or periodic_distances(h, f, pos).min() >= min_sep:
            pos.append(f)
            kind.append(rng.randrange(len(depths)))
    return list(zip(pos, kind))


def write_table(path, depths_ev, width):
    cutoff = 5.0 * width
    npts = 2000
    with open(path, "w") as f:
        f.write("# Gaussian wells U(r) = -A exp(-r^2/(2 w^2)), w = %g A (make_landscape.py)\n\n"
                % width)
        for k, a in enumerate(depths_ev):
            f.write(f"WELL{k}\nN {npts} R {RLO} {cutoff:.6f}\n\n")
            for i in range(npts):
                r = RLO + (cutoff - RLO) * i / (npts - 1)
                e = -a * math.exp(-r * r / (2 * width * width))
                force = e * r / (width * width)  # -dU/dr
                f.write(f"{i + 1} {r:.8f} {e:.10e} {force:.10e}\n")
            f.write("\n")
    return cutoff


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--wells", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--cell", default="15 14 13 3 -2 1.5")
    ap.add_argument("--min-separation", type=float, default=2.0)
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--depths-kT", default="5 6 7")
    ap.add_argument("--T", type=float, default=300.0)
    args = ap.parse_args()

    lx, ly, lz, xy, xz, yz = (float(v) for v in args.cell.split())
    h = cell_matrix(lx, ly, lz, xy, xz, yz)
    depths_kt = [float(v) for v in args.depths_kT.split()]
    depths_ev = [d * KB_EV * args.T for d in depths_kt]
    rng = random.Random(args.seed)
    wells = random_wells(h, args.wells, args.min_separation, depths_kt, rng)
    os.makedirs(args.out, exist_ok=True)
    cutoff = write_table(os.path.join(args.out, "landscape.table"), depths_ev, args.width)

    ntypes = 1 + len(depths_kt)
    with open(os.path.join(args.out, "landscape.lmp"), "w") as f:
        f.write(f"# {len(wells)} Gaussian wells (make_landscape.py --seed {args.seed})\n")
        f.write(f"region box prism 0 {lx} 0 {ly} 0 {lz} {xy} {xz} {yz}\n")
        f.write(f"create_box {ntypes} box\n")
        for frac, k in wells:
            x = h @ frac
            f.write(f"create_atoms {k + 2} single {x[0]:.12f} {x[1]:.12f} {x[2]:.12f} units box\n")
        f.write("mass * 6.941\n")
        f.write("pair_style table linear 2000\n")
        f.write(f"pair_coeff * * landscape.table WELL0 {cutoff:.6f}\n")
        for k in range(len(depths_kt)):
            f.write(f"pair_coeff 1 {k + 2} landscape.table WELL{k} {cutoff:.6f}\n")
        f.write("group wells type " + " ".join(str(k + 2) for k in range(len(depths_kt))) + "\n")
        f.write("neigh_modify exclude type 1 1 exclude group wells wells\n")
    with open(os.path.join(args.out, "wells.txt"), "w") as f:
        f.write("# ionmsm-sites 1\n")
        f.write(f"# true well centres, make_landscape.py --seed {args.seed} --wells {args.wells} "
                f"--width {args.width} --depths-kT '{args.depths_kT}' --T {args.T}\n")
        f.write("coordinates fractional\n")
        for i, (frac, k) in enumerate(wells):
            f.write(f"{frac[0]:.12f} {frac[1]:.12f} {frac[2]:.12f} w{i}_{depths_kt[k]:g}kT\n")
    print(f"{len(wells)} wells, depths {args.depths_kT} kT at {args.T} K, width {args.width} A, "
          f"-> {args.out}")


if __name__ == "__main__":
    main()
