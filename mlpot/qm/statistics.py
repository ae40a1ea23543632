"""Training-set statistics that set a Hamiltonian model's reference blocks."""

from typing import Dict, List, Sequence

import numpy as np
from ase.data import chemical_symbols

from mlpot.qm.dataset import QMFrame
from mlpot.qm.layout import OrbitalLayout


def shell_pair_invariants(block: np.ndarray, shells: Sequence[int]) -> np.ndarray:
    """[shell, shell]: trace / (2l + 1) of each sub-block between shells of equal l, else 0.

    This is the part of a diagonal block that no rotation changes (its L = 0 component)."""
    offsets = np.concatenate([[0], np.cumsum([2 * l + 1 for l in shells])])
    invariants = np.zeros((len(shells), len(shells)))
    for a, la in enumerate(shells):
        for b, lb in enumerate(shells):
            if la == lb:
                sub = block[offsets[a] : offsets[a + 1], offsets[b] : offsets[b + 1]]
                invariants[a, b] = np.trace(sub) / (2 * la + 1)
    return invariants


def onsite_reference(frames: List[QMFrame], layout: OrbitalLayout, matrix: str) -> Dict[str, List[List[float]]]:
    """Per element, the mean over its atoms of :func:`shell_pair_invariants` of the diagonal
    blocks of ``matrix`` ("hamiltonian" or "overlap")."""
    sums: Dict[int, np.ndarray] = {}
    counts: Dict[int, int] = {}
    for frame in frames:
        values = getattr(frame, matrix)
        offsets = layout.offsets(frame.numbers)
        for i, z in enumerate(int(z) for z in frame.numbers):
            block = values[offsets[i] : offsets[i + 1], offsets[i] : offsets[i + 1]]
            invariants = shell_pair_invariants(block, layout.shells[z])
            sums[z] = sums.get(z, 0.0) + invariants
            counts[z] = counts.get(z, 0) + 1
    return {chemical_symbols[z]: (sums[z] / counts[z]).tolist() for z in sorted(sums)}
