"""One molecule's trajectory: atoms, names, bonds and backbone dihedrals.

A backmapping model is tied to one molecule (its atom -> bead mapping), so a trajectory is read
as one :class:`Molecule` and coordinates ``[F, n, 3]``. Any ASE-readable file works; a
multi-model PDB (what ``mlpot data md-openmm`` writes, and what MDAnalysis writes for any
topology + trajectory) also carries atom and residue names, which the alpha-carbon mapping,
the phi/psi metrics and PDB output need.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np

from mlpot.data.dataset import read_frames
from mlpot.errors import MLPotError

# Bond radii (Å) of the Cambridge Structural Database, as CGVAE uses them: atoms i and j are
# bonded when closer than 1.3 (r_i + r_j). Elements not listed fall back to ASE's covalent radii.
BOND_RADII = {1: 0.23, 5: 0.83, 6: 0.68, 7: 0.68, 8: 0.68, 9: 0.64, 15: 0.75, 16: 1.02, 17: 0.99, 35: 1.21, 53: 1.40}
BOND_SCALE = 1.3


@dataclass
class Molecule:
    """The atoms of one molecule; names are empty lists where the file has none."""

    numbers: List[int]
    atom_names: List[str] = field(default_factory=list)
    residue_names: List[str] = field(default_factory=list)
    residue_ids: List[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.numbers)


def bond_radii(numbers: np.ndarray) -> np.ndarray:
    from ase.data import covalent_radii

    return np.array([BOND_RADII.get(int(z), float(covalent_radii[int(z)])) for z in numbers])


def bond_matrix(numbers: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Bonded pairs by distance, [n, n] bool from one frame's positions [n, 3] (diagonal False)."""
    bonded = np.zeros((len(numbers), len(numbers)), dtype=bool)
    i, j = bonded_pairs(numbers, positions).T
    bonded[i, j] = bonded[j, i] = True
    return bonded


def bonded_pairs(numbers: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Pairs (i < j) closer than 1.3 (r_i + r_j) in one frame [n, 3], [B, 2]; a neighbour list,
    so proteins of thousands of atoms cost no n x n matrix."""
    from mlpot.data.graph import neighbour_pairs

    radii = bond_radii(np.asarray(numbers))
    sender, receiver, _ = neighbour_pairs(positions, np.zeros((3, 3)), np.zeros(3, dtype=bool), 2.0 * BOND_SCALE * radii.max())
    keep = (sender < receiver) & (
        np.linalg.norm(positions[sender] - positions[receiver], axis=1) < BOND_SCALE * (radii[sender] + radii[receiver])
    )
    return np.stack([sender[keep], receiver[keep]], axis=1)


def consensus_bonds(numbers: np.ndarray, trajectory: np.ndarray, frames: int = 50) -> List[List[int]]:
    """Pairs (i < j) bonded in most of up to ``frames`` frames spread over the trajectory.

    A majority vote, so one stretched frame neither adds nor removes a bond.
    """
    picks = np.unique(np.linspace(0, len(trajectory) - 1, min(frames, len(trajectory))).astype(int))
    votes: Dict[Tuple[int, int], int] = {}
    for frame in picks:
        for i, j in bonded_pairs(np.asarray(numbers), trajectory[frame]):
            votes[(int(i), int(j))] = votes.get((int(i), int(j)), 0) + 1
    return [[i, j] for (i, j), count in sorted(votes.items()) if count > len(picks) / 2]


def backbone_dihedrals(molecule: Molecule) -> List[Tuple[str, List[int]]]:
    """Protein backbone (name, [a, b, c, d]) quadruples: phi_k = C(k-1) N CA C and
    psi_k = N CA C N(k+1), for residues with a CA whose neighbours carry the atoms needed
    (capping groups ACE and NME supply C and N). Empty without atom names."""
    if not molecule.atom_names:
        return []
    residues: List[Tuple[int, str]] = []
    atoms: dict = {}
    for index, (name, resname, resid) in enumerate(zip(molecule.atom_names, molecule.residue_names, molecule.residue_ids)):
        key = (resid, resname)
        if not residues or residues[-1] != key:
            residues.append(key)
        atoms.setdefault(len(residues) - 1, {})[name] = index
    dihedrals = []
    for k in range(len(residues)):
        here = atoms[k]
        if not all(name in here for name in ("N", "CA", "C")):
            continue
        label = f"{residues[k][1]}{residues[k][0]}"
        if k > 0 and "C" in atoms[k - 1]:
            dihedrals.append((f"phi {label}", [atoms[k - 1]["C"], here["N"], here["CA"], here["C"]]))
        if k + 1 < len(residues) and "N" in atoms[k + 1]:
            dihedrals.append((f"psi {label}", [here["N"], here["CA"], here["C"], atoms[k + 1]["N"]]))
    return dihedrals


def read_trajectory(path: Union[str, Path]) -> Tuple[Molecule, np.ndarray]:
    """(molecule, coordinates [F, n, 3] Å) of a file whose frames all hold the same atoms.

    Empty frames (ASE reads the END record of a PDB as one) are skipped.
    """
    molecule = None
    coordinates = []
    for frame, atoms in read_frames(path):
        if len(atoms) == 0:
            continue
        if molecule is None:
            molecule = _molecule_of(atoms)
        elif list(atoms.numbers) != molecule.numbers:
            raise MLPotError(f"{path}, frame {frame}: the atoms differ from the first frame's (one molecule per file)")
        coordinates.append(np.asarray(atoms.positions, dtype=np.float64))
    if molecule is None:
        raise MLPotError(f"{path}: no atoms found")
    trajectory = np.stack(coordinates)
    if not np.isfinite(trajectory).all():
        bad = int(np.argwhere(~np.isfinite(trajectory))[0, 0])
        raise MLPotError(f"{path}, frame {bad}: non-finite coordinates")
    return molecule, trajectory


def _molecule_of(atoms) -> Molecule:
    numbers = [int(z) for z in atoms.numbers]
    if "atomtypes" in atoms.arrays and "residuenames" in atoms.arrays:
        return Molecule(
            numbers,
            [str(name).strip() for name in atoms.arrays["atomtypes"]],
            [str(name).strip() for name in atoms.arrays["residuenames"]],
            [int(i) for i in atoms.arrays["residuenumbers"]],
        )
    return Molecule(numbers)
