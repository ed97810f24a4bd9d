#!/usr/bin/python3
"""Picture of `ionmsm sites`: the ion density projected on two cell axes (three panels: a-b,
a-c, b-c, in fractional coordinates) with the sites marked.

usage: plot_sites.py DATA --out FILE.png

DATA is the text `ionmsm sites` hands over (tag '# ionmsm-sites-projection 1'): a title line,
three 'projection A B NA NB' blocks of NB rows with NA numbers (density averaged along the
third axis), and 'sites K' followed by K lines 'fa fb fc occupancy is_seed'.
"""
import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

AXES = "abc"


def read_data(path):
    with open(path) as f:
        lines = f.read().splitlines()
    if not lines or lines[0].strip() != "# ionmsm-sites-projection 1":
        sys.exit(f"{path}: not an ionmsm-sites-projection 1 file")
    title = lines[1][len("title "):]
    i = 2
    projections = []
    while lines[i].startswith("projection"):
        _, a, b, na, nb = lines[i].split()
        na, nb = int(na), int(nb)
        rows = [np.array(lines[i + 1 + j].split(), dtype=float) for j in range(nb)]
        projections.append((int(a), int(b), np.vstack(rows)))
        i += 1 + nb
    k = int(lines[i].split()[1])
    sites = np.array([lines[i + 1 + j].split() for j in range(k)], dtype=float).reshape(k, 5)
    return title, projections, sites


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    title, projections, sites = read_data(args.data)

    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2))
    seed = sites[:, 4] > 0.5
    occ = sites[:, 3]
    size = 10 + 60 * occ / occ.max() if occ.size and occ.max() > 0 else np.full(occ.shape, 20)
    for ax, (a, b, rho) in zip(axes, projections):
        im = ax.imshow(rho, origin="lower", extent=(0, 1, 0, 1), aspect="equal", cmap="viridis",
                       interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.8, label="mean density along " + AXES[3 - a - b])
        ax.scatter(sites[~seed, a], sites[~seed, b], s=size[~seed], facecolors="none",
                   edgecolors="red", linewidths=1.0, label="found")
        if seed.any():
            ax.scatter(sites[seed, a], sites[seed, b], s=size[seed], marker="s",
                       facecolors="none", edgecolors="white", linewidths=1.0, label="seed")
        ax.set_xlabel(f"{AXES[a]} (fractional)")
        ax.set_ylabel(f"{AXES[b]} (fractional)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    axes[0].legend(loc="upper right", fontsize=8)
    fig.suptitle(f"{title}: {len(sites)} sites (marker area ~ occupancy)")
    fig.tight_layout()
    tmp = os.path.join(os.path.dirname(os.path.abspath(args.out)),
                       "." + os.path.basename(args.out) + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
