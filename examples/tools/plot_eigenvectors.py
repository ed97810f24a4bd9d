#!/usr/bin/python3
"""Eigenvectors of the transition matrix on the sites (the paper's Fig. 6c-e), from a counts
file: M (eq. 5) at one lag on the largest strongly connected set of sites, its right
eigenvectors (dense numpy), and a scatter plot of selected eigenvectors' components at the
site positions, projected on two axes.

    /usr/bin/python3 examples/tools/plot_eigenvectors.py counts.h5 --lag-steps 1000 \
        [--k 2 3 10] [--axes x y] [--out eigenvectors.png]

k counts from 1 (the stationary distribution) in order of decreasing |lambda|. Colour = real
part of the component (red/blue = opposite signs: the two sides of a relaxation process).
Sites outside the largest strongly connected set at this lag are grey. Prints lambda_k and t_k.
"""
import argparse

import h5py
import numpy as np


def largest_strongly_connected(C):
    """Sites of the largest strongly connected set of the graph j -> i where C[i, j] > 0
    (Kosaraju, iterative), as ionmsm analyze uses; ties: the set with the lowest site."""
    n = len(C)
    out = [np.flatnonzero(C[:, j] > 0) for j in range(n)]     # j -> i
    inn = [np.flatnonzero(C[i, :] > 0) for i in range(n)]     # i <- j
    seen, order = np.zeros(n, bool), []
    for s in range(n):
        if seen[s]:
            continue
        seen[s] = True
        stack = [(s, iter(out[s]))]
        while stack:
            v, it = stack[-1]
            for w in it:
                if not seen[w]:
                    seen[w] = True
                    stack.append((w, iter(out[w])))
                    break
            else:
                order.append(v)
                stack.pop()
    comp = -np.ones(n, int)
    best = []
    for s in reversed(order):
        if comp[s] >= 0:
            continue
        comp[s] = s
        members, stack = [s], [s]
        while stack:
            v = stack.pop()
            for w in inn[v]:
                if comp[w] < 0:
                    comp[w] = s
                    members.append(w)
                    stack.append(w)
        if len(members) > len(best) or (len(members) == len(best) and min(members) < min(best)):
            best = members
    return np.array(sorted(best))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("counts")
    ap.add_argument("--lag-steps", type=int, required=True)
    ap.add_argument("--k", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument("--axes", nargs=2, default=["x", "y"], choices=["x", "y", "z"])
    ap.add_argument("--out", default="eigenvectors.png")
    a = ap.parse_args()
    with h5py.File(a.counts, "r") as f:
        lags = f["lags/lag_steps"][:]
        i = int(np.flatnonzero(lags == a.lag_steps)[0])
        lo, hi = f["lags/row_offset"][i:i + 2]
        frm, to = f["counts/from"][lo:hi], f["counts/to"][lo:hi]
        cnt = f["counts/count"][lo:hi].astype(float)
        frac = f["sites/fractional"][:]
        H = f["box/h"][:]
        tau = a.lag_steps * float(f.attrs["timestep_ps"])
    n = len(frac)
    C = np.zeros((n, n))
    np.add.at(C, (to, frm), cnt)                    # C[to, from]
    keep = largest_strongly_connected(C)
    sub = C[np.ix_(keep, keep)]
    M = sub / sub.sum(axis=0, keepdims=True)        # column-stochastic (eq. 5)
    lam, R = np.linalg.eig(M)
    order = np.argsort(-np.abs(lam), kind="stable")
    lam, R = lam[order], R[:, order]
    xyz = frac @ H.T
    ax_idx = ["xyz".index(c) for c in a.axes]
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axs = plt.subplots(1, len(a.k), figsize=(4.2 * len(a.k) + 1, 3.8), squeeze=False,
                            constrained_layout=True)
    for ax, k in zip(axs[0], a.k):
        if k > len(lam):
            ax.set_title(f"k={k}: only {len(lam)} states")
            continue
        v = R[:, k - 1].real
        v = v / (np.abs(v).max() or 1.0)
        l = lam[k - 1]
        ts = (-tau / np.log(l.real) if abs(l.imag) < 1e-10 and 0 < l.real < 1 - 1e-12
              else float("inf") if abs(l - 1) <= 1e-12 else float("nan"))
        print(f"k={k}: lambda = {l.real:.6f}{l.imag:+.2e}i, t_k = {ts:.4g} ps")
        ax.scatter(xyz[:, ax_idx[0]], xyz[:, ax_idx[1]], s=10, c="0.85")
        sc = ax.scatter(xyz[keep, ax_idx[0]], xyz[keep, ax_idx[1]], s=40, c=v, cmap="coolwarm",
                        vmin=-1, vmax=1, edgecolors="k", linewidths=0.3)
        ax.set_title(f"k={k}, $\\lambda$={l.real:.4f}, t={ts:.3g} ps", fontsize=9)
        ax.set_xlabel(f"{a.axes[0]} (A)")
        ax.set_ylabel(f"{a.axes[1]} (A)")
        ax.set_aspect("equal")
    fig.colorbar(sc, ax=axs[0].tolist(), shrink=0.8, label="component (scaled)")
    fig.suptitle(f"right eigenvectors of M at tau = {tau:g} ps ({len(keep)} of {n} sites)")
    fig.savefig(a.out, dpi=120)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
