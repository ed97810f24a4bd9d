#!/usr/bin/python3
"""Collects D along the channel axis (x = a) from DIR/size_K/analysis/report.json for every
size factor K and writes DIR/finite_size.csv, DIR/finite_size.txt and DIR/finite_size.png.

    /usr/bin/python3 examples/finite_size/collect.py --out DIR --sizes 1 2 4 8 [--lag-steps L]

The plot shows D_xx (and D0_xx, the uncorrelated-hop value) against the cell length L_x and
against 1/L_x with a straight-line extrapolation to 1/L_x -> 0 when there are >= 3 sizes.
"""
import argparse
import csv
import math
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import ionmsm_report  # noqa: E402

COLUMNS = ["size_factor", "nx", "ny", "nz", "n_li", "Lx_A", "run_ps", "lag_steps", "tau_ps",
           "D_xx_A2_per_ps", "D_yy_A2_per_ps", "D_zz_A2_per_ps", "D0_xx_A2_per_ps", "f_xx"]


def row_for(outdir, k, lag):
    d = os.path.join(outdir, f"size_{k}")
    with h5py.File(os.path.join(d, "counts.h5"), "r") as f:
        n_li = int(f.attrs["n_atoms"])
        lx = float(f["box/h"][0, 0])
        run_ps = (int(f.attrs["last_step"]) - int(f.attrs["first_step"])) * float(f.attrs["timestep_ps"])
    r = ionmsm_report.diffusion(os.path.join(d, "analysis", "report.json"), lag)
    return {"size_factor": k, "nx": 2 * k, "ny": 1, "nz": 3, "n_li": n_li, "Lx_A": lx,
            "run_ps": run_ps, "lag_steps": r["lag_steps"], "tau_ps": r["tau_ps"],
            "D_xx_A2_per_ps": r["D"][0], "D_yy_A2_per_ps": r["D"][1],
            "D_zz_A2_per_ps": r["D"][2], "D0_xx_A2_per_ps": r["D0"][0], "f_xx": r["f"][0]}


def fmt(v):
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    return "" if v is None else str(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--sizes", type=int, nargs="+", required=True)
    ap.add_argument("--lag-steps", type=int)
    a = ap.parse_args()
    rows = [row_for(a.out, k, a.lag_steps) for k in a.sizes]
    with open(os.path.join(a.out, "finite_size.csv"), "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([fmt(r[c]) for c in COLUMNS])
    lines = [f"{'size':>5} {'cell':>8} {'Li':>5} {'Lx/A':>8} {'run/ps':>7} {'tau/ps':>7} "
             f"{'D_xx':>11} {'D0_xx':>11} {'f_xx':>6}  (A^2/ps)"]
    for r in rows:
        lines.append(f"{r['size_factor']:>5} {str(r['nx']) + 'x1x3':>8} {r['n_li']:>5} "
                     f"{r['Lx_A']:>8.2f} {r['run_ps']:>7.1f} {fmt(r['tau_ps']):>7} "
                     f"{r['D_xx_A2_per_ps']:>11.4e} {r['D0_xx_A2_per_ps']:>11.4e} {fmt(r['f_xx']):>6}")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(a.out, "finite_size.txt"), "w") as fh:
        fh.write(text)
    sys.stdout.write(text)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    lx = np.array([r["Lx_A"] for r in rows])
    dxx = np.array([r["D_xx_A2_per_ps"] for r in rows])
    d0 = np.array([r["D0_xx_A2_per_ps"] for r in rows])
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
    ax[0].plot(lx, dxx, "o-", label="D_xx (MSM, exact)")
    ax[0].plot(lx, d0, "s--", label="D0_xx (uncorrelated hops)")
    ax[0].set_xlabel("L_x (A)")
    ax[0].set_ylabel("D (A$^2$/ps)")
    ax[0].set_xticks(lx, [f"{r['size_factor']}x\n{r['Lx_A']:.0f}" for r in rows])
    ax[0].legend(fontsize=8)
    ax[1].plot(1 / lx, dxx, "o", label="D_xx")
    if len(rows) >= 3 and np.all(np.isfinite(dxx)):
        p = np.polyfit(1 / lx, dxx, 1)
        xs = np.linspace(0, 1.05 / lx.min(), 50)
        ax[1].plot(xs, np.polyval(p, xs), "-", label=f"linear, D(inf) = {p[1]:.3g}")
    ax[1].set_xlabel("1 / L_x (1/A)")
    ax[1].set_ylabel("D_xx (A$^2$/ps)")
    ax[1].set_xlim(left=0)
    ax[1].legend(fontsize=8)
    fig.suptitle(f"Li13Si4 (MEAM): D along the channel axis vs cell length")
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "finite_size.png"), dpi=120)
    print(f"wrote {a.out}/finite_size.csv, finite_size.txt, finite_size.png")


if __name__ == "__main__":
    main()
