"""rMD17 ``.npz`` files (Christensen & von Lilienfeld 2020) -> extxyz in eV and eV/Å.

The npz holds ``nuclear_charges`` [N], ``coords`` [F, N, 3] (Å), ``energies`` [F] (kcal/mol)
and ``forces`` [F, N, 3] (kcal/mol/Å). Energies and forces are multiplied by
KCAL_PER_MOL = 0.0433641 eV, the factor the rMD17 distribution documents (ASE's
``units.kcal / units.mol`` differs from it by 2e-8 relative).
"""

from pathlib import Path
from typing import Iterator, Tuple, Union

import numpy as np
from ase import Atoms

from mlpot.data.extxyz import write_extxyz
from mlpot.errors import MLPotError

KCAL_PER_MOL = 0.0433641  # eV
REQUIRED_KEYS = ("nuclear_charges", "coords", "energies", "forces")


def load_npz(path: Union[str, Path]) -> dict:
    path = Path(path)
    if not path.is_file():
        raise MLPotError(f"{path}: file does not exist")
    try:
        data = np.load(path)
    except (ValueError, OSError) as error:
        raise MLPotError(f"{path}: not a readable .npz file ({error})") from None
    missing = [key for key in REQUIRED_KEYS if key not in data.files]
    if missing:
        raise MLPotError(f"{path}: missing key '{missing[0]}' (rMD17 files hold {', '.join(REQUIRED_KEYS)})")
    arrays = {key: np.asarray(data[key]) for key in REQUIRED_KEYS}
    frames, atoms = arrays["coords"].shape[:2]
    if arrays["nuclear_charges"].shape != (atoms,) or arrays["forces"].shape != (frames, atoms, 3):
        raise MLPotError(f"{path}: inconsistent shapes of nuclear_charges, coords and forces")
    if arrays["energies"].reshape(-1).shape != (frames,):
        raise MLPotError(f"{path}: 'energies' has {arrays['energies'].size} values for {frames} frames")
    return arrays


def frames_in_ev(path: Union[str, Path]) -> Iterator[Tuple[Atoms, dict, dict]]:
    """(Atoms, info, arrays) per frame, energies in eV and forces in eV/Å."""
    arrays = load_npz(path)
    numbers = arrays["nuclear_charges"].astype(int)
    energies = arrays["energies"].reshape(-1).astype(np.float64) * KCAL_PER_MOL
    forces = arrays["forces"].astype(np.float64) * KCAL_PER_MOL
    for k, coordinates in enumerate(arrays["coords"].astype(np.float64)):
        atoms = Atoms(numbers=numbers, positions=coordinates)
        yield atoms, {"energy": float(energies[k])}, {"forces": forces[k]}


def convert_npz(source: Union[str, Path], target: Union[str, Path]) -> int:
    """Write ``source`` (rMD17 npz) as extxyz ``target``; returns the number of frames."""
    return write_extxyz(target, frames_in_ev(source))
