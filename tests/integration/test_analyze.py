#!/usr/bin/python3
"""End-to-end test of `ionmsm analyze` on synthetic counts files with known answers.

    /usr/bin/python3 tests/integration/test_analyze.py --ionmsm build/ionmsm --work /tmp/w

Needs numpy, h5py and (for the plot checks) matplotlib: Debian's /usr/bin/python3. Builds its
own counts files with h5py, following docs/file-format.md, and checks the report against
closed-form results (docs/report-schema.md describes the report):

1. "lattice": a random walk on a simple orthorhombic lattice (5 x 4 x 3 sites, spacings
   a = (2.0, 3.0, 2.5) A, metal units) that in one lag tau stays with probability 0.66 and hops
   to each of the two neighbours along x, y, z with probability p = (0.10, 0.05, 0.02). Counts
   at 2 tau and 4 tau are the exact matrix powers (integer weights), so the file is exactly
   Markov. Known: eigenvalues lambda(m) = 0.66 + sum_a 2 p_a cos(2 pi m_a / N_a) (lambda^n at
   n tau), implied timescales -tau / ln(lambda) (the same at every lag), D_aa = p_a a_a^2 / tau,
   off-diagonal D = 0, f = 1, CK err = 0, MSD_aa(t) = 2 D_aa t without folding.
2. "ring": 8 sites on a periodic ring along x (lj units, no time in ps), forward 0.3, backward
   0.1, stay 0.6: complex eigenvalues 0.6 + 0.3 e^{i theta} + 0.1 e^{-i theta}, drift
   v = (p - q) a / tau, D_xx = ((p + q) - (p - q)^2) a^2 / (2 tau), D0_xx = (p + q) a^2 / (2 tau),
   f_xx = 0.9, f_yy and f_zz undefined (null + status).
3. "ring_leak": the ring plus an absorbing site reached by one one-way transition: by default
   (--transport-counts components) that transition is dropped and D is the ring's D weighted
   by its occupancy; with --transport-counts all the ring is transient and D = 0.
4. Bad input: missing file, wrong format_version, --lag-steps not in the file, no counts ->
   exit status 1, one "ionmsm: error:" line on stderr, no report.json. A missing plot script:
   warning and exit 0 (report kept); with --plots-required exit 1.
"""
import argparse
import csv
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL: " + what, file=sys.stderr)
    return cond


def close(a, b, rel=1e-9, abs_=1e-12):
    return a is not None and b is not None and abs(a - b) <= max(abs_, rel * abs(b))


# ----------------------------------------------------------------------------- counts files

def write_counts(path, *, units, timestep, timestep_ps, nevery, n_samples, n_atoms, box_h,
                 origin, frac, occupancy, lags, format_version=1, labels=None, block_steps=0,
                 blocks=()):
    """lags: list of (lag_steps, n_origins, rows); rows: iterable of (from, to, sx, sy, sz, count)
    with count > 0, in any order (sorted here as the format requires).
    blocks (optional /blocks, block_steps > 0): list of (index, n_samples, occupancy,
    [(n_origins, rows) per lag])."""
    frac = np.asarray(frac, dtype=np.float64)
    box_h = np.asarray(box_h, dtype=np.float64)
    origin = np.asarray(origin, dtype=np.float64)
    n = frac.shape[0]
    all_rows, lag_index, offsets, totals = [], [], [0], []
    for li, (_, _, rows) in enumerate(lags):
        rows = sorted(rows)
        assert all(r[5] > 0 for r in rows)
        keys = [r[:5] for r in rows]
        assert len(set(keys)) == len(keys), "duplicate (from, to, shift)"
        all_rows.extend(rows)
        lag_index.extend([li] * len(rows))
        offsets.append(len(all_rows))
        totals.append(sum(r[5] for r in rows))
    rows = np.array(all_rows, dtype=np.int64).reshape(-1, 6)
    first_step = 0 if n_samples > 0 else -1
    last_step = (n_samples - 1) * nevery if n_samples > 0 else -1
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "ionmsm-counts"
        f.attrs["format_version"] = np.int32(format_version)
        f.attrs["ionmsm_version"] = "0.1.0"
        f.attrs["lammps_version"] = "synthetic (test_analyze.py)"
        f.attrs["command"] = "fix m all msm %d sites file synthetic.txt lags %s file %s" % (
            nevery, " ".join(str(l[0]) for l in lags), os.path.basename(path))
        f.attrs["units"] = units
        f.attrs["timestep"] = np.float64(timestep)
        f.attrs["timestep_ps"] = np.float64(timestep_ps)
        f.attrs["nevery"] = np.int64(nevery)
        f.attrs["first_step"] = np.int64(first_step)
        f.attrs["last_step"] = np.int64(last_step)
        f.attrs["n_atoms"] = np.int64(n_atoms)
        f.attrs["n_samples"] = np.uint64(n_samples)
        g = f.create_group("box")
        g.create_dataset("origin", data=origin)
        g.create_dataset("h", data=box_h)
        g = f.create_group("sites")
        g.create_dataset("fractional", data=frac)
        g.create_dataset("cartesian", data=origin[None, :] + frac @ box_h.T)
        g.create_dataset("occupancy", data=np.asarray(occupancy, dtype=np.uint64))
        if labels is not None:
            g.create_dataset("labels", data=labels, dtype=h5py.string_dtype("utf-8"))
        g = f.create_group("lags")
        g.create_dataset("lag_steps", data=np.array([l[0] for l in lags], dtype=np.int64))
        g.create_dataset("n_origins", data=np.array([l[1] for l in lags], dtype=np.uint64))
        g.create_dataset("total_counts", data=np.array(totals, dtype=np.uint64))
        g.create_dataset("row_offset", data=np.array(offsets, dtype=np.int64))
        g = f.create_group("counts")
        g.create_dataset("lag_index", data=np.array(lag_index, dtype=np.int32))
        g.create_dataset("from", data=rows[:, 0].astype(np.int32))
        g.create_dataset("to", data=rows[:, 1].astype(np.int32))
        g.create_dataset("shift", data=rows[:, 2:5].astype(np.int32).reshape(-1, 3))
        g.create_dataset("count", data=rows[:, 5].astype(np.uint64))
        if block_steps:
            f.attrs["block_steps"] = np.int64(block_steps)
            g = f.create_group("blocks")
            brows, boff = [], [0]
            for _, _, _, per_lag in blocks:
                for _, lrows in per_lag:
                    brows.extend(sorted(lrows))
                    boff.append(len(brows))
            brows = np.array(brows, dtype=np.int64).reshape(-1, 6)
            g.create_dataset("index", data=np.array([b[0] for b in blocks], dtype=np.int64))
            g.create_dataset("n_samples", data=np.array([b[1] for b in blocks], dtype=np.uint64))
            g.create_dataset("occupancy", data=np.array([b[2] for b in blocks], dtype=np.uint64))
            g.create_dataset("n_origins", data=np.array([[o for o, _ in b[3]] for b in blocks],
                                                        dtype=np.uint64))
            g.create_dataset("row_offset", data=np.array(boff, dtype=np.int64))
            g.create_dataset("from", data=brows[:, 0].astype(np.int32))
            g.create_dataset("to", data=brows[:, 1].astype(np.int32))
            g.create_dataset("shift", data=brows[:, 2:5].astype(np.int32).reshape(-1, 3))
            g.create_dataset("count", data=brows[:, 5].astype(np.uint64))
    assert n == len(occupancy)


def convolve(step, k):
    """k-fold convolution of an integer step distribution {displacement tuple: weight}."""
    dist = {(0,) * len(next(iter(step))): 1}
    for _ in range(k):
        new = {}
        for d, w in dist.items():
            for s, v in step.items():
                key = tuple(x + y for x, y in zip(d, s))
                new[key] = new.get(key, 0) + w * v
        dist = new
    return dist


def lattice_rows(shape, step, k):
    """Exact counts of the k-step walk: every site emits the k-fold step distribution."""
    nx, ny, nz = shape
    dist = convolve(step, k)
    rows = []
    for iz, iy, ix in itertools.product(range(nz), range(ny), range(nx)):
        s = ix + nx * (iy + ny * iz)
        for (dx, dy, dz), w in dist.items():
            tx, ty, tz = ix + dx, iy + dy, iz + dz
            t = tx % nx + nx * (ty % ny + ny * (tz % nz))
            rows.append((s, t, tx // nx, ty // ny, tz // nz, w))
    return rows


LAT_SHAPE = (5, 4, 3)
LAT_A = (2.0, 3.0, 2.5)
LAT_P = (10, 5, 2)            # per direction, out of 100
LAT_STAY = 100 - 2 * sum(LAT_P)
LAT_TAU_STEPS, LAT_NEVERY, LAT_DT = 50, 10, 0.001   # metal: ps


def lattice_step():
    step = {(0, 0, 0): LAT_STAY}
    for a in range(3):
        for sgn in (1, -1):
            d = [0, 0, 0]
            d[a] = sgn
            step[tuple(d)] = LAT_P[a]
    return step


def write_lattice(path, format_version=1, lag_mults=(1, 2, 4), empty_lag=True):
    nx, ny, nz = LAT_SHAPE
    frac = [((ix + 0.5) / nx, (iy + 0.5) / ny, (iz + 0.5) / nz)
            for iz, iy, ix in itertools.product(range(nz), range(ny), range(nx))]
    h = np.diag([nx * LAT_A[0], ny * LAT_A[1], nz * LAT_A[2]])
    n_samples = 1_000_000
    lags = []
    for m in lag_mults:
        L = m * LAT_TAU_STEPS
        lags.append((L, n_samples - L // LAT_NEVERY, lattice_rows(LAT_SHAPE, lattice_step(), m)))
    if empty_lag:
        lags.append((8 * LAT_TAU_STEPS, 0, []))
    write_counts(path, units="metal", timestep=LAT_DT, timestep_ps=LAT_DT, nevery=LAT_NEVERY,
                 n_samples=n_samples, n_atoms=60, box_h=h, origin=[0.0, 0.0, 0.0], frac=frac,
                 occupancy=[1000] * len(frac), lags=lags, format_version=format_version)


def lattice_eigenvalues(n):
    nx, ny, nz = LAT_SHAPE
    p = [x / 100 for x in LAT_P]
    ev = []
    for mx, my, mz in itertools.product(range(nx), range(ny), range(nz)):
        ev.append(LAT_STAY / 100 + 2 * p[0] * math.cos(2 * math.pi * mx / nx)
                  + 2 * p[1] * math.cos(2 * math.pi * my / ny)
                  + 2 * p[2] * math.cos(2 * math.pi * mz / nz))
    return sorted((x ** n for x in ev), reverse=True)


RING_N, RING_A = 8, 1.5
RING_FWD, RING_BWD, RING_STAY = 3, 1, 6     # out of 10
RING_TAU_STEPS, RING_NEVERY = 10, 5          # lj units: times in timesteps


def write_ring(path):
    frac = [((i + 0.5) / RING_N, 0.5, 0.5) for i in range(RING_N)]
    h = np.diag([RING_N * RING_A, 10.0, 10.0])
    step = {(0,): RING_STAY, (1,): RING_FWD, (-1,): RING_BWD}
    lags = []
    n_samples = 100_000
    for m in (1, 2):
        rows = []
        for (d,), w in convolve(step, m).items():
            for i in range(RING_N):
                t = i + d
                rows.append((i, t % RING_N, t // RING_N, 0, 0, w))
        L = m * RING_TAU_STEPS
        lags.append((L, n_samples - L // RING_NEVERY, rows))
    write_counts(path, units="lj", timestep=0.005, timestep_ps=0.0, nevery=RING_NEVERY,
                 n_samples=n_samples, n_atoms=8, box_h=h, origin=[-1.0, 0.0, 0.0], frac=frac,
                 occupancy=[500] * RING_N, lags=lags,
                 labels=["Li%d" % (i % 2 + 1) for i in range(RING_N)])


def write_ring_leak(path, n_origins=1000):
    """The ring plus a site X (index 8) that only ever holds a static atom (1000 stays per lag)
    and one one-way transition ring site 0 -> X at lag tau: a finite-sampling artifact that
    makes the ring transient if taken at face value."""
    frac = [((i + 0.5) / RING_N, 0.5, 0.5) for i in range(RING_N)] + [(0.5, 0.1, 0.1)]
    h = np.diag([RING_N * RING_A, 10.0, 10.0])
    step = {(0,): RING_STAY, (1,): RING_FWD, (-1,): RING_BWD}
    lags = []
    for m in (1, 2):
        rows = [(RING_N, RING_N, 0, 0, 0, 1000)]
        for (d,), w in convolve(step, m).items():
            for i in range(RING_N):
                t = i + d
                rows.append((i, t % RING_N, t // RING_N, 0, 0, w))
        if m == 1:
            rows.append((0, RING_N, 0, 0, 0, 1))
        lags.append((m * RING_TAU_STEPS, n_origins, rows))
    write_counts(path, units="lj", timestep=0.005, timestep_ps=0.0, nevery=RING_NEVERY,
                 n_samples=10_000, n_atoms=9, box_h=h, origin=[0.0, 0.0, 0.0], frac=frac,
                 occupancy=[500] * RING_N + [2000], lags=lags)


def write_empty(path):
    nx, ny, nz = LAT_SHAPE
    frac = [((ix + 0.5) / nx, (iy + 0.5) / ny, (iz + 0.5) / nz)
            for iz, iy, ix in itertools.product(range(nz), range(ny), range(nx))]
    h = np.diag([nx * LAT_A[0], ny * LAT_A[1], nz * LAT_A[2]])
    write_counts(path, units="metal", timestep=LAT_DT, timestep_ps=LAT_DT, nevery=LAT_NEVERY,
                 n_samples=0, n_atoms=60, box_h=h, origin=[0, 0, 0], frac=frac,
                 occupancy=[0] * len(frac), lags=[(50, 0, []), (100, 0, [])])


# ----------------------------------------------------------------------------- running

def run(ionmsm, args, env=None, expect=0, what="", quiet=False):
    e = dict(os.environ)
    e.update(env or {})
    t0 = time.time()
    p = subprocess.run([ionmsm] + args, capture_output=True, text=True, env=e, timeout=120)
    dt = time.time() - t0
    if not quiet:
        print("  $ ionmsm %s  -> %d (%.1f s)" % (" ".join(args), p.returncode, dt))
    if not check(p.returncode == expect, "%s: exit status %d, expected %d; stderr:\n%s"
                 % (what or " ".join(args), p.returncode, expect, p.stderr)):
        print(p.stdout, file=sys.stderr)
    return p


def strict_json(path):
    def bad_constant(name):
        raise ValueError("non-finite constant %s in %s" % (name, path))
    with open(path, encoding="utf-8") as f:
        return json.load(f, parse_constant=bad_constant)


def all_finite(x, where="report"):
    if isinstance(x, float):
        return check(math.isfinite(x), "non-finite number at " + where)
    if isinstance(x, dict):
        return all([all_finite(v, where + "." + k) for k, v in x.items()])
    if isinstance(x, list):
        return all([all_finite(v, "%s[%d]" % (where, i)) for i, v in enumerate(x)])
    return True


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def check_common(out, rep, plots):
    """Structure checks shared by every successful run."""
    for key in ["format", "format_version", "ionmsm_version", "input", "units", "estimator",
                "lags", "ck_test", "diffusion", "msd", "jump_network", "selected_lag", "bootstrap",
                "tracer_correlation", "which_D"]:
        check(key in rep, "report.json lacks '%s'" % key)
    check(rep["format"] == "ionmsm-report" and rep["format_version"] == 3, "report tag/version")
    for key in ["file", "file_name", "units", "timestep_ps", "nevery", "n_samples", "n_atoms",
                "nsites"]:
        check(key in rep["input"], "input lacks '%s'" % key)
    for l in rep["lags"]:
        for key in ["lag_steps", "lag_time_ps", "n_origins", "total_counts", "kept_sites",
                    "dropped_sites", "estimator_info", "eigenvalues", "implied_timescales_ps",
                    "timescale_status", "status"]:
            check(key in l, "lags[] entry lacks '%s'" % key)
        check(len(l["eigenvalues"]) == len(l["implied_timescales_ps"]) ==
              len(l["timescale_status"]), "lag %s: eigenvalue/timescale lengths" % l["lag_steps"])
        for e, t, s in zip(l["eigenvalues"], l["implied_timescales_ps"], l["timescale_status"]):
            # t = -tau / ln|lambda| whenever 0 < |lambda| < 1, whatever the flag
            defined = s not in ("stationary", "invalid") and 0 < e["modulus"] < 1 - 1e-12
            check((t is not None) == defined, "timescale defined iff 0 < |lambda| < 1 (%s, %s)"
                  % (s, e["modulus"]))
            check(e["status"] == s, "eigenvalue status matches timescale_status")
    all_finite(rep)
    for name in ["implied_timescales.csv", "spectrum.csv", "ck_test.csv", "diffusion.csv",
                 "msd.csv", "jump_network.csv", "bootstrap.csv", "model.h5", "report.json"]:
        check(os.path.isfile(os.path.join(out, name)), "%s missing" % name)
    check(not [f for f in os.listdir(out) if ".tmp." in f], "temporary files left in " + out)
    with open(os.path.join(out, "implied_timescales.csv")) as f:
        check(f.readline().strip() ==
              "lag_steps,lag_time_ps,k,eigenvalue_re,eigenvalue_im,timescale_ps,status",
              "implied_timescales.csv header")
    its = read_csv(os.path.join(out, "implied_timescales.csv"))
    check(len(its) == sum(len(l["eigenvalues"]) for l in rep["lags"]),
          "implied_timescales.csv has one row per reported eigenvalue")
    msd_rows = read_csv(os.path.join(out, "msd.csv"))
    check(len(msd_rows) == rep["msd"]["n_steps"], "msd.csv has one row per MSD step")
    if plots:
        for name in ["implied_timescales.png", "ck_test.png", "msd.png", "spectrum.png",
                     "jump_network.png"]:
            p = os.path.join(out, name)
            if check(os.path.isfile(p), "%s missing" % name):
                with open(p, "rb") as f:
                    check(f.read(8) == PNG_SIGNATURE, "%s is not a PNG" % name)
        pj = strict_json(os.path.join(out, "plots.json"))
        check(pj.get("format") == "ionmsm-plots" and not pj.get("failed"), "plots.json header")
        return {p["file"]: {s["name"]: s["n_points"] for s in p["series"]} for p in pj["plots"]}
    return None


def expected_plot_series(rep):
    """What plots.json must list, derived from report.json independently of the plot script."""
    ok = [l for l in rep["lags"] if l["status"] == "ok"]
    exp = {}
    its = {}
    kmax = max(len(l["implied_timescales_ps"]) for l in ok)
    def has_t(l, k):  # every mode with a positive timescale is drawn, whatever its status
        ts = l["implied_timescales_ps"]
        return k < len(ts) and ts[k] is not None and ts[k] > 0
    for k in range(1, kmax):
        n = sum(1 for l in ok if has_t(l, k))
        if n:
            its["k=%d" % (k + 1)] = n
    bs = rep.get("bootstrap", {})
    if bs.get("status") == "ok":
        for k in range(1, kmax):
            n = 0
            for l in ok:
                if not has_t(l, k):
                    continue
                for bl in bs["lags"]:
                    if bl["lag_steps"] == l["lag_steps"]:
                        n += sum(1 for t in bl["timescales_ps"] if t["k"] == k + 1 and
                                 t["low"] is not None and t["high"] is not None)
            if n:
                its["k=%d/bootstrap" % (k + 1)] = n
    if rep["estimator"] != "rev":
        n = sum(1 for l in ok if len(l["reversible_timescales_ps"]) > 1
                and l["reversible_timescales_ps"][1] is not None
                and l["reversible_timescales_ps"][1] > 0)
        if n:
            its["k=2/rev"] = n
    its["lag_time"] = len(ok)
    exp["implied_timescales.png"] = its
    ck = {}
    for r in rep["ck_test"]:
        if r["err"] is not None:
            ck["lag=%d" % r["lag_steps"]] = ck.get("lag=%d" % r["lag_steps"], 0) + 1
    exp["ck_test.png"] = ck
    exp["msd.png"] = {"%s/%s" % (c, m): rep["msd"]["n_steps"]
                      for c in ["xx", "yy", "zz", "total"]
                      for m in ["minimum_image", "replicated", "moments"]}
    for d in rep["diffusion"]:  # the exact-D line 2 D t (6 D t for the trace)
        if d["lag_steps"] == rep["msd"]["lag_steps"] and d["status"] == "ok":
            for a, c in enumerate(["xx", "yy", "zz"]):
                if d["D_tensor_A2_per_ps"][a][a] is not None:
                    exp["msd.png"][c + "/exact_D"] = 2
            if d["D_total_A2_per_ps"] is not None:
                exp["msd.png"]["total/exact_D"] = 2
    exp["spectrum.png"] = {"lag=%d" % l["lag_steps"]: len(l["eigenvalues"]) for l in ok}
    pairs = {(min(e["from"], e["to"]), max(e["from"], e["to"])) for e in rep["jump_network"]["edges"]}
    exp["jump_network.png"] = {"sites": len(rep["jump_network"]["sites"]), "edges": len(pairs)}
    return exp


def counts_matrix(counts_path, lag_steps):
    """C[to, from] of one lag of a counts file, summed over shifts (docs/numpy.md)."""
    with h5py.File(counts_path, "r") as f:
        i = int(np.flatnonzero(f["lags/lag_steps"][:] == lag_steps)[0])
        lo, hi = f["lags/row_offset"][i:i + 2]
        n = f["sites/fractional"].shape[0]
        C = np.zeros((n, n))
        np.add.at(C, (f["counts/to"][lo:hi], f["counts/from"][lo:hi]),
                  f["counts/count"][lo:hi].astype(np.float64))
    return C


def check_model_h5(out, counts_path, rep):
    """model.h5 read with h5py + scipy.sparse as docs/numpy.md shows: T is the column-normalised
    counts restricted to the kept sites (non-reversible estimate); pi, eigenvalues and D agree
    with report.json; the hop rates are T / tau off the diagonal."""
    try:
        import scipy.sparse as sp
    except ImportError:
        sp = None
        print("  (scipy not installed: model.h5 checked with numpy only, the scipy.sparse "
              "loading of docs/numpy.md skipped)")
    path = os.path.join(out, "model.h5")
    if not check(os.path.isfile(path), "model.h5 written"):
        return
    ok = {l["lag_steps"]: l for l in rep["lags"] if l["status"] == "ok"}
    diff = {d["lag_steps"]: d for d in rep["diffusion"] if d["status"] == "ok"}
    with h5py.File(path, "r") as f:
        check(f.attrs["format"] == "ionmsm-model" and f.attrs["format_version"] == 1,
              "model.h5 tag/version")
        check(sorted(f["lag_steps"][:].tolist()) == sorted(ok), "model.h5 lags = lags with a model")
        check(int(f.attrs["selected_lag_steps"]) == rep["selected_lag"]["lag_steps"],
              "model.h5 selected lag")
        for L, l in ok.items():
            g = f["lags/%d" % L]
            kept = g["kept_sites"][:]
            n = len(kept)
            check(n == l["kept_sites"], "lag %d: %d kept sites" % (L, n))
            data, indices, indptr = g["T_data"][:], g["T_indices"][:], g["T_indptr"][:]
            T = np.zeros((n, n))  # CSC by hand: column j holds rows indices[indptr[j]:indptr[j+1]]
            for j in range(n):
                T[indices[indptr[j]:indptr[j + 1]], j] = data[indptr[j]:indptr[j + 1]]
            if sp is not None:
                check(np.array_equal(sp.csc_matrix((data, indices, indptr), shape=(n, n)).toarray(),
                                     T), "lag %d: scipy.sparse reads T" % L)
            C = counts_matrix(counts_path, L)[np.ix_(kept, kept)]
            want = C / C.sum(axis=0, keepdims=True)
            if rep["estimator"] == "nonrev":
                check(np.abs(T - want).max() < 1e-14, "lag %d: T = normalised counts" % L)
            pi = g["stationary"][:]
            check(abs(pi.sum() - 1) < 1e-12 and np.abs(T @ pi - pi).max() < 1e-12,
                  "lag %d: T pi = pi" % L)
            lam = g["eigenvalues_re"][:, 0] + 1j * g["eigenvalues_im"][:, 0]
            R = g["right_vectors_re"][:] + 1j * g["right_vectors_im"][:]
            check(np.abs(T @ R - R * lam[None, :]).max() < 1e-9, "lag %d: T R = R Lambda" % L)
            if "left_vectors_re" in g:
                Lv = g["left_vectors_re"][:] + 1j * g["left_vectors_im"][:]
                check(np.abs(T.T @ Lv - Lv * lam[None, :]).max() < 1e-9 and
                      np.abs(np.sum(Lv * R, axis=0) - 1).max() < 1e-9, "lag %d: left vectors" % L)
            got = [complex(e["re"], e["im"]) for e in l["eigenvalues"]]
            check(np.abs(np.array(got[:len(lam)]) - lam[:len(got)]).max() < 1e-9,
                  "lag %d: eigenvalues as in report.json" % L)
            if L in diff:
                check(np.abs(g["D_tensor"][:] - np.array(diff[L]["D_tensor_A2_per_ps"])).max()
                      <= 1e-12 * max(1.0, np.abs(g["D_tensor"][:]).max()), "lag %d: D tensor" % L)
            if L == rep["selected_lag"]["lag_steps"]:
                s = f["selected"]
                tau = g.attrs["lag_time"]
                K = np.zeros((rep["input"]["nsites"],) * 2)
                np.add.at(K, (s["hop_to_site"][:], s["hop_from_site"][:]), s["hop_rate"][:])
                Tsite = np.zeros_like(K)
                Tsite[np.ix_(kept, kept)] = T
                np.fill_diagonal(Tsite, 0.0)
                check(np.abs(K - Tsite / tau).max() <= 1e-12 * max(1.0, np.abs(K).max()),
                      "selected lag: hop rates = T / tau off the diagonal")


# ----------------------------------------------------------------------------- scenarios

def test_lattice(ionmsm, work):
    print("lattice random walk (metal units, exactly Markov)")
    h5 = os.path.join(work, "lattice.h5")
    write_lattice(h5)
    tau = LAT_TAU_STEPS * LAT_DT
    p = [x / 100 for x in LAT_P]
    d_exact = [p[a] * LAT_A[a] ** 2 / tau for a in range(3)]   # 8, 9, 2.5 A^2/ps

    # --- default options (lag selection, all plots) -------------------------------------
    out = os.path.join(work, "lattice_default")
    run(ionmsm, ["analyze", h5, "--out", out, "--msd-steps", "40"], what="lattice default")
    rep = strict_json(os.path.join(out, "report.json"))
    series = check_common(out, rep, plots=True)
    check_model_h5(out, h5, rep)
    check(rep["units"]["time"] == "ps" and rep["units"]["length"] == "Angstrom", "metal units")
    check(rep["warnings"] == [], "healthy data: no warnings (%s)" % rep["warnings"])
    check(rep["input"]["nsites"] == 60 and rep["input"]["units"] == "metal", "input metadata")
    # exactly Markov: the timescales are the same at every lag, so they have converged at the
    # shortest one
    sel = rep["selected_lag"]
    check(sel["lag_steps"] == LAT_TAU_STEPS and sel["method"] == "its_convergence" and
          sel["its_convergence"]["status"] == "converged" and
          sel["its_convergence"]["n_timescales"] == 3,
          "default lag = shortest lag with converged timescales (got %s)" % sel)
    conv = sel["its_convergence"]["lags"]
    check([c["lag_steps"] for c in conv] == [LAT_TAU_STEPS, 2 * LAT_TAU_STEPS, 4 * LAT_TAU_STEPS]
          and conv[0]["max_relative_change"] < 1e-9 and conv[0]["n_compared"] == 2 and
          conv[0]["ck_error"] < 1e-10 and not conv[2]["converged"],
          "ITS convergence numbers per lag: %s" % conv)
    tr = rep["tracer_correlation"]
    check(tr["status"] == "ok" and tr["hop_lag_steps"] == LAT_TAU_STEPS and
          all(close(tr["f_tracer"][c], 1.0, rel=1e-8) for c in ("xx", "yy", "zz", "trace")) and
          close(tr["site_change_probability"], 2 * sum(LAT_P) / 100, rel=1e-9),
          "uncorrelated lattice walk: f_tracer = 1, site change 0.34 per lag (%s)" % tr)
    wd = rep["which_D"]
    check(wd["recommended"] == "exact" and close(wd["D_exact_total_A2_per_ps"], sum(d_exact) / 3,
          rel=1e-8) and wd["D_md_msd_slope_total_A2_per_ps"] is None and "exact D" in wd["note"],
          "which_D: %s" % wd)
    check([l["status"] for l in rep["lags"]] == ["ok", "ok", "ok", "empty"], "lag statuses")
    for l, n in zip(rep["lags"][:3], (1, 2, 4)):
        check(l["kept_sites"] == 60 and l["dropped_sites"] == [], "lag %d keeps all sites" % n)
        check(len(l["eigenvalues"]) == 20, "20 eigenvalues reported by default")
        want = lattice_eigenvalues(n)[:20]
        got = [e["re"] for e in l["eigenvalues"]]
        check(all(abs(a - b) < 1e-10 for a, b in zip(got, want)),
              "lag %d: eigenvalues %s != analytic %s" % (n, got[:5], want[:5]))
        check(all(abs(e["im"]) < 1e-10 for e in l["eigenvalues"]), "real spectrum")
        # symmetric counts: the nonrev estimate satisfies detailed balance to round-off and
        # takes the symmetric eigensolver (the eigenvalues above are checked against theory)
        check(l["spectrum"]["symmetrized"] is True, "lag %d: symmetric route for a reversible "
              "nonrev estimate (spectrum %s)" % (n, l["spectrum"]))
        check(l["timescale_status"][0] == "stationary" and l["implied_timescales_ps"][0] is None,
              "leading eigenvalue is stationary with a null timescale")
        for k in range(1, 20):
            t_want = -tau / math.log(lattice_eigenvalues(1)[k])   # the same at every lag
            check(close(l["implied_timescales_ps"][k], t_want, rel=1e-7),
                  "lag %d, k=%d: timescale %s != %s" % (n, k + 1, l["implied_timescales_ps"][k], t_want))
        # symmetric counts: the reversible estimate is the same model
        check(all(close(a, b, rel=1e-7) for a, b in zip(l["reversible_timescales_ps"][1:],
                                                         l["implied_timescales_ps"][1:])),
              "lag %d: reversible timescales beside the default ones" % n)
        sets = l["degenerate_sets"]
        check(sum(d["multiplicity"] for d in sets) == 19 and sets[0]["k_first"] == 2,
              "lag %d: degenerate sets cover modes 2..20: %s" % (n, sets))
        for d in sets:  # each set: modes whose timescales agree within 5 %
            members = l["implied_timescales_ps"][d["k_first"] - 1:d["k_first"] - 1 + d["multiplicity"]]
            check(max(members) - min(members) <= 0.05 * max(members) + 1e-12 and
                  close(d["timescale_ps"], sum(members) / len(members), rel=1e-12),
                  "degenerate set %s vs timescales %s" % (d, members))
    ck = {(r["lag_steps"], r["n"]): r["err"] for r in rep["ck_test"]}
    check(set(ck) == {(50, 2), (50, 4), (100, 2)}, "CK pairs %s" % sorted(ck))
    check(all(v is not None and v < 1e-10 for v in ck.values()), "CK err ~ 0: %s" % ck)
    check(len(rep["diffusion"]) == 3, "one diffusion entry per lag with counts")
    for d in rep["diffusion"]:
        D = d["D_tensor_A2_per_ps"]
        for a in range(3):
            check(close(D[a][a], d_exact[a], rel=1e-8),
                  "lag %d: D_%d%d = %s, expected %s" % (d["lag_steps"], a, a, D[a][a], d_exact[a]))
            for b in range(3):
                if a != b:
                    check(abs(D[a][b]) < 1e-9, "off-diagonal D = %s" % D[a][b])
            check(close(d["D0_tensor_A2_per_ps"][a][a], d_exact[a], rel=1e-8), "D0 = D")
        f = d["f_lag"]
        for c in ["xx", "yy", "zz", "trace"]:
            check(f[c] is not None and 0 < f[c] <= 1 + 1e-9 and abs(f[c] - 1) < 1e-8,
                  "f_%s = %s, expected 1 in (0, 1]" % (c, f[c]))
        de = d["D_einstein_A2_per_ps"]
        for a, c in enumerate("xyz"):
            check(close(de[c], d_exact[a], rel=1e-7), "Einstein D_%s = %s" % (c, de[c]))
        check(close(de["total"], sum(d_exact) / 3, rel=1e-7), "Einstein D_total")
        check(all(abs(v) < 1e-9 for v in d["drift_velocity_A_per_ps"]), "no drift")
    # plots.json lists the expected series with the right number of points
    exp = expected_plot_series(rep)
    check(exp["implied_timescales.png"]["k=2"] == 3 and exp["spectrum.png"]["lag=50"] == 20,
          "expected series sanity")
    for name, want in exp.items():
        check(series.get(name) == want, "plots.json %s: %s != expected %s"
              % (name, series.get(name), want))
    dcsv = read_csv(os.path.join(out, "diffusion.csv"))
    check(len(dcsv) == 3 and close(float(dcsv[0]["D_xx"]), d_exact[0], rel=1e-8), "diffusion.csv")

    # --- the shortest lag for MSD and jump network; reversible estimator ------------------
    out = os.path.join(work, "lattice_lag50")
    run(ionmsm, ["analyze", h5, "--out", out, "--lag-steps", "50", "--estimator", "rev",
                 "--replicate", "2", "3", "2", "--msd-steps", "60", "--n-eigenvalues", "8",
                 "--ck-max-n", "2", "--no-plots", "--progress"], what="lattice lag 50 rev")
    rep = strict_json(os.path.join(out, "report.json"))
    check_common(out, rep, plots=False)
    check(not os.path.exists(os.path.join(out, "plots.json")), "--no-plots writes no plots.json")
    check(rep["estimator"] == "rev" and rep["selected_lag"]["lag_steps"] == 50, "options echoed")
    l = rep["lags"][0]
    check(l["estimator_info"]["status"] == "converged", "reversible MLE converged")
    check({(r["lag_steps"], r["n"]) for r in rep["ck_test"]} == {(50, 2), (100, 2)},
          "--ck-max-n 2 limits the CK test")
    check(len(l["eigenvalues"]) == 8, "--n-eigenvalues 8")
    check(all(abs(e["re"] - w) < 1e-9 for e, w in zip(l["eigenvalues"], lattice_eigenvalues(1))),
          "reversible eigenvalues match the analytic ones")
    msd = rep["msd"]
    check(msd["replicate"] == [2, 3, 2] and len(msd["time_ps"]) == 60, "msd block shape")
    for a, c in enumerate(["xx", "yy", "zz"]):
        mom = msd["moments"][c]
        check(all(close(mom[k], 2 * d_exact[a] * (k + 1) * tau, rel=1e-9) for k in range(60)),
              "moments MSD_%s = 2 D t" % c)
        check(close(msd["minimum_image"][c][0], mom[0], rel=1e-9) and
              close(msd["replicated"][c][0], mom[0], rel=1e-9),
              "one lag: min-image = replicated = unfolded (%s)" % c)
        half = (LAT_SHAPE[a] * LAT_A[a] / 2) ** 2
        check(max(msd["minimum_image"][c]) <= half + 1e-9, "min-image MSD_%s <= (L/2)^2" % c)
        check(all(r <= m + 1e-9 for r, m in zip(msd["replicated"][c], mom)),
              "replicated MSD_%s <= unfolded" % c)
    jn = rep["jump_network"]
    check(jn["axes"] == [0, 1] and jn["axis_names"] == ["x", "y"], "jump network axes %s" % jn["axes"])
    check(len(jn["sites"]) == 60 and all(s["active"] for s in jn["sites"]), "60 active sites")
    check(len(jn["edges"]) == 360, "6 neighbours x 60 sites = 360 directed edges (%d)" % len(jn["edges"]))
    rates = {}
    for e in jn["edges"]:
        axis = int(np.argmax(np.abs(e["jump_A"])))
        rates.setdefault(axis, set()).add(round(e["rate_per_ps"], 9))
        check(close(abs(e["jump_A"][axis]), LAT_A[axis]), "jump length along %d" % axis)
    check(rates == {0: {2.0}, 1: {1.0}, 2: {0.4}}, "edge rates p_a / tau: %s" % rates)
    jcsv = read_csv(os.path.join(out, "jump_network.csv"))
    check(len(jcsv) == 360, "jump_network.csv rows")


def test_ring(ionmsm, work):
    print("biased ring (lj units, complex eigenvalues, drift)")
    h5 = os.path.join(work, "ring.h5")
    write_ring(h5)
    out = os.path.join(work, "ring")
    run(ionmsm, ["analyze", h5, "--out", out, "--msd-steps", "30", "--replicate", "3", "1", "1"],
        what="ring")
    rep = strict_json(os.path.join(out, "report.json"))
    series = check_common(out, rep, plots=True)
    u = rep["units"]
    check(u["time"] == "timesteps" and u["time_is_physical"] is False and u["length"] == "sigma",
          "lj units: times in timesteps (%s)" % u)
    tau = float(RING_TAU_STEPS)
    p, q = RING_FWD / 10, RING_BWD / 10
    want = []
    for m in range(RING_N):
        th = 2 * math.pi * m / RING_N
        want.append(complex(RING_STAY / 10 + (p + q) * math.cos(th), (p - q) * math.sin(th)))
    got = [complex(e["re"], e["im"]) for e in rep["lags"][0]["eigenvalues"]]
    check(len(got) == RING_N, "all 8 eigenvalues reported")
    check(rep["lags"][0]["spectrum"]["symmetrized"] is False,
          "a driven ring violates detailed balance: general eigensolver")
    key = lambda z: (round(z.real, 8), round(z.imag, 8))
    check(sorted(map(key, got)) == sorted(map(key, want)), "ring eigenvalues %s" % got)
    mods = [abs(z) for z in got]
    check(all(mods[i] >= mods[i + 1] - 1e-12 for i in range(len(mods) - 1)), "sorted by modulus")
    st = rep["lags"][0]["timescale_status"]
    check(st.count("complex") == 6 and st.count("stationary") == 1 and st.count("ok") == 1,
          "ring timescale statuses %s" % st)
    k_ok = st.index("ok")
    check(close(rep["lags"][0]["implied_timescales_ps"][k_ok], -tau / math.log(0.2), rel=1e-8),
          "real mode timescale in timesteps")
    # complex modes keep their flag and get t = -tau / ln|lambda| (as deeptime)
    for e, t, s_ in zip(rep["lags"][0]["eigenvalues"], rep["lags"][0]["implied_timescales_ps"], st):
        if s_ == "complex":
            check(close(t, -tau / math.log(abs(complex(e["re"], e["im"]))), rel=1e-10),
                  "complex mode timescale from |lambda|: %s" % t)
    ck = rep["ck_test"]
    check(len(ck) == 1 and ck[0]["err"] < 1e-10, "ring CK err ~ 0: %s" % ck)
    d = rep["diffusion"][0]
    a = RING_A
    dxx = ((p + q) - (p - q) ** 2) * a * a / (2 * tau)
    check(close(d["D_tensor_A2_per_ps"][0][0], dxx, rel=1e-8),
          "ring D_xx = %s, expected %s" % (d["D_tensor_A2_per_ps"][0][0], dxx))
    check(close(d["D0_tensor_A2_per_ps"][0][0], (p + q) * a * a / (2 * tau), rel=1e-8), "ring D0_xx")
    check(close(d["drift_velocity_A_per_ps"][0], (p - q) * a / tau, rel=1e-8), "ring drift")
    f = d["f_lag"]
    check(close(f["xx"], 0.9, rel=1e-8) and 0 < f["xx"] <= 1, "ring f_xx = 0.9 (%s)" % f["xx"])
    check(f["yy"] is None and f["zz"] is None and
          d["f_lag_status"]["yy"] != "ok", "f_yy, f_zz undefined -> null + status")
    # drift: the Einstein fit of the drift-centred MSD recovers the exact D (the raw MSD grows
    # as 2 D t + v^2 t^2), and the MSD's own drift is reported
    de = d["D_einstein_A2_per_ps"]
    check(de["drift_centred"] is True and close(de["x"], dxx, rel=1e-6) and
          close(de["msd_drift_velocity_A_per_ps"][0], (p - q) * a / tau, rel=1e-8),
          "ring Einstein fit drift-centred: %s vs D_xx %s" % (de, dxx))
    check(d["D_tensor_A2_per_ps"][1][1] == 0 or abs(d["D_tensor_A2_per_ps"][1][1]) < 1e-12, "D_yy = 0")
    check(any(s.get("label") == "Li1" for s in rep["jump_network"]["sites"]), "site labels")
    for name, want_s in expected_plot_series(rep).items():
        check(series.get(name) == want_s, "ring plots.json %s: %s != %s"
              % (name, series.get(name), want_s))


def test_ring_leak(ionmsm, work):
    print("ring with a one-way transition into an absorbing site (transport trimming)")
    h5 = os.path.join(work, "ring_leak.h5")
    write_ring_leak(h5)
    tau = float(RING_TAU_STEPS)
    p, q = RING_FWD / 10, RING_BWD / 10
    dxx = ((p + q) - (p - q) ** 2) * RING_A ** 2 / (2 * tau)
    w_ring = 4000 / 6000   # occupancy weight of the ring class
    out = os.path.join(work, "ring_leak")
    run(ionmsm, ["analyze", h5, "--out", out, "--lag-steps", "10", "--msd-steps", "10",
                 "--no-plots"], what="ring leak, components")
    rep = strict_json(os.path.join(out, "report.json"))
    check_common(out, rep, plots=False)
    check_model_h5(out, h5, rep)  # T on the ring only: X is not strongly connected
    l = rep["lags"][0]
    check(l["kept_sites"] == RING_N and l["dropped_sites"] == [
        {"site": RING_N, "reason": "not strongly connected"}], "MSM drops X: %s" % l["dropped_sites"])
    d = rep["diffusion"][0]
    check(d["transport_counts"] == "components" and d["one_way_count"] == 1 and
          d["n_components"] == 2, "one one-way count dropped, 2 components")
    check(close(d["D_tensor_A2_per_ps"][0][0], w_ring * dxx, rel=1e-8),
          "D_xx = w_ring * D_ring: %s vs %s" % (d["D_tensor_A2_per_ps"][0][0], w_ring * dxx))
    check(close(d["drift_velocity_A_per_ps"][0], w_ring * (p - q) * RING_A / tau, rel=1e-8),
          "drift weighted by the ring class")
    out = os.path.join(work, "ring_leak_all")
    run(ionmsm, ["analyze", h5, "--out", out, "--lag-steps", "10", "--msd-steps", "10",
                 "--transport-counts", "all", "--no-plots"], what="ring leak, all")
    rep = strict_json(os.path.join(out, "report.json"))
    d = rep["diffusion"][0]
    check(d["transport_counts"] == "all" and d["n_classes"] == 1 and
          abs(d["D_tensor_A2_per_ps"][0][0]) < 1e-10,
          "all counts: the ring leaks into X, D = 0 (%s)" % d["D_tensor_A2_per_ps"][0][0])


def test_lag_selection(ionmsm, work):
    print("sampling rule of the lag selection (n_origins * nevery / lag_steps >= 10)")
    # lags 10 and 20 steps, nevery 5: 30 origins give 15 and 7.5 windows, 10 give 5 and 2.5
    for n_origins, lag, rule in [(1000, 20, "longest"), (30, 10, "longest"), (10, 10, "shortest")]:
        h5 = os.path.join(work, "select_%d.h5" % n_origins)
        write_ring_leak(h5, n_origins=n_origins)
        out = os.path.join(work, "select_%d" % n_origins)
        # --its-modes 1000: every mode, and the fast ones are never resolved (t < tau), so
        # the convergence cannot be judged and the sampling rule applies
        run(ionmsm, ["analyze", h5, "--out", out, "--msd-steps", "3", "--no-plots",
                     "--its-modes", "1000"], what="lag selection, %d origins" % n_origins)
        sel = strict_json(os.path.join(out, "report.json"))["selected_lag"]
        check(sel["lag_steps"] == lag and sel["method"] == "sampling" and
              sel["its_convergence"]["status"] == "too few lags" and
              sel["rule"].startswith("fewer than 2 lags resolve") and (rule + " lag") in sel["rule"],
              "%d origins: selected %s, expected lag %d by the %s rule" % (n_origins, sel, lag, rule))


FLICKER_N, FLICKER_H, FLICKER_E, FLICKER_A = 16, 0.1, 0.2, 2.0


def write_flicker(path, lags):
    """A symmetric walk on a ring of 16 sites along x (spacing 2 A; hop to each neighbour with
    probability h = 0.1 per step of 1 fs) seen through an assignment that flickers: every sample
    independently reports a neighbour of the true site with probability e/2 = 0.1 each. The
    counts are the exact expectations C(tau) = E^T diag(pi) P^tau E (1e10 pairs), with the
    minimum-image shift. The slowest pair of modes (q = 2 pi / 16) has the implied timescale
    t(tau) = t_inf / (1 + 2 |ln eps_q| t_inf / tau) = t_inf / (1 + 2 / tau) (steps; here
    eps_q = lambda_q = 1 - 2h (1 - cos q), t_inf = 65.2 steps): 33 % of t_inf at 1 step, 80 %
    at 8, 89 % at 16, 96 % at 48 (unit test LagSelection.FlickeringRingWalk... derives it).
    The next pair (q = 4 pi / 16, t_inf = 16.6 steps) is resolved (t > tau) only up to 8 steps."""
    n = FLICKER_N
    P = np.zeros((n, n))
    E = np.zeros((n, n))
    for i in range(n):
        P[i, i] = 1 - 2 * FLICKER_H
        P[i, (i + 1) % n] = P[i, (i - 1) % n] = FLICKER_H
        E[i, i] = 1 - FLICKER_E
        E[i, (i + 1) % n] = E[i, (i - 1) % n] = FLICKER_E / 2
    n_samples, n_atoms, scale = 10 ** 9, 10, 1e10
    lag_rows = []
    for L in lags:
        C = E.T @ np.linalg.matrix_power(P, L) @ E / n
        rows = []
        for i in range(n):
            for j in range(n):
                c = int(round(scale * C[i, j]))
                if c > 0:
                    d = (j - i + n // 2) % n - n // 2          # minimum image, in sites
                    rows.append((i, j, (i + d - j) // n, 0, 0, c))
        lag_rows.append((L, n_samples - L, rows))
    write_counts(path, units="metal", timestep=0.001, timestep_ps=0.001, nevery=1,
                 n_samples=n_samples, n_atoms=n_atoms,
                 box_h=np.diag([FLICKER_A * n, 10.0, 10.0]), origin=[0, 0, 0],
                 frac=[(i / n, 0.5, 0.5) for i in range(n)],
                 occupancy=[n_samples * n_atoms // n] * n, lags=lag_rows)


def test_its_selection(ionmsm, work):
    """The lag chosen by ITS convergence sits at the start of the plateau; when no lag
    qualifies, a warning and the sampling rule."""
    print("lag selection by implied-timescale convergence (flickering ring walk)")
    h5 = os.path.join(work, "flicker.h5")
    write_flicker(h5, [1, 2, 4, 8, 16, 32, 48])
    q = 2 * math.pi / FLICKER_N
    t_inf = -0.001 / math.log(1 - 2 * FLICKER_H * (1 - math.cos(q)))   # ps
    out = os.path.join(work, "flicker_m2")
    p = run(ionmsm, ["analyze", h5, "--out", out, "--its-modes", "2", "--msd-steps", "5",
                     "--no-plots"], what="flicker, 2 modes")
    rep = strict_json(os.path.join(out, "report.json"))
    check_common(out, rep, plots=False)
    sel = rep["selected_lag"]
    conv = sel["its_convergence"]
    check(sel["method"] == "its_convergence" and sel["lag_steps"] == 16 and
          conv["status"] == "converged" and conv["n_timescales"] == 2,
          "flicker: selected lag 16 at the plateau (%s)" % {k: sel[k] for k in sel if k != "its_convergence"})
    t = {l["lag_steps"]: l["implied_timescales_ps"][1] for l in rep["lags"]}
    for L in (1, 8, 16, 48):  # the closed form of write_flicker
        check(close(t[L], t_inf / (1 + 2.0 / L), rel=1e-6), "flicker t2(%d) = %s" % (L, t[L]))
    check(t[16] > 0.85 * t_inf > t[8], "lag 16 on the plateau, lag 8 below it")
    byl = {c["lag_steps"]: c for c in conv["lags"]}
    check(byl[16]["converged"] and not byl[8]["converged"] and
          close(byl[16]["max_relative_change"], t[48] / t[16] - 1, rel=1e-9) and
          byl[16]["ck_ok"] and byl[16]["ck_error"] < 0.1,
          "per-lag numbers behind the rule: %s / %s" % (byl[8], byl[16]))
    check(not any("not converged" in w for w in rep["warnings"]), "converged: no ITS warning")
    check("selected lag (its_convergence)" in p.stdout, "console says why: %r" % p.stdout)
    # --lag-steps still overrides, and the numbers are still reported
    out = os.path.join(work, "flicker_given")
    run(ionmsm, ["analyze", h5, "--out", out, "--its-modes", "2", "--lag-steps", "4",
                 "--msd-steps", "5", "--no-plots"], what="flicker, --lag-steps")
    sel = strict_json(os.path.join(out, "report.json"))["selected_lag"]
    check(sel["method"] == "given" and sel["lag_steps"] == 4 and
          sel["its_convergence"]["selected_lag_steps"] == 16, "--lag-steps overrides: %s" % sel)
    # the default 3 modes: the third is resolved only up to 8 steps, where the first two have
    # not converged: no lag qualifies -> warning, and the sampling rule (longest lag)
    out = os.path.join(work, "flicker_m3")
    p = run(ionmsm, ["analyze", h5, "--out", out, "--msd-steps", "5", "--no-plots"],
            what="flicker, 3 modes")
    rep = strict_json(os.path.join(out, "report.json"))
    sel = rep["selected_lag"]
    check(sel["method"] == "sampling" and sel["lag_steps"] == 48 and
          sel["its_convergence"]["status"] == "not converged" and
          sel["rule"].startswith("implied timescales not converged at any lag; longest lag"),
          "no lag qualifies: sampling rule (%s)" % {k: sel[k] for k in sel if k != "its_convergence"})
    needle = "implied timescales not converged at any lag"
    check(any(w.startswith(needle) and "sampling rule" in w for w in rep["warnings"]) and
          needle in p.stderr, "ITS-not-converged warning: %s" % rep["warnings"])
    # thin lags (only the biased ones): not converged either
    h5 = os.path.join(work, "flicker_short.h5")
    write_flicker(h5, [1, 2, 4])
    out = os.path.join(work, "flicker_short")
    p = run(ionmsm, ["analyze", h5, "--out", out, "--its-modes", "2", "--msd-steps", "5",
                     "--no-plots"], what="flicker, short lags")
    rep = strict_json(os.path.join(out, "report.json"))
    check(rep["selected_lag"]["method"] == "sampling" and
          any(w.startswith(needle) for w in rep["warnings"]),
          "short lags: ITS not converged (%s)" % rep["warnings"])


def test_k_meaning(ionmsm, work):
    """k is the mode of an eigenvalue, 1-based over every eigenvalue (k = 1 stationary), in
    report.json (lags[].eigenvalues, bootstrap timescales), implied_timescales.csv and
    bootstrap.csv alike: the bootstrap mean of t_k agrees with the point estimate of the same k."""
    print("one meaning of k")
    h5 = os.path.join(work, "ring_k.h5")
    write_ring_blocks(h5, seed=9, nblocks=40, block_samples=200)
    out = os.path.join(work, "ring_k")
    run(ionmsm, ["analyze", h5, "--out", out, "--no-plots", "--bootstrap", "50",
                 "--msd-steps", "5"], what="k meaning")
    rep = strict_json(os.path.join(out, "report.json"))
    lag = rep["lags"][0]
    check([e["k"] for e in lag["eigenvalues"]] == list(range(1, len(lag["eigenvalues"]) + 1)),
          "report k = 1, 2, ...")
    its = read_csv(os.path.join(out, "implied_timescales.csv"))
    check([int(r["k"]) for r in its] == [e["k"] for e in lag["eigenvalues"]], "CSV k = report k")
    rows = [r for r in read_csv(os.path.join(out, "bootstrap.csv")) if r["quantity"].startswith("t")]
    bk = {t["k"]: t for t in rep["bootstrap"]["lags"][0]["timescales_ps"]}
    check(len(rows) == len(bk) > 0, "bootstrap.csv has every bootstrapped timescale")
    for r in rows:
        k = int(r["k"])
        point = lag["implied_timescales_ps"][k - 1]
        check(r["quantity"] == "t%d_ps" % k and close(float(r["mean"]), bk[k]["mean"], rel=1e-6),
              "bootstrap.csv row %s matches report k=%d" % (r, k))
        check(abs(bk[k]["mean"] - point) < 4 * bk[k]["std"] + 1e-12,
              "k=%d: bootstrap mean %s vs point %s (sd %s)" % (k, bk[k]["mean"], point, bk[k]["std"]))


def write_npt(path, seed=4, n=4, a0=3.0, natoms=30, n_samples=4000, lags=(1, 4, 16)):
    """Uncorrelated walkers on a simple cubic lattice (n^3 sites, spacing a0 s(t)) in a cell that
    breathes as under NPT: H(t) = s(t) a0 n I with s(t) = 1 + 0.08 sin(2 pi t / 400 + phase),
    the last sample at the maximum s = 1.08. Per sample a walker stays (0.7) or hops to one of
    6 neighbours (0.05 each). Like fix msm, the file stores the LAST cell in /box/h, and the
    site-projected moments /lags/displacement_* with each pair in the cell of its later sample.
    Returns s(t)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples)
    phase = math.pi / 2 - 2 * math.pi * (n_samples - 1) / 400
    s = 1 + 0.08 * np.sin(2 * math.pi * t / 400 + phase)
    u = rng.random((n_samples - 1, natoms))
    axis = np.minimum((u / 0.1).astype(int), 2)
    sign = np.where(u - 0.1 * axis < 0.05, 1, -1)
    steps = np.zeros((n_samples - 1, natoms, 3), dtype=np.int64)
    hop = u < 0.3
    for ax in range(3):
        steps[:, :, ax] = np.where(hop & (axis == ax), sign, 0)
    pos = np.concatenate([rng.integers(0, n, (1, natoms, 3)), steps]).cumsum(axis=0)
    site = ((pos[..., 0] % n) * n + pos[..., 1] % n) * n + pos[..., 2] % n
    cell = pos // n
    frac = [((i // (n * n)) / n, (i // n % n) / n, (i % n) / n) for i in range(n ** 3)]
    lag_rows, dsum, dsq = [], [], []
    for L in lags:
        a, b = site[:-L].ravel(), site[L:].ravel()
        sh = (cell[L:] - cell[:-L]).reshape(-1, 3)
        keys, cnt = np.unique(np.column_stack([a, b, sh]), axis=0, return_counts=True)
        lag_rows.append((L, n_samples - L,
                         [tuple(int(x) for x in k) + (int(c),) for k, c in zip(keys, cnt)]))
        d = (pos[L:] - pos[:-L]) * (a0 * s[L:])[:, None, None]   # cell of the later sample
        d = d.reshape(-1, 3)
        dsum.append(d.sum(axis=0))
        dsq.append(d.T @ d)
    write_counts(path, units="metal", timestep=0.001, timestep_ps=0.001, nevery=1,
                 n_samples=n_samples, n_atoms=natoms, box_h=np.eye(3) * a0 * n * s[-1],
                 origin=[0, 0, 0], frac=frac,
                 occupancy=np.bincount(site.ravel(), minlength=n ** 3).tolist(), lags=lag_rows)
    with h5py.File(path, "a") as f:
        f["lags"].create_dataset("displacement_sum", data=np.array(dsum))
        f["lags"].create_dataset("displacement_sq_sum", data=np.array(dsq))
    return s


def test_npt_cell(ionmsm, work):
    """Under a changing cell, transport uses the effective (hop-weighted rms) cell, so the exact
    D agrees with the slope of the MD projected MSD; the last cell would be 16 % off."""
    print("breathing (NPT-like) cell: transport cell consistent with the projected MSD")
    h5 = os.path.join(work, "npt.h5")
    s = write_npt(h5)
    out = os.path.join(work, "npt")
    p = run(ionmsm, ["analyze", h5, "--out", out, "--msd-steps", "20", "--no-plots",
                     "--lag-steps", "4"], what="npt")
    rep = strict_json(os.path.join(out, "report.json"))
    check_common(out, rep, plots=False)
    tc = rep["transport_cell"]
    want = math.sqrt(float(np.mean(s[1:] ** 2))) / s[-1]     # rms cell over the last one
    check(tc["status"] == "applied" and tc["lag_steps"] == 1 and
          all(abs(tc["strain"][a][a] / want - 1) < 0.01 for a in range(3)),
          "effective cell strain %s, expected about %.4f" % (tc["strain"], want))
    check(rep["input"]["box"]["h"][0][0] == 4 * 3.0 * s[-1], "input.box is the file's last cell")
    wd = rep["which_D"]
    d_exact, d_md = wd["D_exact_total_A2_per_ps"], wd["D_md_msd_slope_total_A2_per_ps"]
    d_true = 0.05 * 9.0 / 0.001 * float(np.mean(s ** 2))   # p a^2 / dt in the mean cell
    check(abs(d_exact / d_md - 1) < 0.04 and abs(d_exact / d_true - 1) < 0.05,
          "exact D %s vs MD projected MSD slope %s (true %s)" % (d_exact, d_md, d_true))
    md = rep["msd"]["md_projected"]
    check(md["status"] == "ok" and len(md["total"]) == 3, "projected MSD present")
    check("transport cell" in p.stdout, "console names the transport cell")


def expect_error(ionmsm, args, out, what, needle=None):
    p = run(ionmsm, args, expect=1, what=what)
    lines = p.stderr.strip().splitlines()
    check(len(lines) == 1 and lines[0].startswith("ionmsm: error: "),
          "%s: expected one 'ionmsm: error:' line, got %r" % (what, p.stderr))
    if needle:
        check(needle in p.stderr, "%s: message should mention %r: %r" % (what, needle, p.stderr))
    check(not os.path.exists(os.path.join(out, "report.json")), "%s: report.json written" % what)


def write_ring_blocks(path, seed, nblocks=200, block_samples=50, natoms=20, nsites=8, p=0.05,
                      corrupt=False, extra_samples=0):
    """An unbiased ring walk (hop +-1 with probability p each per sample, spacing 2.5 A along x),
    simulated for real; lag 1 sample; blocks of block_samples samples (a pair belongs to the
    block of its later sample); extra_samples > 0 adds a final partial block of that many."""
    rng = np.random.default_rng(seed)
    n_samples = nblocks * block_samples + extra_samples
    u = rng.random((n_samples - 1, natoms))
    steps = np.where(u < p, 1, np.where(u < 2 * p, -1, 0))
    unwrapped = np.vstack([rng.integers(0, nsites, natoms)[None, :],
                           np.zeros((n_samples - 1, natoms), dtype=np.int64)])
    unwrapped[1:] = steps
    unwrapped = np.cumsum(unwrapped, axis=0)
    site = np.mod(unwrapped, nsites)
    cell = np.floor_divide(unwrapped, nsites)
    blocks, tot = [], {}
    tot_occ = np.zeros(nsites, dtype=np.int64)
    for b in range(nblocks + (1 if extra_samples else 0)):
        end = min((b + 1) * block_samples, n_samples)
        ks = np.arange(max(b * block_samples, 1), end)  # later samples
        occ = np.bincount(site[b * block_samples:end].ravel(), minlength=nsites)
        key = (site[ks - 1] * nsites + site[ks]) * 3 + (cell[ks] - cell[ks - 1] + 1)
        cnt = np.bincount(key.ravel(), minlength=nsites * nsites * 3)
        rows = [(int(k // 3 // nsites), int(k // 3 % nsites), int(k % 3) - 1, 0, 0, int(c))
                for k, c in enumerate(cnt) if c > 0]
        blocks.append((b, end - b * block_samples, occ.tolist(), [(len(ks), rows)]))
        for r in rows:
            tot[r[:5]] = tot.get(r[:5], 0) + r[5]
        tot_occ += occ
    if corrupt:  # the blocks no longer sum to the totals
        tot[next(iter(tot))] += 1
    n_origins = sum(bl[3][0][0] for bl in blocks)
    write_counts(path, units="metal", timestep=0.001, timestep_ps=0.001, nevery=1,
                 n_samples=n_samples, n_atoms=natoms,
                 box_h=[[2.5 * nsites, 0, 0], [0, 10, 0], [0, 0, 10]], origin=[0, 0, 0],
                 frac=[((i + 0.5) / nsites, 0.5, 0.5) for i in range(nsites)],
                 occupancy=tot_occ.tolist(),
                 lags=[(1, n_origins, [k + (c,) for k, c in tot.items()])],
                 block_steps=block_samples, blocks=blocks)


def test_bootstrap(ionmsm, work):
    """Block bootstrap of D on real ring walks: the bootstrap standard deviation of one run
    agrees with the spread of D over 100 independent runs of the same model (both estimate the
    sampling error of the estimator; with 200 blocks and 100 runs each is known to about 5-7 %,
    so the ratio is checked to [0.7, 1.43], about 4 sigma), the interval covers the estimate, D
    agrees with the true a^2 p / tau, and the result depends on the seed only."""
    print("block bootstrap (ring walk with blocks)")
    h5 = os.path.join(work, "ring_blocks.h5")
    p, a, tau = 0.05, 2.5, 0.001
    write_ring_blocks(h5, seed=3, p=p)
    out = os.path.join(work, "boot")
    run(ionmsm, ["analyze", h5, "--out", out, "--no-plots", "--bootstrap", "200"], what="bootstrap")
    rep = strict_json(os.path.join(out, "report.json"))
    b = rep["bootstrap"]
    check(b["status"] == "ok" and b["n_blocks"] == 200 and b["n_replicates"] == 200 and
          b["block_steps"] == 50, "bootstrap section: %s" % {k: b[k] for k in b if k != "lags"})
    d = b["lags"][0]["D_A2_per_ps"]["xx"]
    d_point = rep["diffusion"][0]["D_tensor_A2_per_ps"][0][0]
    # the true sampling spread: independent runs of the same model
    indep = []
    for seed in range(100, 200):
        h = os.path.join(work, "ring_indep.h5")
        write_ring_blocks(h, seed=seed, p=p)
        o = os.path.join(work, "ring_indep")
        run(ionmsm, ["analyze", h, "--out", o, "--no-plots", "--bootstrap", "0"], what="indep",
            quiet=True)
        indep.append(strict_json(os.path.join(o, "report.json"))["diffusion"][0]
                     ["D_tensor_A2_per_ps"][0][0])
    spread = float(np.std(indep, ddof=1))
    d_true = a * a * p / tau
    check(d["n"] == 200 and 0.7 < d["std"] / spread < 1.43,
          "bootstrap std of D_xx %.4g vs spread over 100 independent runs %.4g"
          % (d["std"], spread))
    check(abs(float(np.mean(indep)) - d_true) < 4 * spread / math.sqrt(len(indep)) and
          abs(d_point - d_true) < 4 * spread,
          "D_xx %.5g (mean of runs %.5g) vs true %.5g" % (d_point, np.mean(indep), d_true))
    check(d["low"] < d_point < d["high"] and abs(d["mean"] - d_point) < 0.5 * d["std"],
          "bootstrap interval [%.5g, %.5g], mean %.5g around the estimate %.5g"
          % (d["low"], d["high"], d["mean"], d_point))
    print("  bootstrap std %.4g, spread of 100 independent runs %.4g" % (d["std"], spread))
    with open(os.path.join(out, "bootstrap.csv")) as fh:
        first = fh.read()
    check("1,0.001,D_xx," in first, "bootstrap.csv has the D_xx row")
    out2 = os.path.join(work, "boot_again")
    run(ionmsm, ["analyze", h5, "--out", out2, "--no-plots", "--bootstrap", "200"], what="again")
    with open(os.path.join(out2, "bootstrap.csv")) as fh:
        check(fh.read() == first, "same seed, identical bootstrap.csv")
    out3 = os.path.join(work, "boot_seed")
    run(ionmsm, ["analyze", h5, "--out", out3, "--no-plots", "--bootstrap", "200", "--seed", "7"],
        what="other seed")
    with open(os.path.join(out3, "bootstrap.csv")) as fh:
        check(fh.read() != first, "another seed, other replicates")
    # default: 100 replicates when the file has blocks; none without
    out4 = os.path.join(work, "boot_default")
    run(ionmsm, ["analyze", h5, "--out", out4, "--msd-steps", "10"], what="default bootstrap")
    rep4 = strict_json(os.path.join(out4, "report.json"))
    check(rep4["bootstrap"]["n_replicates"] == 100, "default 100 replicates")
    # the implied-timescale plot draws the bootstrap intervals
    series = check_common(out4, rep4, plots=True)
    want = expected_plot_series(rep4)["implied_timescales.png"]
    check(any(k.endswith("/bootstrap") for k in want) and
          series.get("implied_timescales.png") == want,
          "implied_timescales.png series with bootstrap error bars: %s != %s"
          % (series.get("implied_timescales.png"), want))
    lat = os.path.join(work, "lattice.h5")
    out5 = os.path.join(work, "boot_none")
    run(ionmsm, ["analyze", lat, "--out", out5, "--no-plots", "--lag-steps", "50",
                 "--msd-steps", "5"], what="no blocks")
    check(strict_json(os.path.join(out5, "report.json"))["bootstrap"]["status"] == "absent",
          "a file without blocks: bootstrap absent")
    # errors: asked for on a file without blocks; blocks that do not sum to the totals
    out6 = os.path.join(work, "err_boot")
    expect_error(ionmsm, ["analyze", lat, "--out", out6, "--bootstrap", "10"], out6,
                 "--bootstrap without blocks", "has no blocks")
    bad = os.path.join(work, "ring_blocks_bad.h5")
    write_ring_blocks(bad, seed=4, nblocks=3, block_samples=20, corrupt=True)
    out7 = os.path.join(work, "err_boot_sum")
    expect_error(ionmsm, ["analyze", bad, "--out", out7], out7, "blocks not summing to totals",
                 "blocks' counts do not sum to the totals")
    p_ = run(ionmsm, ["analyze", h5, "--out", out7, "--bootstrap", "1"], expect=2,
             what="--bootstrap 1")
    check("at least 2 replicates" in p_.stderr, "--bootstrap 1 refused: %r" % p_.stderr)


def write_thin(path):
    """Deliberately thin data: a ring of 4 sites along x (spacing 2.5 A) whose sites stay 98 times
    per block and whose 4 edges each hop once each way in only one of the 4 blocks (block b:
    edge b -> b+1), an absorbing site 4 reached by one one-way transition (block 0), and 6 sites
    never visited. Run: 20 samples at lag 1. Known: 4 of 11 sites kept; t2 = -1 / ln(1 - 2/394)
    ~ 196 samples > the run of 19; no hops along y, z; 1 one-way count; a bootstrap replicate
    that misses a block has an open chain (D = 0), so 1 - 4!/4^4 = 91 % of them have D = 0."""
    nring, nsites = 4, 11
    frac = [((i + 0.5) / nring, 0.5, 0.5) for i in range(nring)] + [(0.5, 0.1, 0.1)] + \
           [((i + 0.5) / 6, 0.9, 0.9) for i in range(6)]
    blocks, tot = [], {}
    for b in range(nring):
        rows = [(i, i, 0, 0, 0, 98) for i in range(nring)] + [(4, 4, 0, 0, 0, 100)]
        t = (b + 1) % nring
        wrap = 1 if t == 0 else 0
        rows += [(b, t, wrap, 0, 0, 1), (t, b, -wrap, 0, 0, 1)]
        if b == 0:
            rows.append((0, 4, 0, 0, 0, 1))
        for r in rows:
            tot[r[:5]] = tot.get(r[:5], 0) + r[5]
        occ = [98] * nring + [100] + [0] * 6
        blocks.append((b, 5, occ, [(5, rows)]))
    write_counts(path, units="metal", timestep=0.001, timestep_ps=0.001, nevery=1, n_samples=20,
                 n_atoms=5, box_h=np.diag([2.5 * nring, 10.0, 10.0]), origin=[0, 0, 0],
                 frac=frac, occupancy=[98 * 4] * nring + [400] + [0] * 6,
                 lags=[(1, 20, [k + (c,) for k, c in tot.items()])], block_steps=5, blocks=blocks)


def test_warnings(ionmsm, work):
    """Every warning of "Say when the data cannot support the numbers" on thin inputs."""
    print("warnings on deliberately thin data")
    h5 = os.path.join(work, "thin.h5")
    write_thin(h5)
    out = os.path.join(work, "thin")
    p = run(ionmsm, ["analyze", h5, "--out", out, "--msd-steps", "10", "--no-plots"],
            what="thin data")
    rep = strict_json(os.path.join(out, "report.json"))
    check_common(out, rep, plots=False)
    w = rep["warnings"]
    t2 = -1.0 / math.log(1 - 2 / 394) * 0.001
    want = [
        "the largest strongly connected set has only 4 of 11 sites (36.36 %",
        "implied timescales longer than the run (0.019 ps) at 1 of 1 lags (lag 1 steps: t",
        " = %.4g ps): these processes are not resolved" % t2,   # t2 = t3 (degenerate)
        "lag 1 steps: no hops along y, z (D0 = 0 there)",
        "lag 1 steps: 1 one-way counts",
        "the bootstrap 95 % interval of D_xx [0, ",
        "the bootstrap mean of D_xx (",
        "the bootstrap mean of D_total (",
        "only 4 blocks",
    ]
    for needle in want:
        check(any(needle in x for x in w), "thin data: no warning with '%s' in %s" % (needle, w))
        check(needle in p.stderr, "thin data: stderr lacks '%s'" % needle)
    d = rep["diffusion"][0]
    check(d["D_tensor_A2_per_ps"][1][1] == 0 and d["D_tensor_A2_per_ps"][2][2] == 0 and
          d["f_lag"]["yy"] is None, "round-off printed as 0 (D_yy = %s)"
          % d["D_tensor_A2_per_ps"][1][1])
    # the bootstrap mean of D_xx is far below the point estimate: most replicates have D = 0
    b = rep["bootstrap"]["lags"][0]["D_A2_per_ps"]["xx"]
    check(b["low"] == 0 and b["mean"] < 0.5 * d["D_tensor_A2_per_ps"][0][0],
          "thin bootstrap: %s vs D_xx %s" % (b, d["D_tensor_A2_per_ps"][0][0]))

    # a partial final block ([50 ... 50 1]) is merged into its predecessor, and said so
    h5 = os.path.join(work, "partial.h5")
    write_ring_blocks(h5, seed=5, nblocks=20, extra_samples=1)
    out = os.path.join(work, "partial")
    p = run(ionmsm, ["analyze", h5, "--out", out, "--msd-steps", "5", "--no-plots",
                     "--bootstrap", "20"], what="partial block")
    rep = strict_json(os.path.join(out, "report.json"))
    bs = rep["bootstrap"]
    check(bs["n_file_blocks"] == 21 and bs["n_blocks"] == 20 and bs["n_merged_blocks"] == 1,
          "partial block merged: %s" % {k: bs[k] for k in ("n_file_blocks", "n_blocks",
                                                          "n_merged_blocks")})
    check(any("1 partial block(s)" in x for x in rep["warnings"]), "partial-block warning")


def test_errors(ionmsm, work):
    print("bad input")
    lat = os.path.join(work, "lattice.h5")
    out = os.path.join(work, "err_missing")
    expect_error(ionmsm, ["analyze", os.path.join(work, "nope.h5"), "--out", out],
                 out, "missing file", "does not exist")
    bad = os.path.join(work, "version2.h5")
    write_lattice(bad, format_version=2, lag_mults=(1,), empty_lag=False)
    out = os.path.join(work, "err_version")
    expect_error(ionmsm, ["analyze", bad, "--out", out], out, "format_version 2", "version")
    out = os.path.join(work, "err_lag")
    expect_error(ionmsm, ["analyze", lat, "--out", out, "--lag-steps", "70"], out,
                 "--lag-steps not in file", "70")
    out = os.path.join(work, "err_emptylag")
    expect_error(ionmsm, ["analyze", lat, "--out", out, "--lag-steps", "400"], out,
                 "--lag-steps with no counts", "400")
    empty = os.path.join(work, "empty.h5")
    write_empty(empty)
    out = os.path.join(work, "err_empty")
    expect_error(ionmsm, ["analyze", empty, "--out", out], out, "no counts", "no transition counts")
    p = run(ionmsm, ["analyze", lat, "--out", os.path.join(work, "err_usage"), "--bogus"],
            expect=2, what="unknown option")
    check(p.stderr.startswith("ionmsm: error: "), "usage error message")
    p = run(ionmsm, ["analyze", "--help"], what="help")
    check(p.stdout.startswith("usage: ionmsm analyze"), "analyze --help")

    # plotting problems never lose the report, unless --plots-required
    small = ["--lag-steps", "50", "--msd-steps", "5"]
    env = {"IONMSM_PLOT_SCRIPT": os.path.join(work, "no_such_plot_report.py")}
    out = os.path.join(work, "noplot")
    p = run(ionmsm, ["analyze", lat, "--out", out] + small, env=env, what="missing plot script")
    check("warning" in p.stderr and os.path.isfile(os.path.join(out, "report.json")),
          "missing plot script: warning, report kept (%r)" % p.stderr)
    out = os.path.join(work, "noplot_required")
    p = run(ionmsm, ["analyze", lat, "--out", out, "--plots-required"] + small, env=env,
            expect=1, what="missing plot script, --plots-required")
    check(p.stderr.strip().splitlines()[-1].startswith("ionmsm: error: plotting failed"),
          "--plots-required error line: %r" % p.stderr)
    check(os.path.isfile(os.path.join(out, "report.json")), "--plots-required keeps the report")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ionmsm", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    t0 = time.time()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    ionmsm = os.path.abspath(args.ionmsm)
    test_lattice(ionmsm, args.work)
    test_ring(ionmsm, args.work)
    test_ring_leak(ionmsm, args.work)
    test_lag_selection(ionmsm, args.work)
    test_its_selection(ionmsm, args.work)
    test_k_meaning(ionmsm, args.work)
    test_npt_cell(ionmsm, args.work)
    test_bootstrap(ionmsm, args.work)
    test_warnings(ionmsm, args.work)
    test_errors(ionmsm, args.work)
    print("%d failure(s) in %.1f s" % (len(FAILURES), time.time() - t0))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
