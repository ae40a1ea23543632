"""Pick the frames of a pool where a committee disagrees most (``mlpot select``).

Score of a frame: the largest per-atom force spread of the committee (eV/Å), the quantity that
``mlpot md`` watches. Without ``diverse`` the N highest scores are taken. With it, the 4N highest
form the candidates and N are picked from them by farthest-point sampling in the model's own
invariant features (each frame's mean of the first member's l = 0 features of every layer),
starting from the highest score, so that near-duplicates of one uncertain configuration (e.g.
consecutive MD frames) do not fill the selection.
"""

from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols
from torch import nn

from mlpot.data import keys
from mlpot.data.dataset import make_loader
from mlpot.data.geometry import check_geometry
from mlpot.data.graph import atoms_to_graph, graph_to_inputs
from mlpot.errors import MLPotError
from mlpot.models.committee import Committee, ENERGY_STD, FORCES_STD


@dataclass
class Scores:
    max_force_std: np.ndarray  # [F] eV/Å
    energy_std_per_atom: np.ndarray  # [F] eV/atom
    descriptors: np.ndarray  # [F, features]


def score_frames(committee: nn.Module, frames: List[Atoms], batch_size: int = 10, source: str = "pool") -> Scores:
    """Committee spread and invariant descriptors of every frame; ``source`` (the pool file)
    names the frame in errors: an element the committee lacks, overlapping atoms."""
    if not isinstance(committee, Committee):
        raise MLPotError("mlpot select needs a committee: a committee model file or several --model files")
    known = set(committee.atomic_numbers.tolist())
    for frame, atoms in enumerate(frames):
        unknown = sorted(set(atoms.numbers.tolist()) - known)
        if unknown:
            raise MLPotError(
                f"{source}, frame {frame} contains {', '.join(chemical_symbols[z] for z in unknown)}, which the "
                f"committee was not trained on (its elements: {', '.join(chemical_symbols[z] for z in sorted(known))})"
            )
        check_geometry(atoms, f"{source}, frame {frame}")
    dtype = next(committee.parameters()).dtype
    graphs = [atoms_to_graph(atoms, committee.r_max, dtype=dtype) for atoms in frames]
    first = committee.members[0]
    spread, energy_spread, descriptors = [], [], []
    for batch in make_loader(graphs, batch_size, shuffle=False):
        inputs = graph_to_inputs(batch)
        out = committee(dict(inputs), compute_forces=True)
        counts = torch.bincount(inputs[keys.BATCH], minlength=batch.num_graphs)
        per_atom = out[FORCES_STD].detach()
        for k in range(batch.num_graphs):
            spread.append(float(per_atom[inputs[keys.BATCH] == k].max()) if counts[k] > 0 else 0.0)
        energy_spread.extend((out[ENERGY_STD].detach() / counts.clamp(min=1)).tolist())
        descriptors.append(_descriptors(first, inputs, batch.num_graphs))
    return Scores(np.array(spread), np.array(energy_spread), np.concatenate(descriptors))


@torch.no_grad()
def _descriptors(potential: nn.Module, inputs, num_graphs: int) -> np.ndarray:
    """[B, layers * C]: per frame, the mean over atoms of each layer's invariant features."""
    positions, edge_index = inputs[keys.POSITIONS], inputs[keys.EDGE_INDEX]
    vectors = positions.index_select(0, edge_index[0]) - positions.index_select(0, edge_index[1]) + inputs[keys.SHIFTS]
    features = potential.backbone(vectors, potential.species(inputs[keys.ATOMIC_NUMBERS]), edge_index)
    scalars = torch.cat([layer[:, 0, :] for layer in features], dim=1)  # [N, layers * C]
    batch = inputs[keys.BATCH]
    total = torch.zeros(num_graphs, scalars.shape[1], dtype=scalars.dtype).index_add(0, batch, scalars)
    counts = torch.bincount(batch, minlength=num_graphs).clamp(min=1).to(scalars.dtype)
    return (total / counts[:, None]).numpy()


def choose(scores: Scores, count: int, diverse: bool) -> List[int]:
    """Indices of the chosen frames, in the order they were chosen."""
    order = list(np.argsort(-scores.max_force_std, kind="stable"))
    if not diverse:
        return order[:count]
    candidates = order[: min(len(order), 4 * count)]
    features = scores.descriptors[candidates]
    features = (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-12)
    chosen = [0]  # the highest score first
    distance = np.linalg.norm(features - features[0], axis=1)
    while len(chosen) < min(count, len(candidates)):
        nxt = int(np.argmax(distance))
        chosen.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(features - features[nxt], axis=1))
    return [candidates[i] for i in chosen]


def selection_table(scores: Scores, chosen: List[int], diverse: bool) -> List[dict]:
    """One row per pool frame for the scores CSV."""
    rank = {frame: position for position, frame in enumerate(chosen)}
    by_score = np.argsort(np.argsort(-scores.max_force_std, kind="stable"), kind="stable")
    rows = []
    for frame in range(len(scores.max_force_std)):
        selected = frame in rank
        reason = ""
        if selected:
            reason = "highest spread" if not diverse or rank[frame] == 0 else "farthest in feature space among the top spreads"
        rows.append({
            "frame": frame,
            "max_force_std_eV_per_A": float(scores.max_force_std[frame]),
            "energy_std_eV_per_atom": float(scores.energy_std_per_atom[frame]),
            "spread_rank": int(by_score[frame]),
            "selected": int(selected),
            "selection_order": rank.get(frame, ""),
            "reason": reason,
        })
    return rows


def describe(scores: Scores, chosen: List[int], diverse: bool) -> Optional[str]:
    picked = scores.max_force_std[chosen]
    how = "farthest-point sampling among the top spreads" if diverse else "the highest spreads"
    return (
        f"chose {len(chosen)} of {len(scores.max_force_std)} frames by {how}: max force spread "
        f"{picked.min():.3f}-{picked.max():.3f} eV/Å (pool median {np.median(scores.max_force_std):.3f})"
    )
