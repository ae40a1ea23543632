"""One GPU measurement per process: mlpot or mace-torch, energy+forces, a training step, or the
ASE calculator against the model alone. Prints one JSON line (and appends it to --out).

    python benchmarks/gpu/bench.py --package mlpot --what call --system water3993
    python benchmarks/gpu/bench.py --package mace-torch --what train --batch 128

Timing: CUDA-synchronised wall time per call, median after warm-up calls; peak device memory
from torch.cuda.max_memory_allocated. The graph is built once outside the timing (--what call
and train); --what calculator times MLPotCalculator end to end (neighbour list included), with
atoms moving by a small random step between calls so that the skin logic runs as in MD. Runs on
the CPU too (--device cpu), which is how the script itself is tested.
"""

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "potential_speed"))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase.build import molecule  # noqa: E402

from systems import ELEMENTS, water_box  # noqa: E402

SYSTEMS = {
    "ethanol": lambda: molecule("CH3CH2OH"),
    "water648": lambda: water_box(6),
    "water3993": lambda: water_box(11),
    "water12288": lambda: water_box(16),
    "water31944": lambda: water_box(22),
}
R_MAX = 5.0


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(call, device, warmup, repeats):
    for _ in range(warmup):
        call()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def ethanol_frames(count, seed=0):
    """Rattled ethanol geometries (throughput does not depend on the labels' values)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        atoms = molecule("CH3CH2OH")
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        frames.append(atoms)
    return frames


# ----------------------------------------------------------------------------- mlpot
def mlpot_model(args, avg_num_neighbors):
    import mlpot
    from mlpot.kernels import set_kernels

    model = mlpot.build_model({
        "elements": ELEMENTS, "r_max": R_MAX, "num_bessel": 8, "num_polynomial_cutoff": 5, "max_ell": 3,
        "hidden_irreps": args.hidden or f"{args.channels}x0e+{args.channels}x1o", "correlation": 3, "num_interactions": 2,
        "radial_mlp": [64, 64, 64], "readout_mlp": 16, "avg_num_neighbors": avg_num_neighbors, "dtype": args.dtype,
    }).to(args.device)
    fused = set_kernels(model, args.kernel, args.device)
    return model, fused


def mlpot_inputs(frames, dtype, device):
    from torch_geometric.data import Batch

    from mlpot.data.graph import atoms_to_graph, graph_to_inputs

    batch = Batch.from_data_list([atoms_to_graph(atoms, R_MAX, dtype=dtype) for atoms in frames])
    return {key: value.to(device) for key, value in graph_to_inputs(batch).items()}


def run_mlpot(args, dtype):
    device = torch.device(args.device)
    if args.what == "calculator":
        return mlpot_calculator(args, dtype, device)
    frames = ethanol_frames(args.batch) if args.what == "train" else [SYSTEMS[args.system]()]
    inputs = mlpot_inputs(frames, dtype, device)
    num_atoms, num_edges = inputs["positions"].shape[0], inputs["edge_index"].shape[1]
    model, fused = mlpot_model(args, num_edges / num_atoms)
    info = {"num_atoms": num_atoms, "num_edges": num_edges, "kernel": "fused" if fused else "reference"}
    if args.what == "call":
        model.requires_grad_(False)
        model.eval()

        def call():
            out = model(dict(inputs), compute_forces=True)
            return out["energy"], out["forces"]
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        energy_ref = torch.zeros(args.batch, dtype=dtype, device=device)
        forces_ref = torch.zeros(num_atoms, 3, dtype=dtype, device=device)

        def call():
            optimizer.zero_grad(set_to_none=True)
            out = model({k: (v.clone() if k == "positions" else v) for k, v in inputs.items()}, compute_forces=True, training=True)
            loss = ((out["energy"] - energy_ref) ** 2).mean() + 100.0 * ((out["forces"] - forces_ref) ** 2).mean()
            loss.backward()
            optimizer.step()
    return call, info


def mlpot_calculator(args, dtype, device):
    from mlpot.calculators import MLPotCalculator

    atoms = SYSTEMS[args.system]()
    inputs = mlpot_inputs([atoms], dtype, device)
    model, _ = mlpot_model(args, inputs["edge_index"].shape[1] / len(atoms))
    calculator = MLPotCalculator(model, device=args.device, dtype=args.dtype, kernel=args.kernel)
    atoms.calc = calculator
    rng = np.random.default_rng(0)

    def call():
        atoms.positions = atoms.positions + rng.normal(0.0, 0.002, atoms.positions.shape)  # an MD-sized step
        return atoms.get_forces()

    return call, {"num_atoms": len(atoms), "num_edges": int(inputs["edge_index"].shape[1]), "kernel": "fused" if calculator.fused else "reference"}


# ----------------------------------------------------------------------------- mace-torch
def run_mace(args, dtype):
    from ase.data import atomic_numbers
    from e3nn import o3
    from mace import data as mace_data
    from mace import modules
    from mace.tools import torch_geometric
    from mace.tools.utils import AtomicNumberTable

    device = torch.device(args.device)
    zs = [atomic_numbers[s] for s in ELEMENTS]
    z_table = AtomicNumberTable(zs)
    frames = ethanol_frames(args.batch) if args.what == "train" else [SYSTEMS[args.system]()]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        data = [mace_data.AtomicData.from_config(mace_data.config_from_atoms(a), z_table=z_table, cutoff=R_MAX) for a in frames]
        batch = torch_geometric.batch.Batch.from_data_list(data).to(device)
        num_atoms, num_edges = batch.positions.shape[0], batch.edge_index.shape[1]
        model = modules.ScaleShiftMACE(
            r_max=R_MAX, num_bessel=8, num_polynomial_cutoff=5, max_ell=3,
            interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
            interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
            num_interactions=2, num_elements=len(zs),
            hidden_irreps=o3.Irreps(f"{args.channels}x0e+{args.channels}x1o"), MLP_irreps=o3.Irreps("16x0e"),
            atomic_energies=np.zeros(len(zs)), avg_num_neighbors=num_edges / num_atoms, atomic_numbers=zs,
            correlation=3, gate=torch.nn.functional.silu, radial_MLP=[64, 64, 64], radial_type="bessel",
            atomic_inter_scale=1.0, atomic_inter_shift=0.0,
        ).to(device=device, dtype=dtype)
    finally:
        torch.set_default_dtype(previous)
    inputs = batch.to_dict()
    info = {"num_atoms": num_atoms, "num_edges": num_edges, "kernel": "e3nn"}
    if args.what == "call":
        for parameter in model.parameters():
            parameter.requires_grad = False
        model.eval()

        def call():
            out = model(inputs, compute_force=True, training=False)
            return out["energy"], out["forces"]
    elif args.what == "train":
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def call():
            optimizer.zero_grad(set_to_none=True)
            out = model(dict(inputs), compute_force=True, training=True)
            loss = (out["energy"] ** 2).mean() + 100.0 * (out["forces"] ** 2).mean()
            loss.backward()
            optimizer.step()
    else:
        raise SystemExit("--what calculator is mlpot's own measurement")
    return call, info


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", choices=["mlpot", "mace-torch"], required=True)
    parser.add_argument("--what", choices=["call", "train", "calculator"], default="call")
    parser.add_argument("--system", choices=list(SYSTEMS), default="ethanol")
    parser.add_argument("--batch", type=int, default=5, help="ethanol frames per training step")
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--hidden", help="mlpot only: hidden irreps instead of CHANNELSx0e+CHANNELSx1o")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--kernel", default="auto", choices=["auto", "fused", "reference"])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", help="append the JSON line here")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    call, info = (run_mlpot if args.package == "mlpot" else run_mace)(args, dtype)
    times = timed(call, device, args.warmup, args.repeats)
    median = statistics.median(times)
    result = {
        "package": args.package, "what": args.what, "system": args.system if args.what != "train" else f"ethanol x{args.batch}",
        "channels": args.channels, "hidden": args.hidden, "dtype": args.dtype, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, **info, "median_ms": median * 1e3, "min_ms": min(times) * 1e3, "times_ms": [t * 1e3 for t in times],
        "peak_device_gb": torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None,
    }
    if args.what == "train":
        result["configs_per_s"] = args.batch / median
    line = json.dumps(result)
    print(line, flush=True)
    if args.out:
        with open(args.out, "a") as stream:
            stream.write(line + "\n")


if __name__ == "__main__":
    main()
