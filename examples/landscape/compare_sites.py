#!/usr/bin/python3
"""Compare sites found by `ionmsm sites` with the true well centres of make_landscape.py.

usage: compare_sites.py WELLS.txt SITES.txt --cell landscape.lmp [--match R]

For every well: the distance to the nearest found site (periodic). A well is matched when a
site lies within R (default 0.25 A = half the well width); a site is extra when no well lies
within R of it. Prints one summary block; exit status 0.
"""
import argparse
import math

import numpy as np


def read_sites(path):
    """Fractional coordinates, labels and '# occupancy X' comments of a sites file."""
    coords, labels, occ = [], [], []
    fractional = False
    with open(path) as f:
        for line in f:
            body, _, comment = line.partition("#")
            tok = body.split()
            if not tok:
                continue
            if tok[0] == "coordinates":
                fractional = tok[1] == "fractional"
                continue
            coords.append([float(t) for t in tok[:3]])
            labels.append(tok[3] if len(tok) > 3 else "")
            c = comment.split()
            occ.append(float(c[1]) if len(c) > 1 and c[0] == "occupancy" else math.nan)
    if not fractional:
        raise SystemExit(f"{path}: expected fractional coordinates")
    return np.array(coords), labels, np.array(occ)


def read_cell(lmp_path):
    """Cell matrix (columns a, b, c) from the 'region box prism' line of landscape.lmp."""
    with open(lmp_path) as f:
        for line in f:
            t = line.split()
            if t[:3] == ["region", "box", "prism"]:
                xlo, xhi, ylo, yhi, zlo, zhi, xy, xz, yz = (float(v) for v in t[3:12])
                return np.array([[xhi - xlo, xy, xz], [0, yhi - ylo, yz], [0, 0, zhi - zlo]])
    raise SystemExit(f"{lmp_path}: no 'region box prism' line")


def distances(h, fa, fb):
    """Matrix of periodic distances between fractional points fa (n,3) and fb (m,3)."""
    d = fa[:, None, :] - fb[None, :, :]
    d -= np.round(d)
    best = np.full(d.shape[:2], np.inf)
    for i in (-1, 0, 1):
        for j in (-1, 0, 1):
            for k in (-1, 0, 1):
                r = (d + np.array([i, j, k])) @ h.T
                best = np.minimum(best, np.linalg.norm(r, axis=2))
    return best


def compare(h, wells, sites, match):
    dist = distances(h, wells, sites)
    nearest = dist.min(axis=1)
    matched = nearest <= match
    extra = dist.min(axis=0) > match
    return nearest, matched, extra


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wells")
    ap.add_argument("sites")
    ap.add_argument("--cell", required=True)
    ap.add_argument("--match", type=float, default=0.25)
    a = ap.parse_args()
    h = read_cell(a.cell)
    wells, _, _ = read_sites(a.wells)
    sites, _, occ = read_sites(a.sites)
    nearest, matched, extra = compare(h, wells, sites, a.match)
    print(f"wells {len(wells)}, sites found {len(sites)}")
    print(f"wells with a site within {a.match} A: {matched.sum()} of {len(wells)}")
    if matched.any():
        print(f"distance well -> nearest site (matched wells): median {np.median(nearest[matched]):.4f} A, "
              f"max {nearest[matched].max():.4f} A")
    print(f"sites with no well within {a.match} A (extra): {extra.sum()}")
    if extra.any():
        print(f"  their occupancies (ions): {' '.join(f'{x:.3g}' for x in occ[extra])}")
    missed = np.flatnonzero(~matched)
    if missed.size:
        print(f"  missed wells (index: distance to nearest site): "
              + ", ".join(f"{i}: {nearest[i]:.3f}" for i in missed))


if __name__ == "__main__":
    main()
