"""Checks that a structure is physically meaningful before a model or an analysis sees it.

Two atoms closer than :data:`MIN_DISTANCE` are not a structure any potential was trained on:
the edge vector between them has no direction (spherical harmonics of a zero vector are NaN)
and a real pair at that distance would need a nuclear-repulsion term. Such input is refused
with the pair named, as are non-finite coordinates.
"""

from typing import Optional, Tuple

import numpy as np
from ase import Atoms

from mlpot.data.neighbours import neighbour_pairs
from mlpot.errors import MLPotError

MIN_DISTANCE = 0.1  # Å
# The neighbour search bins space in cells of the search radius: a 0.1 Å radius makes 1000x more
# bins than 1 Å (4,000 Cu atoms: 415 ms against 0.8 ms), so pairs are searched within 1 Å and
# filtered; ordinary matter has few pairs closer than 1 Å (bonds to H), so the filter is cheap.
_SEARCH_RADIUS = 1.0  # Å


def check_finite(atoms: Atoms, where: str) -> None:
    """One line naming the first atom with a NaN or infinite coordinate (or a non-finite cell)."""
    positions = np.asarray(atoms.positions, dtype=np.float64)
    if not np.isfinite(positions).all():
        bad = int(np.argwhere(~np.isfinite(positions))[0, 0])
        raise MLPotError(f"{where}: atom {bad} ({atoms[bad].symbol}) has a non-finite coordinate")
    if not np.isfinite(atoms.cell.array).all():
        raise MLPotError(f"{where}: the cell has a non-finite entry")


def closest_pair(atoms: Atoms, cutoff: float = MIN_DISTANCE) -> Optional[Tuple[int, int, float]]:
    """(i, j, distance) of the closest pair (periodic images included) nearer than ``cutoff``, or None."""
    if len(atoms) == 0:
        return None
    positions = np.asarray(atoms.positions, dtype=np.float64)
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    sender, receiver, unit_shifts = neighbour_pairs(positions, cell, np.asarray(atoms.pbc, dtype=bool), max(cutoff, _SEARCH_RADIUS))
    distances = np.linalg.norm(positions[sender] - positions[receiver] + unit_shifts @ cell, axis=1)  # [P]
    if not (distances < cutoff).any():
        return None
    k = int(np.argmin(distances))
    i, j = sorted((int(receiver[k]), int(sender[k])))
    return i, j, float(distances[k])


def overlap_message(atoms: Atoms, i: int, j: int, distance: float) -> str:
    """'atoms 3 (H) and 7 (O) are 0.012 Å apart', the words every overlap error uses."""
    return (
        f"atoms {i} ({atoms[i].symbol}) and {j} ({atoms[j].symbol}) are {distance:.3g} Å apart "
        f"(overlapping: closer than {MIN_DISTANCE} Å)"
    )


def check_geometry(atoms: Atoms, where: str) -> None:
    """Refuse non-finite coordinates and overlapping atoms, naming ``where`` (file, frame)."""
    check_finite(atoms, where)
    try:
        pair = closest_pair(atoms)
    except MLPotError as error:  # a periodic cell without volume, named here with the file and frame
        raise MLPotError(f"{where}: {error}") from None
    if pair is not None:
        raise MLPotError(f"{where}: {overlap_message(atoms, *pair)}")
