#!/usr/bin/python3
"""Integration tests of site discovery (`ionmsm sites`, docs/site-discovery.md).

Usage: test_sites.py CASE --lmp LMP --plugin-dir DIR --ionmsm IONMSM --src SRC --work DIR

Cases:
  wells    non-interacting Brownian ions among Gaussian wells at known random positions in a
           triclinic cell (examples/landscape): LAMMPS accumulates the density (fix ave/grid,
           dump grid) on 1 rank (one column, sorted) and on 2 ranks (grid-ID column, unsorted);
           every well is found within a tenth of its width, with no extra sites; --seed keeps
           the seeds first and adds only the others; fix msm runs on the found sites.
  errors   foreign, truncated and malformed input and bad options: a clear error naming the
           file or option, exit status 1 or 2, no sites file written.
  example  examples/landscape/run.sh in shortened form (label examples).
"""
import os
import re
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from itest_common import driver_parser, fail, lammps_env, ok, run_case  # noqa: E402

ARGS = None
WIDTH = 0.5  # well width w of make_landscape.py (A)


def landscape_dir():
    return os.path.join(ARGS.src, "examples", "landscape")


def run(cmd, cwd, expect=0, timeout=600):
    p = subprocess.run(cmd, cwd=cwd, env=lammps_env(ARGS.plugin_dir), capture_output=True,
                       text=True, timeout=timeout)
    if p.returncode != expect:
        print(p.stdout[-3000:], p.stderr[-3000:])
        fail(f"{' '.join(map(str, cmd))} exited {p.returncode}, expected {expect}")
    return p


def compare_module():
    sys.path.insert(0, landscape_dir())
    import compare_sites  # noqa: E402
    return compare_sites


def make_landscape(work, wells=8, seed=31):
    os.makedirs(work, exist_ok=True)
    run(["/usr/bin/python3", os.path.join(landscape_dir(), "make_landscape.py"), "--out", ".",
         "--wells", str(wells), "--seed", str(seed), "--cell", "10 9 8 2 -1.5 1",
         "--min-separation", "3.0", "--width", str(WIDTH), "--depths-kT", "5 6"], work)


def density_run(work, np_ranks, grid_ids, grid_file):
    cmd = [ARGS.lmp, "-in", os.path.join(landscape_dir(), "in.landscape"), "-screen", "none",
           "-log", grid_file + ".log", "-var", "stage", "density", "-var", "nions", "300",
           "-var", "neq", "2000", "-var", "naccum", "20000", "-var", "grid", "50 45 40",
           "-var", "grid_file", grid_file, "-var", "grid_ids", str(grid_ids),
           "-var", "seed", str(100 + np_ranks)]
    if np_ranks > 1:
        cmd = ["mpirun", "-np", str(np_ranks)] + cmd
    run(cmd, work)


def check_found(work, sites_file, cs, what):
    h = cs.read_cell(os.path.join(work, "landscape.lmp"))
    wells, _, _ = cs.read_sites(os.path.join(work, "wells.txt"))
    sites, labels, occ = cs.read_sites(os.path.join(work, sites_file))
    nearest, matched, extra = cs.compare(h, wells, sites, 0.5 * WIDTH)
    if len(sites) != len(wells) or not matched.all() or extra.any():
        fail(f"{what}: {len(sites)} sites for {len(wells)} wells; nearest distances "
             f"{np.round(nearest, 3)}; extra sites {np.flatnonzero(extra)}")
    if nearest.max() > 0.1 * WIDTH:
        fail(f"{what}: a well is {nearest.max():.4f} A from its site (> 0.1 w = {0.1 * WIDTH})")
    if not np.all(occ > 1.0):
        fail(f"{what}: occupancies {occ}")
    ok(f"{what}: {len(wells)} wells found, largest offset {nearest.max():.4f} A "
       f"({nearest.max() / WIDTH:.3f} w), no extra sites; occupancies {np.round(occ, 1)}")
    return sites, labels, occ


def case_wells():
    work = ARGS.work
    make_landscape(work)
    cs = compare_module()
    density_run(work, 1, 0, "dens1.grid")
    density_run(work, 2, 1, "dens2.grid")
    for grid, np_ranks in (("dens1.grid", 1), ("dens2.grid", 2)):
        out = grid.replace(".grid", "_sites.txt")
        p = run([ARGS.ionmsm, "sites", grid, "--out", out, "--min-separation", "1.5",
                 "--min-occupancy", "1.0"], work)
        print(p.stdout, end="")
        check_found(work, out, cs, f"{np_ranks} rank(s), {grid}")
        png = os.path.join(work, out.replace(".txt", ".png"))
        if os.path.exists(png) and os.path.getsize(png) > 1000:
            ok(f"picture {png}")
        else:
            fail(f"no picture {png}: {p.stderr}")

    # seeds: three true wells given in Cartesian coordinates; only the others are added
    h = cs.read_cell(os.path.join(work, "landscape.lmp"))
    wells, _, _ = cs.read_sites(os.path.join(work, "wells.txt"))
    with open(os.path.join(work, "seeds.txt"), "w") as f:
        f.write("coordinates cartesian\n")
        for i in (0, 3, 5):
            x = h @ wells[i]
            f.write(f"{x[0]:.10f} {x[1]:.10f} {x[2]:.10f} known{i}\n")
    run([ARGS.ionmsm, "sites", "dens1.grid", "--out", "seeded.txt", "--min-separation", "1.5",
         "--min-occupancy", "1.0", "--seed", "seeds.txt", "--no-plot"], work)
    sites, labels, occ = check_found(work, "seeded.txt", cs, "seeded")
    if labels[:3] != ["known0", "known3", "known5"]:
        fail(f"seeds not first with their labels: {labels}")
    if cs.distances(h, sites[:3], wells[[0, 3, 5]]).diagonal().max() > 1e-8:
        fail("seed positions changed")
    ok("seeds kept first, with their labels and positions; the other wells added")

    # the production run reads the found sites
    run([ARGS.lmp, "-in", os.path.join(landscape_dir(), "in.landscape"), "-screen", "none",
         "-log", "prod.log", "-var", "stage", "production", "-var", "nions", "300", "-var",
         "neq", "1000", "-var", "nprod", "2000", "-var", "sites", "dens1_sites.txt",
         "-var", "lags", "10 100"], work)
    info = run([ARGS.ionmsm, "info", "counts.h5"], work).stdout
    m = re.search(r"^sites\s*:\s*(\d+)", info, re.M)
    if not m or int(m.group(1)) != len(wells):
        print(info)
        fail("counts file does not hold the found sites")
    ok("fix msm counted on the found sites")


def case_errors():
    work = ARGS.work
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "atoms.dump"), "w") as f:
        f.write("ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n1\nITEM: BOX BOUNDS pp pp pp\n"
                "0 1\n0 1\n0 1\nITEM: ATOMS id x y z\n1 0.5 0.5 0.5\n")
    header = ("ITEM: TIMESTEP\n0\nITEM: BOX BOUNDS pp pp pp\n0 4\n0 4\n0 4\nITEM: DIMENSION\n3\n"
              "ITEM: GRID SIZE nx ny nz\n4 4 4\nITEM: GRID CELLS f_d:grid:data\n")
    with open(os.path.join(work, "short.grid"), "w") as f:
        f.write(header + "1\n" * 40)
    with open(os.path.join(work, "bad.grid"), "w") as f:
        f.write(header + "1\n" * 20 + "x1\n" + "1\n" * 43)
    with open(os.path.join(work, "good.grid"), "w") as f:
        f.write(header + "".join(f"{1 + (i == 21)}\n" for i in range(64)))
    cases = [
        (["atoms.dump"], 1, "atoms.dump:3: this is a per-atom LAMMPS dump"),
        (["short.grid"], 1, "short.grid:52: unexpected end of file"),
        (["bad.grid"], 1, "bad.grid:32: expected a finite density, got 'x1'"),
        (["missing.grid"], 1, "cannot open density grid file 'missing.grid'"),
        (["good.grid", "--min-separation", "-1"], 2, "--min-separation expects a number >= 0"),
        (["good.grid", "--min-occupancy", "abc"], 2, "--min-occupancy expects a number >= 0"),
        (["good.grid", "--seed", "atoms.dump"], 1, "atoms.dump:1:"),
        (["good.grid", "--plot", "x.png", "--no-plot"], 2, "exclude each other"),
    ]
    if os.path.exists(os.path.join(work, "out.txt")):
        os.remove(os.path.join(work, "out.txt"))  # from an earlier run of this test
    for args, code, message in cases:
        p = run([ARGS.ionmsm, "sites"] + args + ["--out", "out.txt"], work, expect=code)
        if message not in p.stderr:
            fail(f"ionmsm sites {' '.join(args)}: expected '{message}' in: {p.stderr}")
        if os.path.exists(os.path.join(work, "out.txt")):
            fail(f"ionmsm sites {' '.join(args)}: wrote out.txt despite the error")
    p = run([ARGS.ionmsm, "sites", "good.grid"], work, expect=2)
    if "--out" not in p.stderr:
        fail(f"missing --out not reported: {p.stderr}")
    # contrast 2 / (65/64): below the default 5, so nothing is left
    p = run([ARGS.ionmsm, "sites", "good.grid", "--out", "out.txt", "--no-plot"], work, expect=1)
    if "no site passes" not in p.stderr or os.path.exists(os.path.join(work, "out.txt")):
        fail(f"all sites dropped: {p.stderr}")
    p = run([ARGS.ionmsm, "sites", "good.grid", "--out", "out.txt", "--no-plot",
             "--min-contrast", "1.5"], work)
    with open(os.path.join(work, "out.txt")) as f:
        text = f.read()
    site_lines = [ln for ln in text.splitlines() if ln and ln[0].isdigit()]
    tok = site_lines[0].split() if len(site_lines) == 1 else []
    # cell (1,1,1) of a 4x4x4 grid, density 2 on a plateau of 1: one site holding all 65 ions
    if (not text.startswith("# ionmsm-sites 1\n") or len(tok) < 6
            or not np.allclose([float(t) for t in tok[:3]], 0.375, atol=1e-12)
            or tok[3:6] != ["s0", "#", "occupancy"] or float(tok[6]) != 65.0):
        fail(f"single-cell peak: {text}")
    ok(f"{len(cases) + 2} bad inputs refused with a clear message; a one-cell peak written")


def case_example():
    out = os.path.join(ARGS.work, "landscape")
    wrapper = os.path.join(ARGS.work, "lmp-wrapper")
    os.makedirs(ARGS.work, exist_ok=True)
    with open(wrapper, "w") as fh:
        fh.write(f"#!/bin/sh\nexec '{ARGS.lmp}' \"$@\"\n")
    os.chmod(wrapper, 0o755)
    env = lammps_env(ARGS.plugin_dir)
    env["IONMSM"] = ARGS.ionmsm
    env["IONMSM_LMP"] = wrapper
    p = subprocess.run([os.path.join(landscape_dir(), "run.sh"), "--wells", "30", "--nions", "60",
                        "--neq", "1000", "--naccum", "4000", "--nprod", "4000", "--grid",
                        "45 42 39", "--out", out], env=env, capture_output=True, text=True,
                       timeout=600)
    if p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-3000:])
        fail(f"run.sh exited {p.returncode}")
    for name in ("sites.txt", "sites.png", "compare.txt", "counts.h5", "counts_core.h5"):
        if not os.path.exists(os.path.join(out, name)):
            fail(f"run.sh did not write {name}")
    with open(os.path.join(out, "compare.txt")) as fh:
        text = fh.read()
    if "wells with a site within" not in text:
        fail(f"compare.txt: {text}")
    ok("examples/landscape/run.sh (shortened) wrote the sites, picture and both counts files")


CASES = {"wells": case_wells, "errors": case_errors, "example": case_example}


def main():
    global ARGS
    ap = driver_parser(CASES)
    ap.add_argument("--src", required=True)
    ARGS = ap.parse_args()
    ARGS.work = os.path.abspath(ARGS.work)
    run_case(CASES, ARGS)

if __name__ == "__main__":
    main()
