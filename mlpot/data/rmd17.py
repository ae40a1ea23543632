"""rMD17 ``.npz`` files (Christensen & von Lilienfeld 2020) -> extxyz in eV and eV/Å.

The npz holds ``nuclear_charges`` [N], ``coords`` [F, N, 3] (Å), ``energies`` [F] (kcal/mol)
and ``forces`` [F, N, 3] (kcal/mol/Å). Energies and forces are multiplied by
KCAL_PER_MOL = 0.0433641 eV, the factor the rMD17 distribution documents (ASE's
``units.kcal / units.mol`` differs from it by 2e-8 relative).
"""

import zipfile
from pathlib import Path
from typing import Iterator, Tuple, Union

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from mlpot.data.extxyz import write_extxyz
from mlpot.errors import MLPotError
from mlpot.files import check_input_file

KCAL_PER_MOL = 0.0433641  # eV
REQUIRED_KEYS = ("nuclear_charges", "coords", "energies", "forces")


def load_npz(path: Union[str, Path]) -> dict:
    path = check_input_file(path, "rMD17 file")
    if path.stat().st_size == 0:
        raise MLPotError(f"{path}: the file is empty")
    if not zipfile.is_zipfile(path):  # np.load would read text as a refused pickle, not say what it is
        raise MLPotError(f"{path}: not an .npz archive (rMD17 files hold {', '.join(REQUIRED_KEYS)})")
    try:
        data = np.load(path)
        missing = [key for key in REQUIRED_KEYS if key not in data.files]
        if missing:
            raise MLPotError(f"{path}: missing key '{missing[0]}' (rMD17 files hold {', '.join(REQUIRED_KEYS)})")
        arrays = {key: np.asarray(data[key]) for key in REQUIRED_KEYS}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:  # a damaged member, object arrays
        raise MLPotError(f"{path}: not a readable .npz file ({str(error).splitlines()[0]})") from None
    if arrays["coords"].ndim != 3 or arrays["coords"].shape[2] != 3:
        raise MLPotError(f"{path}: 'coords' has shape {arrays['coords'].shape}, not (frames, atoms, 3)")
    frames, atoms = arrays["coords"].shape[:2]
    if arrays["nuclear_charges"].shape != (atoms,) or arrays["forces"].shape != (frames, atoms, 3):
        raise MLPotError(f"{path}: inconsistent shapes of nuclear_charges, coords and forces")
    if arrays["energies"].reshape(-1).shape != (frames,):
        raise MLPotError(f"{path}: 'energies' has {arrays['energies'].size} values for {frames} frames")
    if frames == 0:
        raise MLPotError(f"{path}: no frames ('coords' is empty)")
    charges = arrays["nuclear_charges"]
    if charges.dtype.kind not in "iu" or charges.min(initial=1) < 1 or charges.max(initial=1) >= len(chemical_symbols):
        raise MLPotError(f"{path}: 'nuclear_charges' must be atomic numbers 1 to {len(chemical_symbols) - 1}, got {charges.tolist()}")
    for key in ("coords", "energies", "forces"):
        if arrays[key].dtype.kind not in "iuf" or not np.isfinite(arrays[key]).all():
            raise MLPotError(f"{path}: '{key}' holds values that are not finite numbers")
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
