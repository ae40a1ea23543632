"""Write backmapped structures: extxyz (lossless, with per-frame info) or multi-model PDB."""

from pathlib import Path
from typing import Dict, List, Sequence, Union

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from mlpot.cg.molecule import Molecule
from mlpot.data.extxyz import write_extxyz
from mlpot.errors import MLPotError
from mlpot.files import atomic_output


def write_structures(path: Union[str, Path], molecule: Molecule, frames: np.ndarray, info: Sequence[Dict]) -> None:
    """Frames [K, n, 3] of ``molecule`` to ``path`` (.xyz/.extxyz or .pdb), written atomically."""
    suffix = Path(path).suffix.lower()
    if suffix in (".xyz", ".extxyz"):
        write_extxyz(path, ((Atoms(molecule.numbers, positions), dict(extra), {}) for positions, extra in zip(frames, info)))
    elif suffix == ".pdb":
        with atomic_output(path, "w") as stream:
            for model, positions in enumerate(frames):
                stream.write(f"MODEL     {model + 1:>4}\n")
                stream.writelines(_atom_lines(molecule, positions))
                stream.write("ENDMDL\n")
            stream.write("END\n")
    else:
        raise MLPotError(f"{path}: write .xyz, .extxyz or .pdb")


def _atom_lines(molecule: Molecule, positions: np.ndarray) -> List[str]:
    lines = []
    for index, (z, (x, y, zc)) in enumerate(zip(molecule.numbers, positions)):
        element = chemical_symbols[z]
        name = molecule.atom_names[index] if molecule.atom_names else element
        residue = molecule.residue_names[index] if molecule.residue_names else "MOL"
        resid = molecule.residue_ids[index] if molecule.residue_ids else 1
        padded = f" {name:<3}" if len(name) < 4 else name  # PDB column rules for atom names
        lines.append(
            f"ATOM  {(index + 1) % 100000:>5} {padded:<4} {residue:>3} A{resid % 10000:>4}    "
            f"{x:>8.3f}{y:>8.3f}{zc:>8.3f}{1.0:>6.2f}{0.0:>6.2f}          {element:>2}\n"
        )
    return lines
