#!/usr/bin/python3
"""Integration tests of the examples (label `examples`): each runs an example in shortened form
through its index variables / script options and checks physical properties, not numbers.

Usage: test_examples.py CASE --lmp LMP --plugin-dir DIR --ionmsm IONMSM --src SRC --work DIR

Checked everywhere: counts conserve atoms at every lag (total_counts == n_origins * n_atoms),
one site per Li (number of sites == number of Li atoms), occupancy sums to n_atoms * n_samples.
Where `ionmsm analyze` exists: D along the channel axis finite and >= 0, and f = D/D0 in (0, 1]
wherever D0 > 0 along that axis.
"""
import csv
import json
import math
import os
import subprocess
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from itest_common import driver_parser, fail, lammps_env, ok, run_case  # noqa: E402
ARGS = None
# f = D / D0 may exceed 1 by round-off (and, in very short runs, by sampling noise of the
# correlation term); anything above this is a real failure.
F_MAX = 1.0 + 1e-6


def env():
    e = lammps_env(ARGS.plugin_dir)
    # the example scripts call these instead of scripts/lmp and build/ionmsm
    e["IONMSM"] = ARGS.ionmsm
    e["IONMSM_LMP"] = os.path.join(ARGS.work, "lmp-wrapper")
    return e


def make_lmp_wrapper():
    """The example scripts run LAMMPS through $IONMSM_LMP: point it at the tested lmp."""
    path = os.path.join(ARGS.work, "lmp-wrapper")
    with open(path, "w") as fh:
        fh.write(f"#!/bin/sh\nexec '{ARGS.lmp}' \"$@\"\n")
    os.chmod(path, 0o755)


def run(cmd, cwd=None, timeout=600):
    p = subprocess.run(cmd, cwd=cwd or ARGS.work, env=env(), capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-3000:])
        fail(f"{' '.join(map(str, cmd))} exited {p.returncode}")
    return p.stdout + p.stderr


def have_analyze():
    p = subprocess.run([ARGS.ionmsm, "analyze", "--help"], capture_output=True, text=True)
    return p.returncode == 0


def check_counts(path, n_li, what):
    """Counts conserve atoms at every lag; one site per Li; occupancy complete."""
    with h5py.File(path, "r") as f:
        nsites = f["sites/fractional"].shape[0]
        natoms = int(f.attrs["n_atoms"])
        nsamp = int(f.attrs["n_samples"])
        occ = f["sites/occupancy"][:]
        lags = f["lags/lag_steps"][:]
        norig = f["lags/n_origins"][:]
        tot = f["lags/total_counts"][:]
    if natoms != n_li or nsites != n_li:
        fail(f"{what}: {nsites} sites and {natoms} atoms, expected {n_li} of each (one site per Li)")
    if nsamp < 2:
        fail(f"{what}: only {nsamp} samples")
    if int(occ.sum()) != natoms * nsamp:
        fail(f"{what}: occupancy sums to {occ.sum()}, expected {natoms} x {nsamp}")
    for L, n, t in zip(lags, norig, tot):
        if int(t) != int(n) * natoms:
            fail(f"{what}: lag {L}: total counts {t} != n_origins {n} x {natoms} atoms")
    if norig[0] == 0:
        fail(f"{what}: no origins at the shortest lag")
    ok(f"{what}: {nsites} sites = {natoms} Li, {nsamp} samples, counts conserve atoms at "
       f"{len(lags)} lags")


def check_D(d_axis, d0_axis, f_axis, what):
    """D >= 0 (to round-off: D0 * 1e-9), f = D/D0 in (0, 1] when D > 0. In a run of a few
    hundred steps every hop may be undone within the window (rattling): then D is zero up to
    round-off (|D| ~ 1e-18) while D0 > 0, and f ~ +-1e-16 -- accepted as "no net transport"."""
    if d_axis is None or not math.isfinite(d_axis):
        fail(f"{what}: D along the channel = {d_axis}, expected finite")
    scale = d0_axis if d0_axis is not None and math.isfinite(d0_axis) and d0_axis > 0 else 0.0
    tol = 1e-9 * scale
    if d_axis < -tol or (scale == 0.0 and d_axis < 0):
        fail(f"{what}: D along the channel = {d_axis}, expected >= 0")
    if scale == 0.0:
        ok(f"{what}: D_xx = {d_axis:.3e} A^2/ps (no hop along x: f undefined)")
        return
    if f_axis is None or not math.isfinite(f_axis) or f_axis > F_MAX:
        fail(f"{what}: f = {f_axis}, expected in (0, 1]")
    if d_axis > tol:
        if not f_axis > 0:
            fail(f"{what}: f = {f_axis} with D = {d_axis}, expected in (0, 1]")
        ok(f"{what}: D_xx = {d_axis:.3e} A^2/ps, f_xx = {f_axis:.3f} in (0, 1]")
    else:
        if abs(f_axis) > 1e-6:
            fail(f"{what}: D = {d_axis} ~ 0 but f = {f_axis}")
        ok(f"{what}: D_xx = {d_axis:.1e} ~ 0 (no net transport in this short run; D0_xx = "
           f"{d0_axis:.3e})")


def report_D(report):
    sys.path.insert(0, os.path.join(ARGS.src, "examples", "tools"))
    import ionmsm_report
    r = ionmsm_report.diffusion(report)
    return r["D"][0], r["D0"][0], r["f"][0]


def num(s):
    return math.nan if s in ("", None) else float(s)


# ---------------------------------------------------------------------------- cases

def case_li12si7_short():
    """examples/li12si7 in short form (MEAM, 152 atoms, 1 rank): 96 Li on 96 sites."""
    ex = os.path.join(ARGS.src, "examples", "li12si7")
    run([ARGS.lmp, "-in", os.path.join(ex, "in.li12si7"), "-log", "log.lammps", "-screen", "none",
         "-var", "neq", "100", "-var", "nprod", "400", "-var", "T", "700", "-var", "every", "200",
         "-var", "potdir", os.path.join(ARGS.src, "potentials", "LiSi_Cui2012"),
         "-var", "datadir", ex])
    check_counts(os.path.join(ARGS.work, "counts.h5"), 96, "li12si7")
    with open(os.path.join(ARGS.work, "log.lammps")) as fh:
        if "152 atoms" not in fh.read():
            fail("log does not mention 152 atoms")
    md = np.loadtxt(os.path.join(ARGS.work, "msd_md.dat"), comments="#", ndmin=2)
    if md.shape != (5, 5) or not np.all(np.isfinite(md)) or np.any(md[:, 1:] < 0):
        fail(f"msd_md.dat: expected 5 rows (steps 0..400) of 4 finite MSD columns, got {md.shape}")
    ok("MD MSD written every 100 steps")
    # the eigenvector tool works on the counts file alone
    tools = os.path.join(ARGS.src, "examples", "tools")
    out = run([sys.executable, os.path.join(tools, "plot_eigenvectors.py"), "counts.h5",
               "--lag-steps", "100", "--k", "1", "2", "--out", "eig.png"])
    if "k=1: lambda = 1.000000" not in out or os.path.getsize(os.path.join(ARGS.work, "eig.png")) < 1000:
        print(out)
        fail("plot_eigenvectors.py: no stationary eigenvalue 1 or no plot")
    ok("plot_eigenvectors.py: lambda_1 = 1, plot written")
    if have_analyze():
        run([ARGS.ionmsm, "analyze", "counts.h5", "--out", "analysis"])
        check_D(*report_D(os.path.join(ARGS.work, "analysis", "report.json")), "li12si7 analyze")
        run([sys.executable, os.path.join(tools, "compare_msd.py"), ARGS.work])
        if os.path.getsize(os.path.join(ARGS.work, "msd_msm_vs_md.png")) < 1000:
            fail("compare_msd.py wrote no plot")
        ok("compare_msd.py: MSM vs MD MSD plot written")
    else:
        ok("ionmsm analyze not available: D checks skipped")


def case_finite_size_tiny():
    """examples/finite_size/run.sh with 2 sizes (1x and 2x along a) and a few hundred steps."""
    make_lmp_wrapper()
    out = os.path.join(ARGS.work, "fs")
    run([os.path.join(ARGS.src, "examples", "finite_size", "run.sh"), "--sizes", "1 2",
         "--neq", "100", "--nprod", "300", "--T", "800", "--out", out])
    for k in (1, 2):
        check_counts(os.path.join(out, f"size_{k}", "counts.h5"), 156 * k, f"size {k}x")
        with h5py.File(os.path.join(out, f"size_{k}", "counts.h5"), "r") as f:
            lx = f["box/h"][0, 0]
        if abs(lx - 2 * k * 7.897987) > 1e-3:
            fail(f"size {k}x: L_x = {lx}, expected {2 * k} a")
    ok("cells elongated along a: L_x = 2a, 4a")
    if not have_analyze():
        ok("ionmsm analyze not available: table/plot checks skipped")
        return
    with open(os.path.join(out, "finite_size.csv")) as fh:
        rows = list(csv.DictReader(fh))
    if [int(r["size_factor"]) for r in rows] != [1, 2]:
        fail(f"finite_size.csv rows: {rows}")
    for r in rows:
        check_D(num(r["D_xx_A2_per_ps"]), num(r["D0_xx_A2_per_ps"]), num(r["f_xx"]),
                f"size {r['size_factor']}x")
    if os.path.getsize(os.path.join(out, "finite_size.png")) < 1000:
        fail("finite_size.png missing or empty")
    ok("finite_size.csv, finite_size.txt and finite_size.png written")


def case_temperature_tiny():
    """examples/temperature/run.sh with 2 temperatures, a few hundred steps each."""
    make_lmp_wrapper()
    out = os.path.join(ARGS.work, "temps")
    run([os.path.join(ARGS.src, "examples", "temperature", "run.sh"), "--temps", "700 900",
         "--neq", "100", "--nprod", "300", "--out", out])
    for T in (700, 900):
        check_counts(os.path.join(out, f"T_{T}", "counts.h5"), 156, f"{T} K")
        with open(os.path.join(out, f"T_{T}", "log.lammps")) as fh:
            if f"langevin {T} {T}" not in fh.read():
                fail(f"{T} K: the thermostat was not set to {T} K")
    if not have_analyze():
        ok("ionmsm analyze not available: fit checks skipped")
        return
    with open(os.path.join(out, "arrhenius.csv")) as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        check_D(num(r["D_xx_A2_per_ps"]), num(r["D0_xx_A2_per_ps"]), num(r["f_xx"]),
                f"{r['T_K']} K")
    with open(os.path.join(out, "arrhenius.json")) as fh:
        fit = json.load(fh)
    if fit["n_points"] == 2 and not (fit["Ea_eV"] is not None and math.isfinite(fit["Ea_eV"])
                                     and fit["Ea_err_eV"] is None):
        fail(f"2-point fit: {fit}")
    if os.path.getsize(os.path.join(out, "arrhenius.png")) < 1000:
        fail("arrhenius.png missing or empty")
    ok(f"Arrhenius fit written: {fit}")


def case_arrhenius_fit():
    """arrhenius_fit recovers Ea and its error bar on synthetic data (no LAMMPS)."""
    sys.path.insert(0, os.path.join(ARGS.src, "examples", "temperature"))
    import arrhenius
    kb = arrhenius.KB_EV_PER_K
    T = np.array([500.0, 600.0, 700.0, 800.0])
    D = 0.5 * np.exp(-0.25 / (kb * T))
    Ea, dEa, Dinf, _ = arrhenius.arrhenius_fit(T, D)
    if abs(Ea - 0.25) > 1e-9 or abs(Dinf - 0.5) > 1e-9 or dEa > 1e-9:
        fail(f"exact data: Ea {Ea}, err {dEa}, D_inf {Dinf}")
    rng = np.random.default_rng(3)
    noisy = D * np.exp(rng.normal(0, 0.1, D.size))
    Ea, dEa, _, _ = arrhenius.arrhenius_fit(T, noisy)
    x = 1 / T
    X = np.column_stack([np.ones_like(x), x])
    y = np.log(noisy)
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    s2 = np.sum((y - X @ beta) ** 2) / (len(x) - 2)
    ref = math.sqrt(s2 * np.linalg.inv(X.T @ X)[1, 1]) * kb
    if not (0 < dEa and abs(dEa - ref) < 1e-12 and abs(Ea + beta[1] * kb) < 1e-12):
        fail(f"noisy data: Ea {Ea} +- {dEa}, expected error {ref}")
    if arrhenius.arrhenius_fit(T[:2], D[:2])[1] is not None:
        fail("2 points must give no error bar")
    ok(f"Ea recovered exactly; noisy data: Ea = {Ea:.3f} +- {dEa:.3f} eV (covariance)")


def _convert_and_check(xyz, truth, extra, prefix):
    conv = os.path.join(ARGS.src, "examples", "mace", "xyz2lammps.py")
    run([sys.executable, conv, xyz, "--types", "Li=1,Si=2", "--stride", "10", "--out", prefix,
         *extra])
    t = np.load(truth)
    u_true, A = t["unwrapped_fractional"], t["cell"]
    # read the dump back: fractional (LAMMPS cell) + image flags == true unwrapped fractional
    with open(prefix + ".dump") as fh:
        text = fh.read()
    frames = text.split("ITEM: TIMESTEP\n")[1:]
    if len(frames) != u_true.shape[0]:
        fail(f"{prefix}: {len(frames)} frames in the dump, expected {u_true.shape[0]}")
    worst = 0.0
    offset = None
    for k, fr in enumerate(frames):
        lines = fr.splitlines()
        if int(lines[0]) != 10 * k:
            fail(f"{prefix}: frame {k} has timestep {lines[0]}")
        b = [list(map(float, l.split())) for l in lines[4:7]]
        if "xy xz yz" in lines[3]:
            xy, xz, yz = b[0][2], b[1][2], b[2][2]
            lx = b[0][1] - b[0][0] - max(0, xy, xz, xy + xz) + min(0, xy, xz, xy + xz)
            ly = b[1][1] - b[1][0] - max(0, yz) + min(0, yz)
            lz = b[2][1] - b[2][0]
        else:
            xy = xz = yz = 0.0
            lx, ly, lz = (r[1] - r[0] for r in b)
        H = np.array([[lx, xy, xz], [0, ly, yz], [0, 0, lz]])
        at = np.array([list(map(float, l.split())) for l in lines[8:]])
        at = at[np.argsort(at[:, 0])]
        f = at[:, 2:5] @ np.linalg.inv(H).T + at[:, 5:8]
        if np.any(at[:, 2:5] @ np.linalg.inv(H).T < -1e-9) or \
                np.any(at[:, 2:5] @ np.linalg.inv(H).T >= 1 + 1e-9):
            fail(f"{prefix}: frame {k}: positions not wrapped into the cell")
        if offset is None:
            # the generator's first frame may lie outside the cell by rattling: the converter
            # starts every atom in the cell, i.e. a constant lattice translation per atom
            offset = np.round(f - u_true[0])
            if np.abs(offset).max() > 1:
                fail(f"{prefix}: first frame offset {np.abs(offset).max()} cells")
        worst = max(worst, float(np.abs(f - offset - u_true[k]).max()))
    if worst > 1e-8:
        fail(f"{prefix}: unwrapped positions differ from the truth by {worst} (fractional)")
    # the LAMMPS cell has the lengths and angles of the original one
    G = A @ A.T
    if not np.allclose(H.T @ H, G, atol=1e-7):
        fail(f"{prefix}: LAMMPS cell metric differs from the input cell")
    crossings = int(np.abs(np.diff(np.floor(u_true), axis=0)).sum())
    if crossings < 5:
        fail(f"{prefix}: only {crossings} boundary crossings: the test does not exercise unwrapping")
    ok(f"{prefix}: {len(frames)} frames; x + image == true unwrapped position "
       f"(max error {worst:.1e}), {crossings} boundary crossings")


def case_aimd_rerun():
    """The AIMD route of examples/mace: synthetic trajectory (extended XYZ, triclinic cell in a
    rotated frame; and CP2K .xyz with --cell) -> xyz2lammps.py -> LAMMPS rerun with fix msm.
    The unwrapped positions equal the generator's truth, and the counts equal the independent
    slow reference (slow_counts.py) on the same dump."""
    mace = os.path.join(ARGS.src, "examples", "mace")
    gen = os.path.join(mace, "make_test_trajectory.py")
    w = ARGS.work
    run([sys.executable, gen, "--frames", "120", "--cells", "2", "--shear", "0.25", "--rotate",
         "--hop-prob", "0.08", "--out", "tri.extxyz", "--truth", "tri.npz", "--seed", "5"])
    _convert_and_check(os.path.join(w, "tri.extxyz"), os.path.join(w, "tri.npz"), [],
                       os.path.join(w, "tri"))
    run([sys.executable, gen, "--frames", "80", "--format", "cp2k", "--out", "cp2k-pos-1.xyz",
         "--truth", "cp2k.npz", "--seed", "6"])
    a, b, c = 7.897987, 15.011548, 4.420735
    _convert_and_check(os.path.join(w, "cp2k-pos-1.xyz"), os.path.join(w, "cp2k.npz"),
                       ["--cell", str(a), str(b), str(c)], os.path.join(w, "cp2k"))
    lags = [10, 20, 50, 100]
    for prefix, n_li in (("tri", 52), ("cp2k", 26)):
        run([ARGS.lmp, "-in", os.path.join(mace, "in.rerun"), "-log", f"log.{prefix}",
             "-screen", "none", "-var", "prefix", prefix, "-var", "out", f"{prefix}.h5",
             "-var", "lags", " ".join(map(str, lags))])
        h5 = os.path.join(w, f"{prefix}.h5")
        check_counts(h5, n_li, f"rerun {prefix}")
        got = run([ARGS.ionmsm, "export", h5]).strip("\n")
        p = subprocess.run([sys.executable, os.path.join(HERE, "slow_counts.py"),
                            os.path.join(w, prefix + ".dump"), "--nevery", "10", "--lags",
                            *map(str, lags), "--types", "1", "--sites-file",
                            os.path.join(w, prefix + ".sites")],
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            print(p.stderr)
            fail("slow reference failed")
        if got != p.stdout.strip("\n"):
            fail(f"rerun {prefix}: counts differ from the slow reference")
        rows = [r.split(",") for r in got.splitlines()[1:]]
        hops = sum(int(r[6]) for r in rows if r[0] == "10" and r[1] != r[2])
        shifted = sum(int(r[6]) for r in rows if r[3:6] != ["0", "0", "0"])
        if hops == 0 or shifted == 0:
            fail(f"rerun {prefix}: {hops} hops, {shifted} counts with a lattice shift")
        ok(f"rerun {prefix}: counts == slow reference ({len(rows)} rows, {hops} hops at lag 10, "
           f"{shifted} counts with a lattice shift)")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def main():
    global ARGS
    ap = driver_parser(CASES)
    ap.add_argument("--src", default=os.path.dirname(os.path.dirname(HERE)))
    ARGS = ap.parse_args()
    run_case(CASES, ARGS)


if __name__ == "__main__":
    main()
