#!/usr/bin/python3
"""Reads the diffusion results of an `ionmsm analyze` report.json (docs/report-schema.md).

Used by examples/finite_size and examples/temperature; also a small command-line tool:

    /usr/bin/python3 examples/tools/ionmsm_report.py analysis/report.json [--lag-steps L]

prints lag, D tensor diagonal, D0 diagonal and f of the selected diffusion entry as JSON.

Which entry of `diffusion[]` is used: the one with `lag_steps` == L if --lag-steps is given;
otherwise the entry of the lag `ionmsm analyze` selected for the MSD and the jump network
(`selected_lag.lag_steps`: the shortest lag with converged implied timescales, else the longest lag
 with >= 10 independent windows; see `ionmsm analyze
--help`); otherwise the entry with the longest lag.
Only the standard library is needed.
"""
import argparse
import json
import math
import sys

AXES = "xyz"


def _first(d, *keys):
    for k in keys:
        if isinstance(d, dict) and k in d and d[k] is not None:
            return d[k]
    return None


def _diag(t):
    """Diagonal of a 3x3 nested list (or a 3-vector); None entries become NaN."""
    if t is None:
        return [math.nan] * 3
    if isinstance(t, list) and len(t) == 3 and all(isinstance(r, list) for r in t):
        return [math.nan if t[i][i] is None else float(t[i][i]) for i in range(3)]
    if isinstance(t, list) and len(t) == 3:
        return [math.nan if v is None else float(v) for v in t]
    raise ValueError(f"expected a 3x3 tensor or a 3-vector, got {t!r}")


def _default_lag(report):
    for k in ("default_lag_steps",):
        v = report.get(k)
        if isinstance(v, int):
            return v
    for k in ("selected_lag", "lag", "lag_selection", "default_lag"):
        v = report.get(k)
        if isinstance(v, dict):
            x = _first(v, "lag_steps", "default_lag_steps")
            if isinstance(x, int):
                return x
    return None


def select_entry(report, lag_steps=None):
    entries = report.get("diffusion")
    if isinstance(entries, dict):
        entries = [entries]
    if not entries:
        raise ValueError("report has no 'diffusion' entries")
    if lag_steps is not None:
        for e in entries:
            if e.get("lag_steps") == lag_steps:
                return e
        raise ValueError(f"no diffusion entry with lag_steps {lag_steps} "
                         f"(have {[e.get('lag_steps') for e in entries]})")
    for e in entries:
        if any(e.get(k) is True for k in ("default", "is_default", "selected")):
            return e
    lag = _default_lag(report)
    if lag is not None:
        for e in entries:
            if e.get("lag_steps") == lag:
                return e
    return max(entries, key=lambda e: e.get("lag_steps") or 0)


def diffusion(report_path, lag_steps=None):
    """dict: lag_steps, tau_ps, D (diagonal, A^2/ps), D0 (diagonal), f (D/D0 per axis)."""
    with open(report_path) as fh:
        report = json.load(fh)
    e = select_entry(report, lag_steps)
    D = _diag(_first(e, "D_tensor_A2_per_ps", "D_A2_per_ps"))
    D0 = _diag(_first(e, "D0_tensor_A2_per_ps", "D0_A2_per_ps"))
    f = _first(e, "f_lag", "correlation_factor", "f")  # f_lag since report format 3
    if isinstance(f, dict):
        f = [f.get(a, f.get(a + a)) for a in AXES]
    f = _diag(f) if isinstance(f, list) else [
        d / d0 if d0 and d0 > 0 else math.nan for d, d0 in zip(D, D0)]
    return {"lag_steps": e.get("lag_steps"), "tau_ps": _first(e, "lag_time_ps", "tau_ps"),
            "D": D, "D0": D0, "f": f}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("report")
    ap.add_argument("--lag-steps", type=int)
    a = ap.parse_args()
    json.dump(diffusion(a.report, a.lag_steps), sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
