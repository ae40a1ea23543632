"""Partitioners of an atom graph into k parts, and measures of how good a partition is.

Methods (:data:`METHODS`):

* ``grid``: a uniform grid of nx x ny x nz boxes (nx ny nz = k, shaped after the system's extent)
  over the cell's fractional coordinates in periodic directions and the atoms' bounding box in open
  ones; the spatial-decomposition baseline. Vacuum, droplets and nanoparticles leave boxes empty.
* ``metis``: METIS k-way partition (pymetis, the ``partition`` extra) of the neighbour graph,
  balancing atoms and minimising the edges cut; the default.
* ``gnn``: the learned partitioner of :mod:`mlpot.partition.gnn` (arXiv 2110.08614), where installed.

Graphs follow :mod:`mlpot.data.graph`: ``edge_index[0]`` sender, ``edge_index[1]`` receiver, both
directions present; several edges between one pair (periodic images) and self-image edges allowed.
"""

import importlib.util
from typing import Dict, Optional

import numpy as np

from mlpot.errors import MLPotError
from mlpot.optional import require_extra
from mlpot.partition import METHODS


def partition_atoms(
    num_atoms: int,
    edge_index: np.ndarray,
    k: int,
    method: str = "metis",
    positions: Optional[np.ndarray] = None,
    cell: Optional[np.ndarray] = None,
    pbc: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Part label of each atom [N] (int64 in 0..k-1), every part non-empty.

    ``edge_index`` [2, E]: the neighbour graph (metis, gnn). ``positions`` [N, 3], ``cell`` [3, 3]
    and ``pbc`` [3]: the geometry (grid; gnn may use positions). Bad requests are one-line
    :class:`MLPotError`: k < 1, more parts than atoms, an unknown method, an empty part.
    """
    check_part_count(num_atoms, k)
    if method not in METHODS:
        raise MLPotError(f"partition method must be one of {', '.join(METHODS)}, got {method!r}")
    if k == 1:
        return np.zeros(num_atoms, dtype=np.int64)
    if method == "grid":
        if positions is None:
            raise ValueError("grid partition needs positions")
        labels = grid_labels(positions, cell if cell is not None else np.zeros((3, 3)), pbc if pbc is not None else np.zeros(3, bool), k)
    elif method == "metis":
        labels = fill_empty_parts(metis_labels(num_atoms, edge_index, k), k)
    else:
        labels = _gnn_labels(num_atoms, edge_index, k, positions)
    check_no_empty_part(labels, k, method)
    return labels


def check_part_count(num_atoms: int, k: int) -> None:
    """k is an integer between 1 and the number of atoms."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise MLPotError(f"the number of parts must be an integer of at least 1, got {k!r}")
    if k > num_atoms:
        raise MLPotError(f"cannot split {num_atoms} atoms into {k} parts: more parts than atoms")


def check_no_empty_part(labels: np.ndarray, k: int, method: str) -> None:
    sizes = np.bincount(labels, minlength=k)
    empty = np.flatnonzero(sizes == 0)
    if len(empty):
        raise MLPotError(
            f"{method} partition into {k} parts leaves {len(empty)} of them empty (part {int(empty[0])} first; "
            f"vacuum or a sparse region?); use fewer parts or method metis"
        )


def fill_empty_parts(labels: np.ndarray, k: int) -> np.ndarray:
    """Labels with each empty part given one atom of the then largest part (METIS leaves parts
    empty when k is close to the number of atoms); any labelling is exact, this one is valid."""
    labels = labels.copy()
    sizes = np.bincount(labels, minlength=k)
    for part in np.flatnonzero(sizes == 0):
        largest = int(np.argmax(sizes))
        labels[np.flatnonzero(labels == largest)[-1]] = part
        sizes[largest] -= 1
        sizes[part] = 1
    return labels


def grid_shape(extent: np.ndarray, k: int) -> np.ndarray:
    """(nx, ny, nz) with nx ny nz = k whose boxes are closest to cubes for this extent [3] (Å)."""
    best, best_score = None, np.inf
    extent = np.maximum(np.asarray(extent, dtype=np.float64), 1e-6)
    for nx in range(1, k + 1):
        if k % nx:
            continue
        for ny in range(1, k // nx + 1):
            if (k // nx) % ny:
                continue
            shape = np.array([nx, ny, k // nx // ny])
            box = extent / shape
            score = float(box.max() / box.min())
            if score < best_score - 1e-12:
                best, best_score = shape, score
    return best


def grid_labels(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, k: int) -> np.ndarray:
    """Labels [N] of a uniform grid of k boxes; boxes may be empty (the dispatcher refuses that)."""
    positions = np.asarray(positions, dtype=np.float64)
    pbc = np.asarray(pbc, dtype=bool)
    fractions = np.empty_like(positions)  # [N, 3] in [0, 1)
    extent = np.empty(3)
    if pbc.any():
        scaled = positions @ np.linalg.pinv(cell)  # fractional along the cell vectors
    for d in range(3):
        if pbc[d]:
            fractions[:, d] = scaled[:, d] % 1.0
            extent[d] = np.linalg.norm(cell[d])
        else:
            low, high = positions[:, d].min(), positions[:, d].max()
            extent[d] = high - low
            fractions[:, d] = (positions[:, d] - low) / max(high - low, 1e-12)
    shape = grid_shape(extent, k)
    box = np.minimum((fractions * shape).astype(np.int64), shape - 1)  # [N, 3]
    return (box[:, 0] * shape[1] + box[:, 1]) * shape[2] + box[:, 2]


def undirected_adjacency(num_atoms: int, edge_index: np.ndarray):
    """(xadj [N+1], adjncy) CSR of the simple undirected graph: no self-loops, no repeated pairs."""
    sender, receiver = np.asarray(edge_index[0], np.int64), np.asarray(edge_index[1], np.int64)
    keep = sender != receiver
    pair_keys = np.unique(np.concatenate([sender[keep] * num_atoms + receiver[keep], receiver[keep] * num_atoms + sender[keep]]))  # [M], sorted
    first, second = np.divmod(pair_keys, num_atoms)
    xadj = np.zeros(num_atoms + 1, dtype=np.int64)
    np.cumsum(np.bincount(first, minlength=num_atoms), out=xadj[1:])
    return xadj, second


def metis_labels(num_atoms: int, edge_index: np.ndarray, k: int) -> np.ndarray:
    """METIS k-way labels [N] balancing atoms and minimising the cut edges."""
    pymetis = require_extra("pymetis", "partition", "METIS partitioning")
    xadj, adjncy = undirected_adjacency(num_atoms, edge_index)
    if hasattr(pymetis, "CSRAdjacency"):  # pymetis >= 2025.1; xadj/adjncy keywords are deprecated there
        _, labels = pymetis.part_graph(int(k), adjacency=pymetis.CSRAdjacency(xadj, adjncy))
    else:
        _, labels = pymetis.part_graph(int(k), xadj=xadj, adjncy=adjncy)
    return np.asarray(labels, dtype=np.int64)


def _gnn_labels(num_atoms: int, edge_index: np.ndarray, k: int, positions: Optional[np.ndarray]) -> np.ndarray:
    if importlib.util.find_spec("mlpot.partition.gnn") is None:
        raise MLPotError("partition method gnn is not available in this installation (mlpot.partition.gnn is missing); use metis or grid")
    from mlpot.partition.gnn import gnn_partition

    return np.asarray(gnn_partition(num_atoms, np.asarray(edge_index, dtype=np.int64), k, positions), dtype=np.int64)


def partition_quality(labels: np.ndarray, edge_index: np.ndarray, k: int, halo_sizes: Optional[np.ndarray] = None) -> Dict[str, float]:
    """Edge cut (undirected pairs across parts), normalised cut (sum over parts of cut / volume),
    worst part's load (largest part / (N / k)) and, with the atoms each part evaluates
    ``halo_sizes`` [k], the redundancy (atoms evaluated / atoms owned) and the largest part evaluated."""
    num_atoms = len(labels)
    xadj, adjncy = undirected_adjacency(num_atoms, edge_index)
    owner = np.repeat(np.arange(num_atoms), np.diff(xadj))
    crossing = labels[owner] != labels[adjncy]  # [M], each pair twice
    volume = np.bincount(labels[owner], minlength=k).astype(np.float64)
    cut = np.bincount(labels[owner][crossing], minlength=k).astype(np.float64)
    sizes = np.bincount(labels, minlength=k)
    quality = {
        "edge_cut": int(crossing.sum() // 2),
        "normalised_cut": float(np.sum(cut / np.maximum(volume, 1.0))),
        "worst_load": float(sizes.max() * k / num_atoms),
    }
    if halo_sizes is not None:
        quality["redundancy"] = float(np.sum(halo_sizes) / num_atoms)
        quality["largest_evaluated"] = int(np.max(halo_sizes))
    return quality
