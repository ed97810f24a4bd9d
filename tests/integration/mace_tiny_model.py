#!/usr/bin/env python3
"""A small, untrained MACE model for the MACE integration tests (run with the MACE venv's python).

A ScaleShiftMACE for Li and Si (r_max 4 A, 8x0e+8x1o, 2 interactions) with seeded random
weights and an interaction scale that keeps forces of order 0.1-1 eV/A, saved as OUT.model and
exported with mace's create_lammps_model to OUT.model-lammps.pt (float64), which
`pair_style mace` loads. Tens of MD steps with it exercise pair_style mace and fix msm together;
the physics is irrelevant to the tests.

Usage: mace_tiny_model.py OUT   (writes OUT.model and OUT.model-lammps.pt)
"""
import os
import subprocess
import sys

import numpy as np
import torch


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: mace_tiny_model.py OUT")
    out = sys.argv[1]
    torch.set_num_threads(1)
    torch.manual_seed(20251120)
    from e3nn import o3
    from mace import modules
    torch.set_default_dtype(torch.float64)
    model = modules.ScaleShiftMACE(
        r_max=4.0, num_bessel=4, num_polynomial_cutoff=5, max_ell=1,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
        num_interactions=2, num_elements=2, hidden_irreps=o3.Irreps("8x0e+8x1o"),
        MLP_irreps=o3.Irreps("8x0e"), atomic_energies=np.array([-1.9, -4.6]),
        avg_num_neighbors=12.0, atomic_numbers=[3, 14], correlation=2,
        gate=torch.nn.functional.silu, atomic_inter_scale=0.2, atomic_inter_shift=0.0)
    torch.save(model, out + ".model")
    subprocess.run([sys.executable, "-m", "mace.cli.create_lammps_model", out + ".model"],
                   check=True, stdout=subprocess.DEVNULL)
    if not os.path.exists(out + ".model-lammps.pt"):
        sys.exit(f"create_lammps_model did not write {out}.model-lammps.pt")
    print(f"wrote {out}.model and {out}.model-lammps.pt")


if __name__ == "__main__":
    main()
