"""Train the refinement policy of :mod:`mlpot.partition.rl_refine` with advantage actor-critic.

    python -m mlpot.partition.train_rl [--output mlpot/partition/rl_refiner.pt] [--seed 20261205]

Graphs: the atom-graph families of :mod:`mlpot.partition.train_gnn` (water, simple liquid,
crystals, slabs, droplets, nanoparticles; 150-1200 atoms). Each training episode refines one
bisection of one graph over its multilevel hierarchy (coarsest level first, as at inference):
the starting bisection is METIS's or the GNN partitioner's, with a random fifth of its boundary
nodes flipped to the other side so that there is something to repair. Per level the agent samples
``max_steps`` moves; rewards are the decrease of the normalised cut relative to the level's
starting value; n-step advantage actor-critic (returns bootstrapped by the critic every
``--rollout`` steps, discount 0.95), entropy bonus, Adam. One thread. Prints the mean relative
improvement greedy refinement gives on held-out graphs (another seed) at the end.
"""

import argparse
import time

import numpy as np
import torch

from mlpot.partition.gnn import gnn_partition
from mlpot.partition.partitioners import metis_labels, partition_quality
from mlpot.partition.rl_refine import (
    IMBALANCE,
    WEIGHTS_PATH,
    PairState,
    RefinePolicy,
    coarse_sides,
    pair_levels,
    rl_refine,
)
from mlpot.partition.train_gnn import FAMILIES, adjacency_of, atom_edge_index

CONFIG = {"width": 32, "layers": 3}
DISCOUNT = 0.95
ENTROPY = 0.01


def training_case(rng: np.random.Generator, family: str, num_atoms: int):
    """(adjacency, edge_index, starting sides [n]) of one generated graph."""
    atoms = FAMILIES[family](rng, num_atoms)
    edge_index = atom_edge_index(atoms)
    n = len(atoms)
    side = metis_labels(n, edge_index, 2) if rng.random() < 0.5 else gnn_partition(n, edge_index, 2)
    adjacency = adjacency_of(n, edge_index)
    rows = np.repeat(np.arange(n), np.diff(adjacency.indptr))
    boundary = np.unique(rows[side[rows] != side[adjacency.indices]])
    flip = rng.choice(boundary, size=len(boundary) // 5, replace=False) if len(boundary) else boundary
    side = side.copy()
    side[flip] = 1 - side[flip]
    return adjacency, edge_index, side.astype(np.int64)


def train_episode(policy, optimizer, adjacency, side, rng, max_steps: int, rollout: int) -> float:
    """One multilevel episode with sampled moves and A2C updates; the final relative improvement."""
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    levels = pair_levels(adjacency, degree, np.zeros(len(degree)), side, rng)
    bound = ((1 + IMBALANCE) * len(side) / 2,) * 2
    current = coarse_sides(levels, side)
    start_cut = None
    for depth in range(len(levels) - 1, -1, -1):
        state = PairState(levels[depth], current, bound)
        start_cut = start_cut or state.normalised_cut()
        scale = 1.0 / max(state.normalised_cut(), 1e-6)
        best, best_cut = state.side.copy(), state.normalised_cut()
        log_probs, values, rewards, entropies = [], [], [], []
        for step in range(max_steps):
            movable = state.movable()
            if not movable.any():
                break
            logits, value = policy(state.features(movable), state.level.mean)
            logits = logits.masked_fill(~torch.from_numpy(movable), -torch.inf)
            distribution = torch.distributions.Categorical(logits=logits)
            action = distribution.sample()
            log_probs.append(distribution.log_prob(action))
            entropies.append(distribution.entropy())
            values.append(value)
            rewards.append(10.0 * scale * state.move(int(action)))
            if state.normalised_cut() < best_cut - 1e-12:
                best, best_cut = state.side.copy(), state.normalised_cut()
            if len(rewards) == rollout or step == max_steps - 1:
                with torch.no_grad():
                    following = state.movable()
                    bootstrap = policy(state.features(following), state.level.mean)[1] if following.any() else torch.zeros(())
                _update(optimizer, log_probs, values, rewards, entropies, bootstrap)
                log_probs, values, rewards, entropies = [], [], [], []
        if rewards:
            _update(optimizer, log_probs, values, rewards, entropies, torch.zeros(()))
        current = best if depth == 0 else best[levels[depth - 1].cluster]
    final = PairState(levels[0], current, bound).normalised_cut()
    return (start_cut - final) / max(start_cut, 1e-12)


def _update(optimizer, log_probs, values, rewards, entropies, bootstrap) -> None:
    returns, running = [], float(bootstrap)
    for reward in reversed(rewards):
        running = reward + DISCOUNT * running
        returns.append(running)
    returns = torch.tensor(returns[::-1])
    values = torch.stack(values)
    advantage = returns - values
    loss = (-(advantage.detach() * torch.stack(log_probs)).sum() + 0.5 * advantage.pow(2).sum()
            - ENTROPY * torch.stack(entropies).sum()) / len(rewards)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], 1.0)
    optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(WEIGHTS_PATH))
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--max-steps", type=int, default=64)
    parser.add_argument("--rollout", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    policy = RefinePolicy(**CONFIG)
    optimizer = torch.optim.Adam(policy.parameters(), lr=args.learning_rate)
    families = list(FAMILIES)
    started = time.perf_counter()
    improvements = []
    for episode in range(args.episodes):
        adjacency, _, side = training_case(rng, families[episode % len(families)], int(rng.integers(150, 1200)))
        improvements.append(train_episode(policy, optimizer, adjacency, side, rng, args.max_steps, args.rollout))
        if (episode + 1) % 25 == 0:
            print(f"episode {episode + 1}: mean relative improvement (sampled) {np.mean(improvements[-25:]):.4f}, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
    policy.eval()
    torch.save({"config": CONFIG, "policy": policy.state_dict()}, args.output)
    print(f"seed {args.seed}; {args.episodes} episodes in {time.perf_counter() - started:.0f} s; wrote {args.output}")
    held_out = np.random.default_rng(args.seed + 1)
    for family in families:
        atoms = FAMILIES[family](held_out, 1000)
        edge_index = atom_edge_index(atoms)
        for k in (2, 8):
            labels = metis_labels(len(atoms), edge_index, k)
            before = partition_quality(labels, edge_index, k)["normalised_cut"]
            after = partition_quality(rl_refine(len(atoms), edge_index, labels, k, policy=policy), edge_index, k)["normalised_cut"]
            print(f"held-out {family} ({len(atoms)} atoms) k={k}: METIS {before:.4f} -> METIS+RL {after:.4f}")


if __name__ == "__main__":
    main()
