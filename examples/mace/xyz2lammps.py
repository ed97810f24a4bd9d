#!/usr/bin/python3
"""Converts an XYZ trajectory with a fixed cell (extended XYZ, or CP2K's *-pos-1.xyz) into what
`fix msm` needs to count it with LAMMPS `rerun`:

  * PREFIX.dump     LAMMPS dump (id type x y z ix iy iz), one snapshot per frame, wrapped
                    positions plus image flags obtained by UNWRAPPING CONSECUTIVE FRAMES: an
                    atom is assumed to move less than half a cell vector between two frames,
                    so the image flag changes by one whenever the minimum-image step crosses a
                    cell face;
  * PREFIX.data     LAMMPS data file of the first frame (atom IDs = order in the XYZ file,
                    types from --types), for read_data before the rerun;
  * PREFIX.sites    sites file (fractional) with the positions of --site-species in frame
                    --sites-frame (an approximation of the crystal sites; pass the ideal
                    crystallographic positions to fix msm instead when you have them).

Usage:
  /usr/bin/python3 xyz2lammps.py traj.extxyz --types Li=1,Si=2 --stride 10 --out aimd
  /usr/bin/python3 xyz2lammps.py LiSi-pos-1.xyz --cell 7.898 15.012 4.421 --types Li=1,Si=2 \
      --stride 1 --out aimd

The cell: extended XYZ `Lattice="ax ay az bx by bz cx cy cz"` of the first frame (it must not
change), or --cell with 3 numbers (orthogonal) or 9 numbers (rows = a, b, c), which overrides
it (CP2K .xyz files carry no cell). Any cell orientation is accepted; it is rotated into the
LAMMPS convention (a along x, b in the xy plane), which preserves fractional coordinates.
Frame k gets timestep k * --stride (MD steps between stored frames): run LAMMPS with the MD
timestep of the trajectory and a fix msm Nevery that divides the stride's multiples you want.
Lengths in the file's unit (Angstrom for LAMMPS metal units). Needs numpy only (no ASE).
"""
import argparse
import re
import sys

import numpy as np

MASSES = {"H": 1.008, "Li": 6.941, "B": 10.81, "C": 12.011, "N": 14.007, "O": 15.999,
          "F": 18.998, "Na": 22.990, "Mg": 24.305, "Al": 26.982, "Si": 28.0855, "P": 30.974,
          "S": 32.06, "Cl": 35.45, "K": 39.098, "Ti": 47.867, "Mn": 54.938, "Fe": 55.845,
          "Co": 58.933, "Ni": 58.693, "Cu": 63.546, "Ge": 72.630, "Sn": 118.71}


def read_xyz(path):
    """Yields (species list, positions (n,3), comment line) per frame."""
    with open(path) as fh:
        lineno = 0
        while True:
            head = fh.readline()
            lineno += 1
            if not head:
                return
            if not head.strip():
                continue
            try:
                n = int(head.split()[0])
            except ValueError:
                sys.exit(f"{path}:{lineno}: expected the number of atoms, got {head.strip()!r}")
            comment = fh.readline().rstrip("\n")
            lineno += 1
            species, pos = [], np.empty((n, 3))
            for i in range(n):
                line = fh.readline()
                lineno += 1
                t = line.split()
                if len(t) < 4:
                    sys.exit(f"{path}:{lineno}: truncated frame (expected 'species x y z')")
                species.append(t[0])
                pos[i] = [float(t[1]), float(t[2]), float(t[3])]
            yield species, pos, comment


def lattice_from_comment(comment):
    m = re.search(r'Lattice\s*=\s*"([^"]*)"', comment, re.IGNORECASE)
    if not m:
        return None
    v = [float(x) for x in m.group(1).split()]
    if len(v) != 9:
        sys.exit(f"Lattice must have 9 numbers, got {len(v)}")
    return np.array(v).reshape(3, 3)


def lammps_cell(A):
    """Rows of A = cell vectors a, b, c (right-handed). Returns the LAMMPS cell matrix H with
    the vectors as COLUMNS: a = (lx,0,0), b = (xy,ly,0), c = (xz,yz,lz)."""
    a, b, c = A
    if np.linalg.det(A) <= 0:
        sys.exit("the cell must be right-handed (det > 0)")
    lx = np.linalg.norm(a)
    xy = b @ a / lx
    ly = np.sqrt(b @ b - xy * xy)
    xz = c @ a / lx
    yz = (b @ c - xy * xz) / ly
    lz = np.sqrt(c @ c - xz * xz - yz * yz)
    # round-off of the rotation: tilts below 1e-9 of the longest edge are exactly zero
    tiny = 1e-9 * max(lx, ly, lz)
    xy, xz, yz = (0.0 if abs(v) < tiny else v for v in (xy, xz, yz))
    return np.array([[lx, xy, xz], [0.0, ly, yz], [0.0, 0.0, lz]])


def box_header(H):
    lx, xy, xz, ly, yz, lz = H[0, 0], H[0, 1], H[0, 2], H[1, 1], H[1, 2], H[2, 2]
    if max(abs(xy), abs(xz), abs(yz)) == 0.0:
        return (f"ITEM: BOX BOUNDS pp pp pp\n0 {lx:.12g}\n0 {ly:.12g}\n0 {lz:.12g}\n", False)
    xlo_b = min(0.0, xy, xz, xy + xz)
    xhi_b = lx + max(0.0, xy, xz, xy + xz)
    ylo_b, yhi_b = min(0.0, yz), ly + max(0.0, yz)
    return (f"ITEM: BOX BOUNDS xy xz yz pp pp pp\n{xlo_b:.12g} {xhi_b:.12g} {xy:.12g}\n"
            f"{ylo_b:.12g} {yhi_b:.12g} {xz:.12g}\n0 {lz:.12g} {yz:.12g}\n", True)


def main():
    ap = argparse.ArgumentParser(description="XYZ trajectory (fixed cell) -> LAMMPS dump with "
                                 "image flags, data file and sites file")
    ap.add_argument("xyz")
    ap.add_argument("--types", required=True, help="species to LAMMPS type, e.g. Li=1,Si=2")
    ap.add_argument("--cell", type=float, nargs="+", help="3 (orthogonal) or 9 numbers")
    ap.add_argument("--stride", type=int, default=1, help="MD steps between frames (default 1)")
    ap.add_argument("--out", default="aimd", help="output prefix (default aimd)")
    ap.add_argument("--site-species", default="Li")
    ap.add_argument("--sites-frame", type=int, default=0)
    ap.add_argument("--mass", action="append", default=[], help="override, e.g. Li=7.016")
    a = ap.parse_args()

    types = {}
    for item in a.types.split(","):
        k, v = item.split("=")
        types[k.strip()] = int(v)
    masses = dict(MASSES)
    for item in a.mass:
        k, v = item.split("=")
        masses[k.strip()] = float(v)
    if a.stride < 1:
        sys.exit("--stride must be >= 1")

    A = None
    if a.cell:
        if len(a.cell) == 3:
            A = np.diag(a.cell)
        elif len(a.cell) == 9:
            A = np.array(a.cell).reshape(3, 3)
        else:
            sys.exit("--cell takes 3 or 9 numbers")

    dump = open(a.out + ".dump", "w")
    species0 = None
    prev_f = unwrapped = None
    nframes = 0
    sites = None
    for k, (species, pos, comment) in enumerate(read_xyz(a.xyz)):
        if k == 0:
            if A is None:
                A = lattice_from_comment(comment)
            if A is None:
                sys.exit("no cell: the first frame has no Lattice=\"...\"; pass --cell")
            Ainv = np.linalg.inv(A)
            H = lammps_cell(A)
            header, _ = box_header(H)
            species0 = species
            missing = sorted(set(species) - set(types))
            if missing:
                sys.exit(f"no --types entry for species {missing}")
            typ = np.array([types[s] for s in species])
        else:
            if species != species0:
                sys.exit(f"frame {k}: the atoms (number or species order) changed")
            latt = lattice_from_comment(comment)
            if latt is not None and a.cell is None and not np.allclose(latt, A, atol=1e-6):
                sys.exit(f"frame {k}: the cell changed; this converter needs a fixed cell")
        f = pos @ Ainv                      # fractional coordinates (rows)
        if k == 0:
            unwrapped = f.copy()
        else:
            step = f - prev_f
            unwrapped += step - np.round(step)   # minimum-image step between frames
        prev_f = f
        image = np.floor(unwrapped).astype(np.int64)
        wrapped = unwrapped - image
        x = wrapped @ H.T                  # Cartesian in the LAMMPS frame
        if k == a.sites_frame:
            sites = wrapped[[i for i, s in enumerate(species) if s == a.site_species]]
        if k == 0:
            first_x, first_image = x.copy(), image.copy()
        dump.write(f"ITEM: TIMESTEP\n{k * a.stride}\nITEM: NUMBER OF ATOMS\n{len(species)}\n")
        dump.write(header)
        dump.write("ITEM: ATOMS id type x y z ix iy iz\n")
        dump.write("".join(f"{i + 1} {typ[i]} {x[i, 0]:.10f} {x[i, 1]:.10f} {x[i, 2]:.10f} "
                           f"{image[i, 0]} {image[i, 1]} {image[i, 2]}\n"
                           for i in range(len(species))))
        nframes += 1
    dump.close()
    if nframes == 0:
        sys.exit(f"{a.xyz}: no frames")

    ntypes = max(types.values())
    tmass = {t: None for t in range(1, ntypes + 1)}
    for s, t in types.items():
        tmass[t] = masses.get(s)
    lx, xy, xz, ly, yz, lz = H[0, 0], H[0, 1], H[0, 2], H[1, 1], H[1, 2], H[2, 2]
    with open(a.out + ".data", "w") as fh:
        fh.write(f"# first frame of {a.xyz} (xyz2lammps.py); atom IDs = order in the file\n\n")
        fh.write(f"{len(species0)} atoms\n{ntypes} atom types\n\n")
        fh.write(f"0 {lx:.12g} xlo xhi\n0 {ly:.12g} ylo yhi\n0 {lz:.12g} zlo zhi\n")
        if max(abs(xy), abs(xz), abs(yz)) > 0:
            fh.write(f"{xy:.12g} {xz:.12g} {yz:.12g} xy xz yz\n")
        fh.write("\nMasses\n\n")
        for t in range(1, ntypes + 1):
            fh.write(f"{t} {tmass[t] if tmass[t] is not None else 1.0}\n")
        fh.write("\nAtoms # atomic\n\n")
        for i in range(len(species0)):
            fh.write(f"{i + 1} {typ[i]} {first_x[i, 0]:.10f} {first_x[i, 1]:.10f} "
                     f"{first_x[i, 2]:.10f} {first_image[i, 0]} {first_image[i, 1]} "
                     f"{first_image[i, 2]}\n")
    if sites is None or len(sites) == 0:
        sys.exit(f"no '{a.site_species}' atoms in frame {a.sites_frame} for the sites file")
    with open(a.out + ".sites", "w") as fh:
        fh.write(f"# ionmsm-sites 1\n# {a.site_species} positions of frame {a.sites_frame} of "
                 f"{a.xyz} (xyz2lammps.py)\ncoordinates fractional\n")
        for s in sites:
            fh.write(f"{s[0]:.10f} {s[1]:.10f} {s[2]:.10f}\n")
    print(f"{a.xyz}: {nframes} frames, {len(species0)} atoms -> {a.out}.dump (timesteps 0..."
          f"{(nframes - 1) * a.stride}), {a.out}.data, {a.out}.sites ({len(sites)} sites)")


if __name__ == "__main__":
    main()
