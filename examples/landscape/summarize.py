#!/usr/bin/python3
"""How well the found sites describe the dynamics: for each analysis directory (report.json of
`ionmsm analyze`), the slowest implied timescale per lag and the Chapman-Kolmogorov error
err(n) from the shortest lag; and the fraction of samples within the core radius of a site
(fix msm assign core, from the counts file).

usage: summarize.py DIR [--analyses analysis analysis_core] [--core-counts counts_core.h5]
"""
import argparse
import json
import math
import os

import h5py


def slowest(its):
    finite = [t for t in its if t is not None and math.isfinite(t)]
    return max(finite) if finite else math.nan


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--analyses", nargs="+", default=["analysis", "analysis_core"])
    ap.add_argument("--core-counts", default="counts_core.h5")
    a = ap.parse_args()
    core = os.path.join(a.dir, a.core_counts)
    if os.path.exists(core):
        with h5py.File(core, "r") as f:
            at = f.attrs
            if "n_outside_core" in at:
                occ = f["sites/occupancy"][()].sum()
                print(f"{a.core_counts}: core radius {at['core_radius']:g}: fraction of samples "
                      f"within it of a site {1 - at['n_outside_core'] / occ:.3f}")
    for name in a.analyses:
        path = os.path.join(a.dir, name, "report.json")
        if not os.path.exists(path):
            continue
        r = json.load(open(path))
        print(f"{name}: {r['command']}")
        print("  lag_ps  kept_sites  slowest_ITS_ps")
        for lag in r["lags"]:
            print(f"  {lag['lag_time_ps']:6g}  {lag.get('kept_sites', 0):10d}  "
                  f"{slowest(lag.get('implied_timescales_ps') or []):14.3f}")
        shortest = min(c["lag_steps"] for c in r["ck_test"]) if r["ck_test"] else None
        print(f"  CK from the shortest lag: " + ", ".join(
            f"err({c['n']}) = {c['err']:.3f}" for c in r["ck_test"]
            if c["lag_steps"] == shortest and c.get("err") is not None))


if __name__ == "__main__":
    main()
