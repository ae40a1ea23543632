"""ASE ``Atoms`` -> neighbour graph.

Convention (used everywhere in mlpot): ``edge_index[0]`` is the sender j, ``edge_index[1]`` the
receiver i, and ``shifts`` are Cartesian (Å), so that the edge vector is

    r_ij = positions[edge_index[0]] - positions[edge_index[1]] + shifts

Edges come from matscipy's neighbour list: periodic images are included, a cell smaller than the
cutoff yields several edges to images of the same neighbour (and to images of the atom itself),
and atoms may sit outside the cell. Non-periodic directions may have a zero cell vector, as ASE
allows; a box is made up for them, which changes nothing since no shift ever crosses them.
"""

from typing import Dict, Optional, Tuple

import numpy as np
import torch
from ase import Atoms
from matscipy.neighbours import neighbour_list
from torch_geometric.data import Data

from mlpot.data import keys
from mlpot.errors import MLPotError


class AtomicGraph(Data):
    """A torch_geometric ``Data`` holding one structure and, optionally, its labels.

    Fields (see :mod:`mlpot.data.keys`): ``positions`` [N, 3], ``atomic_numbers`` [N],
    ``edge_index`` [2, E], ``shifts`` [E, 3], ``cell`` [1, 3, 3], ``pbc`` [1, 3]. Batching
    concatenates cells to [B, 3, 3] and offsets ``edge_index`` by the atoms before it.
    """


def neighbour_pairs(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ordered pairs (sender j, receiver i, integer image shift S) with |r_ij| < cutoff.

    ``r_ij = positions[j] - positions[i] + S @ cell``. Pairs of an atom with itself are kept
    only for non-zero S (periodic images).
    """
    cell_for_search = _searchable_cell(positions, cell, pbc, cutoff)
    receiver, sender, unit_shifts = neighbour_list(
        "ijS", positions=positions, cell=cell_for_search, pbc=pbc, cutoff=float(cutoff)
    )
    return sender, receiver, unit_shifts


def _searchable_cell(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float) -> np.ndarray:
    """The cell, with each non-periodic vector replaced by one that matscipy can bin with.

    Non-periodic vectors are orthogonal to the periodic ones and span the atoms plus the
    cutoff, so the cell is never singular (a molecule has no cell; a slab may have c = 0).
    """
    if pbc.all():
        if abs(np.linalg.det(cell)) < 1e-9:
            raise MLPotError("structure is periodic in all directions but its cell has zero volume")
        return cell
    periodic = np.array([cell[d] for d in range(3) if pbc[d]]).reshape(-1, 3)
    if len(periodic) and np.linalg.matrix_rank(periodic, tol=1e-9) < len(periodic):
        raise MLPotError("structure's periodic cell vectors are zero or linearly dependent")
    # Orthonormal directions completing the periodic vectors to a basis of R^3.
    complement = np.linalg.svd(periodic, full_matrices=True)[2][len(periodic):] if len(periodic) else np.eye(3)
    extent = float(np.ptp(positions, axis=0).max()) if len(positions) else 0.0
    length = extent + 2.0 * cutoff + 1.0
    search = np.array(cell, dtype=np.float64, copy=True)
    filler = iter(complement)
    for d in range(3):
        if not pbc[d]:
            search[d] = next(filler) * length
    return search


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
