"""Exact partitioned evaluation of a potential, one part at a time.

Each part evaluates ``model.node_energy`` on its owned atoms plus their halo
(:mod:`mlpot.partition.halo`) and differentiates the sum of its owned atoms' energies only:

    E = sum_parts sum_{i owned} E_i,   F = -sum_parts dE_part/dpositions (halo terms go back to
    their owners by index),   virial = -sum_parts dE_part/d(strain)

Strain acts on the edge vectors, r_ij -> r_ij (1 + strain), which is what the model's strain of
positions, shifts and cell does to them. The result equals the unpartitioned model up to the
order of floating-point sums (1e-12 relative in float64 in the tests). Peak memory is that of
the largest part: each part's tensors are freed before the next is built.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from mlpot.data import keys
from mlpot.errors import MLPotError
from mlpot.partition.halo import PartHalo, part_halos
from mlpot.partition.partitioners import partition_atoms


@dataclass
class PartSums:
    """Sums over some parts: ``energy`` [], ``node_energy`` [N] (owned atoms' only),
    ``forces`` [N, 3], ``virial`` [3, 3] (zeros without stress)."""

    energy: torch.Tensor
    node_energy: torch.Tensor
    forces: torch.Tensor
    virial: torch.Tensor

    def flat(self) -> torch.Tensor:
        return torch.cat([self.energy.view(1), self.node_energy, self.forces.reshape(-1), self.virial.reshape(-1)])

    @classmethod
    def from_flat(cls, flat: torch.Tensor, num_atoms: int) -> "PartSums":
        energy, node_energy, forces, virial = torch.split(flat, [1, num_atoms, 3 * num_atoms, 9])
        return cls(energy[0], node_energy, forces.view(num_atoms, 3), virial.view(3, 3))


def check_partitionable(model: nn.Module) -> None:
    """Refuse a model whose energy is not all in ``node_energy``: D3 dispersion (``model.dispersion``)
    has its own long-range neighbour list, far past the parts' halos, so the parts would drop it."""
    config = model.config_dict()
    if any(member.get("dispersion") for member in config.get("members", [config])):
        raise MLPotError(
            "partitioned evaluation cannot include the model's D3 dispersion (model.dispersion, whose cutoff reaches "
            "far past the parts' halos); evaluate this model without partitions"
        )


def evaluate_parts(
    model: nn.Module,
    positions: torch.Tensor,
    atomic_numbers: torch.Tensor,
    shifts: torch.Tensor,
    halos: Sequence[PartHalo],
    compute_stress: bool,
) -> PartSums:
    """Sums over ``halos`` of the owned atoms' energies and of every part's gradients.

    positions [N, 3], atomic_numbers [N], shifts [E, 3] (Cartesian, of the global edge list the
    halos index)."""
    num_atoms = positions.shape[0]
    options = {"dtype": positions.dtype, "device": positions.device}
    sums = PartSums(torch.zeros((), **options), torch.zeros(num_atoms, **options),
                    torch.zeros(num_atoms, 3, **options), torch.zeros(3, 3, **options))
    for halo in halos:
        _add_part(model, positions.detach(), atomic_numbers, shifts.detach(), halo, compute_stress, sums)
    return sums


def _add_part(model, positions, atomic_numbers, shifts, halo: PartHalo, compute_stress: bool, sums: PartSums) -> None:
    device = positions.device
    nodes = torch.from_numpy(halo.nodes).to(device)  # [n]
    edge_index = torch.from_numpy(halo.local_edge_index).to(device)  # [2, e]
    local_positions = positions.index_select(0, nodes).requires_grad_(True)  # [n, 3]
    inputs = [local_positions]
    with torch.enable_grad():  # also inside a caller's no_grad: forces are gradients
        vectors = (local_positions.index_select(0, edge_index[0]) - local_positions.index_select(0, edge_index[1])
                   + shifts.index_select(0, torch.from_numpy(halo.edges).to(device)))  # [e, 3]
        if compute_stress:
            displacement = torch.zeros(3, 3, dtype=positions.dtype, device=device, requires_grad=True)
            inputs.append(displacement)
            vectors = vectors + vectors @ (0.5 * (displacement + displacement.T))
        node_energy = model.node_energy(vectors, atomic_numbers.index_select(0, nodes), edge_index)[: halo.num_owned]  # [n0]
        energy = node_energy.sum()
        grads = torch.autograd.grad([energy], inputs, allow_unused=True)
    owned = nodes[: halo.num_owned]
    sums.energy += energy.detach()
    sums.node_energy[owned] = node_energy.detach()
    if grads[0] is not None:
        sums.forces.index_add_(0, nodes, -grads[0])
    if compute_stress and grads[1] is not None:
        sums.virial -= grads[1]


def partitioned_outputs(
    sums: PartSums, cell: torch.Tensor, compute_stress: bool
) -> Dict[str, torch.Tensor]:
    """The model's output dict for one structure: energy [1], node_energy [N], forces [N, 3] and,
    with stress, virial and stress [1, 3, 3] (cell [3, 3]; stress zero for a zero volume)."""
    out = {keys.ENERGY: sums.energy.view(1), keys.NODE_ENERGY: sums.node_energy, keys.FORCES: sums.forces}
    if compute_stress:
        volume = torch.linalg.det(cell).abs()
        out[keys.VIRIAL] = sums.virial.unsqueeze(0)
        out[keys.STRESS] = (-sums.virial / volume if float(volume) > 0 else torch.zeros_like(sums.virial)).unsqueeze(0)
    return out


def evaluate_partitioned(
    model: nn.Module,
    positions: torch.Tensor,
    atomic_numbers: torch.Tensor,
    edge_index: torch.Tensor,
    shifts: torch.Tensor,
    cell: torch.Tensor,
    labels: np.ndarray,
    k: int,
    compute_stress: bool,
    group: Optional["torch.distributed.ProcessGroup"] = None,
) -> Dict[str, torch.Tensor]:
    """The model's outputs for one structure from k parts (``labels`` [N]); in a torch.distributed
    run (``group``, or the default group once initialised with more than one rank) the first
    rank's labels are used everywhere, each rank evaluates parts rank, rank + world, ... and the
    sums are all-reduced, so every rank returns the whole result."""
    check_partitionable(model)
    distributed = group is not None or _distributed_run()
    if distributed:
        from mlpot.partition.distributed import evaluate_distributed, shared_labels

        labels = shared_labels(labels, positions.device, group)
    halos = part_halos(edge_index.cpu().numpy(), labels, k, int(model.num_interactions))
    if distributed:
        sums = evaluate_distributed(model, positions, atomic_numbers, shifts, halos, compute_stress, group)
    else:
        sums = evaluate_parts(model, positions, atomic_numbers, shifts, halos, compute_stress)
    return partitioned_outputs(sums, cell, compute_stress)


def _distributed_run() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class PartitionedPotential(nn.Module):
    """A potential evaluated in ``k`` parts per structure, with the model's forward interface
    (batches of graphs in, energies, node energies, forces and stress out), for ``mlpot eval``.

    A committee gives its members' mean only (no spread). ``frames_seen`` counts structures, so
    that a frame with fewer atoms than parts is named (in ``where``, the file). With
    ``memory_budget`` (bytes) each frame gets the fewest parts whose largest fits it
    (:func:`mlpot.partition.budget.parts_for_budget`) and ``k`` is ignored."""

    def __init__(self, model: nn.Module, k: int, method: str = "metis", where: str = "data",
                 memory_budget: Optional[int] = None) -> None:
        super().__init__()
        check_partitionable(model)
        self.model = model
        self.k = k
        self.memory_budget = memory_budget
        self.method = method
        self.r_max = model.r_max
        self.num_interactions = model.num_interactions
        self.register_buffer("atomic_numbers", model.atomic_numbers.clone())
        self.frames_seen = 0
        self.where = where

    def config_dict(self):
        return self.model.config_dict()

    def forward(self, data: Dict[str, torch.Tensor], compute_forces: bool = True, compute_stress: bool = False,
                training: bool = False) -> Dict[str, torch.Tensor]:
        from mlpot.errors import MLPotError

        if training:
            raise ValueError("a PartitionedPotential evaluates; it does not train")
        batch, edge_index = data[keys.BATCH], data[keys.EDGE_INDEX]
        outputs: List[Dict[str, torch.Tensor]] = []
        for graph in range(data[keys.CELL].shape[0]):
            nodes = torch.nonzero(batch == graph).flatten()  # [n], contiguous in a batch
            edges = torch.nonzero(batch[edge_index[1]] == graph).flatten()
            local_edge_index = edge_index[:, edges] - nodes[0]
            geometry = (data[keys.POSITIONS][nodes].detach().cpu().numpy().astype(np.float64),
                        data[keys.CELL][graph].cpu().numpy().astype(np.float64), data[keys.PBC][graph].cpu().numpy())
            if self.memory_budget is not None:
                from mlpot.partition.budget import parts_for_budget

                try:
                    k, labels = parts_for_budget(self.model, data[keys.POSITIONS].dtype, self.memory_budget,
                                                 local_edge_index.cpu().numpy(), len(nodes), self.method, *geometry)
                except MLPotError as error:
                    raise MLPotError(f"{self.where}: frame {self.frames_seen}: {error}") from None
            else:
                if len(nodes) < self.k:
                    raise MLPotError(f"{self.where}: frame {self.frames_seen} has {len(nodes)} atoms, fewer than the {self.k} parts asked for")
                k, labels = self.k, partition_atoms(len(nodes), local_edge_index.cpu().numpy(), self.k, self.method, *geometry)
            outputs.append(evaluate_partitioned(self.model, data[keys.POSITIONS][nodes], data[keys.ATOMIC_NUMBERS][nodes],
                                                local_edge_index, data[keys.SHIFTS][edges], data[keys.CELL][graph], labels,
                                                k, compute_stress))
            self.frames_seen += 1
        return {key: torch.cat([out[key] for out in outputs]) for key in outputs[0]}
