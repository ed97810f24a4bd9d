#!/usr/bin/python3
"""MSD from the MSM (ionmsm analyze's msd.csv) against the MD MSD of the same run (msd_md.dat
written by the MEAM examples' `fix ave/time ... c_lmsd[*]`), per axis: the paper's Fig. 9 check.

    /usr/bin/python3 examples/tools/compare_msd.py RUN_DIR [--method moments|replicated|minimum_image]

RUN_DIR holds msd_md.dat, counts.h5 (for the timestep) and analysis/msd.csv; writes
RUN_DIR/msd_msm_vs_md.png and prints the Einstein slopes D = slope/2 per axis of both curves
over their common last half. The MD MSD includes the rattling around the sites (an offset of
about 2 <u^2>); the MSM MSD is site-projected, so compare slopes, not values.
"""
import argparse
import csv
import os

import h5py
import numpy as np


def slope(t, y):
    h = len(t) // 2
    if len(t) - h < 2:
        return float("nan")
    return np.polyfit(t[h:], y[h:], 1)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--method", default="moments",
                    choices=["moments", "replicated", "minimum_image"])
    a = ap.parse_args()
    with h5py.File(os.path.join(a.run_dir, "counts.h5"), "r") as f:
        dt = float(f.attrs["timestep_ps"])
        first = int(f.attrs["first_step"])
    md = np.loadtxt(os.path.join(a.run_dir, "msd_md.dat"), comments="#", ndmin=2)
    t_md = (md[:, 0] - first) * dt
    with open(os.path.join(a.run_dir, "analysis", "msd.csv")) as fh:
        rows = list(csv.DictReader(fh))
    t = np.array([float(r["time_ps"]) for r in rows])
    tmax = min(t[-1], t_md[-1])
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ymax = 0.0
    print(f"{'axis':>5} {'D_MSM':>11} {'D_MD':>11}  (A^2/ps, slope/2 over the last half up to {tmax:.3g} ps)")
    for i, axis in enumerate("xyz"):
        y = np.array([float(r[f"{a.method}_{axis}{axis}"]) for r in rows])
        ax.plot(t, y, "-", color=f"C{i}", label=f"MSM {axis}")
        ax.plot(t_md, md[:, 1 + i], ":", color=f"C{i}", label=f"MD {axis}")
        m, mm = t <= tmax, t_md <= tmax
        ymax = max(ymax, float(np.max(y[m], initial=0)), float(np.max(md[mm, 1 + i], initial=0)))
        print(f"{axis:>5} {slope(t[m], y[m]) / 2:>11.4e} {slope(t_md[mm], md[mm, 1 + i]) / 2:>11.4e}")
    ax.set_xlim(0, tmax)
    ax.set_ylim(0, 1.05 * ymax if ymax > 0 else 1)
    ax.set_xlabel("t (ps)")
    ax.set_ylabel("MSD (A$^2$)")
    ax.set_title(f"MSD: MSM ({a.method}) vs MD")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    out = os.path.join(a.run_dir, "msd_msm_vs_md.png")
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
