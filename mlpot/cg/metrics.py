"""Backmapping metrics, as CGVAE (Wang et al. 2022) reports them.

RMSDs are not aligned: the coarse-grained frame fixes the orientation. ``rmsd`` pools the
squared deviations of all frames and atoms (CGVAE's reconstruction RMSD). Bond graphs come from
distances (see :mod:`mlpot.cg.molecule`); the graph-edit ratio counts the atom pairs whose
bonded / not-bonded state differs from the reference frame's, divided by the reference's
number of bonds (CGVAE divides the net change in bond count, which lets a missing and an extra
bond cancel; this count never does, so it is the stricter of the two).
"""

from typing import Dict, List, Sequence

import numpy as np

from mlpot.cg.molecule import bond_matrix


def rmsd(predicted: np.ndarray, reference: np.ndarray) -> float:
    """sqrt of the mean squared atom displacement over all frames and atoms, [..., n, 3] inputs."""
    return float(np.sqrt(np.square(predicted - reference).sum(-1).mean()))


def graph_edit_ratio(numbers: np.ndarray, predicted: np.ndarray, reference: np.ndarray) -> float:
    """Mean over frames of |bond graph differences| / reference bonds; [F, n, 3] inputs."""
    ratios = []
    for frame, truth in zip(predicted, reference):
        reference_bonds = bond_matrix(numbers, truth)  # [n, n], each bond twice
        differences = (bond_matrix(numbers, frame) != reference_bonds).sum()
        ratios.append(differences / max(reference_bonds.sum(), 1))
    return float(np.mean(ratios))


def valid_ratio(numbers: np.ndarray, predicted: np.ndarray, reference: np.ndarray) -> float:
    """Fraction of frames whose heavy-atom bond graph equals the reference frame's."""
    heavy = np.asarray(numbers) != 1
    same = [
        np.array_equal(bond_matrix(numbers[heavy], frame[heavy]), bond_matrix(numbers[heavy], truth[heavy]))
        for frame, truth in zip(predicted, reference)
    ]
    return float(np.mean(same))


def bond_length_error(predicted: np.ndarray, reference: np.ndarray, bonds: Sequence[Sequence[int]]) -> float:
    """Mean |bond length - reference bond length| (Å) over the bond graph, [..., n, 3] inputs.

    The graph metrics only see a bond break or form; a bond squeezed to half its length still
    counts as bonded, this does not."""
    pairs = np.asarray(bonds, dtype=int).reshape(-1, 2)

    def lengths(x: np.ndarray) -> np.ndarray:
        return np.linalg.norm(x[..., pairs[:, 0], :] - x[..., pairs[:, 1], :], axis=-1)

    return float(np.abs(lengths(predicted) - lengths(reference)).mean())


def diversity(samples: np.ndarray) -> float:
    """Mean pairwise RMSD between the samples of each frame, [F, K, n, 3] -> Å."""
    k = samples.shape[1]
    pairs = [(a, b) for a in range(k) for b in range(a + 1, k)]
    if not pairs:
        return 0.0
    values = [np.sqrt(np.square(samples[:, a] - samples[:, b]).sum(-1).mean(-1)) for a, b in pairs]  # [F] each
    return float(np.mean(values))


def dihedral_angles(positions: np.ndarray, quadruples: Sequence[Sequence[int]]) -> np.ndarray:
    """Dihedral angles in degrees (-180, 180], [..., n, 3] -> [..., len(quadruples)]."""
    index = np.asarray(quadruples, dtype=int)  # [D, 4]
    p = positions[..., index, :]  # [..., D, 4, 3]
    b0 = p[..., 0, :] - p[..., 1, :]
    b1 = p[..., 2, :] - p[..., 1, :]
    b2 = p[..., 3, :] - p[..., 2, :]
    b1 = b1 / np.linalg.norm(b1, axis=-1, keepdims=True)
    v = b0 - (b0 * b1).sum(-1, keepdims=True) * b1
    w = b2 - (b2 * b1).sum(-1, keepdims=True) * b1
    x = (v * w).sum(-1)
    y = (np.cross(b1, v) * w).sum(-1)
    return np.degrees(np.arctan2(y, x))


def jensen_shannon_distance(first: np.ndarray, second: np.ndarray, bins: int = 36) -> float:
    """JS distance (base 2, in [0, 1]) between the 2D histograms of two sets of angle pairs [M, 2]."""
    edges = np.linspace(-180.0, 180.0, bins + 1)
    p = np.histogram2d(first[:, 0], first[:, 1], bins=[edges, edges])[0].ravel()
    q = np.histogram2d(second[:, 0], second[:, 1], bins=[edges, edges])[0].ravel()
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float((a[mask] * np.log2(a[mask] / m[mask])).sum())

    return float(np.sqrt(max(0.5 * kl(p) + 0.5 * kl(q), 0.0)))


def ramachandran_js(
    samples: np.ndarray, reference: np.ndarray, dihedrals: Sequence[Sequence[int]], names: Sequence[str]
) -> Dict[str, float]:
    """JS distance of (phi, psi) histograms per residue that has both, samples [..., n, 3]."""
    pairs: Dict[str, List[int]] = {}
    for k, name in enumerate(names):
        kind, residue = name.split(" ", 1)
        pairs.setdefault(residue, [-1, -1])[0 if kind == "phi" else 1] = k
    out = {}
    sampled = dihedral_angles(samples, dihedrals).reshape(-1, len(dihedrals))
    observed = dihedral_angles(reference, dihedrals).reshape(-1, len(dihedrals))
    for residue, (phi, psi) in pairs.items():
        if phi >= 0 and psi >= 0:
            out[residue] = jensen_shannon_distance(sampled[:, [phi, psi]], observed[:, [phi, psi]])
    return out


def centroid_baseline(cg: np.ndarray, bead_of_atom: Sequence[int]) -> np.ndarray:
    """Every atom at its bead: [F, N, 3] -> [F, n, 3]."""
    return cg[:, np.asarray(bead_of_atom)]


class LinearProjection:
    """x = A X: least-squares linear map from bead to atom coordinates (CGVAE's linear baseline).

    Fitted on coordinates centred on the bead centroid, so it commutes with rotations and
    translations of the frame.
    """

    def __init__(self, cg: np.ndarray, atoms: np.ndarray) -> None:
        centre = cg.mean(axis=1, keepdims=True)  # [F, 1, 3]
        X = (cg - centre).transpose(0, 2, 1).reshape(-1, cg.shape[1])  # [F*3, N]
        x = (atoms - centre).transpose(0, 2, 1).reshape(-1, atoms.shape[1])  # [F*3, n]
        self.matrix = np.linalg.lstsq(X, x, rcond=None)[0].T  # [n, N]

    def __call__(self, cg: np.ndarray) -> np.ndarray:
        centre = cg.mean(axis=1, keepdims=True)
        return np.einsum("ab,fbk->fak", self.matrix, cg - centre) + centre
