"""Learned graph partitioner: the GNN of Gatti et al., "Deep learning and spectral embedding for
graph partitioning" (arXiv 2110.08614), trained on atom graphs by :mod:`mlpot.partition.train_gnn`.

Two modules, both multigrid stacks of SAGE convolutions over a heavy-edge-matching hierarchy of
the graph (coarsen until two nodes are left, convolve there, prolongate level by level with
smoothing convolutions on the way up):

* the embedding module outputs two orthonormal vectors per graph, trained to be the two lowest
  eigenvectors of the random-walk Laplacian D^-1 L (loss: eigen-residual plus Rayleigh quotient);
  the second is an approximate Fiedler vector;
* the partitioning module reads that Fiedler vector and outputs, per node, the probability of each
  side of a bisection, trained on the expected normalised cut.

k parts come from recursive bisection: a graph meant for k parts is split into k // 2 and
k - k // 2 parts, the side sizes proportional to those counts (so k need not be a power of two).
Each side takes the nodes the network most confidently puts there, which keeps parts balanced to
one atom and never empty (the paper takes the argmax; atoms decomposed over processes need
balance more than the last percent of cut).

Differences from the paper, all forced by graphs the paper's code cannot take: the coarsest
level's input is the two lowest eigenvectors of its (tiny, dense) random-walk Laplacian instead
of the identity of its two nodes, which is the same information for two connected nodes and still
defined when a disconnected graph stops coarsening at more nodes; coarse graphs keep the summed
edge weights, used by the matching and by a weighted mean in the convolutions.
"""

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch
from torch import nn

from mlpot.partition.partitioners import check_part_count, undirected_adjacency

WEIGHTS_PATH = Path(__file__).with_name("gnn_partitioner.pt")
# A coarsening step that removes fewer nodes than this fraction has run out of edges to contract
# (a graph of isolated nodes or of components already contracted to one node each).
MIN_COARSENING = 0.05


@dataclass
class Level:
    """One level of the hierarchy: ``mean`` [n, n] sparse row-normalised weighted adjacency (the
    SAGE aggregation; isolated nodes have an empty row), ``cluster`` [n] index of each node's
    node on the next coarser level (absent on the coarsest), ``counts`` [n_coarse] nodes per
    coarse node."""

    mean: torch.Tensor
    cluster: Optional[torch.Tensor] = None
    counts: Optional[torch.Tensor] = None


@dataclass
class Hierarchy:
    """Levels from the input graph (first) to the coarsest (last), and ``coarse_input`` [n_c, 2]:
    the two lowest eigenvectors of the coarsest level's random-walk Laplacian."""

    levels: List[Level]
    coarse_input: torch.Tensor


def heavy_edge_matching(adjacency: sp.csr_matrix, order: np.ndarray) -> np.ndarray:
    """Coarse node [n] of each node: visiting nodes in ``order``, each unmatched node is merged with
    the unmatched neighbour of largest w_ij (1/d_i + 1/d_j), or stays alone (graclus' rule)."""
    indptr, indices, weights = adjacency.indptr, adjacency.indices, adjacency.data
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    inverse_degree = 1.0 / np.maximum(degree, 1e-12)
    cluster = np.full(adjacency.shape[0], -1, dtype=np.int64)
    count = 0
    for i in order:
        if cluster[i] >= 0:
            continue
        neighbours = indices[indptr[i]:indptr[i + 1]]
        free = cluster[neighbours] < 0
        if free.any():
            candidates = neighbours[free]
            score = weights[indptr[i]:indptr[i + 1]][free] * (inverse_degree[i] + inverse_degree[candidates])
            cluster[candidates[np.argmax(score)]] = count
        cluster[i] = count
        count += 1
    return cluster


def build_hierarchy(adjacency: sp.csr_matrix, rng: np.random.Generator) -> Hierarchy:
    """Heavy-edge-matching hierarchy of a symmetric weighted adjacency without self-loops."""
    levels = []
    while True:
        n = adjacency.shape[0]
        level = Level(mean=_mean_operator(adjacency))
        levels.append(level)
        if n <= 2:
            break
        cluster = heavy_edge_matching(adjacency, rng.permutation(n))
        n_coarse = int(cluster.max()) + 1
        if n - n_coarse < MIN_COARSENING * n:
            break
        projection = sp.csr_matrix((np.ones(n), (np.arange(n), cluster)), shape=(n, n_coarse))
        coarse = (projection.T @ adjacency @ projection).tocsr()
        coarse.setdiag(0.0)
        coarse.eliminate_zeros()
        level.cluster = torch.from_numpy(cluster)
        level.counts = torch.from_numpy(np.bincount(cluster, minlength=n_coarse).astype(np.float32))
        adjacency = coarse
    return Hierarchy(levels=levels, coarse_input=_lowest_eigenvectors(adjacency))


def _mean_operator(adjacency: sp.csr_matrix) -> torch.Tensor:
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    normalised = sp.diags(1.0 / np.maximum(degree, 1e-12)) @ adjacency
    coo = normalised.tocoo()
    indices = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(indices, torch.from_numpy(coo.data.astype(np.float32)), coo.shape, check_invariants=False).coalesce()


def _lowest_eigenvectors(adjacency: sp.csr_matrix) -> torch.Tensor:
    """[n, 2] lowest eigenvectors of D^-1 L (isolated nodes count as degree 1); a single node
    gets (1, 0)."""
    dense = adjacency.toarray()
    n = dense.shape[0]
    if n == 1:
        return torch.tensor([[1.0, 0.0]])
    degree = np.maximum(dense.sum(axis=1), 1.0)
    laplacian = np.diag(dense.sum(axis=1)) - dense
    _, vectors = scipy.linalg.eigh(laplacian, np.diag(degree), subset_by_index=[0, 1])
    vectors /= np.linalg.norm(vectors, axis=0, keepdims=True)
    return torch.from_numpy(vectors.astype(np.float32))


class SageConv(nn.Module):
    """GraphSAGE with mean aggregation: W_self x_i + W_neighbours mean_j x_j + b."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.self_linear = nn.Linear(channels_in, channels_out, bias=False)
        self.neighbour_linear = nn.Linear(channels_in, channels_out)

    def forward(self, x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        return self.self_linear(x) + self.neighbour_linear(torch.sparse.mm(mean, x))


def _mlp(widths: List[int]) -> nn.ModuleList:
    return nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))


class EmbeddingModule(nn.Module):
    """Graph -> [n, 2] orthonormal columns: ~ constant and ~ Fiedler vector of D^-1 L."""

    def __init__(self, width: int = 32, smoothing: int = 2, head: tuple = (16, 32, 32)):
        super().__init__()
        self.coarse = SageConv(2, width)
        self.post = nn.ModuleList(SageConv(width, width) for _ in range(smoothing))
        self.head = _mlp([width, *head])
        self.final = nn.Linear(head[-1], 2)

    def forward(self, hierarchy: Hierarchy) -> torch.Tensor:
        levels = hierarchy.levels
        x = torch.tanh(self.coarse(hierarchy.coarse_input, levels[-1].mean))  # [n_c, width]
        for level in reversed(levels[:-1]):
            x = x[level.cluster]  # prolongation to the finer level: [n, width]
            for conv in self.post:
                x = torch.tanh(conv(x, level.mean))
        for linear in self.head:
            x = torch.tanh(linear(x))
        basis, _ = torch.linalg.qr(self.final(x), mode="reduced")  # [n, 2]
        return basis


class PartitioningModule(nn.Module):
    """Graph and its Fiedler-like vector [n, 1] -> [n, 2] probability of each side."""

    def __init__(self, width: int = 16, smoothing: int = 2, head: tuple = (16, 16, 16)):
        super().__init__()
        self.first = SageConv(1, width)
        self.pre = nn.ModuleList(SageConv(width, width) for _ in range(smoothing))
        self.coarse = SageConv(width, width)
        self.post = nn.ModuleList(SageConv(width, width) for _ in range(smoothing))
        self.head = _mlp([width, *head])
        self.final = nn.Linear(head[-1], 2)

    def forward(self, hierarchy: Hierarchy, fiedler: torch.Tensor) -> torch.Tensor:
        levels = hierarchy.levels
        x = torch.tanh(self.first(fiedler, levels[0].mean))  # [n, width]
        kept = []
        for level in levels[:-1]:
            for conv in self.pre:
                x = torch.tanh(conv(x, level.mean))
            kept.append(x)
            # restriction: mean over the nodes merged into each coarse node, [n_coarse, width]
            x = torch.zeros(len(level.counts), x.shape[1]).index_add_(0, level.cluster, x) / level.counts[:, None]
        x = torch.tanh(self.coarse(x, levels[-1].mean))
        for level in reversed(levels[:-1]):
            x = (x[level.cluster] + kept.pop()) / 2
            for conv in self.post:
                x = torch.tanh(conv(x, level.mean))
        for linear in self.head:
            x = torch.tanh(linear(x))
        return torch.softmax(self.final(x), dim=1)


def fiedler_input(embedding: torch.Tensor) -> torch.Tensor:
    """The partitioning module's input [n, 1]: the embedding's second column, centred, scaled by sqrt(n)."""
    fiedler = embedding[:, 1:2]
    return (fiedler - fiedler.mean()) * float(np.sqrt(len(fiedler)))


@functools.lru_cache(maxsize=None)
def load_partitioner(path: Path = WEIGHTS_PATH) -> Dict[str, nn.Module]:
    """The trained modules; the file holds only tensors and plain values (weights_only=True)."""
    stored = torch.load(path, map_location="cpu", weights_only=True)
    config = stored["config"]
    embedding = EmbeddingModule(**config["embedding"])
    partitioning = PartitioningModule(**config["partitioning"])
    embedding.load_state_dict(stored["embedding"])
    partitioning.load_state_dict(stored["partitioning"])
    embedding.eval()
    partitioning.eval()
    return {"embedding": embedding, "partitioning": partitioning}


def bisect(adjacency: sp.csr_matrix, first_size: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean [n]: True for the ``first_size`` nodes the network puts most confidently on side 0."""
    modules = load_partitioner()
    hierarchy = build_hierarchy(adjacency, rng)
    with torch.no_grad():
        embedding = modules["embedding"](hierarchy)
        probability = modules["partitioning"](hierarchy, fiedler_input(embedding))[:, 0]  # [n]
    first = np.zeros(adjacency.shape[0], dtype=bool)
    first[np.argsort(-probability.numpy(), kind="stable")[:first_size]] = True
    return first


def gnn_partition(
    num_nodes: int, edge_index: np.ndarray, k: int, positions: Optional[np.ndarray] = None
) -> np.ndarray:
    """Labels [N] int64 in 0..k-1 by recursive GNN bisection; parts differ in size by at most one
    atom per bisection level and none is empty. ``edge_index`` [2, E]: both directions (repeated
    pairs and self-loops are dropped). ``positions`` is accepted for the dispatcher's uniform
    call and not used: the network sees only the graph, as in the paper."""
    check_part_count(num_nodes, k)
    edge_index = np.asarray(edge_index, dtype=np.int64)
    if edge_index.ndim != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {edge_index.shape}")
    if edge_index.size and (edge_index.min() < 0 or edge_index.max() >= num_nodes):
        raise ValueError(f"edge_index refers to nodes outside 0..{num_nodes - 1}")
    xadj, adjncy = undirected_adjacency(num_nodes, edge_index)
    adjacency = sp.csr_matrix((np.ones(len(adjncy)), adjncy, xadj), shape=(num_nodes, num_nodes))
    labels = np.zeros(num_nodes, dtype=np.int64)
    rng = np.random.default_rng(0)  # the matching order: the same graph always gets the same parts
    _split(adjacency, np.arange(num_nodes), k, 0, labels, rng)
    return labels


def _split(adjacency: sp.csr_matrix, nodes: np.ndarray, k: int, first_label: int, labels: np.ndarray, rng) -> None:
    """Write labels first_label .. first_label + k - 1 for ``nodes`` (their subgraph ``adjacency``)."""
    if k == 1:
        labels[nodes] = first_label
        return
    k_first = k // 2
    first_size = int(np.clip(round(len(nodes) * k_first / k), k_first, len(nodes) - (k - k_first)))
    first = bisect(adjacency, first_size, rng)
    for side, side_k, side_label in ((first, k_first, first_label), (~first, k - k_first, first_label + k_first)):
        chosen = np.flatnonzero(side)
        _split(adjacency[chosen][:, chosen].tocsr(), nodes[chosen], side_k, side_label, labels, rng)
