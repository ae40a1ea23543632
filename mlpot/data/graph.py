"""ASE ``Atoms`` -> neighbour graph.

Convention (used everywhere in mlpot): ``edge_index[0]`` is the sender j, ``edge_index[1]`` the
receiver i, and ``shifts`` are Cartesian (Å), so that the edge vector is

    r_ij = positions[edge_index[0]] - positions[edge_index[1]] + shifts

Edges come from matscipy's neighbour list: periodic images are included, a cell smaller than the
cutoff yields several edges to images of the same neighbour (and to images of the atom itself),
and atoms may sit outside the cell. Non-periodic directions may have a zero cell vector, as ASE
allows; a box is made up for them, which changes nothing since no shift ever crosses them.
"""

from typing import Dict, Optional

import numpy as np
import torch
from ase import Atoms
from torch_geometric.data import Data

from mlpot.data import keys
from mlpot.data.neighbours import neighbour_pairs
from mlpot.errors import MLPotError


class AtomicGraph(Data):
    """A torch_geometric ``Data`` holding one structure and, optionally, its labels.

    Fields (see :mod:`mlpot.data.keys`): ``positions`` [N, 3], ``atomic_numbers`` [N],
    ``edge_index`` [2, E], ``shifts`` [E, 3], ``cell`` [1, 3, 3], ``pbc`` [1, 3]. Batching
    concatenates cells to [B, 3, 3] and offsets ``edge_index`` by the atoms before it.
    """


def atoms_to_graph(atoms: Atoms, r_max: float, dtype: Optional[torch.dtype] = None) -> AtomicGraph:
    """Build the neighbour graph of ``atoms`` with cutoff ``r_max`` (Å).

    >>> from ase.build import molecule
    >>> g = atoms_to_graph(molecule("H2O"), r_max=5.0)
    >>> g.edge_index.shape, g.shifts.shape
    (torch.Size([2, 6]), torch.Size([6, 3]))
    """
    if r_max <= 0:
        raise MLPotError(f"r_max must be positive, got {r_max}")
    dtype = dtype or torch.get_default_dtype()
    positions = np.asarray(atoms.positions, dtype=np.float64)
    if not np.isfinite(positions).all():
        bad = int(np.argwhere(~np.isfinite(positions))[0, 0])
        raise MLPotError(f"atom {bad} has a non-finite coordinate")
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    sender, receiver, unit_shifts = neighbour_pairs(positions, cell, pbc, r_max)
    shifts = unit_shifts.astype(np.float64) @ cell  # [E, 3]
    return AtomicGraph(
        num_nodes=len(atoms),
        positions=torch.tensor(positions, dtype=dtype),
        atomic_numbers=torch.tensor(atoms.numbers, dtype=torch.long),
        edge_index=torch.from_numpy(np.stack([sender, receiver]).astype(np.int64)),
        shifts=torch.tensor(shifts, dtype=dtype),
        cell=torch.tensor(cell, dtype=dtype).unsqueeze(0),
        pbc=torch.tensor(pbc).unsqueeze(0),
    )


def edge_vectors(positions: torch.Tensor, edge_index: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """r_ij = positions[sender] - positions[receiver] + shifts, [E, 3]."""
    return positions[edge_index[0]] - positions[edge_index[1]] + shifts





def graph_to_inputs(graph: Data) -> Dict[str, torch.Tensor]:
    """The tensors of a graph or batch as the model's input dict (adds ``batch`` for one graph)."""
    inputs = {key: value for key, value in graph.items() if isinstance(value, torch.Tensor)}
    if keys.BATCH not in inputs:
        inputs[keys.BATCH] = torch.zeros(graph.num_nodes, dtype=torch.long, device=inputs[keys.POSITIONS].device)
    return inputs
