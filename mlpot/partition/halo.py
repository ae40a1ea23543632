"""Halos of graph parts: the atoms and edges a part needs to give its own atoms exact energies.

A message-passing model with T interactions gives atom i an energy that depends on the atoms
within T graph hops (along edges into i). For a part owning S_0, grow

    S_{t+1} = S_t + senders of the edges whose receiver is in S_t,   t < T

and evaluate the model on the nodes S_T with every edge whose receiver is in S_{T-1}. Then the
layer-t features of every atom in S_{T-t} are exact (all its incoming edges are present, and
their senders' layer t-1 features are exact), so the owned atoms' energies are exact functions
of the positions, and so are their gradients.

Atoms are indices, not periodic images: an edge carries its Cartesian image shift, so a small
periodic cell whose halo wraps onto itself (even onto the owned atoms, through self-image edges
i -> i) needs no image copies. A halo "wider than the cell" is therefore not an error: it is
at most the whole cell, evaluated once.
"""

from dataclasses import dataclass
from typing import List

import numpy as np


@dataclass
class PartHalo:
    """One part's subgraph: ``nodes`` [n] global atom indices (owned atoms first), ``num_owned``,
    ``edges`` [e] indices into the global edge list, ``local_edge_index`` [2, e] into ``nodes``."""

    nodes: np.ndarray
    num_owned: int
    edges: np.ndarray
    local_edge_index: np.ndarray


def part_halos(edge_index: np.ndarray, labels: np.ndarray, k: int, num_interactions: int) -> List[PartHalo]:
    """The subgraph of each of the k parts (``labels`` [N]) for a model of ``num_interactions`` layers."""
    sender, receiver = np.asarray(edge_index[0]), np.asarray(edge_index[1])
    num_atoms = len(labels)
    local = np.full(num_atoms, -1, dtype=np.int64)
    halos = []
    for part in range(k):
        owned = labels == part  # [N]
        inside, inner = owned.copy(), owned
        for _ in range(num_interactions):
            inner = inside.copy()  # S_t; after the loop, S_{T-1}
            inside[sender[inner[receiver]]] = True
        owned_atoms = np.flatnonzero(owned)
        nodes = np.concatenate([owned_atoms, np.flatnonzero(inside & ~owned)])
        edges = np.flatnonzero(inner[receiver])
        local[nodes] = np.arange(len(nodes))
        halos.append(PartHalo(nodes, len(owned_atoms), edges, np.stack([local[sender[edges]], local[receiver[edges]]])))
        local[nodes] = -1
    return halos


def euclidean_halo_sizes(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, labels: np.ndarray, k: int, width: float
) -> np.ndarray:
    """Atoms per part [k] with a Euclidean halo: owned atoms plus every atom (any image) within
    ``width`` of one; what a spatial decomposition with a num_interactions x r_max ghost shell holds
    (counting each atom once, however many of its images are near)."""
    from mlpot.data.neighbours import neighbour_pairs

    sender, receiver, _ = neighbour_pairs(positions, cell, pbc, width)
    sizes = np.zeros(k, dtype=np.int64)
    for part in range(k):
        inside = labels == part
        inside[sender[inside[receiver]]] = True
        sizes[part] = int(inside.sum())
    return sizes
