#!/usr/bin/python3
"""Independent slow reference for fix msm: counts transitions from a LAMMPS dump.

Reads a text dump with columns id type x y z ix iy iz (any order, extra columns ignored),
orthogonal or triclinic, and a set of sites, then for every frame whose timestep is a multiple
of NEVERY assigns every atom of the chosen types to the nearest periodic image of the nearest
site by brute force (all sites, 27 images around the wrapped difference), and counts
sliding-window transitions (from, to, lattice shift) for each lag.

Shares no code with ionmsm. Prints the canonical CSV (lag_steps,from,to,shift_x,shift_y,
shift_z,count) and, with --summary FILE, writes n_origins per lag and site occupancy as JSON.

--multitau M: count each lag l (in samples) only from origins j that are multiples of 2^k, k
the lowest level with l % 2^k == 0 and l / 2^k <= M (the fix msm 'history multitau M' rule),
and never across a sample at which the atom was missing. --core R: core-set assignment (an atom
keeps its committed site, at the image nearest to it, until it comes within R of a site; the
first sample commits to the nearest site). The summary also holds, per lag, the sums of the
site-projected displacement delta = H (f_to - f_from + shift) and of delta delta^T over
counted pairs with a site change or a nonzero shift, and the number of atom-samples outside
every core.

A dump column v_member (an atom-style variable) marks, per frame, the atoms of a dynamic group:
only atoms with a nonzero value are counted there.

Sites: --sites-file F (the ionmsm sites text format, cartesian or fractional) or
--sites-types T (positions of the atoms of type T in the FIRST frame, ordered by atom ID).
"""
import argparse
import json
import sys

import numpy as np


def read_dump(path):
    frames = []
    with open(path) as fh:
        lines = fh.read().split("\n")
    i = 0
    while i < len(lines):
        if not lines[i].startswith("ITEM: TIMESTEP"):
            i += 1
            continue
        step = int(lines[i + 1])
        natoms = int(lines[i + 3])
        bline = lines[i + 4]
        b = [list(map(float, lines[i + 5 + k].split())) for k in range(3)]
        if "xy" in bline:
            xy, xz, yz = b[0][2], b[1][2], b[2][2]
            xlo = b[0][0] - min(0.0, xy, xz, xy + xz)
            xhi = b[0][1] - max(0.0, xy, xz, xy + xz)
            ylo = b[1][0] - min(0.0, yz)
            yhi = b[1][1] - max(0.0, yz)
            zlo, zhi = b[2][0], b[2][1]
        else:
            xy = xz = yz = 0.0
            (xlo, xhi), (ylo, yhi), (zlo, zhi) = [(r[0], r[1]) for r in b]
        H = np.array([[xhi - xlo, xy, xz], [0.0, yhi - ylo, yz], [0.0, 0.0, zhi - zlo]])
        origin = np.array([xlo, ylo, zlo])
        cols = lines[i + 8].split()[2:]
        data = np.array([list(map(float, lines[i + 9 + k].split())) for k in range(natoms)])
        col = {c: data[:, j] for j, c in enumerate(cols)}
        order = np.argsort(col["id"])
        frames.append({
            "step": step, "H": H, "origin": origin,
            "id": col["id"][order].astype(np.int64),
            "type": col["type"][order].astype(np.int64),
            "x": np.stack([col["x"], col["y"], col["z"]], axis=1)[order],
            "img": np.stack([col["ix"], col["iy"], col["iz"]], axis=1)[order].astype(np.int64),
            "member": col["v_member"][order] if "v_member" in col else None,
        })
        i += 9 + natoms
    if not frames:
        sys.exit(f"slow_counts: no frames in {path}")
    return frames


def read_sites_file(path):
    frac = False
    coords = []
    with open(path) as fh:
        for raw in fh:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            tok = line.split()
            if tok[0] == "coordinates":
                frac = tok[1] == "fractional"
                continue
            coords.append([float(t) for t in tok[:3]])
    return np.array(coords), frac


def nearest(frac_sites, H, origin, xu):
    """Brute force: every site, 27 images of the wrapped difference. Ties: distance, site, image."""
    Hinv = np.linalg.inv(H)
    f = Hinv @ (xu - origin)
    best = None
    for s, fs in enumerate(frac_sites):
        base = np.floor(f - fs + 0.5)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for dz in (-1, 0, 1):
                    n = base + np.array([dx, dy, dz])
                    d = xu - (origin + H @ (fs + n))
                    d2 = float(d @ d)
                    key = (d2, s, tuple(int(v) for v in n))
                    if best is None or key < best:
                        best = key
    return best[1], best[2]


def nearest_vectorised(frac_sites, H, origin, xu):
    """Same as nearest() for many sites at once (numpy), used for speed; the tie rule is the
    same (lexicographic on distance, site index, image)."""
    Hinv = np.linalg.inv(H)
    f = Hinv @ (xu - origin)
    base = np.floor(f - frac_sites + 0.5)  # (S,3)
    offs = np.array([[dx, dy, dz] for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)])
    n = base[:, None, :] + offs[None, :, :]  # (S,27,3)
    pos = origin + (frac_sites[:, None, :] + n) @ H.T
    d2 = np.sum((xu - pos) ** 2, axis=2)  # (S,27)
    m = d2.min()
    cands = []
    for s, k in zip(*np.nonzero(d2 == m)):
        cands.append((s, tuple(int(v) for v in n[s, k])))
    cands.sort()
    return cands[0]


def nearest_image(fs, H, origin, xu):
    """Image of one site nearest to xu (brute force over 5^3 images around the rounded one)."""
    f = np.linalg.inv(H) @ (xu - origin)
    base = np.round(f - fs)
    best = None
    for dx in (-2, -1, 0, 1, 2):
        for dy in (-2, -1, 0, 1, 2):
            for dz in (-2, -1, 0, 1, 2):
                n = base + np.array([dx, dy, dz])
                d = xu - (origin + H @ (fs + n))
                key = (float(d @ d), tuple(int(v) for v in n))
                if best is None or key < best:
                    best = key
    return best


def multitau_spacing(l, m):
    k = 0
    while l % (1 << k) == 0:
        if l >> k <= m:
            return 1 << k
        k += 1
    sys.exit(f"slow_counts: lag {l} samples is not representable with multitau {m}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("--nevery", type=int, required=True)
    ap.add_argument("--lags", type=int, nargs="+", required=True)
    ap.add_argument("--types", type=int, nargs="+", required=True, help="atom types counted")
    ap.add_argument("--sites-file")
    ap.add_argument("--sites-types", type=int, nargs="+")
    ap.add_argument("--summary")
    ap.add_argument("--multitau", type=int, default=0)
    ap.add_argument("--core", type=float, default=0.0)
    ap.add_argument("--block-steps", type=int, default=0,
                    help="also split everything into blocks of this many timesteps (a pair "
                         "belongs to the block of its later sample) and put them in the summary")
    a = ap.parse_args()

    frames = read_dump(a.dump)
    f0 = frames[0]
    if a.sites_file:
        coords, is_frac = read_sites_file(a.sites_file)
        frac_sites = coords if is_frac else (np.linalg.inv(f0["H"]) @ (coords - f0["origin"]).T).T
    else:
        sel = np.isin(f0["type"], a.sites_types)
        frac_sites = (np.linalg.inv(f0["H"]) @ (f0["x"][sel] - f0["origin"]).T).T
    frac_sites = frac_sites - np.floor(frac_sites)

    samples = {}  # atom id -> {sample index: (site, image)}
    stretch = {}  # atom id -> {sample index: stretch number} (multitau: cut where it was missing)
    committed = {}  # atom id -> committed site (core assignment)
    occupancy = np.zeros(len(frac_sites), dtype=np.int64)
    sampled = []
    cells = {}
    n_outside = 0
    prev_k = None
    for fr in frames:
        if fr["step"] % a.nevery:
            continue
        k = fr["step"] // a.nevery
        if k in sampled:  # a step written twice (end of one run, start of the next)
            continue
        sampled.append(k)
        cells[k] = fr["H"]
        counted = np.isin(fr["type"], a.types)
        if fr["member"] is not None:  # a dynamic group: the dump's v_member column says who is in it
            counted &= fr["member"] != 0
        for j in np.nonzero(counted)[0]:
            aid = int(fr["id"][j])
            xu = fr["x"][j] + fr["H"] @ fr["img"][j]
            s, n = nearest_vectorised(frac_sites, fr["H"], fr["origin"], xu)
            if a.core > 0:
                d = xu - (fr["origin"] + fr["H"] @ (frac_sites[s] + np.array(n)))
                if float(d @ d) <= a.core * a.core:
                    committed[aid] = s
                else:
                    n_outside += 1
                    if aid not in committed:
                        committed[aid] = s
                    else:
                        s = committed[aid]
                        n = nearest_image(frac_sites[s], fr["H"], fr["origin"], xu)[1]
            hist = samples.setdefault(aid, {})
            st = stretch.setdefault(aid, {})
            st[k] = st[prev_k] if prev_k is not None and prev_k in hist else k
            hist[k] = (s, n)
            occupancy[s] += 1
        prev_k = k
    sset = set(sampled)
    B = a.block_steps
    blocks = {}  # block index -> {"n_samples", "occupancy", "n_origins": {L}, "counts": {key}}

    def block(k):
        b = (k * a.nevery) // B
        return blocks.setdefault(b, {"n_samples": 0, "occupancy": [0] * len(frac_sites),
                                     "n_origins": {str(L): 0 for L in a.lags}, "counts": {}})
    if B:
        for k in sampled:
            block(k)["n_samples"] += 1
        for aid, hist in samples.items():
            for k, (s, n) in hist.items():
                block(k)["occupancy"][s] += 1
    counts = {}
    origins = {}
    dsum = {}
    dsq = {}
    dabs = {}
    for L in a.lags:
        if L % a.nevery:
            sys.exit("lag not a multiple of nevery")
        l = L // a.nevery
        sp = multitau_spacing(l, a.multitau) if a.multitau else 1
        origins[L] = sum(1 for k in sampled if k - l in sset and (k - l) % sp == 0)
        if B:
            for k in sampled:
                if k - l in sset and (k - l) % sp == 0:
                    block(k)["n_origins"][str(L)] += 1
        dsum[L] = np.zeros(3)
        dsq[L] = np.zeros((3, 3))
        dabs[L] = 0.0
        for aid, hist in samples.items():
            st = stretch[aid]
            for k, (s1, n1) in hist.items():
                if k % sp or k + l not in hist:
                    continue
                if a.multitau and st[k] != st[k + l]:
                    continue
                s2, n2 = hist[k + l]
                shift = (n2[0] - n1[0], n2[1] - n1[1], n2[2] - n1[2])
                key = (L, s1, s2) + shift
                counts[key] = counts.get(key, 0) + 1
                if B:
                    bc = block(k + l)["counts"]
                    bc[key] = bc.get(key, 0) + 1
                if s1 != s2 or shift != (0, 0, 0):
                    dv = cells[k + l] @ (frac_sites[s2] - frac_sites[s1] + np.array(shift, float))
                    dsum[L] += dv
                    dsq[L] += np.outer(dv, dv)
                    dabs[L] += float(dv @ dv) + float(np.abs(dv).sum())
    out = sys.stdout
    out.write("lag_steps,from,to,shift_x,shift_y,shift_z,count\n")
    for key in sorted(counts):
        out.write(",".join(str(v) for v in key) + f",{counts[key]}\n")
    if a.summary:
        with open(a.summary, "w") as fh:
            json.dump({"n_origins": {str(L): origins[L] for L in a.lags},
                       "occupancy": occupancy.tolist(), "n_samples": len(sampled),
                       "n_outside_core": n_outside,
                       "displacement_sum": {str(L): dsum[L].tolist() for L in a.lags},
                       "displacement_sq_sum": {str(L): dsq[L].tolist() for L in a.lags},
                       "displacement_scale": {str(L): dabs[L] for L in a.lags},
                       "blocks": {str(b): {"n_samples": v["n_samples"],
                                           "occupancy": v["occupancy"],
                                           "n_origins": v["n_origins"],
                                           "counts": [[int(x) for x in k] + [c] for k, c in
                                                      sorted(v["counts"].items())]}
                                  for b, v in sorted(blocks.items())}}, fh)


if __name__ == "__main__":
    main()
