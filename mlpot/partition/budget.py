"""Choose the number of parts from a memory budget: the largest part (owned atoms plus halo) must
fit in it.

A part's peak memory is that of one energy + forces (+ stress) evaluation of the model on the
part's atoms: per-edge tensors kept for the backward pass (the tensor-product messages and their
radial weights, the radial MLP's activations) and per-node ones (the symmetric contraction's
products). Per evaluated atom and interaction, in units of the dtype's item size,

    neighbours x (EDGE_PRODUCT C H L + EDGE_CHANNEL C + EDGE_RADIAL R) + NODE_PRODUCT C H L

with C the hidden channels, H = (hidden lmax + 1)^2, L = (max_ell + 1)^2, R the radial MLP's
summed widths and ``neighbours`` the mean number of edges into an atom; a committee's members
add up (all are kept for one backward pass). The constants are a least-squares-by-hand fit to
peaks measured on water boxes of 648 and 1536 atoms (54 neighbours) and on half-density water
(25 neighbours), with models of 32-64 channels, hidden lmax 1-2, max_ell 2-3, 2-3 interactions,
float32 and float64; SAFETY keeps the estimate above every measurement
(benchmarks/partition/memory_per_atom.py, memory_per_atom.json and the README there). Arrays of
the whole system (positions, forces, neighbour list: O(N)) and the model's parameters come on
top of the budget.
"""

import math
import re
from typing import Optional, Tuple

import numpy as np
import torch
from torch import nn

from mlpot.errors import MLPotError
from mlpot.nn.irreps import FeatureIrreps
from mlpot.partition.halo import part_halos
from mlpot.partition.partitioners import partition_atoms

EDGE_PRODUCT, EDGE_CHANNEL, EDGE_RADIAL, NODE_PRODUCT = 0.041, 7.0, 1.8, 2.0
SAFETY = 1.3
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_memory_size(size, what: str = "memory budget") -> int:
    """Bytes of ``size``: a positive number of bytes, or text such as "8GB", "8 GiB", "512MB",
    "1.5G" (kB/MB/GB/TB decimal; K/M/G/T and KiB/MiB/GiB/TiB binary)."""
    if isinstance(size, bool):
        raise MLPotError(f"{what} must be a size such as 8GB or 512MiB, got {size!r}")
    if isinstance(size, (int, float)):
        value, unit = float(size), ""
    else:
        match = re.fullmatch(r"\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(size))
        if match is None or match.group(2).lower() not in _UNITS:
            raise MLPotError(f"{what} must be a size such as 8GB or 512MiB, got {size!r}")
        value, unit = float(match.group(1)), match.group(2).lower()
    if not math.isfinite(value) or value <= 0:
        raise MLPotError(f"{what} must be positive, got {size!r}")
    return int(value * _UNITS[unit])


def bytes_per_atom(model: nn.Module, dtype: torch.dtype, neighbours_per_atom: float) -> float:
    """Estimated peak bytes per evaluated atom of one part's evaluation (see the module docstring)."""
    config = model.config_dict()
    itemsize = torch.empty((), dtype=dtype).element_size()
    total = 0.0
    for member in config.get("members", [config]):
        hidden = FeatureIrreps.parse(member["hidden_irreps"])
        product = hidden.channels * hidden.dim * (member["max_ell"] + 1) ** 2  # C H L
        per_edge = EDGE_PRODUCT * product + EDGE_CHANNEL * hidden.channels + EDGE_RADIAL * sum(member.get("radial_mlp", [64, 64, 64]))
        total += itemsize * member["num_interactions"] * (neighbours_per_atom * per_edge + NODE_PRODUCT * product)
    return SAFETY * total


def parts_for_budget(
    model: nn.Module,
    dtype: torch.dtype,
    budget: int,
    edge_index: np.ndarray,
    num_atoms: int,
    method: str = "metis",
    positions: Optional[np.ndarray] = None,
    cell: Optional[np.ndarray] = None,
    pbc: Optional[np.ndarray] = None,
) -> Tuple[int, np.ndarray]:
    """(k, labels [N]): the fewest parts, tried from N x bytes per atom / budget upwards, whose
    largest part with its halo fits ``budget`` bytes. ``edge_index`` [2, E] is the graph the model
    sees (its neighbour list). One line of :class:`MLPotError` when no k can do it."""
    edge_index = np.asarray(edge_index)
    per_atom = bytes_per_atom(model, dtype, edge_index.shape[1] / max(num_atoms, 1))
    num_interactions = int(model.num_interactions)
    in_degree = np.bincount(edge_index[1], minlength=num_atoms) if edge_index.size else np.zeros(num_atoms, np.int64)
    smallest_part = 1 + int(in_degree.max())  # one atom and its first shell: a lower bound on any part
    if smallest_part * per_atom > budget:
        raise MLPotError(
            f"memory budget {_readable(budget)} cannot be met even by one atom per part: an atom with its "
            f"{smallest_part - 1} neighbours needs about {_readable(smallest_part * per_atom)} ({_readable(per_atom)} per atom)"
        )
    k = max(1, math.ceil(num_atoms * per_atom / budget))
    while k <= num_atoms:
        labels = partition_atoms(num_atoms, edge_index, k, method, positions, cell, pbc)
        largest = max(len(halo.nodes) for halo in part_halos(edge_index, labels, k, num_interactions))
        if largest * per_atom <= budget:
            return k, labels
        k = max(k + 1, math.ceil(k * largest * per_atom / budget))
    raise MLPotError(
        f"memory budget {_readable(budget)} cannot be met even by one atom per part: the halos of "
        f"{num_atoms} parts of this structure need more ({_readable(per_atom)} per evaluated atom)"
    )


def _readable(size: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:.0f} B"
