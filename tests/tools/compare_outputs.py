#!/usr/bin/python3
"""Before/after check for refactorings: runs the same inputs through two `ionmsm` binaries and
compares every file they write.

    /usr/bin/python3 tests/tools/compare_outputs.py --ref build-ref/b/ionmsm --new build/ionmsm \
        --work /tmp/cmp [--counts out/li13si4/counts.h5 ...]

Inputs: the synthetic counts files of tests/integration/test_analyze.py (lattice, ring, ring
with a leak, ring walk with blocks, empty) plus any --counts FILE given (e.g. the demo's
Li13Si4 run). For each input it runs `info`, `export`, `verify`, and `analyze` with several
option sets (estimators, --transport-counts, --lag-steps, bootstrap), plus a few bad command
lines, with the same relative paths for both binaries so the outputs can match byte for byte.
`--verbs info,export,verify` runs only those verbs (e.g. when `analyze` changed on purpose).

Compared: exit status, stdout, stderr (progress lines with timings removed) and every file in
the output directory except PNGs. HDF5 files (model.h5) are compared by content with
h5compare.py (HDF5 stamps object times into the bytes). A text file that differs byte-wise is
compared field by field: numbers within a relative 1e-9 count as round-off (the max relative
difference is reported), anything else is a difference. Exit status 0 when everything is
identical or round-off.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import test_analyze as ta  # noqa: E402  (the synthetic counts-file writers)
from h5compare import compare_files  # noqa: E402  (HDF5 files by content)

ROUNDOFF_REL = 1e-9
VERBS = {"info", "export", "verify", "analyze"}
NUM = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def make_inputs(d):
    os.makedirs(d, exist_ok=True)
    files = {}
    for name, writer in (("lattice", ta.write_lattice), ("ring", ta.write_ring),
                         ("ring_leak", ta.write_ring_leak), ("empty", ta.write_empty)):
        files[name] = os.path.join(d, name + ".h5")
        writer(files[name])
    files["blocks"] = os.path.join(d, "blocks.h5")
    ta.write_ring_blocks(files["blocks"], seed=3)
    return files


def cases(files, extra):
    c = []
    for name, path in files.items():
        c.append((name + "_info", ["info", path]))
        c.append((name + "_export", ["export", path]))
        c.append((name + "_verify", ["verify", path]))
    lat, ring, leak, blocks = files["lattice"], files["ring"], files["ring_leak"], files["blocks"]
    c += [
        ("lattice_default", ["analyze", lat, "--out", "out", "--msd-steps", "40", "--no-plots"]),
        ("lattice_rev", ["analyze", lat, "--out", "out", "--lag-steps", "50", "--estimator", "rev",
                         "--replicate", "2", "3", "2", "--msd-steps", "60", "--n-eigenvalues",
                         "8", "--ck-max-n", "2", "--no-plots"]),
        ("lattice_plots", ["analyze", lat, "--out", "out", "--msd-steps", "20"]),
        ("ring", ["analyze", ring, "--out", "out", "--msd-steps", "30", "--replicate", "3", "1",
                  "1", "--no-plots"]),
        ("ring_rev", ["analyze", ring, "--out", "out", "--estimator", "rev", "--no-plots"]),
        ("leak_components", ["analyze", leak, "--out", "out", "--lag-steps", "10",
                             "--msd-steps", "10", "--no-plots"]),
        ("leak_all", ["analyze", leak, "--out", "out", "--lag-steps", "10", "--msd-steps", "10",
                      "--transport-counts", "all", "--no-plots"]),
        ("blocks_boot", ["analyze", blocks, "--out", "out", "--no-plots", "--bootstrap", "50",
                         "--seed", "7"]),
        ("blocks_boot_rev_all", ["analyze", blocks, "--out", "out", "--no-plots", "--bootstrap",
                                 "20", "--estimator", "rev", "--transport-counts", "all",
                                 "--n-eigenvalues", "3"]),
        ("err_lag", ["analyze", lat, "--out", "out", "--lag-steps", "70"]),
        ("err_empty", ["analyze", files["empty"], "--out", "out"]),
        ("err_boot", ["analyze", lat, "--out", "out", "--bootstrap", "10"]),
        ("err_usage", ["analyze", lat, "--out", "out", "--bogus"]),
        ("help", ["analyze", "--help"]),
    ]
    for i, path in enumerate(extra):
        c.append(("extra%d_info" % i, ["info", path]))
        c.append(("extra%d_export" % i, ["export", path]))
        c.append(("extra%d_verify" % i, ["verify", path]))
        c.append(("extra%d_analyze" % i, ["analyze", path, "--out", "out", "--no-plots"]))
        c.append(("extra%d_analyze_rev" % i, ["analyze", path, "--out", "out", "--no-plots",
                                               "--estimator", "rev", "--msd-steps", "20"]))
    return c


def run_case(binary, cwd, args):
    if os.path.exists(cwd):
        shutil.rmtree(cwd)
    os.makedirs(cwd)
    env = dict(os.environ)
    env.pop("IONMSM_PLOT_SCRIPT", None)
    p = subprocess.run([os.path.abspath(binary)] + args, cwd=cwd, capture_output=True,
                       text=True, env=env)
    stderr = "\n".join(l for l in p.stderr.splitlines() if not l.startswith("[analyze "))
    out = {"rc": str(p.returncode), "stdout": p.stdout, "stderr": stderr}
    od = os.path.join(cwd, "out")
    if os.path.isdir(od):
        for f in sorted(os.listdir(od)):
            if f.endswith(".h5"):
                out["out/" + f] = H5File(os.path.join(od, f))
            elif not f.endswith(".png"):
                with open(os.path.join(od, f), "rb") as fh:
                    out["out/" + f] = fh.read().decode("utf-8", "replace")
    return out


class H5File:
    """An HDF5 output, compared by content (h5compare.py) rather than by bytes."""

    def __init__(self, path):
        self.path = path

    def differences(self, other):
        return compare_files(self.path, other.path)


def numeric_diff(a, b):
    """None if a and b differ in something other than numbers; else the max relative difference
    of the numbers (0.0 when equal)."""
    ta_, tb = NUM.split(a), NUM.split(b)
    na, nb = NUM.findall(a), NUM.findall(b)
    if ta_ != tb or len(na) != len(nb):
        return None
    worst = 0.0
    for x, y in zip(na, nb):
        fx, fy = float(x), float(y)
        if fx == fy:
            continue
        rel = abs(fx - fy) / max(abs(fx), abs(fy))
        if rel > ROUNDOFF_REL:
            return None
        worst = max(worst, rel)
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", required=True, help="reference ionmsm binary")
    ap.add_argument("--new", required=True, help="ionmsm binary under test")
    ap.add_argument("--work", required=True, help="scratch directory (recreated)")
    ap.add_argument("--counts", nargs="*", default=[], help="extra counts files (e.g. the demo)")
    ap.add_argument("--only", default="", help="run only cases whose name contains this")
    ap.add_argument("--verbs", default="",
                    help="comma-separated verbs to run (info,export,verify,analyze; default all)")
    a = ap.parse_args()
    verbs = set(v for v in a.verbs.split(",") if v)
    if verbs - VERBS:
        ap.error("--verbs: unknown verb(s) %s (known: %s)"
                 % (",".join(sorted(verbs - VERBS)), ",".join(sorted(VERBS))))
    if os.path.exists(a.work):
        shutil.rmtree(a.work)
    files = make_inputs(os.path.join(a.work, "inputs"))
    extra = [os.path.abspath(p) for p in a.counts]
    n_ident = n_round = n_diff = n_files = 0
    worst = 0.0
    for name, args in cases(files, extra):
        if a.only and a.only not in name:
            continue
        if verbs and args[0] not in verbs:
            continue
        r = run_case(a.ref, os.path.join(a.work, "ref", name), args)
        n = run_case(a.new, os.path.join(a.work, "new", name), args)
        for key in sorted(set(r) | set(n)):
            n_files += 1
            x, y = r.get(key), n.get(key)
            if isinstance(x, H5File) and isinstance(y, H5File):
                h5diff = x.differences(y)
                if not h5diff:
                    n_ident += 1
                    continue
                n_diff += 1
                print("DIFF  %s: %s (%s)" % (name, key, "; ".join(h5diff[:3])))
                continue
            if isinstance(x, H5File) or isinstance(y, H5File):
                n_diff += 1
                print("DIFF  %s: %s (HDF5 on one side only)" % (name, key))
                continue
            if x == y:
                n_ident += 1
                continue
            d = numeric_diff(x, y) if x is not None and y is not None else None
            if d is None:
                n_diff += 1
                print("DIFF  %s: %s" % (name, key))
            else:
                n_round += 1
                worst = max(worst, d)
                print("ROUND %s: %s (max rel diff %.3g)" % (name, key, d))
    print("compared %d outputs: %d identical, %d round-off (max rel diff %.3g), %d different"
          % (n_files, n_ident, n_round, worst, n_diff))
    return 1 if n_diff else 0


if __name__ == "__main__":
    sys.exit(main())
