#!/usr/bin/python3
"""Integration tests: the real lmp with the ionmsm plugin, on 1-4 MPI ranks.

Usage: itest.py CASE --lmp LMP --plugin-dir DIR --ionmsm IONMSM --src SRC --work DIR
Each case prints what it checked and exits non-zero on the first failure.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from itest_common import driver_parser, fail, lammps_env, ok, run_case  # noqa: E402
ARGS = None


def lmp_env():
    return lammps_env(ARGS.plugin_dir)


def run_lmp(infile, variables, nprocs=1, cwd=None, expect_fail=False, log="log.lammps"):
    cwd = cwd or ARGS.work
    cmd = []
    if nprocs > 1:
        cmd = [shutil.which("mpirun") or "mpirun", "-np", str(nprocs)]
    cmd += [ARGS.lmp, "-in", infile, "-log", log, "-screen", "none" if not expect_fail else "none"]
    for k, v in variables.items():
        cmd += ["-var", k, str(v)]
    p = subprocess.run(cmd, cwd=cwd, env=lmp_env(), capture_output=True, text=True, timeout=900)
    logtext = ""
    if os.path.exists(os.path.join(cwd, log)):
        with open(os.path.join(cwd, log), errors="replace") as fh:
            logtext = fh.read()
    text = p.stdout + p.stderr + logtext
    if expect_fail:
        return p.returncode, text
    if p.returncode != 0:
        print(text[-4000:])
        fail(f"lmp failed ({' '.join(cmd)}) with exit code {p.returncode}")
    return p.returncode, text


def ionmsm(*args, expect=0):
    p = subprocess.run([ARGS.ionmsm, *args], capture_output=True, text=True, timeout=600)
    if expect is not None and p.returncode != expect:
        print(p.stdout[-2000:], p.stderr[-2000:])
        fail(f"ionmsm {' '.join(args)} exited {p.returncode}, expected {expect}")
    return p


def slow(dump, nevery, lags, types, sites_args, summary, extra=()):
    cmd = [sys.executable, os.path.join(HERE, "slow_counts.py"), dump, "--nevery", str(nevery),
           "--lags", *map(str, lags), "--types", *map(str, types), *sites_args,
           "--summary", summary, *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        print(p.stderr)
        fail("slow reference failed")
    with open(summary) as fh:
        return p.stdout, json.load(fh)


def compare_csv(a, b, what):
    if a == b:
        nrows = a.count("\n") - 1
        ok(f"{what}: identical ({nrows} rows)")
        return
    la, lb = a.splitlines(), b.splitlines()
    sa, sb = set(la), set(lb)
    print("only in first :", sorted(sa - sb)[:10])
    print("only in second:", sorted(sb - sa)[:10])
    fail(f"{what}: CSVs differ ({len(la)} vs {len(lb)} lines)")


def check_h5_against_summary(h5path, summary, lags, natoms):
    with h5py.File(h5path, "r") as f:
        if f.attrs["format"] not in (b"ionmsm-counts", "ionmsm-counts"):
            fail("format tag missing")
        lag_steps = list(f["lags/lag_steps"][:])
        n_origins = list(f["lags/n_origins"][:])
        occ = f["sites/occupancy"][:]
        total = f["lags/total_counts"][:]
        n_samples = int(f.attrs["n_samples"])
    if lag_steps != list(lags):
        fail(f"lags {lag_steps} != {lags}")
    for L, n in zip(lags, n_origins):
        if n != summary["n_origins"][str(L)]:
            fail(f"n_origins for lag {L}: file {n}, reference {summary['n_origins'][str(L)]}")
        # every atom of the group is counted once per origin: counts conserve atoms
    for L, n, t in zip(lags, n_origins, total):
        if t != n * natoms:
            fail(f"lag {L}: total counts {t} != n_origins {n} x atoms {natoms}")
    if list(occ) != summary["occupancy"]:
        fail("occupancy differs from the reference")
    if n_samples != summary["n_samples"]:
        fail(f"n_samples {n_samples} != {summary['n_samples']}")
    ok(f"n_origins {n_origins}, occupancy, n_samples={n_samples} match; counts conserve {natoms} atoms")


def check_moments(h5path, summary, lags):
    """/lags/displacement_sum and _sq_sum equal the reference sums (1e-9 relative to the sum of
    the absolute terms)."""
    with h5py.File(h5path, "r") as f:
        ds = f["lags/displacement_sum"][:]
        dq = f["lags/displacement_sq_sum"][:]
    if ds.shape != (len(lags), 3) or dq.shape != (len(lags), 3, 3):
        fail(f"displacement datasets have shapes {ds.shape}, {dq.shape}")
    for i, L in enumerate(lags):
        scale = 1.0 + summary["displacement_scale"][str(L)]
        es = np.array(summary["displacement_sum"][str(L)])
        eq = np.array(summary["displacement_sq_sum"][str(L)])
        if np.abs(ds[i] - es).max() > 1e-9 * scale or np.abs(dq[i] - eq).max() > 1e-9 * scale:
            fail(f"lag {L}: displacement sums {ds[i]}, {dq[i].ravel()} != reference {es}, "
                 f"{eq.ravel()}")
    ok(f"displacement first and second moments match the reference for {len(lags)} lags "
       f"(e.g. lag {lags[-1]}: trace {np.trace(dq[-1]):.6g})")


BROWNIAN = os.path.join(HERE, "in.brownian")
LAGS = [5, 10, 25, 50]


def brownian_vars(**kw):
    v = {"nparticles": 150, "nsteps": 2000, "nevery": 5, "lags": " ".join(map(str, LAGS)),
         "out": "counts.h5", "dumpfile": "none"}
    v.update(kw)
    v["dodump"] = 0 if v["dumpfile"] == "none" else 1
    return v


def write_lattice_sites(name, a, n, tilt):
    """Sites file with the minima of the cosine potential (sc lattice, spacing a, n^3 sites),
    Cartesian, labelled s0, s1, ..., in the cell of in.brownian (tilts a, a, -a if tilt)."""
    t = a if tilt else 0.0
    H = np.array([[a * n, t, t], [0, a * n, -t], [0, 0, a * n]])
    with open(os.path.join(ARGS.work, name), "w") as fh:
        fh.write("# ionmsm-sites 1\n# minima of the cosine potential: cartesian, sc lattice\n"
                 "coordinates cartesian\n")
        k = 0
        for i in range(n):
            for j in range(n):
                for l in range(n):
                    x = H @ ((np.array([i, j, l]) + 0.5) / n)
                    fh.write(f"{x[0]:.12f} {x[1]:.12f} {x[2]:.12f} s{k}\n")
                    k += 1


def quiet_counts(logtext):
    """(quiet, all) atom-samples over the 'Fix msm ...: N samples in this run' log lines."""
    found = re.findall(r"(\d+) of (\d+) atom-samples on the quiet path", logtext)
    if not found:
        fail("no 'atom-samples on the quiet path' line from fix msm in the log")
    return sum(int(q) for q, _ in found), sum(int(a) for _, a in found)


def check_quiet_path(logtext, what, expect_used=True):
    """The quiet path (atoms that stay on their site image skip the counter) was taken for some
    atom-samples and not for all (so both paths ran), or never where it does not apply."""
    quiet, total = quiet_counts(logtext)
    if expect_used and not 0 < quiet < total:
        fail(f"{what}: {quiet} of {total} atom-samples on the quiet path; expected some, not all")
    if not expect_used and quiet != 0:
        fail(f"{what}: {quiet} atom-samples on the quiet path, which this mode must not use")


# ---------------------------------------------------------------------------- cases

def case_md_vs_slow():
    """MD on 2 ranks, sorting every step (migration + copy_arrays), counts == slow reference."""
    _, text = run_lmp(BROWNIAN, brownian_vars(dumpfile="traj.dump"), nprocs=2)
    check_quiet_path(text, "MD on 2 ranks")
    exp = subprocess.run([ARGS.ionmsm, "export", os.path.join(ARGS.work, "counts.h5")],
                         capture_output=True, text=True).stdout
    ref, summ = slow(os.path.join(ARGS.work, "traj.dump"), 5, LAGS, [1], ["--sites-types", "2"],
                     os.path.join(ARGS.work, "slow.json"))
    compare_csv(exp, ref, "fix msm (2 ranks, MD) vs slow reference")
    check_h5_against_summary(os.path.join(ARGS.work, "counts.h5"), summ, LAGS, 150)
    check_moments(os.path.join(ARGS.work, "counts.h5"), summ, LAGS)
    hops = sum(int(r.split(",")[-1]) for r in ref.splitlines()[1:]
               if r.split(",")[0] == "5" and r.split(",")[1] != r.split(",")[2])
    if hops < 20:
        fail(f"only {hops} site changes at lag 5: the test model does not exercise hopping")
    ok(f"{hops} site changes at the shortest lag")
    # ionmsm analyze on the real file: the in-situ MD (site-projected) MSD is reported per lag
    # and equals displacement_sq_sum / total counts; the plot draws it
    out = os.path.join(ARGS.work, "analysis")
    ionmsm("analyze", os.path.join(ARGS.work, "counts.h5"), "--out", out)
    with open(os.path.join(out, "report.json")) as fh:
        md = json.load(fh)["msd"]["md_projected"]
    with h5py.File(os.path.join(ARGS.work, "counts.h5"), "r") as f:
        sq = f["lags/displacement_sq_sum"][:]
        tot = f["lags/total_counts"][:]
    if md["status"] != "ok" or md["lag_steps"] != LAGS:
        fail(f"md_projected: {md['status']} {md['lag_steps']}")
    for i in range(len(LAGS)):
        for comp, k in (("xx", 0), ("yy", 1), ("zz", 2)):
            if abs(md[comp][i] - sq[i][k][k] / tot[i]) > 1e-12 * max(1.0, md[comp][i]):
                fail(f"md_projected {comp} lag {LAGS[i]}: {md[comp][i]} vs {sq[i][k][k] / tot[i]}")
    with open(os.path.join(out, "plots.json")) as fh:
        plots = json.load(fh)
    names = [s["name"] for p in plots.get("plots", plots if isinstance(plots, list) else [])
             if isinstance(p, dict) for s in p.get("series", [])]
    if "xx/md_projected" not in names and "xx/md_projected" not in json.dumps(plots):
        fail("msd.png does not draw the MD projected MSD")
    ok(f"analyze: MD site-projected MSD per lag reported and plotted (xx at lag {LAGS[-1]}: "
       f"{md['xx'][-1]:.4f})")


def case_rerun_ranks():
    """One dump, rerun on 1, 2 and 4 ranks: identical counts, equal to the slow reference.
    (Sites come from a file: create_atoms numbers atoms by processor, so 'sites group' would
    order the sites differently on another number of ranks.)"""
    write_lattice_sites("sites.txt", 2.0, 4, tilt=False)
    sites = dict(sitesmode="file", sitesfile="sites.txt")
    run_lmp(BROWNIAN, brownian_vars(dumpfile="traj.dump", nsteps=1500, seed=4242, **sites),
            nprocs=1)
    ref, summ = slow(os.path.join(ARGS.work, "traj.dump"), 5, LAGS, [1],
                     ["--sites-file", os.path.join(ARGS.work, "sites.txt")],
                     os.path.join(ARGS.work, "slow.json"))
    outs = {}
    for n in (1, 2, 4):
        out = f"rerun{n}.h5"
        run_lmp(BROWNIAN, brownian_vars(dumpfile="traj.dump", mode="rerun", out=out, seed=4242,
                                        **sites), nprocs=n, log=f"log.rerun{n}")
        outs[n] = subprocess.run([ARGS.ionmsm, "export", os.path.join(ARGS.work, out)],
                                 capture_output=True, text=True).stdout
        check_h5_against_summary(os.path.join(ARGS.work, out), summ, LAGS, 150)
    compare_csv(outs[1], outs[2], "rerun 1 rank vs 2 ranks")
    compare_csv(outs[1], outs[4], "rerun 1 rank vs 4 ranks")
    compare_csv(outs[1], ref, "rerun vs slow reference")
    direct = subprocess.run([ARGS.ionmsm, "export", os.path.join(ARGS.work, "counts.h5")],
                            capture_output=True, text=True).stdout
    compare_csv(direct, outs[1], "in-run counts vs rerun of its own dump")


def case_triclinic():
    """Triclinic box (tilts commensurate with the lattice), sites from a file, 2 ranks."""
    a, n = 2.0, 4
    write_lattice_sites("sites.txt", a, n, tilt=True)
    run_lmp(BROWNIAN, brownian_vars(tilt=1, sitesmode="file", sitesfile="sites.txt",
                                    dumpfile="traj.dump", seed=777), nprocs=2)
    exp = subprocess.run([ARGS.ionmsm, "export", os.path.join(ARGS.work, "counts.h5")],
                         capture_output=True, text=True).stdout
    ref, summ = slow(os.path.join(ARGS.work, "traj.dump"), 5, LAGS, [1],
                     ["--sites-file", os.path.join(ARGS.work, "sites.txt")],
                     os.path.join(ARGS.work, "slow.json"))
    compare_csv(exp, ref, "triclinic box, sites file, 2 ranks vs slow reference")
    check_h5_against_summary(os.path.join(ARGS.work, "counts.h5"), summ, LAGS, 150)
    shifts = [r for r in ref.splitlines()[1:] if r.split(",")[3:6] != ["0", "0", "0"]]
    if not shifts:
        fail("no transition with a nonzero lattice shift: boundary crossings not exercised")
    ok(f"{len(shifts)} distinct transitions with nonzero lattice shifts")
    with h5py.File(os.path.join(ARGS.work, "counts.h5"), "r") as f:
        h = f["box/h"][:]
        labels = [x.decode() if isinstance(x, bytes) else x for x in f["sites/labels"][:]]
    if abs(h[0, 1] - a) > 1e-9 or abs(h[1, 2] + a) > 1e-9:
        fail(f"box tilt not stored: h = {h}")
    if labels[:2] != ["s0", "s1"]:
        fail(f"site labels not stored: {labels[:3]}")
    ok("triclinic cell and site labels stored")


def case_compute():
    """compute msm: thermo (vector + array element) and dump local rows equal the file."""
    with open(BROWNIAN) as fh:
        deck = fh.read()
    deck = deck.replace("thermo          500", "compute cm mobile msm m lag 10\n"
                        "thermo_style custom step c_cm[1] c_cm[2] c_cm[3] c_cm[1][2] c_cm[2][1]\n"
                        "thermo_modify format float %.17g\n"
                        "thermo 100\n"
                        "dump dl all local 2000 local.dump c_cm[1] c_cm[2] c_cm[3] c_cm[4] c_cm[5] c_cm[6] c_cm[7]\n")
    path = os.path.join(ARGS.work, "in.compute")
    with open(path, "w") as fh:
        fh.write(deck)
    run_lmp(path, brownian_vars(nsteps=2000), nprocs=2)
    with open(os.path.join(ARGS.work, "log.lammps")) as fh:
        lines = fh.read().splitlines()
    rows = []
    for i, l in enumerate(lines):
        if l.split()[:2] == ["Step", "c_cm[1]"]:
            rows.append(lines[i + 1:])
    last = None
    for block in rows:
        for l in block:
            t = l.split()
            if len(t) == 6 and t[0].isdigit():
                last = t
            else:
                break
    if last is None or int(last[0]) != 2000:
        fail(f"no thermo output at step 2000: {last}")
    csv = subprocess.run([ARGS.ionmsm, "export", os.path.join(ARGS.work, "counts.h5"),
                          "--lag-steps", "10"], capture_output=True, text=True).stdout
    C = {}
    tot = stay = 0
    for r in csv.splitlines()[1:]:
        L, fr, to, sx, sy, sz, c = map(int, r.split(","))
        C[(to, fr)] = C.get((to, fr), 0) + c
        tot += c
        stay += c if fr == to else 0
    with h5py.File(os.path.join(ARGS.work, "counts.h5"), "r") as f:
        nsamp = int(f.attrs["n_samples"])
    vals = [float(x) for x in last[1:]]
    if vals[0] != nsamp:
        fail(f"c_cm[1] = {vals[0]}, file n_samples = {nsamp}")
    if vals[1] != tot:
        fail(f"c_cm[2] = {vals[1]}, file total = {tot}")
    if abs(vals[2] - (tot - stay) / tot) > 1e-12:
        fail(f"c_cm[3] = {vals[2]}, expected {(tot - stay) / tot}")
    # c_cm[i][j] (1-based) = transitions from site j-1 to site i-1
    if vals[3] != C.get((0, 1), 0) or vals[4] != C.get((1, 0), 0):
        fail(f"array elements {vals[3:5]} != {C.get((0, 1), 0)}, {C.get((1, 0), 0)}")
    ok(f"thermo: samples {nsamp}, total {tot}, hop fraction, C[0][1], C[1][0] match the file")
    with open(os.path.join(ARGS.work, "local.dump")) as fh:
        dl = fh.read().split("ITEM: ENTRIES")[-1].strip().splitlines()[1:]
    local = sorted(tuple(int(float(x)) for x in l.split()) for l in dl)
    allcsv = subprocess.run([ARGS.ionmsm, "export", os.path.join(ARGS.work, "counts.h5")],
                            capture_output=True, text=True).stdout
    filerows = sorted(tuple(map(int, r.split(","))) for r in allcsv.splitlines()[1:])
    if local != filerows:
        fail(f"dump local rows ({len(local)}) differ from the file's rows ({len(filerows)})")
    ok(f"dump local: {len(local)} rows equal the counts file")


def case_every():
    """'every Nout' writes a complete file during the run; no temporary is left behind."""
    run_lmp(BROWNIAN, brownian_vars(nsteps=1000, every=100), nprocs=2)
    files = os.listdir(ARGS.work)
    tmps = [f for f in files if ".tmp" in f]
    if tmps:
        fail(f"temporary files left: {tmps}")
    with h5py.File(os.path.join(ARGS.work, "counts.h5"), "r") as f:
        if int(f.attrs["last_step"]) != 1000:
            fail(f"last_step {f.attrs['last_step']} != 1000")
    ok("final file complete, no temporaries")


def refused_plugin(plugin):
    """Runs lmp with only `plugin load PLUGIN`; returns (exit code, all output)."""
    deck = os.path.join(ARGS.work, "in.version")
    with open(deck, "w") as fh:
        fh.write(f"plugin load {plugin}\n")
    env_dir = ARGS.plugin_dir
    ARGS.plugin_dir = ""  # do not auto-load the good plugin
    rc, text = run_lmp(deck, {}, expect_fail=True)
    ARGS.plugin_dir = env_dir
    return rc, text


def case_version_check():
    """A plugin built for another LAMMPS version, or one whose oldest accepted LAMMPS is newer
    than this one, refuses to load with a clear message; the good plugin says at load which
    LAMMPS it was built against, and ionmsm --version says the same."""
    rc, text = refused_plugin(ARGS.bad_plugin)
    if rc == 0:
        fail("lmp accepted a plugin built for another LAMMPS version")
    if "ionmsm plugin was built for LAMMPS version '1 Jan 2000'" not in text or \
            "rebuild ionmsmplugin.so" not in text:
        print(text[-2000:])
        fail("version mismatch message not found")
    ok("plugin built for '1 Jan 2000' refused with a clear message")

    if ARGS.old_plugin:
        rc, text = refused_plugin(ARGS.old_plugin)
        running = re.search(r"LAMMPS \((\d+ \w+ \d+)", text)
        if rc == 0:
            fail("lmp accepted a plugin that needs LAMMPS 1 Jan 2099 or newer")
        if not running or "ionmsm plugin needs LAMMPS 1 Jan 2099 or newer" not in text or \
                f"this LAMMPS is version '{running.group(1)}'" not in text:
            print(text[-2000:])
            fail("'LAMMPS too old' message not found")
        ok(f"plugin needing LAMMPS 1 Jan 2099 refused by LAMMPS {running.group(1)} with a clear message")

    deck = os.path.join(ARGS.work, "in.loaded")
    with open(deck, "w") as fh:
        fh.write("print done\n")
    _, text = run_lmp(deck, {})
    running = re.search(r"LAMMPS \((\d+ \w+ \d+)", text)
    loaded = re.search(r"ionmsm plugin \S+ \(fix msm, compute msm\) built against LAMMPS (\d+ \w+ \d+)", text)
    if not running or not loaded or loaded.group(1) != running.group(1):
        print(text[-2000:])
        fail("the plugin's load message does not name the LAMMPS it runs in")
    version = ionmsm("--version").stdout
    if f"plugin built against: LAMMPS {running.group(1)}" not in version:
        print(version)
        fail("ionmsm --version does not name the LAMMPS of this build")
    ok(f"plugin load message and ionmsm --version both name LAMMPS {running.group(1)}")


BAD_INPUTS = [
    ("fix m mobile msm 5 sites group sites lags 7 file c.h5", "lag 7 is not a multiple of Nevery = 5"),
    ("fix m mobile msm 0 sites group sites lags 5 file c.h5", "Nevery must be a positive integer"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 bogus 3", "Unknown fix msm keyword 'bogus'"),
    ("fix m mobile msm 5 sites group nosuch lags 5 file c.h5", "sites group 'nosuch' does not exist"),
    ("fix m mobile msm 5 sites file missing.txt lags 5 file c.h5", "missing.txt"),
    ("fix m mobile msm 5 sites group sites lags 5 5 file c.h5", "lag 5 is given twice"),
    ("fix m mobile msm 5 sites group sites lags 5", "needs an output file"),
    ("fix m mobile msm 5 sites group sites file c.h5", "needs at least one lag"),
    ("fix m mobile msm 5 sites group sites lags 5 file /nonexistent/dir/c.h5", "does not exist or is not writable"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 every 7", "every 7 is not a multiple of Nevery"),
    ("fix m mobile msm 5 sites wrong sites lags 5 file c.h5", "expects 'group' or 'file'"),
    ("fix m mobile msm 5 sites group sites lags -5 file c.h5", "must be a positive number"),
    ("group empty type 3\nfix m empty msm 5 sites group sites lags 5 file c.h5", "has no atoms"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5\ncompute c mobile msm m lag 10", "lag 10 is not one of the lags"),
    ("compute c mobile msm nofix", "fix ID 'nofix' does not exist"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 history", "'history' needs a value"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 history bogus", "'history' expects 'full' or 'multitau M', got 'bogus'"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 history multitau", "needs a positive integer M"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 history multitau 0", "multitau M must be in [1, 1048576], got 0"),
    ("fix m mobile msm 5 sites group sites lags 5 25 file c.h5 history multitau 4", "lag 25 (5 samples) cannot be counted exactly with history multitau 4; the nearest representable lags are 20 and 30 timesteps"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 assign", "'assign' needs a value"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 assign bogus", "'assign' expects 'nearest' or 'core R', got 'bogus'"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 assign core", "needs a core radius R"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 assign core -0.5", "core radius must be > 0"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 assign core 1.5", "core radius 1.5 must be less than half the minimum site separation"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 append", "'append' needs a value"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 append maybe", "'append' expects 'yes' or 'no', got 'maybe'"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 blocks 0", "blocks Nb must be a positive number of timesteps, got 0"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 blocks 12", "blocks 12 is not a multiple of Nevery = 5"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 blocks many", "keyword 'blocks' expects a positive integer number of timesteps, got 'many'"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 blocks", "keyword 'blocks' needs a block length Nb"),
    ("fix m mobile msm 5 sites group sites lags 5 file notcounts.h5 append yes", "cannot append to 'notcounts.h5': 'notcounts.h5' is not an HDF5 file"),
    ("fix m mobile msm 5 sites file cols.txt lags 5 file c.h5", "cols.txt:2: expected three coordinates"),
    ("fix m mobile msm 5 sites file manycols.txt lags 5 file c.h5", "too many columns (5)"),
    ("fix m mobile msm 5 sites file dup.txt lags 5 file c.h5", "two sites coincide"),
    ("fix m mobile msm 5 sites file nan.txt lags 5 file c.h5", "non-finite coordinate 'nan'"),
    ("fix m mobile msm 5 sites file badtag.txt lags 5 file c.h5", "unsupported sites file version '2'"),
    ("fix m mobile msm 5 sites file empty.txt lags 5 file c.h5", "no sites found"),
    ("fix m mobile msm 5 lags 5 file c.h5", "needs the 'sites' keyword"),
    ("fix m mobile msm 5 sites group sites lags abc file c.h5", "'lags' expects positive integers, got 'abc'"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 every 0", "every Nout must be positive"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 every", "'every' needs a value"),
    ("fix m mobile msm 5 sites group", "'sites' needs two values"),
    ("fix f all nve\ncompute c mobile msm f", "is a fix nve, not a fix msm"),
    # production faults (issue 21; end to end in test_faults.py)
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 overwrite", "'overwrite' needs a value"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 overwrite maybe", "'overwrite' expects 'yes' or 'no', got 'maybe'"),
    ("fix m mobile msm 5 sites group sites lags 5 file c.h5 append yes overwrite yes", "'append yes' and 'overwrite yes' exclude each other"),
    ("fix m1 mobile msm 5 sites group sites lags 5 file same.h5\nfix m2 mobile msm 5 sites group sites lags 5 file ./same.h5", "Fix msm m1 and fix msm m2 both write the counts file './same.h5'"),
    ("fix m1 mobile msm 5 sites group sites lags 5 file same.h5\nfix m2 mobile msm 5 sites group sites lags 5 file same.h5 append yes", "Fix msm m2: append yes cannot add to 'same.h5': fix msm m1 writes that file"),
    ("fix m mobile msm 5 sites group sites lags 5 file notcounts.h5\nrun 0", "Fix msm m: the counts file 'notcounts.h5' already exists"),
]

BAD_FILES = {
    "cols.txt": "# ionmsm-sites 1\n0.1 0.2\n",
    "manycols.txt": "0.1 0.2 0.3 a b\n",
    "dup.txt": "coordinates fractional\n0.1 0.2 0.3\n0.1 0.2 0.3\n",
    "nan.txt": "nan 0 0\n",
    "badtag.txt": "# ionmsm-sites 2\n0 0 0\n",
    "empty.txt": "# nothing here\n",
    "notcounts.h5": "plain text, not HDF5\n",
}


def case_bad_input():
    """Malformed fix/compute commands give a LAMMPS error naming the problem, never a crash."""
    base = """units metal
atom_style atomic
region box block 0 8 0 8 0 8
create_box 3 box
lattice sc 2.0 origin 0.5 0.5 0.5
create_atoms 2 box
create_atoms 1 random 20 1 box
mass * 6.941
group mobile type 1
group sites type 2
"""
    for name, text in BAD_FILES.items():
        with open(os.path.join(ARGS.work, name), "w") as fh:
            fh.write(text)
    if len(BAD_INPUTS) < 30 or len(set(c for c, _ in BAD_INPUTS)) != len(BAD_INPUTS):
        fail(f"the battery must hold >= 30 distinct commands, has {len(BAD_INPUTS)}")
    for i, (cmd, expect) in enumerate(BAD_INPUTS):
        deck = os.path.join(ARGS.work, f"in.bad{i}")
        with open(deck, "w") as fh:
            fh.write(base + cmd + "\n")
        rc, text = run_lmp(deck, {}, expect_fail=True, log=f"log.bad{i}")
        if rc == 0:
            fail(f"accepted: {cmd!r}")
        if expect not in text or "ERROR" not in text:
            print(text[-1500:])
            fail(f"message {expect!r} not found for {cmd!r}")
        if "Segmentation fault" in text or "Signal: " in text:
            fail(f"crash for {cmd!r}")
    ok(f"{len(BAD_INPUTS)} malformed commands refused with the expected messages")


def case_cli():
    """ionmsm info/export on a real counts file; errors give one line and a non-zero exit."""
    run_lmp(BROWNIAN, brownian_vars(nsteps=500), nprocs=1)
    h5 = os.path.join(ARGS.work, "counts.h5")
    info = ionmsm("info", h5).stdout
    for needle in ("ionmsm-counts", "metal", "nevery", "lag"):
        if needle not in info:
            print(info)
            fail(f"'{needle}' missing from ionmsm info")
    csv = ionmsm("export", h5, "--lag-steps", "25").stdout.splitlines()
    if csv[0] != "lag_steps,from,to,shift_x,shift_y,shift_z,count":
        fail(f"bad CSV header {csv[0]!r}")
    if any(not r.startswith("25,") for r in csv[1:]):
        fail("--lag-steps 25 exported other lags")
    keys = [tuple(map(int, r.split(",")[:6])) for r in csv[1:]]
    if keys != sorted(keys):
        fail("CSV rows are not sorted")
    p = ionmsm("export", h5, "--lag-steps", "7", expect=None)
    if p.returncode == 0 or "7" not in p.stderr:
        fail("lag not in file was not refused")
    p = ionmsm("info", os.path.join(ARGS.work, "nope.h5"), expect=None)
    if p.returncode == 0 or "nope.h5" not in p.stderr:
        fail("missing file was not refused")
    ok("info, export (sorted, lag filter), and error exits")


def case_restart():
    """Counting split by write_restart/read_restart equals the uninterrupted count, with the
    rank count changed at the restart (1 -> 2 and 2 -> 1). Uses rerun of one dump so that both
    routes see identical positions; the restart happens on an already sampled step."""
    restart_equivalence("")


def case_restart_multitau():
    """The same with history multitau 4 (lags 5 10 25 50 = 1 2 5 10 samples; 5 -> level 1 is
    not representable with M = 4, so lags 5 10 20 40 = 1 2 4 8 samples, levels 0 0 0 1) and
    assign core: per-atom multitau records and committed sites survive the restart."""
    restart_equivalence("history multitau 4 assign core 0.7", lags=(5, 10, 20, 40))


def restart_equivalence(extra, lags=tuple(LAGS)):
    write_lattice_sites("sites.txt", 2.0, 4, tilt=False)
    lagstr = " ".join(map(str, lags))
    sites = dict(sitesmode="file", sitesfile="sites.txt", extra=extra, lags=lagstr)
    run_lmp(BROWNIAN, brownian_vars(dumpfile="traj.dump", nsteps=1500, seed=99, **sites))
    run_lmp(BROWNIAN, brownian_vars(dumpfile="traj.dump", mode="rerun", out="full.h5", seed=99,
                                    **sites), nprocs=2, log="log.full")
    full = subprocess.run([ARGS.ionmsm, "export", os.path.join(ARGS.work, "full.h5")],
                          capture_output=True, text=True).stdout
    fixline = "fix m mobile msm 5 sites file sites.txt lags " + lagstr + " file {out} " + extra
    with open(BROWNIAN) as fh:
        deck = fh.read()
    part1 = deck.replace("rerun           ${dumpfile} dump x y z ix iy iz box yes",
                         "rerun ${dumpfile} last 750 dump x y z ix iy iz box yes\n"
                         "write_restart part1.restart")
    with open(os.path.join(ARGS.work, "in.part1"), "w") as fh:
        fh.write(part1)
    part2 = ("read_restart part1.restart\npair_style zero 3.0\npair_coeff * *\n"
             + fixline.format(out="split.h5") + "\n"
             "rerun traj.dump first 750 dump x y z ix iy iz box yes\n")
    with open(os.path.join(ARGS.work, "in.part2"), "w") as fh:
        fh.write(part2)
    for before, after in ((1, 2), (2, 1)):
        for f in ("split.h5", "part1.h5", "part1.restart"):  # each round starts afresh
            if os.path.exists(os.path.join(ARGS.work, f)):
                os.remove(os.path.join(ARGS.work, f))
        _, text1 = run_lmp(os.path.join(ARGS.work, "in.part1"),
                           brownian_vars(dumpfile="traj.dump", mode="rerun", out="part1.h5",
                                         seed=99, **sites), nprocs=before, log="log.part1")
        _, text2 = run_lmp(os.path.join(ARGS.work, "in.part2"), {}, nprocs=after,
                           log="log.part2")
        quiet_mode = "multitau" not in extra and "core" not in extra
        for t, part in ((text1, "first"), (text2, "second")):
            check_quiet_path(t, f"restart {before} -> {after} ranks, {part} part",
                             expect_used=quiet_mode)
        split = subprocess.run([ARGS.ionmsm, "export", os.path.join(ARGS.work, "split.h5")],
                               capture_output=True, text=True).stdout
        compare_csv(split, full, f"restart {before} -> {after} ranks vs uninterrupted")
        with h5py.File(os.path.join(ARGS.work, "split.h5"), "r") as a, \
                h5py.File(os.path.join(ARGS.work, "full.h5"), "r") as b:
            for key in ("lags/n_origins", "sites/occupancy"):
                if list(a[key][:]) != list(b[key][:]):
                    fail(f"{key} differs after restart {before} -> {after}")
            for key in ("n_samples", "first_step", "last_step", "n_outside_core"):
                if key in b.attrs and a.attrs[key] != b.attrs[key]:
                    fail(f"{key}: {a.attrs[key]} vs {b.attrs[key]}")
            for key in ("lags/displacement_sum", "lags/displacement_sq_sum"):
                if not np.allclose(a[key][:], b[key][:], rtol=1e-9, atol=1e-9):
                    fail(f"{key} differs after restart {before} -> {after}")
            if ("blocks" in a) != ("blocks" in b):
                fail("one file has /blocks, the other not")
            if "blocks" in b:
                if blocks_of(a) != blocks_of(b):
                    fail(f"/blocks differ after restart {before} -> {after}")
                ok(f"restart {before} -> {after}: {len(blocks_of(b))} blocks identical")
        ok(f"restart {before} -> {after}: n_origins, occupancy, clock identical")
    # a changed argument is refused
    with open(os.path.join(ARGS.work, "moved.txt"), "w") as fh:
        fh.write("coordinates fractional\n" + "".join(
            f"{(i + 0.5) / 4 + 0.01:.6f} {(j + 0.5) / 4:.6f} {(k + 0.5) / 4:.6f}\n"
            for i in range(4) for j in range(4) for k in range(4)))
    changes = [
        (f"lags {lagstr}", f"lags {' '.join(map(str, lags[:-1]))}",
         f"lags were {lagstr} in the restart file but are {' '.join(map(str, lags[:-1]))} now"),
        ("msm 5 sites", "msm 10 sites", "Nevery was 5 in the restart file but is 10 now"),
        ("sites file sites.txt", "sites file moved.txt", "differ from those the counts"),
    ]
    if extra.startswith("blocks"):
        changes.append((extra, "", f"the restart file has {extra} but the fix now has no blocks"))
        changes.append((extra, "blocks 400", f"the restart file has {extra} but the fix now has "
                        "blocks 400"))
    elif extra:
        changes.append((extra, "", "in the restart file but is"))
    else:
        changes.append(("file split.h5 ", "file split.h5 history multitau 64",
                        "history was 'full' in the restart file but is 'multitau 64' now"))
    for old, new, expect in changes:
        bad = part2.replace(old, new)
        if bad == part2:
            fail(f"test bug: {old!r} not in the deck")
        if "msm 10" in new:
            bad = bad.replace(f"lags {lagstr}", "lags " + " ".join(str(2 * L) for L in lags))
        with open(os.path.join(ARGS.work, "in.bad"), "w") as fh:
            fh.write(bad)
        rc, text = run_lmp(os.path.join(ARGS.work, "in.bad"), {}, expect_fail=True, log="log.bad")
        if rc == 0 or expect not in text:
            print(text[-1500:])
            fail(f"changed argument after restart ({new!r}) was not refused with {expect!r}")
        ok(f"restart with '{new}' refused")


def case_npt():
    """The box changes during the run (fix deform: lengths and tilt, atoms remapped, as under
    NPT): sites follow the box in fractional coordinates. Triclinic, sites file, 2 ranks;
    counts, occupancy, n_origins and displacement moments equal the slow reference, which
    uses each frame's own box."""
    write_lattice_sites("sites.txt", 2.0, 4, tilt=True)
    with open(BROWNIAN) as fh:
        deck = fh.read()
    # fix deform changes the box at the end of a step; defined before fix msm, so that the fix
    # samples (also at the end of the step) the same state as the dump writes
    deck = deck.replace("timestep        0.001",
                        "timestep        0.001\nfix dfm all deform 1 x scale 1.04 y scale 0.97 "
                        "z scale 1.02 xy delta 0.3 remap x")
    path = os.path.join(ARGS.work, "in.npt")
    with open(path, "w") as fh:
        fh.write(deck)
    run_lmp(path, brownian_vars(tilt=1, sitesmode="file", sitesfile="sites.txt",
                                dumpfile="traj.dump", seed=2718), nprocs=2)
    h5 = os.path.join(ARGS.work, "counts.h5")
    exp = ionmsm("export", h5).stdout
    ref, summ = slow(os.path.join(ARGS.work, "traj.dump"), 5, LAGS, [1],
                     ["--sites-file", os.path.join(ARGS.work, "sites.txt")],
                     os.path.join(ARGS.work, "slow.json"))
    compare_csv(exp, ref, "deforming triclinic box (2 ranks) vs slow reference")
    check_h5_against_summary(h5, summ, LAGS, 150)
    check_moments(h5, summ, LAGS)
    with h5py.File(h5, "r") as f:
        h = f["box/h"][:]
    # (the deck has two run commands; fix deform applies its change over each run)
    if not (h[0, 0] > 8.0 * 1.04 - 1e-9 and h[1, 1] < 8.0 * 0.97 + 1e-9 and h[0, 1] > 2.29):
        fail(f"final box not the deformed one: {h}")
    ok(f"final cell stored (a_x = {h[0, 0]:.4f}, xy = {h[0, 1]:.4f})")


def case_li13si4_example():
    """examples/li13si4 in short form (MEAM, 204 atoms, 2 ranks): 156 Li on 156 sites, counts
    conserve atoms at every lag, the site-projected occupancy is one Li per site on average."""
    ex = os.path.join(ARGS.src, "examples", "li13si4")
    run_lmp(os.path.join(ex, "in.li13si4"),
            {"neq": 100, "nprod": 400, "nevery": 10, "out": "counts.h5",
             "potdir": os.path.join(ARGS.src, "potentials", "LiSi_Cui2012"), "datadir": ex},
            nprocs=2)
    with h5py.File(os.path.join(ARGS.work, "counts.h5"), "r") as f:
        nsites = f["sites/fractional"].shape[0]
        natoms = int(f.attrs["n_atoms"])
        nsamp = int(f.attrs["n_samples"])
        occ = f["sites/occupancy"][:]
        lags = f["lags/lag_steps"][:]
        norig = f["lags/n_origins"][:]
        tot = f["lags/total_counts"][:]
        units = f.attrs["units"]
    units = units.decode() if isinstance(units, bytes) else units
    if nsites != 156 or natoms != 156:
        fail(f"expected 156 Li sites and 156 Li atoms, got {nsites} sites, {natoms} atoms")
    if units != "metal" or nsamp != 41:
        fail(f"units {units}, n_samples {nsamp} (expected metal, 41)")
    if occ.sum() != natoms * nsamp:
        fail(f"occupancy sums to {occ.sum()}, expected {natoms * nsamp}")
    for L, n, t in zip(lags, norig, tot):
        if n != max(0, nsamp - L // 10) or t != n * natoms:
            fail(f"lag {L}: n_origins {n}, total {t}")
    ok(f"156 sites, {nsamp} samples, counts conserve atoms for lags {list(lags)}")
    # Hot and short (1500 K, Si still held, 3 ps): Li hops often enough that the counts
    # percolate through the periodic cell, so `ionmsm analyze` must give D > 0 along every axis
    # (incl. the channel, x) at every lag, and 0 < f <= 1 at the shortest lag (at long lags
    # 3 ps of data are too few origins for f, which scatters above 1).
    run_lmp(os.path.join(ex, "in.li13si4"),
            {"T": 1500, "neq": 200, "nprod": 3000, "nevery": 10, "out": "hot.h5",
             "potdir": os.path.join(ARGS.src, "potentials", "LiSi_Cui2012"), "datadir": ex},
            nprocs=2, log="log.hot")
    out = os.path.join(ARGS.work, "hot_analysis")
    ionmsm("analyze", os.path.join(ARGS.work, "hot.h5"), "--out", out, "--no-plots")
    with open(os.path.join(out, "report.json")) as fh:
        diff = json.load(fh)["diffusion"]
    if len(diff) < 5:
        fail(f"diffusion reported for only {len(diff)} lags")
    for d in diff:
        D = d["D_tensor_A2_per_ps"]
        if not all(D[i][i] is not None and D[i][i] > 1e-3 for i in range(3)):
            fail(f"lag {d['lag_steps']}: D diagonal {[D[i][i] for i in range(3)]} not > 0")
    f0 = diff[0]["f_lag"]["trace"]
    if not (f0 is not None and 0.0 < f0 <= 1.0):
        fail(f"correlation factor at the shortest lag {f0} not in (0, 1]")
    ok(f"1500 K: D_xx = {diff[0]['D_tensor_A2_per_ps'][0][0]:.3f} ... "
       f"{diff[-1]['D_tensor_A2_per_ps'][0][0]:.3f} A^2/ps > 0 at all {len(diff)} lags, "
       f"f = {f0:.3f} at the shortest lag")


MT_LAGS = [1, 2, 5, 8, 12, 16, 40, 64, 96, 128, 320, 512, 768, 1024]


def case_multitau():
    """history multitau 8, Nevery 1, lags up to 1024 samples, MD on 2 ranks: counts, n_origins,
    occupancy and displacement moments equal slow_counts.py --multitau 8; the memory per atom
    is recorded; lags up to 10^5 samples with M = 16 need <= 4 KB per atom."""
    lags = " ".join(map(str, MT_LAGS))
    run_lmp(BROWNIAN, brownian_vars(nparticles=60, nsteps=2400, nevery=1, lags=lags,
                                    dumpfile="traj.dump", extra="history multitau 8"), nprocs=2)
    h5 = os.path.join(ARGS.work, "counts.h5")
    exp = ionmsm("export", h5).stdout
    ref, summ = slow(os.path.join(ARGS.work, "traj.dump"), 1, MT_LAGS, [1],
                     ["--sites-types", "2"], os.path.join(ARGS.work, "slow.json"),
                     extra=["--multitau", "8"])
    compare_csv(exp, ref, "history multitau 8 (2 ranks) vs slow reference")
    check_h5_against_summary(h5, summ, MT_LAGS, 60)
    check_moments(h5, summ, MT_LAGS)
    with h5py.File(h5, "r") as f:
        hist = f.attrs["history"]
        hist = hist.decode() if isinstance(hist, bytes) else hist
        m, dpa = int(f.attrs["history_m"]), int(f.attrs["doubles_per_atom"])
        levels = list(f["lags/level"][:])
        norig = list(f["lags/n_origins"][:])
    if hist != "multitau" or m != 8:
        fail(f"history attrs {hist} {m}")
    if levels != [0, 0, 0, 0, 1, 1, 3, 3, 4, 4, 6, 6, 7, 7]:
        fail(f"levels {levels}")
    # 4 (last assignment, assign nearest) + 5 (multitau header) + 6 stored levels x M = 8
    if dpa != 4 + 5 + 6 * 8:
        fail(f"doubles_per_atom {dpa}, expected 4 + 5 + 6 levels x 8")
    ok(f"history multitau 8: levels {levels}, n_origins {norig}, {dpa} doubles per atom")
    # memory bound: lags up to ~10^5 samples with M = 16
    big = [2 ** k for k in range(17)] + [98304]  # every level 0..13 is stored
    run_lmp(BROWNIAN, brownian_vars(nparticles=20, nsteps=0, nevery=1, out="big.h5",
                                    lags=" ".join(map(str, big)), extra="history multitau 16"),
            log="log.big")
    with h5py.File(os.path.join(ARGS.work, "big.h5"), "r") as f:
        nbytes = int(f.attrs["bytes_per_atom"])
    if nbytes > 4096:
        fail(f"{nbytes} bytes per atom for lags up to 98304 samples with M = 16")
    ok(f"lags up to 98304 samples with multitau 16: {nbytes} bytes per atom (<= 4096)")


def case_core():
    """assign core 0.6 (sites 2.0 apart), MD on 2 ranks: counts, occupancy, n_origins, moments
    and the number of atom-samples outside every core equal slow_counts.py --core 0.6."""
    run_lmp(BROWNIAN, brownian_vars(dumpfile="traj.dump", extra="assign core 0.6", seed=31),
            nprocs=2)
    h5 = os.path.join(ARGS.work, "counts.h5")
    exp = ionmsm("export", h5).stdout
    ref, summ = slow(os.path.join(ARGS.work, "traj.dump"), 5, LAGS, [1], ["--sites-types", "2"],
                     os.path.join(ARGS.work, "slow.json"), extra=["--core", "0.6"])
    compare_csv(exp, ref, "assign core 0.6 (2 ranks) vs slow reference")
    check_h5_against_summary(h5, summ, LAGS, 150)
    check_moments(h5, summ, LAGS)
    with h5py.File(h5, "r") as f:
        nout = int(f.attrs["n_outside_core"])
        frac = float(f.attrs["fraction_outside_core"])
        occ = int(f["sites/occupancy"][:].sum())
    if nout != summ["n_outside_core"] or abs(frac - nout / occ) > 1e-15:
        fail(f"n_outside_core {nout} (fraction {frac}), reference {summ['n_outside_core']}")
    if not 0 < nout < occ:
        fail(f"test does not exercise cores: {nout} of {occ} atom-samples outside")
    ok(f"{nout} of {occ} atom-samples outside every core ({frac:.3f}), as the reference")
    # fewer site changes than nearest assignment on the same trajectory (milestoning)
    run_lmp(BROWNIAN, brownian_vars(dumpfile="traj.dump", mode="rerun", out="nearest.h5",
                                    seed=31), log="log.nearest")
    def hops(path):
        rows = ionmsm("export", path, "--lag-steps", "5").stdout.splitlines()[1:]
        return sum(int(r.split(",")[-1]) for r in rows if r.split(",")[1] != r.split(",")[2])
    hc, hn = hops(h5), hops(os.path.join(ARGS.work, "nearest.h5"))
    if not hc < hn:
        fail(f"core assignment has {hc} site changes at lag 5, nearest {hn}")
    ok(f"site changes at lag 5: core {hc} < nearest {hn}")


def counts_of(path):
    out = {}
    for r in ionmsm("export", path).stdout.splitlines()[1:]:
        t = tuple(map(int, r.split(",")))
        out[t[:6]] = t[6]
    return out


def blocks_of(f):
    """/blocks of an open h5py file as a list of (index, n_samples, occupancy, n_origins,
    {(lag_steps, from, to, sx, sy, sz): count})."""
    g = f["blocks"]
    lags = list(f["lags/lag_steps"][:])
    off = g["row_offset"][:]
    out = []
    for b, idx in enumerate(g["index"][:]):
        rows = {}
        for li, L in enumerate(lags):
            for r in range(off[b * len(lags) + li], off[b * len(lags) + li + 1]):
                rows[(int(L), int(g["from"][r]), int(g["to"][r]))
                     + tuple(int(v) for v in g["shift"][r])] = int(g["count"][r])
        out.append((int(idx), int(g["n_samples"][b]), [int(v) for v in g["occupancy"][b]],
                    [int(v) for v in g["n_origins"][b]], rows))
    return out


def case_group_changes():
    """Atoms leave and re-enter the fix group between runs and others are deleted between runs,
    on 2 ranks: counts and occupancy equal the slow reference (which counts type-1 atoms per
    frame; pairs of samples at which an atom was counted are counted across its absence)."""
    lags = [5, 10, 25, 50, 100]
    run_lmp(os.path.join(HERE, "in.brownian_groups"), {}, nprocs=2)
    h5 = os.path.join(ARGS.work, "counts.h5")
    exp = subprocess.run([ARGS.ionmsm, "export", h5], capture_output=True, text=True).stdout
    ref, summ = slow(os.path.join(ARGS.work, "traj.dump"), 5, lags, [1], ["--sites-types", "2"],
                     os.path.join(ARGS.work, "slow.json"))
    compare_csv(exp, ref, "fix msm with group changes and deletions vs slow reference")
    with h5py.File(h5, "r") as f:
        occ = [int(v) for v in f["sites/occupancy"][:]]
    if occ != summ["occupancy"]:
        fail("occupancy differs from the slow reference")
    with open(os.path.join(ARGS.work, "traj.dump")) as fh:
        text = fh.read()
    if " 3 " not in text:
        fail("no atom left the group: the test does not exercise drop_atom")
    ok(f"counts and occupancy ({sum(occ)} atom-samples) match with atoms leaving, re-entering "
       f"and deleted")


def case_dynamic_group():
    """fix msm on a dynamic group whose members change in the middle of runs, on 2 ranks: counts
    and occupancy equal the slow reference (which reads membership from the dump's v_member)."""
    lags = [5, 10, 25, 50, 100]
    run_lmp(os.path.join(HERE, "in.brownian_dynamic"), {}, nprocs=2)
    h5 = os.path.join(ARGS.work, "counts.h5")
    exp = subprocess.run([ARGS.ionmsm, "export", h5], capture_output=True, text=True).stdout
    ref, summ = slow(os.path.join(ARGS.work, "traj.dump"), 5, lags, [1], ["--sites-types", "2"],
                     os.path.join(ARGS.work, "slow.json"))
    compare_csv(exp, ref, "fix msm on a dynamic group vs slow reference")
    with h5py.File(h5, "r") as f:
        occ = [int(v) for v in f["sites/occupancy"][:]]
    if occ != summ["occupancy"]:
        fail("occupancy differs from the slow reference")
    # every atom is out of the group for some samples: 150 walkers x 241 samples is the total
    # without the dynamic group, so the occupancy must be well below it
    full = 150 * (2 * 600 // 5 + 1)
    if not 0.6 * full < sum(occ) < 0.9 * full:
        fail(f"occupancy {sum(occ)} is not about 3/4 of {full}: membership did not change")
    ok(f"counts and occupancy ({sum(occ)} of {full} atom-samples) match on a dynamic group")


def case_blocks():
    """blocks Nb: MD on 2 ranks (two runs, periodic writes); every block of the file equals the
    slow reference's block (pairs by the block of their later sample) and the blocks sum to the
    totals; ionmsm analyze puts bootstrap error bars on the timescales and D."""
    B = 250
    run_lmp(BROWNIAN, brownian_vars(dumpfile="traj.dump", every=500, extra=f"blocks {B}"),
            nprocs=2)
    ref, summ = slow(os.path.join(ARGS.work, "traj.dump"), 5, LAGS, [1], ["--sites-types", "2"],
                     os.path.join(ARGS.work, "slow.json"), extra=["--block-steps", str(B)])
    exp = ionmsm("export", os.path.join(ARGS.work, "counts.h5")).stdout
    compare_csv(exp, ref, "fix msm with blocks vs slow reference (totals)")
    with h5py.File(os.path.join(ARGS.work, "counts.h5"), "r") as f:
        if int(f.attrs["block_steps"]) != B:
            fail(f"block_steps attribute {f.attrs['block_steps']} != {B}")
        got = blocks_of(f)
    want = summ["blocks"]
    if [str(b[0]) for b in got] != list(want.keys()):
        fail(f"block indices {[b[0] for b in got]} != reference {list(want.keys())}")
    for (idx, ns, occ, orig, rows) in got:
        w = want[str(idx)]
        wrows = {tuple(r[:6]): r[6] for r in w["counts"]}
        if ns != w["n_samples"] or occ != w["occupancy"] or \
                orig != [w["n_origins"][str(L)] for L in LAGS] or rows != wrows:
            fail(f"block {idx} differs from the reference: samples {ns} vs {w['n_samples']}, "
                 f"origins {orig} vs {w['n_origins']}, {len(rows)} vs {len(wrows)} rows")
    ok(f"{len(got)} blocks of {B} steps equal the slow reference block by block")
    # analyze: bootstrap over the blocks
    out = os.path.join(ARGS.work, "analysis")
    ionmsm("analyze", os.path.join(ARGS.work, "counts.h5"), "--out", out, "--no-plots",
           "--bootstrap", "50")
    with open(os.path.join(out, "report.json")) as fh:
        bs = json.load(fh)["bootstrap"]
    # n_blocks counts the resampled blocks (a partial final block is merged into its neighbour)
    if bs["status"] != "ok" or bs["n_file_blocks"] != len(got) or bs["n_replicates"] != 50 or \
            bs["n_blocks"] + bs["n_merged_blocks"] != len(got):
        fail(f"bootstrap section: {bs['status']} {bs.get('message')} n_blocks {bs.get('n_blocks')}"
             f" + merged {bs.get('n_merged_blocks')} != {len(got)} file blocks")
    sel = [x for x in bs["lags"] if x["lag_steps"] == LAGS[0]][0]
    d = sel["D_A2_per_ps"]["total"]
    t1 = sel["timescales_ps"][0]
    if not (d["n"] == 50 and d["std"] > 0 and d["low"] <= d["mean"] <= d["high"]):
        fail(f"bootstrap D at lag {LAGS[0]}: {d}")
    if not (t1["n"] > 0 and t1["std"] > 0 and t1["low"] <= t1["high"]):
        fail(f"bootstrap t1 at lag {LAGS[0]}: {t1}")
    ok(f"bootstrap (50 replicates of {len(got)} blocks): D_total at lag {LAGS[0]} = "
       f"{d['mean']:.4g} +- {d['std']:.2g}, t1 = {t1['mean']:.4g} +- {t1['std']:.2g} ps")


def case_append_blocks():
    """append yes with blocks: the appended file's blocks are the first file's blocks followed by
    the second run's; appending with another block length (or none) is refused."""
    run_lmp(BROWNIAN, brownian_vars(nsteps=600, seed=1, out="a.h5", extra="blocks 200"),
            log="log.a")
    run_lmp(BROWNIAN, brownian_vars(nsteps=800, seed=2, out="b.h5", extra="blocks 200"),
            nprocs=2, log="log.b")
    shutil.copy(os.path.join(ARGS.work, "a.h5"), os.path.join(ARGS.work, "ab.h5"))
    run_lmp(BROWNIAN, brownian_vars(nsteps=800, seed=2, out="ab.h5",
                                    extra="blocks 200 append yes"), nprocs=2, log="log.ab")
    with h5py.File(os.path.join(ARGS.work, "a.h5"), "r") as fa, \
            h5py.File(os.path.join(ARGS.work, "b.h5"), "r") as fb, \
            h5py.File(os.path.join(ARGS.work, "ab.h5"), "r") as fab:
        a, b, ab = blocks_of(fa), blocks_of(fb), blocks_of(fab)
    if ab != a + b:
        fail(f"appended blocks ({len(ab)}) are not a's ({len(a)}) followed by b's ({len(b)})")
    ok(f"appended file: {len(a)} + {len(b)} blocks in order")
    for extra, expect in (("append yes", "block length differs: blocks 200 in the existing file, "
                           "no blocks now"),
                          ("blocks 400 append yes", "block length differs: blocks 200 in the "
                           "existing file, blocks 400 now")):
        rc, text = run_lmp(BROWNIAN, brownian_vars(nsteps=100, out="ab.h5", extra=extra),
                           expect_fail=True, log="log.bad")
        if rc == 0 or expect not in text:
            print(text[-1500:])
            fail(f"appending with '{extra}' was not refused with {expect!r}")
    ok("appending without blocks or with another block length refused")


def case_restart_blocks():
    """restart equivalence with blocks 200 (the restart falls inside a block): identical blocks;
    dropping or changing 'blocks' at the restart is refused."""
    restart_equivalence("blocks 200")


def case_append():
    """append yes: a second run adds its counts, occupancy, n_origins, n_samples and moments
    to the existing file; the result equals the sum of two separate runs. A mismatch is refused."""
    run_lmp(BROWNIAN, brownian_vars(nsteps=600, seed=1, out="a.h5"), log="log.a")
    run_lmp(BROWNIAN, brownian_vars(nsteps=800, seed=2, out="b.h5"), nprocs=2, log="log.b")
    shutil.copy(os.path.join(ARGS.work, "a.h5"), os.path.join(ARGS.work, "ab.h5"))
    run_lmp(BROWNIAN, brownian_vars(nsteps=800, seed=2, out="ab.h5", extra="append yes"),
            nprocs=2, log="log.ab")
    a, b, ab = (counts_of(os.path.join(ARGS.work, f)) for f in ("a.h5", "b.h5", "ab.h5"))
    want = dict(a)
    for k, v in b.items():
        want[k] = want.get(k, 0) + v
    if ab != want:
        fail(f"appended counts differ from the sum ({len(ab)} vs {len(want)} rows)")
    fa, fb, fab = (h5py.File(os.path.join(ARGS.work, f), "r") for f in ("a.h5", "b.h5", "ab.h5"))
    for key in ("lags/n_origins", "sites/occupancy", "lags/total_counts"):
        if list(fab[key][:]) != list(fa[key][:] + fb[key][:]):
            fail(f"{key}: {list(fab[key][:])} != sum")
    if int(fab.attrs["n_samples"]) != int(fa.attrs["n_samples"]) + int(fb.attrs["n_samples"]):
        fail("n_samples is not the sum")
    for key in ("lags/displacement_sum", "lags/displacement_sq_sum"):
        if np.abs(fab[key][:] - fa[key][:] - fb[key][:]).max() > 1e-9 * (1 + np.abs(fab[key][:]).max()):
            fail(f"{key} is not the sum")
    ok(f"appended file = a + b: {sum(ab.values())} counts, n_samples {int(fab.attrs['n_samples'])}")
    for f in (fa, fb, fab):
        f.close()
    # an incompatible run is refused, naming the mismatch
    rc, text = run_lmp(BROWNIAN, brownian_vars(nsteps=100, out="ab.h5", lags="5 10",
                                               extra="append yes"), expect_fail=True, log="log.bad")
    if rc == 0 or "lags differs: (5 10 25 50) in the existing file, (5 10) now" not in text:
        print(text[-1500:])
        fail("appending with other lags was not refused")
    rc, text = run_lmp(BROWNIAN, brownian_vars(nsteps=100, out="ab.h5", nevery=10, lags="10 50",
                                               extra="append yes"), expect_fail=True, log="log.bad2")
    if rc == 0 or "Nevery differs: 5 in the existing file, 10 now" not in text:
        print(text[-1500:])
        fail("appending with another Nevery was not refused")
    ok("appending with other lags or Nevery refused")
    # append yes without an existing file simply starts one
    run_lmp(BROWNIAN, brownian_vars(nsteps=600, seed=1, out="fresh.h5", extra="append yes"),
            log="log.fresh")
    if counts_of(os.path.join(ARGS.work, "fresh.h5")) != a:
        fail("append yes without an existing file differs from a plain run")
    ok("append yes without an existing file = plain run")


def case_kill():
    """lmp writing 'every 50' is killed with SIGKILL after the file was rewritten at least twice:
    the counts file is complete and readable; at most one partial temporary is left."""
    v = brownian_vars(nsteps=2000000, every=50, nparticles=100)
    cmd = [ARGS.lmp, "-in", BROWNIAN, "-log", "log.lammps", "-screen", "none"]
    for k, val in v.items():
        cmd += ["-var", k, str(val)]
    p = subprocess.Popen(cmd, cwd=ARGS.work, env=lmp_env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    h5 = os.path.join(ARGS.work, "counts.h5")
    seen = set()
    t0 = time.time()
    try:
        while len(seen) < 3:
            if p.poll() is not None:
                fail(f"lmp exited early with {p.returncode}")
            if time.time() - t0 > 300:
                fail("the counts file was not rewritten twice within 300 s")
            try:
                st = os.stat(h5)
                seen.add((st.st_ino, st.st_mtime_ns))
            except FileNotFoundError:
                pass
            time.sleep(0.01)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    ok(f"killed lmp (SIGKILL) after {len(seen)} versions of the counts file")
    info = ionmsm("info", h5).stdout
    if "ionmsm-counts" not in info:
        fail("ionmsm info does not describe the file")
    with h5py.File(h5, "r") as f:
        n = int(f.attrs["n_samples"])
        if n < 2 or f["lags/lag_steps"].shape[0] != len(LAGS):
            fail(f"file content after kill: n_samples {n}")
    tmps = [f for f in os.listdir(ARGS.work) if ".tmp." in f]
    if len(tmps) > 1:
        fail(f"more than one temporary left: {tmps}")
    ok(f"file readable by ionmsm info and h5py (n_samples {n}); temporaries left: {tmps}")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def main():
    global ARGS
    ap = driver_parser(CASES)
    ap.add_argument("--bad-plugin", default="")
    ap.add_argument("--old-plugin", default="")
    ap.add_argument("--src", default=os.path.dirname(os.path.dirname(HERE)))
    ARGS = ap.parse_args()
    run_case(CASES, ARGS)


if __name__ == "__main__":
    main()
