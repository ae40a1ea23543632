"""Neighbour pairs of a structure, with numpy and matscipy only (no torch).

Kept apart from :mod:`mlpot.data.graph` so that checks of plain structures
(:func:`mlpot.data.geometry.closest_pair` in ``mlpot analyze``) do not import torch. Periodic
images are included; non-periodic directions may have a zero cell vector, as ASE allows.
"""

from typing import Tuple

import numpy as np
from matscipy.neighbours import neighbour_list

from mlpot.errors import MLPotError


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


class VerletList:
    """The pairs of one structure within ``cutoff + skin``, kept while they still hold every pair
    within ``cutoff``: same atoms, cell and periodicity, and no atom moved more than skin / 2
    since the build (two atoms then approach by at most skin). The calculator, the TorchSim model
    and the D3 term keep one per structure, so MD rebuilds lists every few dozen steps, not every
    step; :meth:`edges_within` recomputes the stored pairs' vectors, which gives exactly the
    pairs a fresh build would."""

    def __init__(self, numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray,
                 cutoff: float, skin: float) -> None:
        self.skin = float(skin)
        self.numbers = np.array(numbers, copy=True)  # [N]
        self.positions = np.array(positions, dtype=np.float64, copy=True)  # [N, 3] Å
        self.cell = np.array(cell, dtype=np.float64, copy=True)  # [3, 3]
        self.pbc = np.array(pbc, dtype=bool, copy=True)  # [3]
        self.sender, self.receiver, self.unit_shifts = neighbour_pairs(self.positions, self.cell, self.pbc, cutoff + self.skin)
        self.image_shifts = self.unit_shifts.astype(np.float64) @ self.cell  # [E_skin, 3] Å

    def holds(self, numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray) -> bool:
        if len(numbers) != len(self.numbers) or not np.array_equal(numbers, self.numbers):
            return False
        if not np.array_equal(pbc, self.pbc) or not np.array_equal(cell, self.cell):
            return False
        moved = np.max(np.sum((positions - self.positions) ** 2, axis=1), initial=0.0)  # Å^2
        return bool(moved <= (0.5 * self.skin) ** 2)

    def edges_within(self, positions: np.ndarray, cutoff: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(edge_index [2, E], row 0 sender; image shifts [E, 3] Å; squared lengths [E]) of the
        stored pairs now shorter than ``cutoff``."""
        vectors = positions[self.sender] - positions[self.receiver] + self.image_shifts  # [E_skin, 3]
        squared = np.einsum("ij,ij->i", vectors, vectors)  # [E_skin]
        inside = squared < cutoff * cutoff
        return np.stack([self.sender[inside], self.receiver[inside]]), self.image_shifts[inside], squared[inside]
