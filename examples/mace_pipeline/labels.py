#!/usr/bin/python3
"""Labelled frames for the MACE fit: labels.dump (positions, forces) + labels.dat (energy,
virial pressure tensor), both from in.label, -> extended XYZ files train.xyz, valid.xyz,
test.xyz with REF_energy (eV), REF_forces (eV/A) and REF_stress (eV/A^3, ASE sign convention:
stress = -virial pressure).

Split: the last --test-fraction of the frames in time are held out (test.xyz: later in time
than every training frame, so not correlated with them by a short time gap); of the rest every
--valid-every-th frame is validation, the others training.

Usage: labels.py DIR [--test-fraction 0.2] [--valid-every 8]
"""
import argparse
import os
import sys

import numpy as np

BAR_PER_EV_PER_A3 = 1.602176634e6  # 1 eV/A^3 = 160.2176634 GPa
SYMBOLS = {1: "Li", 2: "Si"}


def read_dump(path):
    """Frames of a LAMMPS text dump: step, cell (3x3, rows = cell vectors), columns."""
    frames = []
    with open(path) as fh:
        lines = fh.read().split("\n")
    i = 0
    while i < len(lines):
        if not lines[i].startswith("ITEM: TIMESTEP"):
            i += 1
            continue
        step = int(lines[i + 1])
        n = int(lines[i + 3])
        head = lines[i + 4].split()
        b = np.array([[float(v) for v in lines[i + 5 + k].split()] for k in range(3)])
        if "xy" in head:
            xy, xz, yz = b[0, 2], b[1, 2], b[2, 2]
            xlo = b[0, 0] - min(0.0, xy, xz, xy + xz)
            xhi = b[0, 1] - max(0.0, xy, xz, xy + xz)
            ylo, yhi = b[1, 0] - min(0.0, yz), b[1, 1] - max(0.0, yz)
            zlo, zhi = b[2, 0], b[2, 1]
        else:
            (xlo, xhi), (ylo, yhi), (zlo, zhi) = b[0, :2], b[1, :2], b[2, :2]
            xy = xz = yz = 0.0
        cell = np.array([[xhi - xlo, 0, 0], [xy, yhi - ylo, 0], [xz, yz, zhi - zlo]])
        cols = lines[i + 8].split()[2:]
        data = np.array([[float(v) for v in lines[i + 9 + k].split()] for k in range(n)])
        frames.append({"step": step, "cell": cell, "origin": np.array([xlo, ylo, zlo]),
                       "cols": {c: data[:, j] for j, c in enumerate(cols)}})
        i += 9 + n
    return frames


def read_energies(path):
    rows = {}
    with open(path) as fh:
        for line in fh:
            if line.startswith("#") or not line.strip():
                continue
            v = line.split()
            rows[int(v[0])] = (float(v[1]), np.array([float(x) for x in v[2:8]]))
    return rows


def xyz_frame(fr, energy, p_voigt):
    c = fr["cols"]
    order = np.argsort(c["id"])
    pos = np.stack([c["x"], c["y"], c["z"]], axis=1)[order] - fr["origin"]
    frc = np.stack([c["fx"], c["fy"], c["fz"]], axis=1)[order]
    types = c["type"][order].astype(int)
    pxx, pyy, pzz, pxy, pxz, pyz = p_voigt
    p = np.array([[pxx, pxy, pxz], [pxy, pyy, pyz], [pxz, pyz, pzz]])
    stress = -p / BAR_PER_EV_PER_A3
    lattice = " ".join(f"{v:.10f}" for v in fr["cell"].reshape(-1))
    out = [str(len(types)),
           f'Lattice="{lattice}" Properties=species:S:1:pos:R:3:REF_forces:R:3 '
           f'REF_energy={energy:.10f} REF_stress="{" ".join(f"{v:.10e}" for v in stress.reshape(-1))}" '
           f'pbc="T T T" step={fr["step"]}']
    for t, x, f in zip(types, pos, frc):
        out.append(f"{SYMBOLS[t]} {x[0]:.10f} {x[1]:.10f} {x[2]:.10f} "
                   f"{f[0]:.10f} {f[1]:.10f} {f[2]:.10f}")
    return "\n".join(out) + "\n"


def write_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--valid-every", type=int, default=8)
    a = ap.parse_args()
    frames = read_dump(os.path.join(a.dir, "labels.dump"))
    energies = read_energies(os.path.join(a.dir, "labels.dat"))
    missing = [fr["step"] for fr in frames if fr["step"] not in energies]
    if not frames or missing:
        sys.exit(f"labels.py: {len(frames)} frames; no energy in labels.dat for steps {missing[:5]}")
    n_test = max(1, int(round(a.test_fraction * len(frames))))
    head, test = frames[:-n_test], frames[-n_test:]
    valid = head[a.valid_every - 1::a.valid_every]
    train = [fr for k, fr in enumerate(head) if (k + 1) % a.valid_every != 0]
    if len(train) < 2 or not valid:
        sys.exit(f"labels.py: {len(frames)} frames are too few to split (train {len(train)}, "
                 f"valid {len(valid)}, test {len(test)})")
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        write_atomically(os.path.join(a.dir, f"{name}.xyz"),
                         "".join(xyz_frame(fr, *energies[fr["step"]]) for fr in part))
    fmax = max(np.abs(np.stack([fr["cols"]["fx"], fr["cols"]["fy"], fr["cols"]["fz"]])).max()
               for fr in frames)
    print(f"labels.py: {len(frames)} frames of {len(frames[0]['cols']['id'])} atoms -> "
          f"train {len(train)}, valid {len(valid)}, test {len(test)} (largest |F| {fmax:.2f} eV/A)")


if __name__ == "__main__":
    main()
