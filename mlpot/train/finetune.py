"""Fine-tuning: start a potential's training from a saved one (``model.init_from``).

- The architecture comes from the parent: every key of its config but elements and E0s (r_max,
  irreps, layers, radial and readout sizes, interaction, the options of imported mace models,
  dtype) and its normalisation (avg_num_neighbors, scale, shift). A config key that asks for
  another value is refused with one line; keys that only repeat the parent's are fine.
- Elements are the parent's plus those of the new data; a new element gets a fresh embedding row
  and fresh element-dependent weights, and the old elements keep theirs, so their predictions do
  not change (up to the E0s, below).
- E0s are fitted to what the parent leaves unexplained (mace's ``--E0s estimated``): the
  parent's E0s plus the least-squares correction c (minimum norm) of
  E_ref - E_parent = counts @ c over the new frames. One composition fixes only the sum of its
  c; the minimum-norm solution leaves the other directions at the parent's E0s, so energies of
  other compositions (replayed frames) move as little as the data allow. Elements the new data
  lacks keep the parent's E0s; a new element starts at 0 plus its correction; an isolated atom
  in the data sets its element's E0 to its energy, as for a new model.
- ``training.freeze_layers: n`` keeps the species embedding and the first n interaction layers
  fixed (not with elements new to the parent, whose rows there would stay random); without an
  explicit ``training.lr`` the learning rate is :data:`FINE_TUNE_LR`.
- ``data.replay: {file: PARENT_DATA, count: N}`` mixes N frames of the parent's training data
  (seeded) into every epoch, with their energies moved to the new E0s, so that old knowledge is
  rehearsed.
"""

from dataclasses import MISSING, dataclass, fields
from typing import Any, Dict, List, Sequence

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols
from torch import nn

from mlpot.config import DTYPES
from mlpot.data import keys
from mlpot.data.dataset import Labels, labelled_graph, make_loader
from mlpot.data.graph import graph_to_inputs
from mlpot.errors import MLPotError
from mlpot.models.io import read_model_file, resolve_model_path
from mlpot.models.potential import MACEPotential, PotentialConfig

FINE_TUNE_LR = 1e-3

#: PotentialConfig keys that are not architecture: the elements (the parent's plus the data's),
#: the E0s (refitted), the task and the parent's own init_from.
NOT_ARCHITECTURE = ("elements", "atomic_energies", "task", "init_from")

#: Keys fixed by the parent: every other key of the potential's config, since each one changes
#: the function the weights compute (imported mace models set many of them: self_connection,
#: element_messages, neighbour_normalization, distance_transform, pair_repulsion, ...).
ARCHITECTURE_KEYS = tuple(f.name for f in fields(PotentialConfig) if f.name not in NOT_ARCHITECTURE)

#: Parameters and buffers whose first axis is the element (the rest are copied whole): the
#: embedding, E0s and offsets, the element-dependent linears and product weights of every layer,
#: the gated interaction's element embeddings and the Agnesi transform's covalent radii.
ELEMENT_ROWS = ("backbone.embedding", "element_offsets", "atomic_energies", "backbone.distance_transform.element_radii")
ELEMENT_ROW_SUFFIXES = (
    ".self_connection.weight", ".message_linear.weight", ".product.weight", ".edge_embedding.source", ".edge_embedding.target",
)


def has_element_rows(name: str) -> bool:
    """Whether the tensor ``name`` of a potential's state dict has one row per element."""
    return name in ELEMENT_ROWS or name.endswith(ELEMENT_ROW_SUFFIXES)


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


def parent_architecture(parent: Dict[str, Any]) -> Dict[str, Any]:
    """The parent's value of every architecture key; a key its file predates has its default
    (which is what the parent was built with)."""
    defaults = {f.name: f.default_factory() if f.default_factory is not MISSING else f.default for f in fields(PotentialConfig)}
    return {key: parent.get(key, defaults[key]) for key in ARCHITECTURE_KEYS}


def merge_model_config(model: Dict[str, Any], parent: Dict[str, Any], new_elements: List[str]) -> Dict[str, Any]:
    """The child's model config: the parent's architecture, the union of elements."""
    architecture = parent_architecture(parent)
    for key in ARCHITECTURE_KEYS:
        if key in model and model[key] != architecture[key]:
            raise MLPotError(
                f"'model.{key}' is {model[key]!r} but the model in model.init_from has {architecture[key]!r}; "
                "fine-tuning keeps the parent's architecture (remove the key, or train from scratch)"
            )
    merged = dict(architecture)
    merged.update({key: value for key, value in model.items() if key not in ("init_from",)})
    numbers = sorted({chemical_symbols.index(s) for s in list(parent["elements"]) + list(new_elements)})
    merged["elements"] = [chemical_symbols[z] for z in numbers]
    merged["init_from"] = model["init_from"]
    return merged


def estimate_e0s_from_parent(model_config: Dict[str, Any], structures: Sequence[Atoms], labels: Sequence[Labels]) -> Dict[str, float]:
    """E0s for the fine-tuned model (``model_config``: merged, without E0s).

    An isolated atom in the data sets its element's E0 to its energy (as for a new model). The
    other elements get the parent's E0 (0 for a new element) plus the minimum-norm least-squares
    correction of the residuals E_ref - E_start over the frames of more than one atom, E_start
    the energy of the model fine-tuning starts from (the parent's weights, fresh rows for new
    elements) with those E0s."""
    parent_e0s = dict(parent_config(model_config["init_from"]).get("atomic_energies") or {})
    elements = list(model_config["elements"])
    isolated = {atoms.get_chemical_symbols()[0]: float(label.energy)
                for atoms, label in zip(structures, labels) if len(atoms) == 1 and label.energy is not None}
    start_e0s = {symbol: isolated.get(symbol, float(parent_e0s.get(symbol, 0.0))) for symbol in elements}
    frames = [(atoms, label) for atoms, label in zip(structures, labels) if label.energy is not None and len(atoms) > 1]
    free = [symbol for symbol in elements if symbol not in isolated]
    if not free:
        return start_e0s
    if not frames:
        raise MLPotError("cannot estimate E0s for fine-tuning: no training frames of more than one atom with energies")
    with torch.random.fork_rng():  # new-element rows are drawn without moving the trainer's seed
        start = MACEPotential.from_config({**model_config, "atomic_energies": start_e0s})
        transfer_weights(start, model_config["init_from"])
    dtype = DTYPES[model_config.get("dtype", "float64")]
    graphs = [labelled_graph(atoms, label, float(model_config["r_max"]), dtype) for atoms, label in frames]
    predicted = []  # [frames] eV
    with torch.no_grad():
        for batch in make_loader(graphs, batch_size=10, shuffle=False):
            predicted.append(start(graph_to_inputs(batch), compute_forces=False)[keys.ENERGY].to(torch.float64))
    residual = np.array([label.energy for _, label in frames]) - torch.cat(predicted).numpy()  # [frames]
    counts = np.array([[np.count_nonzero(atoms.numbers == chemical_symbols.index(symbol)) for symbol in free]
                       for atoms, _ in frames], dtype=np.float64)  # [frames, free elements]
    correction, *_ = np.linalg.lstsq(counts, residual, rcond=None)  # minimum norm where the compositions do not fix it
    return {**start_e0s, **{symbol: start_e0s[symbol] + float(c) for symbol, c in zip(free, correction)}}


def transfer_weights(child: nn.Module, parent_path: str) -> None:
    """Load the parent's weights into ``child``, element rows by symbol (new elements keep their
    fresh initialisation); the E0s stay the child's (fitted to the new data)."""
    payload = read_model_file(resolve_model_path(parent_path))
    parent_elements = list(payload["config"]["elements"])
    child_elements = list(child.config.elements)
    rows = [child_elements.index(symbol) for symbol in parent_elements]  # parent row i -> child row rows[i]
    state = child.state_dict()
    missing = sorted(name for name, _ in child.named_parameters() if name not in payload["state_dict"])
    if missing:  # it would stay at its random start
        raise MLPotError(f"model.init_from {parent_path}: the fine-tuned model has {missing[0]}, which the parent lacks")
    for name, tensor in payload["state_dict"].items():
        if name not in state:
            raise MLPotError(f"model.init_from: the parent has {name}, which the fine-tuned model lacks")
        if name == "atomic_energies":
            continue
        if has_element_rows(name):
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
    """Fix the species embedding and the first ``layers`` interaction layers: every parameter in
    them (interaction, element embeddings of the gated interaction, density, message linear,
    product, linear, self-connection). Readouts, element offsets and later layers train.

    Freezing is per tensor, so an element new to the parent would keep a random embedding row and
    random element weights in the frozen layers: that case is refused."""
    if layers <= 0:
        return
    if layers > len(model.backbone.layers):
        raise MLPotError(f"'training.freeze_layers' is {layers}, but the model has {len(model.backbone.layers)} layers")
    if model.config.init_from:
        known = parent_config(model.config.init_from)["elements"]
        new = [symbol for symbol in model.config.elements if symbol not in known]
        if new:
            raise MLPotError(
                f"'training.freeze_layers' would keep the embedding and layer weights of {', '.join(new)} (not in the "
                "model.init_from model) at their random start; fine-tune without freezing"
            )
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

