#!/usr/bin/python3
"""Integration tests: the real lmp with the ionmsm plugin, on 1-4 MPI ranks.

Usage: itest.py CASE --lmp LMP --plugin-dir DIR --ionmsm IONMSM --src SRC --work DIR
Each case prints what it checked and exits non-zero on the first failure.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ARGS = None


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def ok(msg):
    print(f"ok: {msg}", flush=True)


def lmp_env():
    env = dict(os.environ)
    env["LAMMPS_PLUGIN_PATH"] = ARGS.plugin_dir
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
    env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


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


def slow(dump, nevery, lags, types, sites_args, summary):
    cmd = [sys.executable, os.path.join(HERE, "slow_counts.py"), dump, "--nevery", str(nevery),
           "--lags", *map(str, lags), "--types", *map(str, types), *sites_args,
           "--summary", summary]
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


# ---------------------------------------------------------------------------- cases

def case_md_vs_slow():
    """MD on 2 ranks, sorting every step (migration + copy_arrays), counts == slow reference."""
    run_lmp(BROWNIAN, brownian_vars(dumpfile="traj.dump"), nprocs=2)
    exp = subprocess.run([ARGS.ionmsm, "export", os.path.join(ARGS.work, "counts.h5")],
                         capture_output=True, text=True).stdout
    ref, summ = slow(os.path.join(ARGS.work, "traj.dump"), 5, LAGS, [1], ["--sites-types", "2"],
                     os.path.join(ARGS.work, "slow.json"))
    compare_csv(exp, ref, "fix msm (2 ranks, MD) vs slow reference")
    check_h5_against_summary(os.path.join(ARGS.work, "counts.h5"), summ, LAGS, 150)
    hops = sum(int(r.split(",")[-1]) for r in ref.splitlines()[1:]
               if r.split(",")[0] == "5" and r.split(",")[1] != r.split(",")[2])
    if hops < 20:
        fail(f"only {hops} site changes at lag 5: the test model does not exercise hopping")
    ok(f"{hops} site changes at the shortest lag")


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


def case_version_check():
    """A plugin built for another LAMMPS version refuses to load with a clear message."""
    bad = ARGS.bad_plugin
    deck = os.path.join(ARGS.work, "in.version")
    with open(deck, "w") as fh:
        fh.write(f"plugin load {bad}\n")
    env_dir = ARGS.plugin_dir
    ARGS.plugin_dir = ""  # do not auto-load the good plugin
    rc, text = run_lmp(deck, {}, expect_fail=True)
    ARGS.plugin_dir = env_dir
    if rc == 0:
        fail("lmp accepted a plugin built for another LAMMPS version")
    if "ionmsm plugin was built for LAMMPS version '1 Jan 2000'" not in text or \
            "rebuild ionmsmplugin.so" not in text:
        print(text[-2000:])
        fail("version mismatch message not found")
    ok("plugin built for '1 Jan 2000' refused with a clear message")


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
]


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
    write_lattice_sites("sites.txt", 2.0, 4, tilt=False)
    sites = dict(sitesmode="file", sitesfile="sites.txt")
    run_lmp(BROWNIAN, brownian_vars(dumpfile="traj.dump", nsteps=1500, seed=99, **sites))
    run_lmp(BROWNIAN, brownian_vars(dumpfile="traj.dump", mode="rerun", out="full.h5", seed=99,
                                    **sites), nprocs=2, log="log.full")
    full = subprocess.run([ARGS.ionmsm, "export", os.path.join(ARGS.work, "full.h5")],
                          capture_output=True, text=True).stdout
    fixline = "fix m mobile msm 5 sites file sites.txt lags 5 10 25 50 file {out}"
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
        for f in ("split.h5", "part1.restart"):
            if os.path.exists(os.path.join(ARGS.work, f)):
                os.remove(os.path.join(ARGS.work, f))
        run_lmp(os.path.join(ARGS.work, "in.part1"),
                brownian_vars(dumpfile="traj.dump", mode="rerun", out="part1.h5", seed=99,
                              **sites), nprocs=before, log="log.part1")
        run_lmp(os.path.join(ARGS.work, "in.part2"), {}, nprocs=after, log="log.part2")
        split = subprocess.run([ARGS.ionmsm, "export", os.path.join(ARGS.work, "split.h5")],
                               capture_output=True, text=True).stdout
        compare_csv(split, full, f"restart {before} -> {after} ranks vs uninterrupted")
        with h5py.File(os.path.join(ARGS.work, "split.h5"), "r") as a, \
                h5py.File(os.path.join(ARGS.work, "full.h5"), "r") as b:
            for key in ("lags/n_origins", "sites/occupancy"):
                if list(a[key][:]) != list(b[key][:]):
                    fail(f"{key} differs after restart {before} -> {after}")
            for key in ("n_samples", "first_step", "last_step"):
                if a.attrs[key] != b.attrs[key]:
                    fail(f"{key}: {a.attrs[key]} vs {b.attrs[key]}")
        ok(f"restart {before} -> {after}: n_origins, occupancy, clock identical")
    # a changed argument is refused
    bad = part2.replace("lags 5 10 25 50", "lags 5 10 25")
    with open(os.path.join(ARGS.work, "in.bad"), "w") as fh:
        fh.write(bad)
    rc, text = run_lmp(os.path.join(ARGS.work, "in.bad"), {}, expect_fail=True, log="log.bad")
    if rc == 0 or "lags were 5 10 25 50 in the restart file but are 5 10 25 now" not in text:
        print(text[-1500:])
        fail("changed lags after restart were not refused")
    ok("changed lags after a restart refused")


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


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--lmp", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--ionmsm", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--bad-plugin", default="")
    ap.add_argument("--src", default=os.path.dirname(os.path.dirname(HERE)))
    ARGS = ap.parse_args()
    shutil.rmtree(ARGS.work, ignore_errors=True)
    os.makedirs(ARGS.work)
    CASES[ARGS.case]()
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
