#!/usr/bin/python3
"""Arrhenius fit of D(T) from DIR/T_<T>/analysis/report.json:

    ln D = ln D_inf - Ea / (k_B T)

Ordinary least squares in (1/T, ln D); the standard error of Ea is the square root of the
slope's variance from the fit covariance, sigma^2 (X^T X)^-1 with sigma^2 = RSS / (n - 2)
(undefined, written as null, for exactly 2 points). Temperatures whose D is not finite and
> 0 are listed but left out of the fit.

    /usr/bin/python3 examples/temperature/arrhenius.py --out DIR --temps 500 600 700 800 \
        [--component xx|yy|zz|total] [--lag-steps L]

Writes DIR/arrhenius.csv (T, D per axis, D0, f), DIR/arrhenius.json (fit) and DIR/arrhenius.png.
"""
import argparse
import csv
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import ionmsm_report  # noqa: E402

KB_EV_PER_K = 8.617333262e-5


def arrhenius_fit(T, D):
    """(Ea_eV, Ea_err_eV or None, D_inf, ln_D_inf_err or None) from >= 2 points."""
    x = 1.0 / np.asarray(T, float)
    y = np.log(np.asarray(D, float))
    X = np.column_stack([np.ones_like(x), x])
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    n = len(x)
    err_slope = err_icpt = None
    if n > 2:
        rss = float(np.sum((y - X @ beta) ** 2))
        cov = rss / (n - 2) * np.linalg.inv(X.T @ X)
        err_icpt, err_slope = math.sqrt(cov[0, 0]), math.sqrt(cov[1, 1])
    Ea = -beta[1] * KB_EV_PER_K
    return (float(Ea), None if err_slope is None else err_slope * KB_EV_PER_K,
            float(math.exp(beta[0])), err_icpt)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--temps", type=float, nargs="+", required=True)
    ap.add_argument("--component", choices=["xx", "yy", "zz", "total"], default="xx")
    ap.add_argument("--lag-steps", type=int)
    a = ap.parse_args()
    rows = []
    for T in a.temps:
        tag = f"{T:g}"
        r = ionmsm_report.diffusion(os.path.join(a.out, f"T_{tag}", "analysis", "report.json"),
                                    a.lag_steps)
        D = r["D"]
        rows.append({"T_K": T, "lag_steps": r["lag_steps"], "D_xx": D[0], "D_yy": D[1],
                     "D_zz": D[2], "D_total": sum(D) / 3, "D0_xx": r["D0"][0], "f_xx": r["f"][0]})
    key = "D_total" if a.component == "total" else "D_" + a.component
    with open(os.path.join(a.out, "arrhenius.csv"), "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        cols = ["T_K", "lag_steps", "D_xx", "D_yy", "D_zz", "D_total", "D0_xx", "f_xx"]
        w.writerow([c if c in ("T_K", "lag_steps", "f_xx") else c + "_A2_per_ps" for c in cols])
        for r in rows:
            w.writerow(["" if isinstance(r[c], float) and not math.isfinite(r[c]) else r[c]
                        for c in cols])
    good = [r for r in rows if math.isfinite(r[key]) and r[key] > 0]
    skipped = [r["T_K"] for r in rows if r not in good]
    fit = {"component": a.component, "n_points": len(good), "skipped_T_K": skipped,
           "Ea_eV": None, "Ea_err_eV": None, "D_inf_A2_per_ps": None, "ln_D_inf_err": None}
    if len(good) >= 2:
        Ea, dEa, Dinf, dln = arrhenius_fit([r["T_K"] for r in good], [r[key] for r in good])
        fit.update(Ea_eV=Ea, Ea_err_eV=dEa, D_inf_A2_per_ps=Dinf, ln_D_inf_err=dln)
    with open(os.path.join(a.out, "arrhenius.json"), "w") as fh:
        json.dump(fit, fh, indent=1)
    for r in rows:
        print(f"T = {r['T_K']:6.1f} K   D_{a.component} = {r[key]:.4e} A^2/ps   "
              f"D0_xx = {r['D0_xx']:.4e}   f_xx = {r['f_xx']:.3f}")
    if fit["Ea_eV"] is None:
        print(f"Arrhenius fit: needs >= 2 temperatures with D > 0 (have {len(good)})")
    else:
        err = "n/a (2 points)" if fit["Ea_err_eV"] is None else f"{fit['Ea_err_eV']:.3f}"
        print(f"Arrhenius fit ({a.component}): Ea = {fit['Ea_eV']:.3f} +- {err} eV, "
              f"D_inf = {fit['D_inf_A2_per_ps']:.3e} A^2/ps")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.8))
    if good:
        x = np.array([1000.0 / r["T_K"] for r in good])
        ax.semilogy(x, [r[key] for r in good], "o", label=f"D_{a.component} (MSM)")
        if fit["Ea_eV"] is not None:
            xs = np.linspace(x.min(), x.max(), 50)
            ys = fit["D_inf_A2_per_ps"] * np.exp(-fit["Ea_eV"] / (KB_EV_PER_K * 1000.0 / xs))
            lab = f"Ea = {fit['Ea_eV']:.3f}" + (
                "" if fit["Ea_err_eV"] is None else f" $\\pm$ {fit['Ea_err_eV']:.3f}") + " eV"
            ax.semilogy(xs, ys, "-", label=lab)
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel("D (A$^2$/ps)")
    ax.set_title("Li13Si4 (MEAM): Arrhenius plot")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "arrhenius.png"), dpi=120)
    print(f"wrote {a.out}/arrhenius.csv, arrhenius.json, arrhenius.png")


if __name__ == "__main__":
    main()
