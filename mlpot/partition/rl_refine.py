"""Reinforcement-learning refinement of a partition: the refinement of Gatti et al., "Graph
partitioning and sparse matrix ordering using reinforcement learning and graph neural networks"
(arXiv 2104.03546), trained on atom graphs by :mod:`mlpot.partition.train_rl`.

The paper refines a bisection level by level of a multilevel scheme: an agent whose policy is a
graph neural network (SAGE convolutions; an actor giving each node a probability of being moved
and a critic giving the state's value, trained with advantage actor-critic) moves one vertex per
step to the other side, rewarded by the decrease of the normalised cut. Here:

* a k-way partition is refined pair by pair: for each two parts that share cut edges, the agent
  works on the subgraph of those two parts. Moving a node between them changes only their two
  terms of the normalised cut sum_p cut(p) / vol(p) (cut and volume count every edge of the
  whole graph, also those to third parts), so the reward is the exact decrease of the whole
  graph's normalised cut;
* multilevel: the pair's subgraph is coarsened by heavy-edge matching that merges only nodes of
  the same side (so the partition is defined on every level), then refined from the coarsest
  level to the finest, each level's result projected to the next finer one;
* the agent may move a node with a neighbour on the other side whose move keeps the receiving
  part within ``imbalance`` of the fair share N / k (METIS's default tolerance, 3 %, unless the
  part is already larger); node features are the side one-hot and that "movable" flag;
* an episode has at most ``max_steps`` moves per level (the paper: a number of steps set by the
  graph size); the result is the best partition the episode visited, so refinement never raises
  the normalised cut. At inference the policy is greedy and an episode also ends after
  PATIENCE moves without a new best (a time limit of ours).
"""

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from mlpot.partition.gnn import SageConv, heavy_edge_matching
from mlpot.partition.partitioners import undirected_adjacency

WEIGHTS_PATH = Path(__file__).with_name("rl_refiner.pt")
IMBALANCE = 0.03  # a part may grow to (1 + IMBALANCE) N / k atoms, as METIS's default allows
COARSEST = 64  # coarsen a pair's subgraph while it has more nodes than this
MAX_LEVELS = 6
PATIENCE = 16  # greedy moves without a new best before an episode ends


class RefinePolicy(nn.Module):
    """Actor-critic GNN: node features [n, 3] (side one-hot, movable) -> move logits [n] and value []."""

    def __init__(self, width: int = 32, layers: int = 3):
        super().__init__()
        self.convs = nn.ModuleList(SageConv(3 if i == 0 else width, width) for i in range(layers))
        self.actor = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1))
        self.critic = nn.Sequential(nn.Linear(2 * width, width), nn.Tanh(), nn.Linear(width, 1))

    def forward(self, features: torch.Tensor, mean: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = features
        for conv in self.convs:
            x = torch.tanh(conv(x, mean))  # [n, width]
        pooled = torch.cat([x.mean(0), x.max(0).values])  # [2 width]
        return self.actor(x).squeeze(1), self.critic(pooled).squeeze(0)


@dataclass
class PairLevel:
    """One level of a pair's subgraph: ``adjacency`` [n, n] weighted (summed fine edges),
    ``mean`` its row-normalised SAGE operator, ``volume`` [n] fine-graph degree summed over the
    node's atoms, ``outside`` [n] weight of its edges to third parts, ``size`` [n] atoms,
    ``cluster`` [n] its node on the next coarser level (None on the coarsest)."""

    adjacency: sp.csr_matrix
    mean: torch.Tensor
    volume: np.ndarray
    outside: np.ndarray
    size: np.ndarray
    cluster: Optional[np.ndarray] = None


class PairState:
    """Sides [n] (0, 1) of one level's nodes with the sums the normalised cut needs, kept up to
    date move by move."""

    def __init__(self, level: PairLevel, side: np.ndarray, max_size: Tuple[float, float]):
        self.level = level
        self.side = side.astype(np.int64).copy()
        self.max_size = max_size
        adjacency = level.adjacency
        self.across = np.asarray(side_edges(adjacency, self.side, same=False).sum(axis=1)).ravel()  # [n] to the other side
        self.within = np.asarray(adjacency.sum(axis=1)).ravel() - self.across  # [n] to the own side
        self.cut_between = float(self.across.sum() / 2)
        self.outside_sum = np.array([level.outside[self.side == s].sum() for s in (0, 1)])
        self.volume = np.array([level.volume[self.side == s].sum() for s in (0, 1)])
        self.size = np.array([level.size[self.side == s].sum() for s in (0, 1)])

    def normalised_cut(self) -> float:
        cut = self.cut_between + self.outside_sum  # [2]
        return float(np.sum(cut / np.maximum(self.volume, 1e-12)))

    def movable(self) -> np.ndarray:
        """Boolean [n]: on the boundary, the receiving side stays within its size bound, and the
        giving side keeps at least one node."""
        target = 1 - self.side
        fits = self.size[target] + self.level.size <= np.asarray(self.max_size)[target]
        keeps = self.size[self.side] - self.level.size > 0
        return (self.across > 0) & fits & keeps

    def features(self, movable: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.side == 0, self.side == 1, movable], axis=1).astype(np.float32))

    def move(self, node: int) -> float:
        """Move ``node`` to the other side; the decrease of the normalised cut (the reward)."""
        before = self.normalised_cut()
        level, old = self.level, int(self.side[node])
        start, end = level.adjacency.indptr[node], level.adjacency.indptr[node + 1]
        neighbours, weights = level.adjacency.indices[start:end], level.adjacency.data[start:end]
        self.cut_between += self.within[node] - self.across[node]
        same = self.side[neighbours] == old  # neighbours that were on the node's old side
        self.across[neighbours[same]] += weights[same]
        self.within[neighbours[same]] -= weights[same]
        self.across[neighbours[~same]] -= weights[~same]
        self.within[neighbours[~same]] += weights[~same]
        self.across[node], self.within[node] = self.within[node], self.across[node]
        for total, values in ((self.outside_sum, level.outside), (self.volume, level.volume), (self.size, level.size)):
            total[old] -= values[node]
            total[1 - old] += values[node]
        self.side[node] = 1 - old
        return before - self.normalised_cut()


def side_edges(adjacency: sp.csr_matrix, side: np.ndarray, same: bool) -> sp.csr_matrix:
    """The edges of ``adjacency`` between nodes on the same side (``same``) or across."""
    coo = adjacency.tocoo()
    keep = (side[coo.row] == side[coo.col]) == same
    return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=adjacency.shape)


def mean_operator(adjacency: sp.csr_matrix) -> torch.Tensor:
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    coo = (sp.diags(1.0 / np.maximum(degree, 1e-12)) @ adjacency).tocoo()
    indices = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(indices, torch.from_numpy(coo.data.astype(np.float32)), coo.shape, check_invariants=False).coalesce()


def pair_levels(adjacency: sp.csr_matrix, volume: np.ndarray, outside: np.ndarray, side: np.ndarray,
                rng: np.random.Generator) -> List[PairLevel]:
    """Levels from the pair's subgraph (first) to the coarsest; matching merges same-side nodes only."""
    size = np.ones(adjacency.shape[0])
    levels = [PairLevel(adjacency, mean_operator(adjacency), volume, outside, size)]
    while adjacency.shape[0] > COARSEST and len(levels) < MAX_LEVELS:
        cluster = heavy_edge_matching(side_edges(adjacency, side, same=True), rng.permutation(adjacency.shape[0]))
        n_coarse = int(cluster.max()) + 1
        if n_coarse > 0.9 * adjacency.shape[0]:
            break
        projection = sp.csr_matrix((np.ones(len(cluster)), (np.arange(len(cluster)), cluster)), shape=(len(cluster), n_coarse))
        adjacency = (projection.T @ adjacency @ projection).tocsr()
        adjacency.setdiag(0.0)
        adjacency.eliminate_zeros()
        levels[-1].cluster = cluster
        coarse_side = np.zeros(n_coarse, dtype=np.int64)
        coarse_side[cluster] = side
        side = coarse_side
        volume, outside, size = (np.bincount(cluster, weights=values, minlength=n_coarse) for values in (volume, outside, size))
        levels.append(PairLevel(adjacency, mean_operator(adjacency), volume, outside, size))
    return levels


def coarse_sides(levels: List[PairLevel], side: np.ndarray) -> np.ndarray:
    for level in levels[:-1]:
        coarse = np.zeros(int(level.cluster.max()) + 1, dtype=np.int64)
        coarse[level.cluster] = side
        side = coarse
    return side


def run_episode(policy: RefinePolicy, state: PairState, max_steps: int) -> np.ndarray:
    """Greedy moves, stopping early after PATIENCE moves without a new best; the sides [n] of
    the best (lowest normalised cut) state visited."""
    best, best_cut, best_step = state.side.copy(), state.normalised_cut(), 0
    with torch.no_grad():
        for step in range(1, max_steps + 1):
            if step - best_step > PATIENCE:
                break
            movable = state.movable()
            if not movable.any():
                break
            logits, _ = policy(state.features(movable), state.level.mean)
            logits[~torch.from_numpy(movable)] = -torch.inf
            state.move(int(torch.argmax(logits)))
            cut = state.normalised_cut()
            if cut < best_cut - 1e-12:
                best, best_cut, best_step = state.side.copy(), cut, step
    return best


@functools.lru_cache(maxsize=None)
def load_policy(path: Path = WEIGHTS_PATH) -> RefinePolicy:
    """The trained policy; the file holds only tensors and plain values (weights_only=True)."""
    stored = torch.load(path, map_location="cpu", weights_only=True)
    policy = RefinePolicy(**stored["config"])
    policy.load_state_dict(stored["policy"])
    return policy.eval()


def refine_pair(policy: RefinePolicy, adjacency: sp.csr_matrix, degree: np.ndarray, labels: np.ndarray, parts: Tuple[int, int],
                max_size: float, max_steps: int, rng: np.random.Generator) -> None:
    """Refine the boundary between ``parts`` (a, b) of ``labels`` [N] in place, multilevel."""
    nodes = np.flatnonzero((labels == parts[0]) | (labels == parts[1]))
    sub = adjacency[nodes][:, nodes].tocsr()
    side = (labels[nodes] == parts[1]).astype(np.int64)
    outside = degree[nodes] - np.asarray(sub.sum(axis=1)).ravel()
    levels = pair_levels(sub, degree[nodes].astype(np.float64), outside, side, rng)
    bound = (max(max_size, float(np.sum(side == 0))), max(max_size, float(np.sum(side == 1))))
    current = coarse_sides(levels, side)
    for depth in range(len(levels) - 1, -1, -1):
        current = run_episode(policy, PairState(levels[depth], current, bound), max_steps)
        if depth:
            current = current[levels[depth - 1].cluster]
    labels[nodes] = np.where(current == 1, parts[1], parts[0])


def rl_refine(num_nodes: int, edge_index: np.ndarray, labels: np.ndarray, k: int, imbalance: float = IMBALANCE,
              max_steps: int = 64, policy: Optional[RefinePolicy] = None) -> np.ndarray:
    """Refined labels [N] of a k-way partition ``labels`` [N] of the graph ``edge_index`` [2, E]
    (both directions; repeated pairs and self-loops are dropped): each pair of parts that share
    cut edges, most cut first, is refined by the policy. The normalised cut never rises; a part
    grows to at most (1 + imbalance) N / k atoms, or keeps its size if already larger."""
    policy = policy or load_policy()
    labels = np.asarray(labels, dtype=np.int64).copy()
    xadj, adjncy = undirected_adjacency(num_nodes, np.asarray(edge_index, dtype=np.int64))
    adjacency = sp.csr_matrix((np.ones(len(adjncy)), adjncy, xadj), shape=(num_nodes, num_nodes))
    degree = np.diff(xadj).astype(np.float64)
    owner = np.repeat(np.arange(num_nodes), np.diff(xadj))
    crossing = labels[owner] < labels[adjncy]
    pair_keys, counts = np.unique(labels[owner][crossing] * k + labels[adjncy][crossing], return_counts=True)
    rng = np.random.default_rng(0)  # the matching order: the same input always gets the same parts
    max_size = (1.0 + imbalance) * num_nodes / k
    for key in pair_keys[np.argsort(-counts, kind="stable")]:
        refine_pair(policy, adjacency, degree, labels, (int(key // k), int(key % k)), max_size, max_steps, rng)
    return labels
