"""Partitioned evaluation across processes with torch.distributed (gloo on CPU, nccl on GPU).

Every rank holds the structure's positions and the neighbour graph (O(N), small) but builds and
evaluates only parts rank, rank + world, ...; one all-reduce sums energy, per-atom energies,
forces and virial, so every rank ends with the whole result. Inside any script run by torchrun,
:class:`mlpot.calculators.MLPotCalculator` with ``partitions=k`` does this by itself once a
process group is initialised. As a command:

    torchrun --nproc-per-node 2 -m mlpot.partition.distributed --model M --structure FILE --partitions 4

prints the energy (rank 0) and, with --output, writes the structure with mlpot_energy and mlpot_forces.
"""

import argparse
import os
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from mlpot.partition.evaluate import PartSums, evaluate_parts
from mlpot.partition.halo import PartHalo


def evaluate_distributed(
    model: nn.Module,
    positions: torch.Tensor,
    atomic_numbers: torch.Tensor,
    shifts: torch.Tensor,
    halos: Sequence[PartHalo],
    compute_stress: bool,
    group: Optional[dist.ProcessGroup] = None,
) -> PartSums:
    """This rank's share of the parts, then the sums over all ranks (every rank gets them)."""
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    mine: List[PartHalo] = list(halos)[rank::world]
    sums = evaluate_parts(model, positions, atomic_numbers, shifts, mine, compute_stress)
    flat = sums.flat()  # [1 + N + 3N + 9]
    dist.all_reduce(flat, group=group)
    return PartSums.from_flat(flat, positions.shape[0])


def shared_labels(labels: np.ndarray, device: torch.device, group: Optional[dist.ProcessGroup] = None) -> np.ndarray:
    """The first rank's part labels [N] on every rank: a partitioner need not give the same
    labels in every process (threads, seeds), and ranks must agree on who owns which atom."""
    tensor = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64)).to(device)
    dist.broadcast(tensor, src=0 if group is None else dist.get_global_rank(group, 0), group=group)
    return tensor.cpu().numpy()


def main(argv: Optional[Sequence[str]] = None) -> int:
    from mlpot.calculators import MLPotCalculator
    from mlpot.data.dataset import read_structure
    from mlpot.data.extxyz import write_extxyz
    from mlpot.errors import MLPotError
    from mlpot.models.io import resolve_model_path
    from mlpot.partition.partitioners import METHODS

    parser = argparse.ArgumentParser(prog="torchrun ... -m mlpot.partition.distributed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, nargs="+")
    parser.add_argument("--structure", required=True)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--method", default="metis", choices=METHODS)
    parser.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    parser.add_argument("--output", help="extxyz with mlpot_energy and mlpot_forces (rank 0 writes it)")
    args = parser.parse_args(argv)
    use_cuda = torch.cuda.is_available() and os.environ.get("MLPOT_DISTRIBUTED_DEVICE", "") != "cpu"
    owns_group = not dist.is_initialized()  # a caller may have started it
    if owns_group:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    try:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if use_cuda else "cpu"
        atoms = read_structure(args.structure, args.index)
        atoms.calc = MLPotCalculator([resolve_model_path(path) for path in args.model], device=device, dtype=args.dtype,
                                     partitions=args.partitions, partition_method=args.method)
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
        if dist.get_rank() == 0:
            print(f"energy {energy:.10f} eV, {len(atoms)} atoms, {args.partitions} parts on {dist.get_world_size()} ranks")
            if args.output:
                write_extxyz(args.output, [(atoms, {"mlpot_energy": energy}, {"mlpot_forces": forces})])
    except MLPotError as error:
        print(f"mlpot: error: {error}")
        return 2
    finally:
        if owns_group:
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
