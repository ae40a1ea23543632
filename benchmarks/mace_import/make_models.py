"""Write two mace-torch model files of MACE-MP-0 "medium" shape with random (seeded) weights.

Runs in mace-torch's own environment (it pins e3nn 0.4.4):

    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 .venv-mace/bin/python benchmarks/mace_import/make_models.py OUT_DIR

writes OUT_DIR/mp_shape_64.model and OUT_DIR/mp_shape_128.model (``torch.save`` of the float64 module,
as mace's training script writes it; 30-100 MB, so they are made afresh by run.py and not committed)
and prints one JSON line per model. Shape: ScaleShiftMACE over MACE-MP-0's 89 elements (Z 1-83 and
89-94: the element embedding, the first block's skip tensor product and the product basis weights
are as big as a foundation model's), hidden 64x0e+64x1o or 128x0e+128x1o, max_ell 3, correlation 3,
2 interactions, both RealAgnosticResidualInteractionBlock (mace's default first block: with it the
128-channel model has 4.69 M parameters, as MACE-MP-0 medium; a RealAgnosticInteractionBlock first
would add an element-dependent skip tensor product of 5.8 M weights that MP-0 does not have), r_max
6 Å, 8 Bessel functions, p = 5, radial MLP [64, 64, 64], readout MLP 16x0e, silu, full (not reduced)
Clebsch-Gordan product basis. avg_num_neighbors is water 648's at 6 Å; it only scales messages.
Every parameter is moved off mace's initial value by 0.1 N(0, 1), as tests/fixtures/mace does.
"""

import json
import os
import sys

import numpy as np
import torch
from ase.neighborlist import neighbor_list
from e3nn import o3
from mace import modules

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "potential_speed"))
from systems import get_system  # noqa: E402

SEED = 20261204
R_MAX = 6.0
ELEMENTS_Z = list(range(1, 84)) + list(range(89, 95))  # MACE-MP-0's 89 elements
CHANNELS = (64, 128)


def average_neighbours(r_max: float) -> float:
    atoms = get_system("water648")
    return len(neighbor_list("i", atoms, r_max)) / len(atoms)


def build(channels: int, avg_num_neighbors: float) -> torch.nn.Module:
    rng = np.random.default_rng(SEED + channels)
    model = modules.ScaleShiftMACE(
        r_max=R_MAX,
        num_bessel=8,
        num_polynomial_cutoff=5,
        max_ell=3,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        num_interactions=2,
        num_elements=len(ELEMENTS_Z),
        hidden_irreps=o3.Irreps(f"{channels}x0e+{channels}x1o"),
        MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=-rng.uniform(0.5, 10.0, size=len(ELEMENTS_Z)),  # [89] E0s, eV
        avg_num_neighbors=avg_num_neighbors,
        atomic_numbers=ELEMENTS_Z,
        correlation=3,
        gate=torch.nn.functional.silu,
        radial_MLP=[64, 64, 64],
        radial_type="bessel",
        use_reduced_cg=False,
        atomic_inter_scale=float(rng.uniform(0.5, 1.5)),
        atomic_inter_shift=float(rng.uniform(-0.5, 0.5)),
    )
    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    return model


def main() -> None:
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.set_default_dtype(torch.float64)
    avg = average_neighbours(R_MAX)
    for channels in CHANNELS:
        model = build(channels, avg)
        path = os.path.join(out_dir, f"mp_shape_{channels}.model")
        torch.save(model, path)
        print(json.dumps({
            "model": os.path.basename(path),
            "channels": channels,
            "num_elements": len(ELEMENTS_Z),
            "num_params": sum(p.numel() for p in model.parameters()),
            "avg_num_neighbors": avg,
            "file_mb": os.path.getsize(path) / 2**20,
        }), flush=True)


if __name__ == "__main__":
    main()
