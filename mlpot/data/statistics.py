"""Dataset statistics that set a model's fixed constants before training.

- E0s: per-element reference energies, from isolated-atom frames where the data has them,
  otherwise by least squares of E_frame ~ sum_z n_z E0_z (minimum-norm when the compositions
  do not determine every element, e.g. a single molecule).
- Average number of neighbours: normalises the message sum.
- Force RMS and mean per-atom residual energy: the scale and shift of the network's output.
"""

from typing import Dict, Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from mlpot.data.dataset import Labels
from mlpot.data.graph import neighbour_pairs
from mlpot.errors import MLPotError


def estimate_e0s(structures: Sequence[Atoms], labels: Sequence[Labels], elements: Sequence[int]) -> Dict[str, float]:
    """E0 per element symbol (eV)."""
    isolated: Dict[int, float] = {}
    counts, energies = [], []
    for atoms, label in zip(structures, labels):
        if label.energy is None:
            continue
        if len(atoms) == 1:  # an isolated atom (MACE's config_type IsolatedAtom)
            isolated[int(atoms.numbers[0])] = label.energy
            continue
        counts.append([np.count_nonzero(atoms.numbers == z) for z in elements])
        energies.append(label.energy)
    result: Dict[str, float] = {}
    remaining = [z for z in elements if z not in isolated]
    if remaining:
        if not energies:
            raise MLPotError("cannot estimate E0s: no frames with energies")
        design = np.asarray(counts, dtype=np.float64)
        target = np.asarray(energies, dtype=np.float64)
        # Subtract the elements whose isolated-atom energy is known, fit the rest.
        known = np.array([isolated.get(z, 0.0) for z in elements])
        target = target - design @ known
        columns = [elements.index(z) for z in remaining]
        solution, *_ = np.linalg.lstsq(design[:, columns], target, rcond=None)
        result.update({chemical_symbols[z]: float(e0) for z, e0 in zip(remaining, solution)})
    result.update({chemical_symbols[z]: float(e0) for z, e0 in isolated.items() if z in elements})
    return {chemical_symbols[z]: result[chemical_symbols[z]] for z in elements}


def average_num_neighbors(structures: Sequence[Atoms], r_max: float) -> float:
    """Mean number of neighbours within r_max per atom (periodic images included)."""
    edges = atoms_total = 0
    for atoms in structures:
        sender, _, _ = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc, r_max)
        edges += len(sender)
        atoms_total += len(atoms)
    return edges / max(atoms_total, 1)


def force_rms(labels: Sequence[Labels]) -> float:
    """Root mean square of all labelled force components (eV/Å); 1.0 without forces."""
    squares = [np.square(label.forces).ravel() for label in labels if label.forces is not None]
    if not squares:
        return 1.0
    value = float(np.sqrt(np.mean(np.concatenate(squares))))
    return value if value > 0 else 1.0


def mean_interaction_energy(structures: Sequence[Atoms], labels: Sequence[Labels], e0s: Dict[str, float]) -> float:
    """Mean over frames of (E - sum E0) / N_atoms (eV/atom)."""
    values = [
        (label.energy - sum(e0s[symbol] for symbol in atoms.get_chemical_symbols())) / len(atoms)
        for atoms, label in zip(structures, labels)
        if label.energy is not None and len(atoms) > 1
    ]
    return float(np.mean(values)) if values else 0.0

