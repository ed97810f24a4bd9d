#!/usr/bin/python3
"""Plots of an `ionmsm analyze` report (docs/report-schema.md).

    /usr/bin/python3 cli/plot_report.py DIR/report.json [--out DIR]

Reads report.json only and writes into DIR (default: the report's directory):

  implied_timescales.png  implied timescales t_k vs lag time, log-log (paper fig. 6b), with
                          the block-bootstrap 95 % intervals when report.json has them
  ck_test.png             Chapman-Kolmogorov error err(n) vs n, one curve per base lag (fig. 7)
  msd.png                 MSM MSD per direction (xx, yy, zz, total): minimum image (eq. 7),
                          replicated supercell and unfolded moments (fig. 9)
  spectrum.png            eigenvalue moduli vs index per lag, and the complex plane (fig. 6a)
  jump_network.png        sites projected on the report's two axes, edges with width ~ rate (fig. 5)
  plots.json              every PNG with the data series it drew: name and number of points

Each file is written to a temporary name and renamed. Uses matplotlib with the Agg backend
(Debian's python3-matplotlib). Exit status: 0 if every plot was written, 1 if some failed
(the others and plots.json are still written), 2 for a bad command line or unreadable report,
3 if matplotlib is not available.
"""
import argparse
import json
import math
import os
import sys
import traceback

PLOTS_FORMAT = "ionmsm-plots"
PLOTS_FORMAT_VERSION = 1


def finite(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def save(fig, out_dir, name):
    path = os.path.join(out_dir, name)
    tmp = os.path.join(out_dir, ".%s.tmp.%d" % (name, os.getpid()))
    try:
        fig.savefig(tmp, format="png", dpi=110)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def units(report):
    u = report.get("units", {})
    return u.get("length", "length"), u.get("time", "ps")


def ok_lags(report):
    return [l for l in report.get("lags", []) if l.get("status") == "ok"]


# ----------------------------------------------------------------------------- plots

def plot_implied_timescales(plt, report):
    length, time = units(report)
    lags = ok_lags(report)
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    series = []
    kmax = max((len(l.get("implied_timescales_ps", [])) for l in lags), default=0)
    cmap = plt.get_cmap("viridis")
    boot = {}  # (lag_time_ps, mode k) -> bootstrap summary
    bs = report.get("bootstrap") or {}
    if bs.get("status") == "ok":
        for bl in bs.get("lags", []):
            for t in bl.get("timescales_ps", []):
                boot[(bl["lag_time_ps"], t["k"])] = t
    for k in range(1, kmax):  # k = index 1 is mode 2; mode 1 is stationary
        xs, ys, flagged = [], [], []
        for l in lags:
            ts = l.get("implied_timescales_ps", [])
            st = l.get("timescale_status", [])
            # every mode with a timescale is drawn (complex / negative ones too: t from |lambda|)
            if k < len(ts) and finite(ts[k]) and ts[k] > 0:
                xs.append(l["lag_time_ps"])
                ys.append(ts[k])
                flagged.append(k < len(st) and st[k] != "ok")
        if not xs:
            continue
        ax.plot(xs, ys, "-", lw=1, color=cmap(k / max(kmax, 2)),
                label=("k=%d" % (k + 1)) if k < 9 else None)
        for want, marker in ((False, "o"), (True, "x")):  # x: complex or negative eigenvalue
            px = [x for x, f in zip(xs, flagged) if f == want]
            py = [y for y, f in zip(ys, flagged) if f == want]
            if px:
                ax.plot(px, py, marker, ms=3, color=cmap(k / max(kmax, 2)))
        series.append({"name": "k=%d" % (k + 1), "n_points": len(xs)})
        # block bootstrap: the percentile interval of this mode at the plotted lags
        ex, elo, ehi = [], [], []
        for x, y in zip(xs, ys):
            b = boot.get((x, k + 1))
            if b and finite(b.get("low")) and finite(b.get("high")):
                ex.append(x)
                elo.append(max(y - b["low"], 0.0))
                ehi.append(max(b["high"] - y, 0.0))
        if ex:
            ys_at = [ys[xs.index(x)] for x in ex]
            ax.errorbar(ex, ys_at, yerr=[elo, ehi], fmt="none", lw=0.8, capsize=2,
                        color=cmap(k / max(kmax, 2)))
            series.append({"name": "k=%d/bootstrap" % (k + 1), "n_points": len(ex)})
    # the reversible estimate's slowest mode, for comparison (dashed)
    if report.get("estimator") != "rev":
        rx = [l["lag_time_ps"] for l in lags
              if len(l.get("reversible_timescales_ps") or []) > 1
              and finite(l["reversible_timescales_ps"][1]) and l["reversible_timescales_ps"][1] > 0]
        ry = [l["reversible_timescales_ps"][1] for l in lags
              if len(l.get("reversible_timescales_ps") or []) > 1
              and finite(l["reversible_timescales_ps"][1]) and l["reversible_timescales_ps"][1] > 0]
        if rx:
            ax.plot(rx, ry, ":", lw=1.2, color="tab:red", label="k=2 (rev)")
            series.append({"name": "k=2/rev", "n_points": len(rx)})
    taus = [l["lag_time_ps"] for l in lags if finite(l.get("lag_time_ps")) and l["lag_time_ps"] > 0]
    if taus:
        # below t = lag a process is faster than the lag and not resolved (shaded)
        # positive values only: the caps of an error bar reaching below zero are lines too
        ys = [y for line in ax.get_lines() for y in line.get_ydata()
              if finite(y) and y > 0] + taus
        lo, hi = min(ys) / 2, max(ys) * 2
        ax.plot(taus, taus, "k--", lw=1, label="t = lag")
        ax.fill_between(taus, [lo] * len(taus), taus, color="0.9", zorder=0)
        series.append({"name": "lag_time", "n_points": len(taus)})
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(lo, hi)
        sel = report.get("selected_lag", {})
        if finite(sel.get("lag_time_ps")):   # drawn, not a series: no data of its own
            ax.axvline(sel["lag_time_ps"], color="tab:red", lw=1, ls=":",
                       label="selected lag (%s)" % sel.get("method", "?"))
        run = sel.get("its_convergence", {}).get("max_timescale_ps")
        if finite(run) and lo < run:   # above it a process is slower than the run
            ax.axhline(run, color="0.4", lw=1, ls="-.", label="t = run length")
            ax.set_ylim(lo, max(hi, 2 * run))
    ax.set_xlabel("lag time [%s]" % time)
    ax.set_ylabel("implied timescale t_k [%s]" % time)
    ax.set_title("Implied timescales (%s estimator)" % report.get("estimator", "?"))
    if series:
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig, series


def plot_ck_test(plt, report):
    from matplotlib.ticker import MaxNLocator
    _, time = units(report)
    recs = report.get("ck_test", [])
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    series = []
    for lag in sorted({r["lag_steps"] for r in recs}):
        pts = sorted((r["n"], r["err"]) for r in recs if r["lag_steps"] == lag and finite(r.get("err")))
        if not pts:
            continue
        tau = next(r["lag_time_ps"] for r in recs if r["lag_steps"] == lag)
        xs = [p[0] for p in pts]
        ys = [max(p[1], 1e-17) for p in pts]
        ax.plot(xs, ys, "o-", ms=4, label="lag %d steps (%s %s)" % (lag, fmt(tau), time))
        series.append({"name": "lag=%d" % lag, "n_points": len(xs)})
    if series:
        ax.set_yscale("log")
        ax.legend(fontsize=7)
        if max(r["n"] for r in recs) > 16:
            ax.set_xscale("log", base=2)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.text(0.5, 0.5, "no lag pairs (tau, n tau) in the file", ha="center",
                transform=ax.transAxes)
    ax.set_xlabel("n (Markov chain length)")
    ax.set_ylabel("err(n) = ||M(n tau) - M(tau)^n||_2 / ||M(n tau)||_2")
    ax.set_title("Chapman-Kolmogorov test")
    fig.tight_layout()
    return fig, series


def exact_d_slope(report, comp):
    """The MSD slope of the exact D at the MSD's lag: 2 D_aa per axis, 6 D_total for the trace
    (the line the unfolded MSD approaches once it is diffusive); None if undefined."""
    lag = report.get("msd", {}).get("lag_steps")
    for d in report.get("diffusion", []):
        if d.get("lag_steps") != lag or d.get("status") != "ok":
            continue
        if comp == "total":
            v = d.get("D_total_A2_per_ps")
            return 6 * v if finite(v) else None
        a = "xyz".index(comp[0])
        v = d.get("D_tensor_A2_per_ps", [[None] * 3] * 3)[a][a]
        return 2 * v if finite(v) else None
    return None


def plot_msd(plt, report):
    length, time = units(report)
    msd = report.get("msd", {})
    t = msd.get("time_ps", [])
    fig, axes = plt.subplots(2, 2, figsize=(9, 7), sharex=True)
    series = []
    rep = msd.get("replicate", [1, 1, 1])
    labels = {"minimum_image": "minimum image (eq. 7)",
              "replicated": "replicated %sx%sx%s" % tuple(rep),
              "moments": "unfolded (moments)"}
    styles = {"minimum_image": ":", "replicated": "--", "moments": "-"}
    colors = {"minimum_image": "tab:blue", "replicated": "tab:orange", "moments": "tab:green"}
    for ax, comp in zip(axes.flat, ["xx", "yy", "zz", "total"]):
        for method in ["moments", "replicated", "minimum_image"]:  # dashed/dotted on top
            ys = msd.get(method, {}).get(comp, [])
            pts = [(x, y) for x, y in zip(t, ys) if finite(x) and finite(y)]
            if not pts:
                continue
            ax.plot([0] + [p[0] for p in pts], [0] + [p[1] for p in pts], styles[method],
                    color=colors[method], lw=1.5, label=labels[method])
            series.append({"name": "%s/%s" % (comp, method), "n_points": len(pts)})
        md = msd.get("md_projected", {})
        mpts = [(x, y) for x, y in zip(md.get("time_ps", []), md.get(comp, []))
                if finite(x) and finite(y)]
        if mpts:
            ax.plot([p[0] for p in mpts], [p[1] for p in mpts], "o", color="black", ms=4,
                    label="MD, site-projected (in situ)")
            series.append({"name": "%s/md_projected" % comp, "n_points": len(mpts)})
        slope = exact_d_slope(report, comp)
        if slope is not None and t:
            ax.plot([0, t[-1]], [0, slope * t[-1]], "-", color="tab:red", lw=1, alpha=0.8,
                    label="exact D: %s t" % ("6 D" if comp == "total" else "2 D"))
            series.append({"name": "%s/exact_D" % comp, "n_points": 2})
        ax.set_title("MSD %s" % comp)
        ax.set_ylabel("MSD [%s^2]" % length)
        ax.legend(fontsize=7)
    for ax in axes[1]:
        ax.set_xlabel("time [%s]" % time)
    fig.suptitle("MSM MSD at lag %s steps" % msd.get("lag_steps", "?"))
    fig.tight_layout()
    return fig, series


def plot_spectrum(plt, report):
    lags = ok_lags(report)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.5))
    series = []
    import numpy as np
    th = np.linspace(0, 2 * np.pi, 361)
    a2.plot(np.cos(th), np.sin(th), color="0.6", lw=0.8)
    for l in lags:
        ev = [e for e in l.get("eigenvalues", []) if finite(e.get("re")) and finite(e.get("im"))]
        if not ev:
            continue
        mod = [math.hypot(e["re"], e["im"]) for e in ev]
        lab = "lag %d steps" % l["lag_steps"]
        a1.plot(range(1, len(mod) + 1), mod, "o-", ms=3, lw=0.8, label=lab)
        a2.plot([e["re"] for e in ev], [e["im"] for e in ev], "o", ms=3, label=lab)
        series.append({"name": "lag=%d" % l["lag_steps"], "n_points": len(ev)})
    a1.set_xlabel("index k")
    a1.set_ylabel("|lambda_k|")
    a1.set_title("Leading eigenvalues")
    a2.set_xlabel("Re lambda")
    a2.set_ylabel("Im lambda")
    a2.set_aspect("equal")
    a2.set_title("Complex plane")
    if series and len(series) <= 12:
        a1.legend(fontsize=7)
    fig.tight_layout()
    return fig, series


def plot_jump_network(plt, report):
    from matplotlib.collections import LineCollection
    length, time = units(report)
    net = report.get("jump_network", {})
    ax_i, ax_j = (net.get("axes") or [0, 1])[:2]
    names = "xyz"
    sites = net.get("sites", [])
    pos = {s["index"]: (s.get("x"), s.get("y"), s.get("z")) for s in sites}
    fig, ax = plt.subplots(figsize=(7, 6))
    series = []
    # one line per unordered pair, from site a along the mean jump vector (crosses the cell
    # boundary for periodic hops), width ~ the larger of the two directed rates
    pairs = {}
    for e in net.get("edges", []):
        a, b = e["from"], e["to"]
        key = (min(a, b), max(a, b))
        rate = e.get("rate_per_ps") if finite(e.get("rate_per_ps")) else 0.0
        jump = e.get("jump_A") or [0, 0, 0]
        if a > b:
            jump = [-v if finite(v) else 0.0 for v in jump]
        p = pairs.setdefault(key, {"rate": 0.0, "jump": jump})
        p["rate"] = max(p["rate"], rate)
    segs, rates = [], []
    for (a, b), p in sorted(pairs.items()):
        pa = pos.get(a)
        if pa is None or not all(finite(v) for v in pa) or not all(finite(v) for v in p["jump"]):
            continue
        x0, y0 = pa[ax_i], pa[ax_j]
        segs.append([(x0, y0), (x0 + p["jump"][ax_i], y0 + p["jump"][ax_j])])
        rates.append(p["rate"])
    if segs:
        rmax = max(rates) if max(rates) > 0 else 1.0
        widths = [0.3 + 4.0 * r / rmax for r in rates]
        ax.add_collection(LineCollection(segs, linewidths=widths, colors="tab:blue", alpha=0.6,
                                         zorder=1))
    series.append({"name": "edges", "n_points": len(segs)})
    xs = [pos[s["index"]][ax_i] for s in sites]
    ys = [pos[s["index"]][ax_j] for s in sites]
    occ = [s.get("occupancy") if finite(s.get("occupancy")) else 0.0 for s in sites]
    omax = max(occ) if occ and max(occ) > 0 else 1.0
    ax.scatter(xs, ys, s=[8 + 40 * o / omax for o in occ],
               c=["k" if s.get("active", True) else "tab:red" for s in sites], zorder=2)
    series.append({"name": "sites", "n_points": len(xs)})
    ax.set_xlabel("%s [%s]" % (names[ax_i], length))
    ax.set_ylabel("%s [%s]" % (names[ax_j], length))
    ax.set_aspect("equal", adjustable="datalim")
    ax.autoscale_view()
    ax.set_title("Jump network at lag %s steps (line width ~ rate, max %s /%s)"
                 % (net.get("lag_steps", "?"), fmt(max(rates) if rates else 0.0), time),
                 fontsize=9)
    fig.tight_layout()
    return fig, series


def fmt(v):
    return "%.3g" % v if finite(v) else "?"


PLOTS = [
    ("implied_timescales.png", "implied timescales vs lag time", plot_implied_timescales),
    ("ck_test.png", "Chapman-Kolmogorov err(n)", plot_ck_test),
    ("msd.png", "MSM MSD per direction", plot_msd),
    ("spectrum.png", "eigenvalue spectrum per lag", plot_spectrum),
    ("jump_network.png", "jump network", plot_jump_network),
]


def main(argv=None):
    ap = argparse.ArgumentParser(description="Plots of an ionmsm analyze report.json")
    ap.add_argument("report")
    ap.add_argument("--out", default=None, help="output directory (default: the report's)")
    args = ap.parse_args(argv)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as e:  # noqa: BLE001 - any import problem means no plots
        print("plot_report.py: matplotlib is not available (%s)" % e, file=sys.stderr)
        return 3
    try:
        with open(args.report, encoding="utf-8") as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        print("plot_report.py: cannot read %s: %s" % (args.report, e), file=sys.stderr)
        return 2
    if report.get("format") != "ionmsm-report":
        print("plot_report.py: %s is not an ionmsm report" % args.report, file=sys.stderr)
        return 2
    out_dir = args.out or os.path.dirname(os.path.abspath(args.report))
    os.makedirs(out_dir, exist_ok=True)

    done, failed = [], []
    for name, title, fn in PLOTS:
        try:
            fig, series = fn(plt, report)
            save(fig, out_dir, name)
            plt.close(fig)
            done.append({"file": name, "title": title, "series": series})
        except Exception as e:  # noqa: BLE001 - report and go on with the other plots
            traceback.print_exc(file=sys.stderr)
            print("plot_report.py: %s failed: %s" % (name, e), file=sys.stderr)
            failed.append({"file": name, "error": str(e)})
            plt.close("all")
    sidecar = {"format": PLOTS_FORMAT, "format_version": PLOTS_FORMAT_VERSION,
               "report": os.path.basename(args.report),
               "matplotlib_version": matplotlib.__version__,
               "plots": done, "failed": failed}
    path = os.path.join(out_dir, "plots.json")
    tmp = os.path.join(out_dir, ".plots.json.tmp.%d" % os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(sidecar, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
