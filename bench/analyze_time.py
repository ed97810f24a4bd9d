#!/usr/bin/python3
"""Wall time of `ionmsm analyze` for 156, 1248 and >= 10,000 sites with 16 lags.

Counts files are synthetic 3D lattice random walks (nearest-neighbour hops with probability
growing with the lag, 7 rows per site per lag), written with the counts-file writer of
tests/integration/test_analyze.py (docs/file-format.md). Usage:
  bench/analyze_time.py [--sizes 13x4x3 13x8x12 22x22x22] [--repeats 3] [--extra ARGS]
                        [--binary PATH]   (default: build/ionmsm of this checkout)
                        [--noise F [F ...]] [--seed S]
--noise F (e.g. 0.05; 0 = the exactly symmetric lattice, the default): every hop count of every
site is multiplied by a fixed factor 1 + F * u, u uniform in [-1, 1] drawn once per (site,
direction) from a generator seeded with --seed (the same for every lag and every run), so the
spectrum has no exact degeneracies, as with counts from real MD. Noisy lattices have all counts
(and occupancies) scaled by NOISE_SCALE = 1000 so the perturbation survives integer rounding.
Several values give one table row per size and noise level.
The table gives the median and the best of the repeats and the 1-minute load average before
the first repeat (timings on a shared machine are noisy: compare best-of values).
"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from test_analyze import write_counts  # noqa: E402


NOISE_SCALE = 1000
DIRECTIONS = ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1))


def lattice_file(path, shape, nlags=16, nevery=10, noise=0.0, seed=1):
    nx, ny, nz = shape
    n = nx * ny * nz
    scale = NOISE_SCALE if noise > 0 else 1
    rng = random.Random(seed)
    # one relative perturbation per (site, direction), the same at every lag
    factor = [[1.0 + noise * rng.uniform(-1.0, 1.0) if noise > 0 else 1.0 for _ in DIRECTIONS]
              for _ in range(n)]
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
                    hops = [max(1, round(p * scale * f)) for f in factor[s]]
                    rows.append((s, s, 0, 0, 0, 1000 * scale - sum(hops)))
                    for d, c in zip(DIRECTIONS, hops):
                        tx, ty, tz = ix + d[0], iy + d[1], iz + d[2]
                        t = tx % nx + nx * (ty % ny + ny * (tz % nz))
                        rows.append((s, t, tx // nx, ty // ny, tz // nz, c))
        lags.append((L, n_samples - k, rows))
    write_counts(path, units="metal", timestep=0.001, timestep_ps=0.001, nevery=nevery,
                 n_samples=n_samples, n_atoms=n, box_h=h, origin=[0, 0, 0], frac=frac,
                 occupancy=[1000 * scale] * n, lags=lags)
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["13x4x3", "13x8x12", "22x22x22"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--extra", default="--no-plots")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "ionmsm"))
    ap.add_argument("--noise", nargs="+", type=float, default=[0.0],
                    help="relative hop-count perturbation(s); 0 = exactly symmetric lattice")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    ionmsm = os.path.abspath(a.binary)
    if not os.access(ionmsm, os.X_OK):
        sys.exit(f"analyze_time.py: no executable ionmsm at '{ionmsm}' (build it or pass --binary)")
    print("| sites | noise | lags | rows | analyze wall time (median of %d) | best | load avg |"
          " options |" % a.repeats)
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as wd:
        for size in a.sizes:
            shape = tuple(int(x) for x in size.split("x"))
            for noise in a.noise:
                if noise < 0:
                    sys.exit("analyze_time.py: --noise must be >= 0")
                path = os.path.join(wd, f"lat{size}_{noise}.h5")
                n = lattice_file(path, shape, noise=noise, seed=a.seed)
                times = []
                load = os.getloadavg()[0]
                for r in range(a.repeats):
                    t0 = time.perf_counter()
                    subprocess.run([ionmsm, "analyze", path, "--out",
                                    os.path.join(wd, f"out{size}_{noise}")] + a.extra.split(),
                                   check=True, capture_output=True)
                    times.append(time.perf_counter() - t0)
                label = f"{noise:g} (seed {a.seed})" if noise > 0 else "0 (symmetric)"
                print(f"| {n} | {label} | 16 | {16 * 7 * n} | {statistics.median(times):.2f} s | "
                      f"{min(times):.2f} s | {load:.2f} | {a.extra} |", flush=True)

if __name__ == "__main__":
    main()
