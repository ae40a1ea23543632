"""One mace-torch energy+forces benchmark process; run with /work/mace-venv/bin/python and
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 (e3nn 0.4.4 fails to import on this torch without it)."""

from bench_common import mallopt_keep_freed_memory, parse_args, run

args = parse_args()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from e3nn import o3  # noqa: E402
from mace import data as mace_data  # noqa: E402
from mace import modules  # noqa: E402
from mace.__version__ import __version__ as mace_version  # noqa: E402
from mace.tools import torch_geometric  # noqa: E402
from mace.tools.utils import AtomicNumberTable  # noqa: E402
from ase.data import atomic_numbers  # noqa: E402

applied = mallopt_keep_freed_memory() if args.alloc == "keep" else False

from systems import ELEMENTS  # noqa: E402


def setup(atoms, dtype, r_max):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # mace builds its buffers and its data in the default dtype
    try:
        zs = [atomic_numbers[s] for s in ELEMENTS]
        z_table = AtomicNumberTable(zs)
        config = mace_data.config_from_atoms(atoms)
        data = mace_data.AtomicData.from_config(config, z_table=z_table, cutoff=r_max)
        batch = torch_geometric.batch.Batch.from_data_list([data])
        num_edges = batch.edge_index.shape[1]
        avg = num_edges / len(atoms)
        model = modules.ScaleShiftMACE(
            r_max=r_max,
            num_bessel=8,
            num_polynomial_cutoff=5,
            max_ell=3,
            interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
            interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
            num_interactions=2,
            num_elements=len(zs),
            hidden_irreps=o3.Irreps("64x0e+64x1o"),
            MLP_irreps=o3.Irreps("16x0e"),
            atomic_energies=np.zeros(len(zs)),
            avg_num_neighbors=avg,
            atomic_numbers=zs,
            correlation=3,
            gate=torch.nn.functional.silu,
            radial_MLP=[64, 64, 64],
            radial_type="bessel",
            atomic_inter_scale=1.0,
            atomic_inter_shift=0.0,
        )
    finally:
        torch.set_default_dtype(previous)
    model = model.to(dtype)
    num_params = sum(p.numel() for p in model.parameters())
    for param in model.parameters():  # as mace's ASE calculator does
        param.requires_grad = False
    model.eval()
    inputs = batch.to_dict()

    def call():
        out = model(inputs, compute_force=True, training=False)
        return out["energy"], out["forces"]

    return {"call": call, "num_edges": num_edges, "num_params": num_params, "avg_num_neighbors": avg}


run("mace-torch", mace_version, setup, args, applied)
