"""Fine-tuning: start a potential's training from a saved one (``model.init_from``).

- The architecture comes from the parent: its r_max, irreps, layers, radial and readout sizes,
  interaction, dtype and its normalisation (avg_num_neighbors, scale, shift). A config key that
  asks for another value is refused with one line; keys that only repeat the parent's are fine.
- Elements are the parent's plus those of the new data; a new element gets a fresh embedding row
  and fresh element-dependent weights, and the old elements keep theirs, so their predictions do
  not change (up to the E0s, below).
- E0s are refitted by least squares to the new data for the elements it holds (the reference
  shift between levels of theory); elements it lacks keep the parent's.
- ``training.freeze_layers: n`` keeps the species embedding and the first n interaction layers
  fixed; without an explicit ``training.lr`` the learning rate is :data:`FINE_TUNE_LR`.
- ``data.replay: {file: PARENT_DATA, count: N}`` mixes N frames of the parent's training data
  (seeded) into every epoch, with their energies moved to the new E0s, so that old knowledge is
  rehearsed.
"""

from dataclasses import dataclass
from typing import Any, Dict, List

import numpy as np
import torch
from ase.data import chemical_symbols
from torch import nn

from mlpot.errors import MLPotError
from mlpot.models.io import read_model_file, resolve_model_path

FINE_TUNE_LR = 1e-3

#: Keys fixed by the parent: they define the function the weights compute.
ARCHITECTURE_KEYS = (
    "r_max", "num_bessel", "num_polynomial_cutoff", "max_ell", "hidden_irreps", "correlation", "num_interactions",
    "radial_mlp", "readout_mlp", "interaction", "attention", "avg_num_neighbors", "scale", "shift", "dtype",
)

#: Parameters and buffers with one row per element (the rest are copied whole).
ELEMENT_ROWS = ("backbone.embedding", "element_offsets", "atomic_energies")
ELEMENT_ROW_SUFFIXES = (".self_connection.weight", ".product.weight")


@dataclass
class ReplaySettings:
    """``data.replay``: ``count`` frames of ``file`` (the parent's training data), drawn with ``seed``."""

    file: str
    count: int
    seed: int = 0


def parent_config(path: str) -> Dict[str, Any]:
    """The config of the model to fine-tune; it must be a single potential."""
    payload = read_model_file(resolve_model_path(path))
    config = payload["config"]
    task = config.get("task", "potential")
    if task != "potential":
        hint = " (set training.committee to its size to fine-tune each member)" if task == "committee" else ""
        raise MLPotError(f"model.init_from {path}: a {task} model cannot be fine-tuned as one potential{hint}")
    return config


def merge_model_config(model: Dict[str, Any], parent: Dict[str, Any], new_elements: List[str]) -> Dict[str, Any]:
    """The child's model config: the parent's architecture, the union of elements."""
    for key in ARCHITECTURE_KEYS:
        if key in model and key in parent and model[key] != parent[key]:
            raise MLPotError(
                f"'model.{key}' is {model[key]!r} but the model in model.init_from has {parent[key]!r}; "
                "fine-tuning keeps the parent's architecture (remove the key, or train from scratch)"
            )
    merged = {key: parent[key] for key in ARCHITECTURE_KEYS if key in parent}
    merged.update({key: value for key, value in model.items() if key not in ("init_from",)})
    numbers = sorted({chemical_symbols.index(s) for s in list(parent["elements"]) + list(new_elements)})
    merged["elements"] = [chemical_symbols[z] for z in numbers]
    merged["init_from"] = model["init_from"]
    return merged


def refit_e0s(parent: Dict[str, Any], fitted: Dict[str, float]) -> Dict[str, float]:
    """Refitted E0s where the new data has the element, the parent's elsewhere."""
    energies = dict(parent.get("atomic_energies") or {})
    energies.update(fitted)
    return energies


def transfer_weights(child: nn.Module, parent_path: str) -> None:
    """Load the parent's weights into ``child``, element rows by symbol (new elements keep their
    fresh initialisation); the E0s stay the child's (refitted)."""
    payload = read_model_file(resolve_model_path(parent_path))
    parent_elements = list(payload["config"]["elements"])
    child_elements = list(child.config.elements)
    rows = [child_elements.index(symbol) for symbol in parent_elements]  # parent row i -> child row rows[i]
    state = child.state_dict()
    for name, tensor in payload["state_dict"].items():
        if name not in state:
            raise MLPotError(f"model.init_from: the parent has {name}, which the fine-tuned model lacks")
        if name == "atomic_energies":
            continue
        if name in ELEMENT_ROWS or name.endswith(ELEMENT_ROW_SUFFIXES):
            updated = state[name].clone()
            updated[rows] = tensor.to(updated.dtype)
            state[name] = updated
        elif name in ("species_index", "atomic_numbers"):
            continue  # rebuilt for the child's elements
        elif state[name].shape != tensor.shape:
            raise MLPotError(f"model.init_from: {name} has shape {tuple(tensor.shape)} in the parent, {tuple(state[name].shape)} here")
        else:
            state[name] = tensor.to(state[name].dtype)
    child.load_state_dict(state)


def freeze_first_layers(model: nn.Module, layers: int) -> None:
    """Fix the species embedding and the first ``layers`` interaction layers."""
    if layers <= 0:
        return
    if layers > len(model.backbone.layers):
        raise MLPotError(f"'training.freeze_layers' is {layers}, but the model has {len(model.backbone.layers)} layers")
    model.backbone.embedding.requires_grad_(False)
    for layer in model.backbone.layers[:layers]:
        layer.requires_grad_(False)


def replay_energy_shift(numbers: np.ndarray, parent_e0s: Dict[str, float], child_e0s: Dict[str, float]) -> float:
    """What moves a parent-data energy onto the child's E0 reference."""
    return float(sum(child_e0s[chemical_symbols[z]] - parent_e0s.get(chemical_symbols[z], 0.0) for z in numbers))


def draw_replay(count: int, available: int, seed: int) -> List[int]:
    if count < 1:
        raise MLPotError(f"'data.replay.count' must be at least 1, got {count}")
    return sorted(np.random.default_rng(seed).choice(available, size=min(count, available), replace=False).tolist())

