"""One molecule through PySCF: the converged Fock/Kohn-Sham matrix H and overlap S in the AO basis.

PySCF is optional (the ``qm`` extra) and imported only here, inside the functions.
Only closed-shell molecules (restricted HF or KS) are supported.
"""

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Sequence

import numpy as np
import scipy.linalg

from mlpot.errors import MLPotError


@dataclass(frozen=True)
class QMSettings:
    """What ``mlpot data qm`` runs; stored in the dataset's metadata."""

    method: str  # "hf", or an exchange-correlation functional PySCF knows ("pbe", "b3lyp", ...)
    basis: str  # a basis-set name PySCF knows ("def2-svp", "sto-3g", ...)
    charge: int = 0
    grid_level: int = 3  # PySCF's DFT grid level (ignored for HF)
    conv_tol: float = 1e-11  # SCF energy tolerance (Eh); the Fock matrix is then good to ~1e-7 Eh
    max_cycles: int = 100

    def record(self) -> Dict[str, Any]:
        return asdict(self)


def require_pyscf():
    """The pyscf module, or a user error saying how to install it."""
    try:
        import pyscf
    except ImportError:
        raise MLPotError("PySCF is not installed; install the 'qm' extra: pip install 'mlpot[qm]'") from None
    return pyscf


def check_settings(settings: QMSettings) -> None:
    """Fail early on an unknown functional or basis set."""
    require_pyscf()
    from pyscf import gto
    from pyscf.dft import libxc

    if settings.method.lower() != "hf":
        try:
            libxc.parse_xc(settings.method)
        except KeyError:
            raise MLPotError(f"--method {settings.method!r} is neither 'hf' nor a functional PySCF knows") from None
    try:
        gto.basis.load(settings.basis, "H")
    except (RuntimeError, KeyError, ValueError, OSError):
        raise MLPotError(f"--basis {settings.basis!r} is not a basis set PySCF knows") from None


def element_shells(z: int, basis: str) -> List[int]:
    """l of each shell of element ``z`` in PySCF's AO order (a general contraction counts once
    per contracted function)."""
    require_pyscf()
    from pyscf import gto

    try:
        mol = gto.M(atom=[(int(z), (0.0, 0.0, 0.0))], basis=basis, spin=int(z) % 2, verbose=0)
    except (RuntimeError, KeyError, ValueError) as error:
        raise MLPotError(f"basis {basis!r} has no functions for element {z} ({error})") from None
    return [int(mol.bas_angular(b)) for b in range(mol.nbas) for _ in range(mol.bas_nctr(b))]


def build_molecule(numbers: Sequence[int], positions: np.ndarray, basis: str, charge: int):
    """A PySCF Mole (positions in Å); odd electron counts are refused (closed shells only)."""
    require_pyscf()
    from pyscf import gto

    electrons = int(sum(numbers)) - charge
    if electrons % 2:
        raise MLPotError(f"{electrons} electrons: only closed-shell molecules are supported (check the charge)")
    atoms = [(int(z), tuple(float(x) for x in position)) for z, position in zip(numbers, positions)]
    return gto.M(atom=atoms, unit="Angstrom", basis=basis, charge=charge, spin=0, verbose=0)


def overlap_matrix(numbers: Sequence[int], positions: np.ndarray, basis: str, charge: int = 0) -> np.ndarray:
    """Exact AO overlap S [n_ao, n_ao] (no SCF)."""
    return build_molecule(numbers, positions, basis, charge).intor_symmetric("int1e_ovlp")


def run_frame(numbers: Sequence[int], positions: np.ndarray, settings: QMSettings) -> Dict[str, np.ndarray]:
    """SCF of one geometry; H is the Fock/KS matrix of the converged density, float64.

    The orbital energies are recomputed from the returned H and S (generalised eigenproblem),
    so they agree with the stored matrices rather than with PySCF's last SCF iteration.
    """
    from pyscf import dft, scf

    mol = build_molecule(numbers, positions, settings.basis, settings.charge)
    if settings.method.lower() == "hf":
        mf = scf.RHF(mol)
    else:
        mf = dft.RKS(mol)
        mf.xc = settings.method
        mf.grids.level = settings.grid_level
    mf.conv_tol = settings.conv_tol
    mf.max_cycle = settings.max_cycles
    energy = mf.kernel()
    overlap = mf.get_ovlp()
    hamiltonian = mf.get_fock(dm=mf.make_rdm1())
    hamiltonian = 0.5 * (hamiltonian + hamiltonian.T)  # symmetric to the last bit
    return {
        "atomic_numbers": np.asarray(numbers, dtype=np.int64),
        "positions": np.asarray(positions, dtype=np.float64),
        "hamiltonian": hamiltonian,
        "overlap": overlap,
        "energy": np.float64(energy),
        "orbital_energies": scipy.linalg.eigh(hamiltonian, overlap, eigvals_only=True),
        "num_electrons": np.int64(mol.nelectron),
        "converged": np.bool_(mf.converged),
        "cycles": np.int64(mf.cycles),
    }
