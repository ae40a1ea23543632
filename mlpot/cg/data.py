"""Frames of one molecule as backmapping inputs: atom graph plus bead graph.

A :class:`BackmapGraph` holds one frame: ``positions`` [n, 3] with the atom graph
``edge_index`` (cutoff r_max) and ``cg_positions`` [N, 3] with the bead graph
``cg_edge_index`` (cutoff cg_r_max). Batching stacks frames and offsets ``edge_index`` by
atoms and ``cg_edge_index`` by beads, which is the layout the model expects.
"""

from typing import Dict, List

import numpy as np
import torch
from torch_geometric.data import Data

from mlpot.data import keys
from mlpot.data.graph import neighbour_pairs

_NO_CELL = np.zeros((3, 3))
_NO_PBC = np.zeros(3, dtype=bool)


class BackmapGraph(Data):
    def __inc__(self, key, value, *args, **kwargs):
        if key == keys.CG_EDGE_INDEX:
            return self[keys.CG_POSITIONS].shape[0]
        return super().__inc__(key, value, *args, **kwargs)


def radius_edges(positions: np.ndarray, cutoff: float) -> torch.Tensor:
    """[2, E] (sender, receiver) pairs closer than ``cutoff`` within one frame [n, 3]."""
    sender, receiver, _ = neighbour_pairs(positions, _NO_CELL, _NO_PBC, cutoff)
    return torch.from_numpy(np.stack([sender, receiver]).astype(np.int64))


def frame_graphs(trajectory: np.ndarray, cg: np.ndarray, r_max: float, cg_r_max: float, dtype: torch.dtype) -> List[BackmapGraph]:
    """One graph per frame of atoms [F, n, 3] and beads [F, N, 3]."""
    graphs = []
    for atoms, beads in zip(trajectory, cg):
        graphs.append(
            BackmapGraph(
                num_nodes=len(atoms),
                positions=torch.tensor(atoms, dtype=dtype),
                edge_index=radius_edges(atoms, r_max),
                cg_positions=torch.tensor(beads, dtype=dtype),
                cg_edge_index=radius_edges(beads, cg_r_max),
            )
        )
    return graphs


def batch_inputs(batch: Data) -> Dict[str, torch.Tensor]:
    """The model's input dict from a batch of :class:`BackmapGraph`."""
    names = (keys.POSITIONS, keys.EDGE_INDEX, keys.CG_POSITIONS, keys.CG_EDGE_INDEX)
    return {name: batch[name] for name in names}


def cg_inputs(cg: np.ndarray, cg_r_max: float, dtype: torch.dtype, device: str = "cpu") -> Dict[str, torch.Tensor]:
    """Inputs for sampling from CG frames alone, [F, N, 3] -> cg_positions and cg_edge_index."""
    edges = [radius_edges(beads, cg_r_max) + k * cg.shape[1] for k, beads in enumerate(cg)]
    return {
        keys.CG_POSITIONS: torch.tensor(cg.reshape(-1, 3), dtype=dtype, device=device),
        keys.CG_EDGE_INDEX: torch.cat(edges, dim=1).to(device),
    }


def average_neighbours(graphs: List[BackmapGraph]) -> Dict[str, float]:
    """Mean in-degree of the atom graph and of the bead graph (message normalisation)."""
    atoms = sum(int(g.edge_index.shape[1]) for g in graphs) / max(sum(g.num_nodes for g in graphs), 1)
    beads = sum(int(g.cg_edge_index.shape[1]) for g in graphs) / max(sum(g.cg_positions.shape[0] for g in graphs), 1)
    return {"avg_num_neighbors": max(atoms, 1.0), "cg_avg_num_neighbors": max(beads, 1.0)}
