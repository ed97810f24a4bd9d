#!/usr/bin/python3
"""MACE vs the MEAM reference, in the spirit of the paper's Fig. 5 (MLFF vs AIMD).

Reads, for each of the two runs (directories holding log.lammps and analysis/report.json from
`ionmsm analyze --lag-steps L --bootstrap N`): the MD speed and fix msm's own time (its
self-timing line) from the log, and at the analysis lag: the jump rates per site pair, the D
tensor and the slowest implied timescales with their block-bootstrap 95 % intervals. Adds the
fit errors (fit_errors.json from fit_errors.py) and the pipeline's wall times (timings.json),
writes comparison.json and comparison.png (atomically) and prints a short table.

Usage: compare.py --mace DIR --meam DIR --fit fit_errors.json [--timings timings.json]
                  --out comparison.json --plot comparison.png
"""
import argparse
import json
import math
import os
import re
import sys

import numpy as np

TAG, VERSION = "ionmsm-mace-comparison", 1


def log_numbers(path):
    """Production-run loop time and steps (the last 'Loop time' line), and fix msm's sampling
    seconds and samples (its self-timing line) from a LAMMPS log."""
    with open(path, errors="replace") as fh:
        text = fh.read()
    loops = re.findall(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps", text)
    if not loops:
        sys.exit(f"compare.py: no 'Loop time' line in {path}")
    loop_s, procs, steps = float(loops[-1][0]), int(loops[-1][1]), int(loops[-1][2])
    out = {"loop_time_s": loop_s, "ranks": procs, "steps": steps,
           "steps_per_s": steps / loop_s if loop_s > 0 else None}
    m = re.findall(r"Fix msm \S+: (\d+) samples in this run, ([0-9.eE+-]+) s sampling", text)
    if m:
        samples, sampling_s = int(m[-1][0]), float(m[-1][1])
        out["fix_msm_samples"] = samples
        out["fix_msm_sampling_s"] = sampling_s
        out["fix_msm_share_of_loop"] = sampling_s / loop_s if loop_s > 0 else None
    return out


def at_lag(entries, lag):
    for e in entries:
        if e.get("lag_steps") == lag:
            return e
    return None


def summary(x):
    """{mean, low, high} of a bootstrap summary, None where undefined."""
    if not x:
        return None
    return {k: x.get(k) for k in ("mean", "std", "low", "high", "n", "n_undefined")}


def run_numbers(d):
    with open(os.path.join(d, "analysis", "report.json")) as fh:
        rep = json.load(fh)
    lag = rep["selected_lag"]["lag_steps"]
    diff = at_lag(rep["diffusion"], lag) or {}
    lag_entry = at_lag(rep["lags"], lag) or {}
    boot = rep.get("bootstrap", {})
    bl = at_lag(boot.get("lags", []), lag) or {}
    rates = {}
    for e in rep["jump_network"].get("edges", []):
        rates[f"{e['from']}->{e['to']}"] = {"rate_per_ps": e["rate_per_ps"], "count": e["count"]}
    ts = lag_entry.get("implied_timescales_ps", [])[1:6]
    return {
        "counts_file": rep["input"]["file"],
        "lag_steps": lag, "lag_time_ps": rep["selected_lag"]["lag_time_ps"],
        "n_samples": rep["input"]["n_samples"], "nsites": rep["input"]["nsites"],
        "total_counts": lag_entry.get("total_counts"),
        "D_tensor_A2_per_ps": diff.get("D_tensor_A2_per_ps"),
        "D_total_A2_per_ps": diff.get("D_total_A2_per_ps"),
        "D_bootstrap_A2_per_ps": {k: summary(v) for k, v in bl.get("D_A2_per_ps", {}).items()},
        "slowest_timescales_ps": ts,
        "timescales_bootstrap_ps": [dict(summary(t), k=t["k"]) for t in bl.get("timescales_ps", [])],
        "bootstrap": {k: boot.get(k) for k in ("status", "n_replicates", "n_blocks", "block_steps",
                                               "coverage", "message")},
        "jump_rates_per_ps": rates,
        "md": log_numbers(os.path.join(d, "log.lammps")),
    }


def fmt(v, spec=".3g"):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def interval(b):
    return f"[{fmt(b and b.get('low'))}, {fmt(b and b.get('high'))}]"


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    mace, meam = result["mace"], result["meam"]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.6))
    # (a) jump rates per site pair
    keys = sorted(set(mace["jump_rates_per_ps"]) | set(meam["jump_rates_per_ps"]))
    floor = 0.5 * min([v["rate_per_ps"] for r in (mace, meam) for v in r["jump_rates_per_ps"].values()]
                      or [1e-3])
    xs = [meam["jump_rates_per_ps"].get(k, {}).get("rate_per_ps", floor) for k in keys]
    ys = [mace["jump_rates_per_ps"].get(k, {}).get("rate_per_ps", floor) for k in keys]
    if keys:
        ax[0].loglog(xs, ys, "o", ms=4, alpha=0.6)
        lo, hi = min(xs + ys), max(xs + ys)
        ax[0].loglog([lo, hi], [lo, hi], "k--", lw=1)
    ax[0].set_xlabel("MEAM rate (1/ps)")
    ax[0].set_ylabel("MACE rate (1/ps)")
    ax[0].set_title(f"jump rates per site pair, tau = {mace['lag_time_ps']:g} ps\n"
                    f"(pairs seen in one run only drawn at {floor:.2g})")
    # (b) D components with bootstrap intervals
    comps = ["xx", "yy", "zz", "total"]
    for off, (name, r) in ((-0.18, ("MEAM", meam)), (0.18, ("MACE", mace))):
        b = r["D_bootstrap_A2_per_ps"]
        vals, lo, hi = [], [], []
        for i, c in enumerate(comps):
            v = r["D_total_A2_per_ps"] if c == "total" else (r["D_tensor_A2_per_ps"] or [[None] * 3] * 3)[i][i]
            s = b.get(c) or {}
            vals.append(v if v is not None else np.nan)
            lo.append(max(0.0, (v or 0) - (s.get("low") if s.get("low") is not None else (v or 0))))
            hi.append(max(0.0, (s.get("high") if s.get("high") is not None else (v or 0)) - (v or 0)))
        ax[1].bar(np.arange(4) + off, vals, width=0.36, yerr=[lo, hi], capsize=3, label=name)
    ax[1].set_xticks(range(4))
    ax[1].set_xticklabels([f"D_{c}" for c in comps])
    ax[1].set_ylabel("D (A^2/ps)")
    ax[1].set_title("diffusion tensor (95 % block bootstrap)")
    ax[1].legend()
    # (c) slowest implied timescales
    for off, (name, r) in ((-0.1, ("MEAM", meam)), (0.1, ("MACE", mace))):
        ts = r["slowest_timescales_ps"]
        bs = r["timescales_bootstrap_ps"]
        ks = np.arange(2, 2 + len(ts))
        v = np.array([t if t is not None else np.nan for t in ts], dtype=float)
        lo = [max(0.0, (t or 0) - (b.get("low") or (t or 0))) for t, b in zip(ts, bs)] if bs else None
        hi = [max(0.0, (b.get("high") or (t or 0)) - (t or 0)) for t, b in zip(ts, bs)] if bs else None
        ax[2].errorbar(ks + off, v, yerr=None if lo is None else [lo, hi], fmt="o", capsize=3, label=name)
    ax[2].set_yscale("log")
    ax[2].set_xlabel("k")
    ax[2].set_ylabel("implied timescale t_k (ps)")
    ax[2].set_title("slowest relaxation timescales")
    ax[2].legend()
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mace", required=True)
    ap.add_argument("--meam", required=True)
    ap.add_argument("--fit", required=True)
    ap.add_argument("--timings")
    ap.add_argument("--out", required=True)
    ap.add_argument("--plot", required=True)
    a = ap.parse_args()
    with open(a.fit) as fh:
        fit = json.load(fh)
    timings = {}
    if a.timings and os.path.exists(a.timings):
        with open(a.timings) as fh:
            timings = json.load(fh)
    result = {"format": TAG, "format_version": VERSION,
              "note": "MEAM (Cui 2012) stands in for AIMD: the reference data, the MACE fit's "
                      "labels and the comparison run all come from it.",
              "fit": fit, "mace": run_numbers(a.mace), "meam": run_numbers(a.meam),
              "wall_times_s": timings}
    mace_rates, meam_rates = result["mace"]["jump_rates_per_ps"], result["meam"]["jump_rates_per_ps"]
    common = sorted(set(mace_rates) & set(meam_rates))
    if common:
        ratio = np.array([mace_rates[k]["rate_per_ps"] / meam_rates[k]["rate_per_ps"] for k in common])
        result["jump_rate_pairs"] = {"common": len(common),
                                     "mace_only": len(set(mace_rates) - set(meam_rates)),
                                     "meam_only": len(set(meam_rates) - set(mace_rates)),
                                     "median_ratio_mace_over_meam": float(np.median(ratio))}
    tmp = a.out + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh, indent=1)
    os.replace(tmp, a.out)
    plot(result, a.plot)

    test = fit.get("test.xyz", {})
    print(f"fit (held-out test.xyz, {test.get('n_frames')} frames): force RMSE "
          f"{fmt(test.get('force_rmse_meV_per_A'), '.1f')} meV/A, MAE "
          f"{fmt(test.get('force_mae_meV_per_A'), '.1f')} meV/A, energy RMSE "
          f"{fmt(test.get('energy_rmse_meV_per_atom'), '.2f')} meV/atom")
    print(f"{'':24s} {'MEAM':>28s} {'MACE':>28s}")
    rows = [("MD speed (steps/s)", lambda r: fmt(r["md"]["steps_per_s"], ".3g")),
            ("fix msm share of loop", lambda r: f"{100 * r['md']['fix_msm_share_of_loop']:.3g} %"
             if r["md"].get("fix_msm_share_of_loop") is not None else "n/a"),
            ("lag (ps)", lambda r: fmt(r["lag_time_ps"])),
            ("site pairs with hops", lambda r: str(len(r["jump_rates_per_ps"])))]
    for c, i in (("xx", 0), ("yy", 1), ("zz", 2)):
        rows.append((f"D_{c} (A^2/ps)", lambda r, c=c, i=i:
                     f"{fmt((r['D_tensor_A2_per_ps'] or [[None] * 3] * 3)[i][i])} "
                     f"{interval(r['D_bootstrap_A2_per_ps'].get(c))}"))
    rows.append(("t_2 (ps)", lambda r: f"{fmt((r['slowest_timescales_ps'] or [None])[0])} "
                 f"{interval((r['timescales_bootstrap_ps'] or [None])[0])}"))
    for name, f in rows:
        print(f"{name:24s} {f(result['meam']):>28s} {f(result['mace']):>28s}")
    if "jump_rate_pairs" in result:
        j = result["jump_rate_pairs"]
        print(f"jump-rate pairs: {j['common']} in both, {j['mace_only']} MACE only, "
              f"{j['meam_only']} MEAM only; median rate ratio MACE/MEAM "
              f"{j['median_ratio_mace_over_meam']:.3g}")
    print(f"wrote {a.out} and {a.plot}")


if __name__ == "__main__":
    main()
