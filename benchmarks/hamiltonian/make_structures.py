"""Structures of the Hamiltonian benchmark, written into structures/ beside this script.

water: the PBE/def2-SVP equilibrium geometry (ASE BFGS on PySCF forces, fmax 1e-3 eV/Å), then
1000 copies with every Cartesian coordinate displaced by N(0, 0.05 Å), seed 0; the first 500 are
water_train.xyz, the other 500 water_test.xyz (PhiSNet's 500/500 split).
ethanol: the first 500 coordinates of rMD17's rmd17_ethanol_train_01.npz (../shared/data beside
the repository); 0-449 are ethanol_train.xyz (400 train + 50 validation), 450-499 ethanol_test.xyz.

    python benchmarks/hamiltonian/make_structures.py
"""

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import molecule
from ase.calculators.calculator import Calculator, all_changes
from ase.io import write
from ase.optimize import BFGS
from ase.units import Bohr, Hartree

HERE = Path(__file__).resolve().parent
RMD17 = HERE.parents[1] / ".." / "shared" / "data" / "rmd17" / "rmd17_ethanol_train_01.npz"


class PySCFForces(Calculator):
    """PBE/def2-SVP energy and forces from PySCF, only for the equilibrium geometry."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        from pyscf import dft, gto

        super().calculate(atoms, properties, system_changes)
        mol = gto.M(atom=[(s, p) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)], basis="def2-svp", verbose=0)
        mf = dft.RKS(mol)
        mf.xc = "pbe"
        mf.conv_tol = 1e-11
        energy = mf.kernel()
        gradient = mf.nuc_grad_method().kernel()  # Eh / Bohr
        self.results = {"energy": energy * Hartree, "forces": -gradient * Hartree / Bohr}


def water() -> None:
    atoms = molecule("H2O")
    atoms.calc = PySCFForces()
    BFGS(atoms, logfile=None).run(fmax=1e-3)
    equilibrium = atoms.positions.copy()
    distances = atoms.get_distance(0, 1), atoms.get_angle(1, 0, 2)
    print(f"water PBE/def2-SVP equilibrium: r(OH) = {distances[0]:.4f} Å, angle HOH = {distances[1]:.2f}°")
    rng = np.random.default_rng(0)
    frames = [Atoms(atoms.numbers, equilibrium + rng.normal(0.0, 0.05, equilibrium.shape)) for _ in range(1000)]
    write(HERE / "structures" / "water_train.xyz", frames[:500])
    write(HERE / "structures" / "water_test.xyz", frames[500:])


def ethanol() -> None:
    data = np.load(RMD17.resolve())
    frames = [Atoms(data["nuclear_charges"], coords) for coords in data["coords"][:500]]
    write(HERE / "structures" / "ethanol_train.xyz", frames[:450])
    write(HERE / "structures" / "ethanol_test.xyz", frames[450:])


if __name__ == "__main__":
    (HERE / "structures").mkdir(exist_ok=True)
    water()
    ethanol()
