"""One mlpot energy+forces benchmark process; run with /work/venv/bin/python (see run.py)."""

from bench_common import parse_args, run

args = parse_args()

import mlpot  # noqa: E402
from mlpot.allocator import keep_freed_memory  # noqa: E402

applied = keep_freed_memory() if args.alloc == "keep" else False

import torch  # noqa: E402
from mlpot.data.graph import atoms_to_graph, graph_to_inputs  # noqa: E402
from mlpot.kernels import set_kernels  # noqa: E402

from systems import ELEMENTS  # noqa: E402


def setup(atoms, dtype, r_max):
    graph = atoms_to_graph(atoms, r_max, dtype=dtype)
    num_edges = graph.edge_index.shape[1]
    avg = num_edges / len(atoms)
    model = mlpot.build_model({
        "elements": ELEMENTS,
        "r_max": r_max,
        "num_bessel": 8,
        "num_polynomial_cutoff": 5,
        "max_ell": 3,
        "hidden_irreps": "64x0e+64x1o",
        "correlation": 3,
        "num_interactions": 2,
        "radial_mlp": [64, 64, 64],
        "readout_mlp": 16,
        "avg_num_neighbors": avg,
        "dtype": {torch.float32: "float32", torch.float64: "float64"}[dtype],
    })
    num_params = sum(p.numel() for p in model.parameters())
    model.requires_grad_(False)  # as mlpot's ASE calculator does
    model.eval()
    fused = set_kernels(model, args.kernel)
    inputs = graph_to_inputs(graph)

    def call():
        out = model(inputs, compute_forces=True)
        return out["energy"], out["forces"]

    return {"call": call, "num_edges": num_edges, "num_params": num_params, "avg_num_neighbors": avg,
            "kernel": "fused" if fused else "reference"}


run("mlpot" if args.kernel != "reference" else "mlpot-reference", mlpot.__version__, setup, args, applied)
