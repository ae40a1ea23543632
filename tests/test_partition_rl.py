"""RL refinement of partitions (issue 31, arXiv 2104.03546): the incremental normalised cut, the
guarantees of refinement (never a higher cut, bounded part sizes, valid labels), the shipped
policy repairing damaged bisections, and one training episode."""

import numpy as np
import pytest
import torch

from mlpot.partition.partitioners import metis_labels, partition_quality
from mlpot.partition.rl_refine import IMBALANCE, PairState, RefinePolicy, pair_levels, rl_refine
from mlpot.partition.train_gnn import FAMILIES, adjacency_of, atom_edge_index

pytest.importorskip("pymetis")


def generated(family, num_atoms, seed):
    atoms = FAMILIES[family](np.random.default_rng(seed), num_atoms)
    return len(atoms), atom_edge_index(atoms)


def damaged(labels, adjacency, fraction, seed):
    """``labels`` with a ``fraction`` of its boundary nodes moved to the other side (two parts)."""
    rows = np.repeat(np.arange(len(labels)), np.diff(adjacency.indptr))
    boundary = np.unique(rows[labels[rows] != labels[adjacency.indices]])
    flip = np.random.default_rng(seed).choice(boundary, size=int(fraction * len(boundary)), replace=False)
    labels = labels.copy()
    labels[flip] = 1 - labels[flip]
    return labels


def test_moves_keep_the_normalised_cut_exact():
    n, edge_index = generated("liquid", 300, 0)
    adjacency = adjacency_of(n, edge_index)
    side = metis_labels(n, edge_index, 2)
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    level = pair_levels(adjacency, degree, np.zeros(n), side, np.random.default_rng(0))[0]
    state = PairState(level, side, (n, n))
    rng = np.random.default_rng(1)
    for _ in range(40):
        before = state.normalised_cut()
        movable = np.flatnonzero(state.movable())
        reward = state.move(int(rng.choice(movable)))
        assert reward == pytest.approx(before - state.normalised_cut())
        assert state.normalised_cut() == pytest.approx(partition_quality(state.side, edge_index, 2)["normalised_cut"], rel=1e-12)


@pytest.mark.parametrize("family, k", [("water", 2), ("nanoparticle", 5), ("slab", 8)])
def test_refinement_never_raises_the_cut_and_keeps_parts_bounded(family, k):
    n, edge_index = generated(family, 500, 3)
    labels = metis_labels(n, edge_index, k)
    torch.manual_seed(0)
    refined = rl_refine(n, edge_index, labels, k, policy=RefinePolicy().eval())  # an untrained policy: guarantees only
    assert refined.shape == labels.shape and refined.min() >= 0 and refined.max() < k
    sizes = np.bincount(refined, minlength=k)
    assert sizes.min() > 0
    assert np.all(sizes <= np.maximum(np.bincount(labels, minlength=k), (1 + IMBALANCE) * n / k))
    before, after = (partition_quality(x, edge_index, k)["normalised_cut"] for x in (labels, refined))
    assert after <= before + 1e-12


def test_refinement_is_deterministic():
    n, edge_index = generated("droplet", 250, 4)
    labels = metis_labels(n, edge_index, 4)
    assert np.array_equal(rl_refine(n, edge_index, labels, 4), rl_refine(n, edge_index, labels, 4))


@pytest.mark.parametrize("family", ["water", "crystal", "droplet"])
def test_shipped_policy_repairs_a_damaged_bisection(family):
    n, edge_index = generated(family, 400, 11)  # a seed the training never used
    adjacency = adjacency_of(n, edge_index)
    good = metis_labels(n, edge_index, 2)
    broken = damaged(good, adjacency, 0.3, 0)
    cut = lambda labels: partition_quality(labels, edge_index, 2)["normalised_cut"]  # noqa: E731
    repaired = cut(rl_refine(n, edge_index, broken, 2))
    assert repaired < cut(broken) - 0.5 * (cut(broken) - cut(good))  # at least half the damage undone


def test_one_training_episode_updates_the_policy():
    from mlpot.partition.train_rl import train_episode

    n, edge_index = generated("crystal", 200, 5)
    adjacency = adjacency_of(n, edge_index)
    side = damaged(metis_labels(n, edge_index, 2), adjacency, 0.3, 1)
    torch.manual_seed(0)
    policy = RefinePolicy(width=8, layers=2)
    before = [p.detach().clone() for p in policy.parameters()]
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
    improvement = train_episode(policy, optimizer, adjacency, side, np.random.default_rng(0), max_steps=8, rollout=4)
    assert np.isfinite(improvement)
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))
