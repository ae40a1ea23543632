"""Labelled structures from files, as graphs ready for batching.

Labels are read by configurable keys from ``atoms.info`` / ``atoms.arrays`` and, since ASE 3.23
moves ``energy``/``forces``/``stress`` of an extxyz file into a ``SinglePointCalculator``,
from ``atoms.calc.results`` as well. A frame may lack forces or stress (the label is masked);
a frame without its energy is an error where energies are required (training).
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from ase import Atoms
from ase.io import iread
from torch_geometric.loader import DataLoader

from mlpot.data import keys
from mlpot.data.geometry import check_geometry
from mlpot.data.graph import AtomicGraph, atoms_to_graph
from mlpot.errors import MLPotError


@dataclass
class LabelKeys:
    """Where each label lives in the user's files (``data.keys`` in a training config)."""

    energy: str = "energy"
    forces: str = "forces"
    stress: str = "stress"
    virials: str = "virials"
    weight: str = "config_weight"
    config_type: str = "config_type"


@dataclass
class Labels:
    """Labels of one frame in mlpot units (eV, eV/Å, eV/Å^3); None where absent."""

    energy: Optional[float] = None
    forces: Optional[np.ndarray] = None  # [N, 3]
    stress: Optional[np.ndarray] = None  # [3, 3]
    weight: float = 1.0
    config_type: str = "Default"


def read_frames(path: Union[str, Path], index: str = ":") -> Iterator[Tuple[int, Atoms]]:
    """(frame number, Atoms) for each frame of any ASE-readable file; errors name file and frame."""
    path = Path(path)
    if path.is_dir():
        raise MLPotError(f"{path} is a directory, not a file of structures")
    if not path.is_file():
        raise MLPotError(f"{path}: file does not exist")
    if path.stat().st_size == 0:
        raise MLPotError(f"{path}: the file is empty")
    frame = 0
    iterator = iread(str(path), index=index)
    while True:
        try:
            atoms = next(iterator)
        except StopIteration:
            break
        except KeyError as error:  # ASE's symbol -> number lookup
            raise MLPotError(f"{path}, frame {frame}: unknown element symbol {error.args[0]!r}") from None
        except Exception as error:  # ASE's readers raise many types for malformed input
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise MLPotError(f"{path}, frame {frame}: cannot parse ({message})") from None
        yield frame, atoms
        frame += 1
    if frame == 0:
        raise MLPotError(f"{path}: no frames found" + ("" if index == ":" else f" at index {index}"))


def read_structure(path: Union[str, Path], index: int = 0) -> Atoms:
    """Frame ``index`` (negative counts from the end) of an ASE-readable file."""
    selection = f"{index}:{index + 1}" if index >= 0 else (f"{index}:{index + 1}" if index < -1 else "-1:")
    for _, atoms in read_frames(path, index=selection):
        return atoms
    raise MLPotError(f"{path}: there is no frame {index}")


def _lookup(atoms: Atoms, key: str):
    if key in atoms.info:
        return atoms.info[key]
    if key in atoms.arrays:
        return atoms.arrays[key]
    calc = atoms.calc
    if calc is not None and key in getattr(calc, "results", {}):
        return calc.results[key]
    return None


def _numbers(value, where: str) -> np.ndarray:
    """``value`` as a flat float64 array, or one line saying the label is not numeric."""
    try:
        return np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise MLPotError(f"{where} must be numbers, got {str(value)[:40]!r}") from None


def _as_3x3(value, where: str) -> np.ndarray:
    array = _numbers(value, where)
    if array.size == 9:
        return array.reshape(3, 3)
    if array.size == 6:  # Voigt: xx yy zz yz xz xy
        xx, yy, zz, yz, xz, xy = array
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    raise MLPotError(f"{where} must have 6 (Voigt) or 9 components, got {array.size}")


def extract_labels(atoms: Atoms, label_keys: LabelKeys, where: str, require_energy: bool) -> Labels:
    """Labels of one frame; ``where`` ("file, frame k") prefixes every error. Frames with
    non-finite coordinates or overlapping atoms are refused (:func:`check_geometry`)."""
    check_geometry(atoms, where)
    labels = Labels()
    energy = _lookup(atoms, label_keys.energy)
    if energy is None and require_energy:
        available = sorted(set(atoms.info) | set(getattr(atoms.calc, "results", {}) if atoms.calc else set()))
        raise MLPotError(
            f"{where}: no energy under key '{label_keys.energy}' (found: {', '.join(available) or 'nothing'})"
        )
    if energy is not None:
        energy = _numbers(energy, f"{where}: '{label_keys.energy}'")
        if energy.size != 1:
            raise MLPotError(f"{where}: '{label_keys.energy}' must be one number per frame, got {energy.size}")
        labels.energy = float(energy[0])
    forces = _lookup(atoms, label_keys.forces)
    if forces is not None:
        forces = _numbers(forces, f"{where}: '{label_keys.forces}'")
        if forces.size != 3 * len(atoms):
            raise MLPotError(
                f"{where}: '{label_keys.forces}' must have 3 components per atom ({3 * len(atoms)}), got {forces.size}"
            )
        labels.forces = forces.reshape(len(atoms), 3)
    stress = _lookup(atoms, label_keys.stress)
    virials = _lookup(atoms, label_keys.virials)
    if stress is not None:
        labels.stress = _as_3x3(stress, f"{where}: '{label_keys.stress}'")
    elif virials is not None:
        if not atoms.pbc.all():
            raise MLPotError(f"{where}: '{label_keys.virials}' given for a structure that is not periodic")
        labels.stress = -_as_3x3(virials, f"{where}: '{label_keys.virials}'") / atoms.get_volume()
    if labels.stress is not None and not atoms.pbc.all():
        raise MLPotError(f"{where}: '{label_keys.stress}' given for a structure that is not periodic")
    weight = atoms.info.get(label_keys.weight)
    if weight is not None:
        weights = _numbers(weight, f"{where}: '{label_keys.weight}'")
        if weights.size != 1:
            raise MLPotError(f"{where}: '{label_keys.weight}' must be one number per frame, got {weights.size}")
        labels.weight = float(weights[0])
    labels.config_type = str(atoms.info.get(label_keys.config_type, "Default"))
    for name in ("energy", "forces", "stress"):
        value = getattr(labels, name)
        if value is not None and not np.isfinite(value).all():
            raise MLPotError(f"{where}: '{getattr(label_keys, name)}' contains NaN or infinity")
    return labels


def labelled_graph(atoms: Atoms, labels: Labels, r_max: float, dtype: torch.dtype) -> AtomicGraph:
    """The graph of ``atoms`` with label tensors and masks attached (zeros where unlabelled)."""
    graph = atoms_to_graph(atoms, r_max, dtype=dtype)
    n = len(atoms)
    graph[keys.ENERGY] = torch.tensor([labels.energy if labels.energy is not None else 0.0], dtype=dtype)
    graph[keys.FORCES] = torch.tensor(labels.forces if labels.forces is not None else np.zeros((n, 3)), dtype=dtype)
    graph[keys.STRESS] = torch.tensor(labels.stress if labels.stress is not None else np.zeros((3, 3)), dtype=dtype)[None]
    graph[keys.ENERGY_MASK] = torch.tensor([float(labels.energy is not None)], dtype=dtype)
    graph[keys.FORCES_MASK] = torch.tensor([float(labels.forces is not None)], dtype=dtype)
    graph[keys.STRESS_MASK] = torch.tensor([float(labels.stress is not None)], dtype=dtype)
    graph[keys.WEIGHT] = torch.tensor([labels.weight], dtype=dtype)
    graph[keys.CONFIG_TYPE] = labels.config_type
    return graph


@dataclass
class LabelledStructures:
    """Frames of one file with their labels, before graphs are built."""

    path: Path
    structures: List[Atoms]
    labels: List[Labels]

    def graphs(self, r_max: float, dtype: torch.dtype = torch.float64) -> List[AtomicGraph]:
        return [labelled_graph(atoms, labels, r_max, dtype) for atoms, labels in zip(self.structures, self.labels)]

    def elements(self) -> List[int]:
        return sorted({int(z) for atoms in self.structures for z in atoms.numbers})


def read_labelled(path: Union[str, Path], label_keys: Optional[LabelKeys] = None, require_energy: bool = True) -> LabelledStructures:
    label_keys = label_keys or LabelKeys()
    structures, labels = [], []
    for frame, atoms in read_frames(path):
        labels.append(extract_labels(atoms, label_keys, f"{path}, frame {frame}", require_energy))
        structures.append(atoms)
    return LabelledStructures(Path(path), structures, labels)


def split(items: Sequence, fraction: float, seed: int) -> Tuple[list, list]:
    """(rest, held_out) with round(fraction * len) items held out, chosen by a seeded permutation."""
    if not 0.0 < fraction < 1.0:
        raise MLPotError(f"valid_fraction must be between 0 and 1, got {fraction}")
    order = np.random.default_rng(seed).permutation(len(items))
    held = max(1, int(round(fraction * len(items))))
    if held >= len(items):
        raise MLPotError(
            f"'data.valid_fraction' {fraction:g} holds out {held} of {len(items)} frames for validation, leaving "
            "none to train on; lower it, or give more frames or a data.valid file"
        )
    held_out = sorted(order[:held].tolist())
    rest = sorted(order[held:].tolist())
    return [items[i] for i in rest], [items[i] for i in held_out]


def make_loader(graphs: List[AtomicGraph], batch_size: int, shuffle: bool, **kwargs) -> DataLoader:
    return DataLoader(graphs, batch_size=batch_size, shuffle=shuffle, **kwargs)


def label_counts(structures: LabelledStructures) -> Dict[str, int]:
    """How many frames carry each label."""
    return {
        field.name: sum(getattr(labels, field.name) is not None for labels in structures.labels)
        for field in dataclasses.fields(Labels)
        if field.name in ("energy", "forces", "stress")
    }
