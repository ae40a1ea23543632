"""Orbitals from AO matrices, and how close predicted orbitals are to reference ones.

Orbital energies and coefficients solve the generalised eigenproblem H C = S C eps. A
coefficient vector is defined only up to sign, and within a degenerate level only up to a
rotation, so coefficients are compared as subspaces: the similarity of reference orbital k is
the length of its (normalised) coefficient vector projected onto the span of the predicted
vectors of its degenerate group, which for a non-degenerate orbital is |cos| of the angle
between the two coefficient vectors.

``lindep`` > 0 solves the eigenproblem in the span of S's eigenvectors whose eigenvalues exceed
it (canonical orthogonalisation). A predicted H's error along a near-null direction of S (ethanol
in def2-SVP has one, eigenvalue 0.003-0.005) is amplified by 1/eigenvalue into a spurious low
level, an "intruder", that the reference does not have; dropping the direction removes it at the
cost of a small change of the levels (benchmarks/hamiltonian/README.md measures both).
"""

from dataclasses import dataclass
from typing import List

import numpy as np
import scipy.linalg

from mlpot.errors import MLPotError


@dataclass
class OrbitalComparison:
    """One frame's occupied orbitals, predicted against reference (Eh)."""

    energies_predicted: np.ndarray  # [n_occ]
    energies_reference: np.ndarray  # [n_occ]
    similarity: np.ndarray  # [n_occ] |cos| of coefficient vectors (subspaces where degenerate)
    gap_predicted: float  # LUMO - HOMO
    gap_reference: float


def check_lindep(lindep: float) -> None:
    """A user's ``--lindep``: a threshold on the eigenvalues of S, which are O(1) for a
    normalised basis; 1 or more would drop most of it."""
    if not 0.0 <= lindep < 1.0:
        raise MLPotError(f"--lindep must be in [0, 1) (an eigenvalue of the overlap matrix), got {lindep}")


def orbitals(hamiltonian: np.ndarray, overlap: np.ndarray, lindep: float = 0.0):
    """(energies [n], coefficients [n_ao, n]) with C^T S C = 1; n = n_ao, or with ``lindep`` > 0
    the number of eigenvalues of S above it."""
    if lindep <= 0.0:
        return scipy.linalg.eigh(hamiltonian, overlap)
    eigenvalues, eigenvectors = np.linalg.eigh(overlap)
    kept = eigenvalues > lindep
    transform = eigenvectors[:, kept] / np.sqrt(eigenvalues[kept])  # [n_ao, n], X^T S X = 1
    energies, vectors = np.linalg.eigh(transform.T @ hamiltonian @ transform)
    return energies, transform @ vectors


def degenerate_groups(energies: np.ndarray, tolerance: float) -> List[np.ndarray]:
    """Runs of consecutive (sorted) energies closer than ``tolerance`` to their neighbour."""
    breaks = np.nonzero(np.diff(energies) > tolerance)[0] + 1
    return np.split(np.arange(len(energies)), breaks)


def compare_occupied(
    predicted: np.ndarray,
    reference: np.ndarray,
    overlap: np.ndarray,
    num_occupied: int,
    tolerance: float = 1e-5,
    lindep: float = 0.0,
) -> OrbitalComparison:
    """Occupied orbitals of H_predicted (solved with ``lindep``) and H_reference (exact), both
    with the reference overlap."""
    energies_p, coefficients_p = orbitals(predicted, overlap, lindep)
    if len(energies_p) < num_occupied:
        raise MLPotError(f"lindep {lindep:g} leaves {len(energies_p)} orbitals for {num_occupied} occupied ones; use a smaller lindep")
    energies_r, coefficients_r = orbitals(reference, overlap)
    similarity = np.zeros(num_occupied)
    for group in degenerate_groups(energies_r[:num_occupied], tolerance):
        basis, _ = np.linalg.qr(coefficients_p[:, group])  # orthonormal span of the predicted group
        vectors = coefficients_r[:, group] / np.linalg.norm(coefficients_r[:, group], axis=0)
        similarity[group] = np.linalg.norm(basis.T @ vectors, axis=0)
    gap = slice(num_occupied - 1, num_occupied + 1)
    return OrbitalComparison(
        energies_predicted=energies_p[:num_occupied],
        energies_reference=energies_r[:num_occupied],
        similarity=similarity,
        gap_predicted=float(np.diff(energies_p[gap])[0]) if num_occupied < len(energies_p) else float("nan"),
        gap_reference=float(np.diff(energies_r[gap])[0]) if num_occupied < len(energies_r) else float("nan"),
    )
