#!/usr/bin/env python3
"""Errors of a MACE model against labelled frames (run with the MACE venv's python).

For each extended XYZ file given: energy RMSE and MAE per atom (meV/atom), force-component
RMSE and MAE (meV/A) against REF_energy / REF_forces, with mace's own ASE calculator in float64.
Writes a JSON object {file name: {...}} to --out (atomically) and prints a table.

Usage: fit_errors.py MODEL.model FILE.xyz [FILE.xyz ...] --out fit_errors.json
"""
import argparse
import json
import os

import numpy as np


def errors(calc, frames):
    de, df = [], []
    for at in frames:
        ref_e = at.info["REF_energy"]
        ref_f = at.arrays["REF_forces"]
        at.calc = calc
        de.append((at.get_potential_energy() - ref_e) / len(at))
        df.append((at.get_forces() - ref_f).reshape(-1))
    de = np.array(de) * 1e3
    df = np.concatenate(df) * 1e3
    return {"n_frames": len(frames), "n_atoms": len(frames[0]),
            "energy_rmse_meV_per_atom": float(np.sqrt(np.mean(de ** 2))),
            "energy_mae_meV_per_atom": float(np.mean(np.abs(de))),
            "force_rmse_meV_per_A": float(np.sqrt(np.mean(df ** 2))),
            "force_mae_meV_per_A": float(np.mean(np.abs(df)))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    from ase.io import read
    from mace.calculators import MACECalculator
    calc = MACECalculator(model_paths=a.model, device="cpu", default_dtype="float64")
    result = {}
    for path in a.files:
        result[os.path.basename(path)] = errors(calc, read(path, ":"))
    tmp = a.out + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh, indent=1)
    os.replace(tmp, a.out)
    print(f"{'set':12s} {'frames':>6s} {'E RMSE meV/atom':>16s} {'F RMSE meV/A':>13s} {'F MAE meV/A':>12s}")
    for name, r in result.items():
        print(f"{name:12s} {r['n_frames']:6d} {r['energy_rmse_meV_per_atom']:16.2f} "
              f"{r['force_rmse_meV_per_A']:13.1f} {r['force_mae_meV_per_A']:12.1f}")


if __name__ == "__main__":
    main()
