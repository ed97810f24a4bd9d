#!/usr/bin/env python3
"""Production faults of fix msm and the counts file (issue 21), end to end with the real lmp.

Usage: test_faults.py CASE --lmp LMP --plugin-dir DIR --ionmsm IONMSM --work DIR

Cases that need a tiny tmpfs (a full or read-only disk) mount one under the work directory;
where mounting is not permitted (not root, no tmpfs) they print SKIP naming what is missing and
exit 77, which ctest reports as skipped. Every mount is unmounted again (try/finally).
"""
import errno
import hashlib
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
SKIP = 77

# The Brownian cosine model of in.brownian (200 particles on a simple cubic lattice of 64 sites),
# with a single run by default; {body} holds the fix msm line(s) and the runs.
HEADER = """units metal
atom_style atomic
boundary p p p
atom_modify map array sort 1 0.0
region box block 0 8 0 8 0 8
create_box 2 box
lattice sc 2.0 origin 0.5 0.5 0.5
create_atoms 2 box
create_atoms 1 random 200 {seed} box
mass * 6.941
pair_style zero 3.0
pair_coeff * *
group mobile type 1
group sites type 2
timestep 0.001
"""
DYNAMICS = """variable fx atom 0.08*PI/2.0*sin(2*PI*x/2.0)
variable fy atom 0.08*PI/2.0*sin(2*PI*y/2.0)
variable fz atom 0.08*PI/2.0*sin(2*PI*z/2.0)
variable gamma equal 8.617333262e-5*500*9648.5332/10.0
fix f mobile addforce v_fx v_fy v_fz
fix bd mobile brownian 500 {seed} gamma_t ${{gamma}} rng gaussian
thermo 100
thermo_modify flush yes
"""
FIX = "fix {id} mobile msm 5 sites group sites lags 5 10 25 50 file {out} {extra}"


def deck(name, body, seed=4242):
    path = os.path.join(ARGS.work, name)
    with open(path, "w") as fh:
        fh.write(HEADER.format(seed=seed) + DYNAMICS.format(seed=seed) + body + "\n")
    return path


def lmp_cmd(infile, log):
    return [ARGS.lmp, "-in", infile, "-log", log, "-screen", "none"]


def run_lmp(infile, log, expect_rc=0):
    """Runs lmp; returns (rc, stdout + stderr + log). expect_rc None: any exit status."""
    p = subprocess.run(lmp_cmd(infile, log), cwd=ARGS.work, env=lammps_env(ARGS.plugin_dir),
                       capture_output=True, text=True, timeout=600)
    text = p.stdout + p.stderr + read(log)
    if p.returncode < 0 or p.returncode > 128:
        print(text[-3000:])
        fail(f"lmp crashed on {infile} (exit status {p.returncode})")
    if expect_rc is not None and p.returncode != expect_rc:
        print(text[-3000:])
        fail(f"lmp -in {os.path.basename(infile)} exited {p.returncode}, expected {expect_rc}")
    return p.returncode, text


def read(name):
    path = os.path.join(ARGS.work, name)
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as fh:
        return fh.read()


def ionmsm(*args, expect=0):
    p = subprocess.run([ARGS.ionmsm, *args], cwd=ARGS.work, capture_output=True, text=True,
                       timeout=300)
    if expect is not None and p.returncode != expect:
        print(p.stdout[-2000:], p.stderr[-2000:])
        fail(f"ionmsm {' '.join(args)} exited {p.returncode}, expected {expect}")
    return p.stdout + p.stderr


def export(name):
    return ionmsm("export", name)


def need(text, *parts, what=""):
    for part in parts:
        if part not in text:
            print(text[-3000:])
            fail(f"{what}: {part!r} not in the output")


def sha(name):
    with open(os.path.join(ARGS.work, name), "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def n_samples(name):
    with h5py.File(os.path.join(ARGS.work, name), "r") as f:
        return int(f.attrs["n_samples"])


def leftovers(directory):
    return [n for n in os.listdir(os.path.join(ARGS.work, directory)) if ".tmp." in n]


# ---------------------------------------------------------------------------- tiny tmpfs

class TinyDisk:
    """A tmpfs of `size` under the work directory, unmounted on exit."""

    def __init__(self, name, size):
        self.path = os.path.join(ARGS.work, name)
        self.size = size
        self.mounted = False

    def __enter__(self):
        os.makedirs(self.path, exist_ok=True)
        if os.geteuid() != 0:
            print(f"SKIP: mounting a tmpfs needs root (this is uid {os.geteuid()})", flush=True)
            sys.exit(SKIP)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs",
                            self.path], capture_output=True, text=True)
        if p.returncode != 0:
            print(f"SKIP: cannot mount a tmpfs here ({p.stderr.strip()})", flush=True)
            sys.exit(SKIP)
        self.mounted = True
        return self

    def fill(self):
        """Writes filler files until the disk is full (unbuffered: every byte that fits)."""
        for name, block in (("filler", 65536), ("filler2", 1)):
            fd = os.open(os.path.join(self.path, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            try:
                while True:
                    os.write(fd, b"\0" * block)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
            finally:
                os.close(fd)

    def free(self):
        for n in ("filler", "filler2"):
            p = os.path.join(self.path, n)
            if os.path.exists(p):
                os.remove(p)

    def __exit__(self, *exc):
        if self.mounted:
            subprocess.run(["umount", "-l", self.path], capture_output=True)
        return False


# ---------------------------------------------------------------------------- cases

def case_disk_full():
    """The disk fills mid-run after the first checkpoint and is freed later: the failed
    checkpoints are warnings (no crash), the next checkpoint succeeds, and the final counts
    equal those of an undisturbed run."""
    nsteps = 8000
    body = FIX + " every 100\nrun {n}\n"
    ref = deck("in.ref", body.format(id="m", out="ref.h5", extra="", n=nsteps))
    run_lmp(ref, "log.ref")
    with TinyDisk("small", "1m") as disk:
        faulted = deck("in.faulted", body.format(id="m", out="small/c.h5", extra="", n=nsteps))
        p = subprocess.Popen(lmp_cmd(faulted, "log.faulted"), cwd=ARGS.work,
                             env=lammps_env(ARGS.plugin_dir), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        try:
            target = os.path.join(disk.path, "c.h5")
            t0 = time.time()
            while not os.path.exists(target) and p.poll() is None and time.time() - t0 < 300:
                time.sleep(0.002)
            # lmp waits while the disk fills (SIGSTOP): its next checkpoint meets a full disk
            os.kill(p.pid, signal.SIGSTOP)
            disk.fill()
            os.kill(p.pid, signal.SIGCONT)
            while p.poll() is None and "checkpoint at step" not in read("log.faulted"):
                time.sleep(0.002)
            os.kill(p.pid, signal.SIGSTOP)   # space comes back while lmp waits
            disk.free()
            os.kill(p.pid, signal.SIGCONT)
            out, _ = p.communicate(timeout=600)
        finally:
            if p.poll() is None:
                p.kill()
        text = out + read("log.faulted")
        if p.returncode != 0:
            print(text[-3000:])
            fail(f"lmp exited {p.returncode} although space came back before the end of the run")
        need(text, "WARNING: Fix msm m: checkpoint at step", "No space left on device",
             "small/c.h5", "the counts stay in memory", "written again at step",
             what="full disk at a checkpoint")
        full = len(re.findall(r"checkpoint at step \d+ failed: ", text))
        short = len(re.findall(r"checkpoint at step \d+ failed as well", text))
        if full != 1:
            fail(f"the cause was reported in full {full} times, expected once")
        ok(f"full disk: 1 full warning, {short} one-line repeats, then written again")
        if leftovers("small"):
            fail(f"temporary files left on the full disk: {leftovers('small')}")
        if export("small/c.h5") != export("ref.h5"):
            fail("final counts after the full disk differ from the undisturbed run")
        ionmsm("verify", "small/c.h5")
        ok("final counts equal the undisturbed run's; no temporary left; file verifies")


def case_disk_errors():
    """A full disk at the end of a run, and a read-only disk: checkpoints warn, the final write
    is a LAMMPS error (exit status 1, no crash) naming the file and the cause, and the previous
    counts file stays intact and readable."""
    with TinyDisk("small", "1m") as disk:
        body = (FIX + " every 100\nrun 200\n"
                "shell dd if=/dev/zero of=small/filler bs=4096\n"
                "shell dd if=/dev/zero of=small/filler2 bs=1\n"
                "run 300\n").format(id="m", out="small/c.h5", extra="")
        rc, text = run_lmp(deck("in.full", body), "log.full", expect_rc=1)
        need(text, "checkpoint at step 300 failed", "No space left on device",
             "checkpoint at step 400 failed as well",
             "ERROR", "Fix msm m: the write at the end of the run failed",
             "cannot write counts file 'small/c.h5'", what="full disk at the end of a run")
        if "Segmentation fault" in text or "Signal:" in text:
            fail("crash after a failed final write")
        if leftovers("small"):
            fail(f"temporary files left: {leftovers('small')}")
        disk.free()
        ionmsm("verify", "small/c.h5")
        if n_samples("small/c.h5") != 41:
            fail(f"the kept file has {n_samples('small/c.h5')} samples, expected 41 (steps 0-200)")
        ok("full disk at the end of a run: ERROR, exit 1, previous file (41 samples) intact")
        os.remove(os.path.join(disk.path, "c.h5"))
        body = (FIX + " every 100\nrun 200\n"
                "shell mount -o remount,ro small\n"
                "run 200\n").format(id="m", out="small/c.h5", extra="")
        try:
            rc, text = run_lmp(deck("in.ro", body), "log.ro", expect_rc=1)
        finally:
            subprocess.run(["mount", "-o", "remount,rw", disk.path], capture_output=True)
        need(text, "checkpoint at step 300 failed", "Read-only file system",
             "Fix msm m: the write at the end of the run failed", what="read-only disk")
        ionmsm("verify", "small/c.h5")
        if n_samples("small/c.h5") != 41:
            fail("the file written before the disk became read-only changed")
        ok("read-only disk: warnings at checkpoints, ERROR at the end, previous file intact")


def case_vanished():
    """The output directory vanishes between runs: checkpoint warnings, then an error naming the
    directory; a counts file deleted between runs is simply written again."""
    os.makedirs(os.path.join(ARGS.work, "out"))
    body = (FIX + " every 100\nrun 200\nshell rm out/c.h5\nrun 200\n").format(
        id="m", out="out/c.h5", extra="")
    run_lmp(deck("in.gone_file", body), "log.gone_file")
    if n_samples("out/c.h5") != 81:
        fail("a counts file deleted between runs was not written again in full")
    ok("counts file deleted between runs: written again with all 81 samples")
    body = (FIX + " every 100\nrun 200\nshell rm out/c.h5\nshell rmdir out\nrun 200\n").format(
        id="m", out="out/c.h5", extra="overwrite yes")
    _, text = run_lmp(deck("in.gone_dir", body), "log.gone_dir", expect_rc=1)
    need(text, "checkpoint at step 300 failed", "directory 'out' does not exist",
         "Fix msm m: the write at the end of the run failed", what="vanished directory")
    ok("vanished directory: warnings at checkpoints, ERROR naming it at the end of the run")


def case_locked():
    """A counts file locked by a writer (h5py, HDF5 file locking): readers stop with a message
    naming the file, nothing crashes."""
    run_lmp(deck("in.make", (FIX + "\nrun 200\n").format(id="m", out="c.h5", extra="")), "log.make")
    if os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() == "FALSE":
        print("SKIP: HDF5_USE_FILE_LOCKING=FALSE turns HDF5 file locking off", flush=True)
        sys.exit(SKIP)
    holder = h5py.File(os.path.join(ARGS.work, "c.h5"), "r+")
    try:
        p = subprocess.run([ARGS.ionmsm, "info", "c.h5"], cwd=ARGS.work, capture_output=True,
                           text=True)
        if p.returncode == 0:
            print("SKIP: this file system does not enforce HDF5 file locks", flush=True)
            sys.exit(SKIP)
        need(p.stdout + p.stderr, "c.h5", "lock", what="ionmsm info on a locked file")
        if p.returncode != 1:
            fail(f"ionmsm info on a locked file exited {p.returncode}, expected 1")
        _, text = run_lmp(deck("in.append", (FIX + "\nrun 100\n").format(
            id="m", out="c.h5", extra="append yes")), "log.append", expect_rc=1)
        need(text, "cannot append to 'c.h5'", "lock", what="append yes onto a locked file")
    finally:
        holder.close()
    ionmsm("verify", "c.h5")
    ok("locked file: ionmsm info and append yes stop with messages naming it; file intact")


def case_two_writers():
    """Two fix msm instances on one file (also spelled differently) are an error naming both
    IDs, also with append yes; two files are fine."""
    os.makedirs(os.path.join(ARGS.work, "sub"))
    two = FIX.format(id="m1", out="same.h5", extra="") + "\n" + \
        FIX.format(id="m2", out="sub/../same.h5", extra="{extra}") + "\nrun 100\n"
    _, text = run_lmp(deck("in.two", two.format(extra="")), "log.two", expect_rc=1)
    need(text, "Fix msm m1 and fix msm m2 both write the counts file 'sub/../same.h5'",
         what="two fixes on one file")
    _, text = run_lmp(deck("in.two_app", two.format(extra="append yes")), "log.two_app",
                      expect_rc=1)
    need(text, "Fix msm m2: append yes cannot add to 'sub/../same.h5': fix msm m1 writes",
         what="append yes onto another fix's file")
    if os.path.exists(os.path.join(ARGS.work, "same.h5")):
        fail("a counts file was written although the input was refused")
    fine = FIX.format(id="m1", out="a.h5", extra="") + "\n" + \
        FIX.format(id="m2", out="b.h5", extra="") + "\nrun 100\n"
    run_lmp(deck("in.fine", fine), "log.fine")
    if export("a.h5") != export("b.h5"):
        fail("two fixes with the same arguments on two files counted differently")
    ok("two writers on one file refused naming both IDs; two files count identically")


def case_overwrite():
    """An existing counts file is never replaced without a choice; the messages say what
    happens (append, overwrite, continuing a restart); a changed fix ID after read_restart is
    named."""
    first = deck("in.first", (FIX + "\nrun 1000\n").format(id="m", out="c.h5", extra=""))
    run_lmp(first, "log.first")
    before = sha("c.h5")
    second = deck("in.second", (FIX + "\nrun 10\n").format(id="m", out="c.h5", extra=""))
    _, text = run_lmp(second, "log.second", expect_rc=1)
    need(text, "Fix msm m: the counts file 'c.h5' already exists", "'append yes'",
         "'overwrite yes'", what="existing file without a choice")
    if sha("c.h5") != before:
        fail("the refused run changed the existing counts file")
    ok("existing 201-sample file: a new run without append/overwrite is refused, file unchanged")
    for extra, msg, want in (("append yes", "adding this run's counts to the 201 samples "
                              "(steps 0 to 1000) in c.h5", 201 + 3),
                             ("overwrite yes", "replacing the existing counts file c.h5", 3)):
        d = deck(f"in.{extra.split()[0]}", (FIX + "\nrun 10\n").format(id="m", out="c.h5",
                                                                        extra=extra))
        _, text = run_lmp(d, f"log.{extra.split()[0]}")
        need(text, msg, what=extra)
        if n_samples("c.h5") != want:
            fail(f"{extra}: {n_samples('c.h5')} samples, expected {want}")
        ok(f"{extra}: '{msg}', {want} samples")
    # read_restart with the same fix and append yes: continuing, nothing added twice
    part1 = deck("in.part1", (FIX + "\nrun 500\nwrite_restart r.restart\n").format(
        id="m", out="d.h5", extra="append yes"))
    run_lmp(part1, "log.part1")
    restart_body = ("read_restart r.restart\npair_style zero 3.0\npair_coeff * *\n"
                    "variable fx atom 0.08*PI/2.0*sin(2*PI*x/2.0)\n"
                    "variable fy atom 0.08*PI/2.0*sin(2*PI*y/2.0)\n"
                    "variable fz atom 0.08*PI/2.0*sin(2*PI*z/2.0)\n"
                    "fix f mobile addforce v_fx v_fy v_fz\n"
                    "fix bd mobile brownian 500 7 gamma_t 41.5723 rng gaussian\n"
                    + FIX + "\nrun 100\n")
    with open(os.path.join(ARGS.work, "in.part2"), "w") as fh:
        fh.write(restart_body.format(id="m", out="d.h5", extra="append yes"))
    _, text = run_lmp(os.path.join(ARGS.work, "in.part2"), "log.part2")
    need(text, "Fix msm m: continuing the counts of the restart file (101 samples, steps 0 to "
         "500)", "append yes adds nothing", what="read_restart + append yes")
    if "adding this run's counts" in text or "appending" in text:
        fail("after read_restart the fix claims to append")
    if n_samples("d.h5") != 121:
        fail(f"restart + append yes: {n_samples('d.h5')} samples, expected 101 + 20 = 121")
    ok("read_restart + append yes: 'continuing the counts of the restart file', 121 samples")
    # a changed fix ID after read_restart
    with open(os.path.join(ARGS.work, "in.part2b"), "w") as fh:
        fh.write(restart_body.format(id="m2", out="d.h5", extra=""))
    _, text = run_lmp(os.path.join(ARGS.work, "in.part2b"), "log.part2b", expect_rc=1)
    need(text, "Fix msm m2: the restart file holds the counts of fix msm 'm', which no fix "
         "continues", "Fix msm m2: the counts file 'd.h5' already exists",
         "define the fix with ID 'm'", what="changed fix ID after read_restart")
    with open(os.path.join(ARGS.work, "in.part2c"), "w") as fh:
        fh.write(restart_body.format(id="m2", out="e.h5", extra=""))
    _, text = run_lmp(os.path.join(ARGS.work, "in.part2c"), "log.part2c")
    need(text, "WARNING: Fix msm m2: the restart file holds the counts of fix msm 'm'",
         what="changed fix ID, new file")
    if n_samples("e.h5") != 21:
        fail("a fix with a new ID after read_restart did not start from zero")
    ok("changed fix ID after read_restart: named in a warning (and in the error for d.h5)")


def quiet_lines(text):
    return [(int(q), int(a)) for q, a in
            re.findall(r"(\d+) of (\d+) atom-samples on the quiet path", text)]


def case_restart_quiet():
    """After read_restart the quiet path resumes at once: the continued run's quiet
    atom-samples equal those of the same steps in an uninterrupted run, and so do the counts.
    Positions come from one dump (rerun), so both routes see identical trajectories."""
    dump = "dump d all custom 5 traj.dump id type x y z ix iy iz\n" \
           "dump_modify d sort id format float %.17g\n"
    run_lmp(deck("in.md", (FIX + "\n" + dump + "run 1500\n").format(id="m", out="md.h5",
                                                                   extra="")), "log.md")
    rerun = "rerun traj.dump {sel} dump x y z ix iy iz box yes\n"
    fixline = FIX.format(id="m", out="{out}", extra="")
    nodyn = HEADER.format(seed=4242)
    with open(os.path.join(ARGS.work, "in.whole"), "w") as fh:
        fh.write(nodyn + fixline.format(out="whole.h5") + "\n" + rerun.format(sel="last 750")
                 + rerun.format(sel="first 755"))
    with open(os.path.join(ARGS.work, "in.p1"), "w") as fh:
        fh.write(nodyn + fixline.format(out="split.h5") + "\n" + rerun.format(sel="last 750")
                 + "write_restart p1.restart\n")
    with open(os.path.join(ARGS.work, "in.p2"), "w") as fh:
        fh.write("read_restart p1.restart\npair_style zero 3.0\npair_coeff * *\n"
                 + fixline.format(out="split.h5") + "\n" + rerun.format(sel="first 755"))
    _, whole = run_lmp(os.path.join(ARGS.work, "in.whole"), "log.whole")
    run_lmp(os.path.join(ARGS.work, "in.p1"), "log.p1")
    _, p2 = run_lmp(os.path.join(ARGS.work, "in.p2"), "log.p2")
    need(p2, "continuing the counts of the restart file", what="restart")
    w = quiet_lines(whole)
    s = quiet_lines(read("log.p2"))
    if len(w) != 2 or len(s) != 1:
        fail(f"expected 2 + 1 quiet-path lines, got {w} and {s}")
    (wq, wa), (sq, sa) = w[1], s[0]
    print(f"quiet path after the restart: {sq} of {sa}; same steps uninterrupted: {wq} of {wa}")
    if sa != wa or sq != wq:
        fail(f"after read_restart {sq} of {sa} atom-samples took the quiet path, "
             f"uninterrupted {wq} of {wa}")
    if not sq > 0.5 * sa:
        fail(f"the quiet path is hardly used ({sq} of {sa}): the test would not notice")
    if export("split.h5") != export("whole.h5"):
        fail("counts after the restart differ from the uninterrupted run")
    ok(f"quiet path after read_restart: {sq} of {sa} atom-samples, as uninterrupted; "
       "counts equal")


def case_sites():
    """Fractional coordinates read as Cartesian (no 'coordinates fractional' line) give
    warnings naming the file; the correct file gives none."""
    coords = "".join(f"{(i + 0.5) / 4:.6f} {(j + 0.5) / 4:.6f} {(k + 0.5) / 4:.6f}\n"
                     for i in range(4) for j in range(4) for k in range(4))
    with open(os.path.join(ARGS.work, "frac_no_kw.txt"), "w") as fh:
        fh.write(coords)
    with open(os.path.join(ARGS.work, "frac.txt"), "w") as fh:
        fh.write("coordinates fractional\n" + coords)
    fix = "fix m mobile msm 5 sites file {f} lags 5 10 file {out}\nrun 100\n"
    _, text = run_lmp(deck("in.bad_sites", fix.format(f="frac_no_kw.txt", out="bad.h5")),
                      "log.bad_sites")
    need(text, "WARNING: Fix msm m: all 64 sites in 'frac_no_kw.txt' lie inside the unit cube",
         "coordinates fractional", what="fractional sites read as Cartesian")
    # misplaced sites: 60 of 64 squeezed into a 0.03 A cube at the box centre (as after a
    # wrong length unit), 4 spread over the box: the 200 atoms crowd onto a few of them
    crowd = "".join(f"{4 + 0.01 * i:.3f} {4 + 0.01 * j:.3f} {4 + 0.01 * k:.3f}\n"
                    for i in range(4) for j in range(4) for k in range(4))
    crowd = "".join(crowd.splitlines(True)[:60])
    crowd += "1.0 1.0 1.0\n1.0 5.0 5.0\n5.0 1.0 5.0\n5.0 5.0 1.0\n"
    with open(os.path.join(ARGS.work, "crowded.txt"), "w") as fh:
        fh.write(crowd)
    _, text = run_lmp(deck("in.crowded", fix.format(f="crowded.txt", out="crowded.h5")),
                      "log.crowded")
    need(text, "WARNING: Fix msm m: only", "sites were occupied by 200 atoms in the first "
         "samples", "(sites file 'crowded.txt')", what="crowded sites")
    _, text = run_lmp(deck("in.good_sites", fix.format(f="frac.txt", out="good.h5")),
                      "log.good_sites")
    if "unit cube" in text or "crowd" in text:
        fail("warnings for a correct sites file")
    ok("fractional sites read as Cartesian and crowded sites: warnings naming the file; none "
       "for a good file")


def case_damaged():
    """A flipped count in a file without blocks is caught by its checksum: ionmsm verify, info,
    export and fix msm append yes all name the file as damaged. An older file without checksums
    stays readable."""
    run_lmp(deck("in.make", (FIX + "\nrun 500\n").format(id="m", out="c.h5", extra="")),
            "log.make")
    text = ionmsm("verify", "c.h5")
    need(text, "c.h5: OK", "carry Fletcher-32 checksums", what="verify an intact file")
    shutil.copy(os.path.join(ARGS.work, "c.h5"), os.path.join(ARGS.work, "d.h5"))
    with h5py.File(os.path.join(ARGS.work, "d.h5"), "r") as f:
        if "blocks" in f:
            fail("test bug: the file has blocks")
        offset = f["counts/count"].id.get_chunk_info(0).byte_offset
    with open(os.path.join(ARGS.work, "d.h5"), "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ 0x01]))
    text = ionmsm("verify", "d.h5", expect=1)
    need(text, "d.h5: DAMAGED", "'/counts/count'", "checksum", what="verify a flipped count")
    for verb in ("info", "export"):
        need(ionmsm(verb, "d.h5", expect=1), "'d.h5'", "damaged", what=f"ionmsm {verb}")
    _, text = run_lmp(deck("in.append", (FIX + "\nrun 10\n").format(
        id="m", out="d.h5", extra="append yes")), "log.append", expect_rc=1)
    need(text, "cannot append to 'd.h5'", "damaged", what="append yes onto a damaged file")
    ok("flipped count without blocks: verify, info, export, append yes all report 'damaged'")
    # an older file: the same datasets, contiguous, without checksums
    with h5py.File(os.path.join(ARGS.work, "c.h5"), "r") as src, \
            h5py.File(os.path.join(ARGS.work, "old.h5"), "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v

        def copy(name, obj):
            if isinstance(obj, h5py.Dataset):
                dst.create_dataset(name, data=obj[()], dtype=obj.dtype)
            else:
                dst.require_group(name)
        src.visititems(copy)
    with h5py.File(os.path.join(ARGS.work, "old.h5"), "r") as f:
        if f["counts/count"].fletcher32 or f["counts/count"].chunks:
            fail("test bug: the old-style copy has checksums")
    need(ionmsm("verify", "old.h5"), "old.h5: OK", "no checksums", what="verify an old file")
    if export("old.h5") != export("c.h5"):
        fail("an old file without checksums reads differently")
    ok("older file without checksums: readable, verify says 'no checksums'")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def main():
    global ARGS
    ap = driver_parser(CASES)
    ARGS = ap.parse_args()
    small = os.path.join(ARGS.work, "small")
    if os.path.ismount(small):
        subprocess.run(["umount", "-l", small], capture_output=True)
    run_case(CASES, ARGS)


if __name__ == "__main__":
    main()
