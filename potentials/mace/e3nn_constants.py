#!/usr/bin/env python3
"""Regenerates e3nn 0.4.4's data file e3nn/o3/constants.pt when a source copy lacks it.

constants.pt holds (Jd, W3j_flat, W3j_indices):
  Jd[l]                  the (2l+1)x(2l+1) matrix of the rotation by pi about (x+y)/sqrt(2) in
                         e3nn's real spherical-harmonic basis (wigner_D = Z(a) J Z(b) J Z(c));
  W3j_flat, W3j_indices  the normalised real Wigner 3j tensors for l1 <= l2 <= l3 <= LMAX,
                         concatenated, and a dict (l1, l2, l3) -> slice into the flat tensor.

Everything is derived from e3nn's own spherical harmonics, so the result is consistent with
the package it is written into:
  * Jd[l] is the least-squares solution of Y(R x) = D Y(x) over random unit vectors x;
  * a 3j tensor is the complex-basis coupling (Racah's formula), changed into e3nn's real basis
    with the unitary map fitted between e3nn's and the standard complex harmonics; it is then
    made real, normalised to unit norm and given e3nn 0.4's sign rule (the centre entry
    [l1, l2, l3] positive, else the first non-zero entry positive).
Both are checked before writing: wigner_D must rotate the harmonics and every 3j tensor must be
invariant under wigner_D to 1e-9; otherwise nothing is written and the exit status is 1.

Usage: e3nn_constants.py E3NN_PACKAGE_ROOT   (the directory holding e3nn/o3/)
"""
import math
import os
import sys
from fractions import Fraction

LMAX = 11


def write_placeholder(path, torch):
    """e3nn.o3 loads constants.pt at import; an empty triple lets us import its harmonics."""
    torch.save(([], torch.zeros(0), {}), path)


def unit_vectors(n, torch):
    gen = torch.Generator().manual_seed(20251120)
    x = torch.randn(n, 3, dtype=torch.float64, generator=gen)
    return x / x.norm(dim=1, keepdim=True)


def rotation_swap_xy(torch):
    """Rotation by pi about (x+y)/sqrt(2): x <-> y, z -> -z (its own inverse)."""
    return torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]], dtype=torch.float64)


def fit_jd(o3, torch, lmax):
    x = unit_vectors(400, torch)
    r = rotation_swap_xy(torch)
    jd = []
    for l in range(lmax + 1):
        y = o3.spherical_harmonics(l, x, normalize=True)          # (n, 2l+1)
        y_rot = o3.spherical_harmonics(l, x @ r.T, normalize=True)
        # y_rot = y @ D^T  ->  D^T = lstsq(y, y_rot)
        d_t = torch.linalg.lstsq(y, y_rot).solution
        d = d_t.T.contiguous()
        d[d.abs() < 1e-13] = 0.0
        jd.append(d)
    return jd


def complex_harmonics(l, x, np, sph_harm):
    """Standard complex spherical harmonics Y_l^m(x), m = -l..l, as an (n, 2l+1) array."""
    azimuth = np.arctan2(x[:, 1], x[:, 0])
    polar = np.arccos(np.clip(x[:, 2], -1.0, 1.0))
    return np.stack([sph_harm(m, l, azimuth, polar) for m in range(-l, l + 1)], axis=1)


def fit_real_from_complex(o3, torch, np, sph_harm, lmax):
    """U[l] with Y_e3nn(x) = U Y_complex(x) (unitary when both are orthonormal)."""
    x = unit_vectors(600, torch)
    xn = x.numpy()
    maps = []
    for l in range(lmax + 1):
        yr = o3.spherical_harmonics(l, x, normalize=True).numpy().astype(np.complex128)
        yc = complex_harmonics(l, xn, np, sph_harm)
        u_t, *_ = np.linalg.lstsq(yc, yr, rcond=None)             # yr = yc @ U^T
        maps.append(u_t.T)
    return maps


def racah_3j_unscaled(j1, j2, j3, m1, m2, m3):
    """Wigner 3j symbol up to a factor that depends on (j1, j2, j3) only."""
    if m1 + m2 + m3 != 0:
        return 0.0
    f = math.factorial
    total = Fraction(0)
    k_min = max(0, j2 - j3 - m1, j1 - j3 + m2)
    k_max = min(j1 + j2 - j3, j1 - m1, j2 + m2)
    for k in range(k_min, k_max + 1):
        den = f(k) * f(j3 - j2 + k + m1) * f(j3 - j1 + k - m2) * f(j1 + j2 - j3 - k) \
            * f(j1 - k - m1) * f(j2 - k + m2)
        total += Fraction((-1) ** k, den)
    norm = math.sqrt(f(j1 + m1) * f(j1 - m1) * f(j2 + m2) * f(j2 - m2) * f(j3 + m3) * f(j3 - m3))
    return float(total) * norm * (-1) ** (j1 - j2 - m3)


def real_3j(l1, l2, l3, maps, np):
    g = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    for a, m1 in enumerate(range(-l1, l1 + 1)):
        for b, m2 in enumerate(range(-l2, l2 + 1)):
            m3 = -m1 - m2
            if abs(m3) <= l3:
                g[a, b, m3 + l3] = racah_3j_unscaled(l1, l2, l3, m1, m2, m3)
    # Y_c = U^H Y_r  ->  C_r[i,j,k] = sum_abc G[a,b,c] conj(U1[i,a]) conj(U2[j,b]) conj(U3[k,c])
    c = np.einsum("abc,ia,jb,kc->ijk", g, maps[l1].conj(), maps[l2].conj(), maps[l3].conj())
    flat = c.reshape(-1)
    phase = flat[np.argmax(np.abs(flat))]
    c = c / (phase / abs(phase)) / np.linalg.norm(c)
    if np.abs(c.imag).max() > 1e-9:
        raise RuntimeError(f"3j tensor ({l1},{l2},{l3}) is not real in e3nn's basis")
    c = c.real / np.linalg.norm(c.real)
    c[np.abs(c) < 1e-14] = 0.0
    centre = c[l1, l2, l3]
    sign_ref = centre if abs(centre) > 1e-12 else c.reshape(-1)[np.flatnonzero(np.abs(c) > 1e-12)[0]]
    return -c if sign_ref < 0 else c


def check(o3, torch, jd, w3j, lmax):
    """Largest error of wigner_D against rotated harmonics and of 3j invariance."""
    wig = o3._wigner
    wig._Jd = jd
    gen = torch.Generator().manual_seed(7)
    angles = [torch.rand(3, generator=gen, dtype=torch.float64) * 2 * math.pi for _ in range(3)]
    x = unit_vectors(50, torch)
    worst = 0.0
    for a, b, c in angles:
        rot = o3.angles_to_matrix(a, b, c)
        ds = [wig.wigner_D(l, a, b, c) for l in range(lmax + 1)]
        for l in range(lmax + 1):
            lhs = o3.spherical_harmonics(l, x @ rot.T, normalize=True)
            rhs = o3.spherical_harmonics(l, x, normalize=True) @ ds[l].T
            worst = max(worst, (lhs - rhs).abs().max().item())
        for (l1, l2, l3), t in w3j.items():
            t = torch.from_numpy(t)
            rotated = torch.einsum("il,jm,kn,lmn->ijk", ds[l1], ds[l2], ds[l3], t)
            worst = max(worst, (rotated - t).abs().max().item())
    return worst


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    root = os.path.abspath(sys.argv[1])
    target = os.path.join(root, "e3nn", "o3", "constants.pt")
    if not os.path.isdir(os.path.dirname(target)):
        print(f"e3nn_constants.py: {root} holds no e3nn/o3/ directory", file=sys.stderr)
        return 2
    import numpy as np
    import torch
    from scipy.special import sph_harm

    write_placeholder(target, torch)
    sys.path.insert(0, root)
    from e3nn import o3

    jd = fit_jd(o3, torch, LMAX)
    maps = fit_real_from_complex(o3, torch, np, sph_harm, LMAX)
    w3j = {}
    for l1 in range(LMAX + 1):
        for l2 in range(l1, LMAX + 1):
            for l3 in range(l2, min(l1 + l2, LMAX) + 1):
                w3j[(l1, l2, l3)] = real_3j(l1, l2, l3, maps, np)
    worst = check(o3, torch, jd, w3j, LMAX)
    if worst > 1e-9:
        os.remove(target)
        print(f"e3nn_constants.py: check failed (largest error {worst:.2e}); nothing written",
              file=sys.stderr)
        return 1
    indices, parts, start = {}, [], 0
    for key, t in w3j.items():
        indices[key] = slice(start, start + t.size)
        parts.append(torch.from_numpy(t.reshape(-1).copy()))
        start += t.size
    tmp = target + ".tmp"
    torch.save((jd, torch.cat(parts), indices), tmp)
    os.replace(tmp, target)
    print(f"e3nn_constants.py: wrote {target} (l <= {LMAX}, {len(w3j)} 3j tensors, "
          f"largest equivariance error {worst:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
