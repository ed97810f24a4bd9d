#!/usr/bin/python3
"""Wall time of `ionmsm analyze` for 156, 1248 and >= 10,000 sites with 16 lags.

Counts files are synthetic 3D lattice random walks (nearest-neighbour hops with probability
growing with the lag, 7 rows per site per lag), written with the counts-file writer of
tests/integration/test_analyze.py (docs/file-format.md). Usage:
  bench/analyze_time.py [--sizes 13x4x3 13x8x12 22x22x22] [--repeats 3] [--extra ARGS]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from test_analyze import write_counts  # noqa: E402


def lattice_file(path, shape, nlags=16, nevery=10):
    nx, ny, nz = shape
    n = nx * ny * nz
    frac = [((ix + 0.5) / nx, (iy + 0.5) / ny, (iz + 0.5) / nz)
            for iz in range(nz) for iy in range(ny) for ix in range(nx)]
    h = [[2.5 * nx, 0, 0], [0, 2.5 * ny, 0], [0, 0, 2.5 * nz]]
    lags = []
    n_samples = 100000
    for k in range(1, nlags + 1):
        L = nevery * k
        rows = []
        p = min(30, 2 * k)
        for iz in range(nz):
            for iy in range(ny):
                for ix in range(nx):
                    s = ix + nx * (iy + ny * iz)
                    rows.append((s, s, 0, 0, 0, 1000 - 6 * p))
                    for d in ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)):
                        tx, ty, tz = ix + d[0], iy + d[1], iz + d[2]
                        t = tx % nx + nx * (ty % ny + ny * (tz % nz))
                        rows.append((s, t, tx // nx, ty // ny, tz // nz, p))
        lags.append((L, n_samples - k, rows))
    write_counts(path, units="metal", timestep=0.001, timestep_ps=0.001, nevery=nevery,
                 n_samples=n_samples, n_atoms=n, box_h=h, origin=[0, 0, 0], frac=frac,
                 occupancy=[1000] * n, lags=lags)
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["13x4x3", "13x8x12", "22x22x22"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--extra", default="--no-plots")
    a = ap.parse_args()
    ionmsm = os.path.join(ROOT, "build", "ionmsm")
    print("| sites | lags | rows | analyze wall time (median of %d) | options |" % a.repeats)
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as wd:
        for size in a.sizes:
            shape = tuple(int(x) for x in size.split("x"))
            path = os.path.join(wd, f"lat{size}.h5")
            n = lattice_file(path, shape)
            times = []
            for r in range(a.repeats):
                t0 = time.perf_counter()
                subprocess.run([ionmsm, "analyze", path, "--out", os.path.join(wd, f"out{size}")]
                               + a.extra.split(), check=True, capture_output=True)
                times.append(time.perf_counter() - t0)
            print(f"| {n} | 16 | {16 * 7 * n} | {statistics.median(times):.2f} s | {a.extra} |",
                  flush=True)


if __name__ == "__main__":
    main()
