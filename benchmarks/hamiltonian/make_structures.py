"""Structures of the Hamiltonian benchmark, written into structures/ beside this script.

water: the PBE/def2-SVP equilibrium geometry (ASE BFGS on PySCF forces, fmax 1e-3 eV/Å), then
1000 copies with every Cartesian coordinate displaced by N(0, 0.05 Å), seed 0; the first 500 are
water_train.xyz, the other 500 water_test.xyz (PhiSNet's 500/500 split). With --water-extra N
only water_extra.xyz is written: N more copies drawn the same way with seed 1, or with --seed S
water_extra_seedS.xyz (more training data for the learning curve in data size; none of them is a
test geometry).
ethanol: the first 500 coordinates of rMD17's rmd17_ethanol_train_01.npz (../shared/data beside
the repository); 0-449 are ethanol_train.xyz (400 train + 50 validation), 450-499 ethanol_test.xyz.

    python benchmarks/hamiltonian/make_structures.py [--water-extra 2000 [--seed 2]]
"""

import argparse
from pathlib import Path
from typing import List

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


def water_equilibrium() -> Atoms:
    atoms = molecule("H2O")
    atoms.calc = PySCFForces()
    BFGS(atoms, logfile=None).run(fmax=1e-3)
    distances = atoms.get_distance(0, 1), atoms.get_angle(1, 0, 2)
    print(f"water PBE/def2-SVP equilibrium: r(OH) = {distances[0]:.4f} Å, angle HOH = {distances[1]:.2f}°")
    return Atoms(atoms.numbers, atoms.positions)


def displaced(equilibrium: Atoms, count: int, seed: int) -> List[Atoms]:
    rng = np.random.default_rng(seed)
    shape = equilibrium.positions.shape
    return [Atoms(equilibrium.numbers, equilibrium.positions + rng.normal(0.0, 0.05, shape)) for _ in range(count)]


def water() -> None:
    frames = displaced(water_equilibrium(), 1000, seed=0)
    write(HERE / "structures" / "water_train.xyz", frames[:500])
    write(HERE / "structures" / "water_test.xyz", frames[500:])


def water_extra(count: int, seed: int) -> None:
    name = "water_extra.xyz" if seed == 1 else f"water_extra_seed{seed}.xyz"
    write(HERE / "structures" / name, displaced(water_equilibrium(), count, seed=seed))


def ethanol() -> None:
    data = np.load(RMD17.resolve())
    frames = [Atoms(data["nuclear_charges"], coords) for coords in data["coords"][:500]]
    write(HERE / "structures" / "ethanol_train.xyz", frames[:450])
    write(HERE / "structures" / "ethanol_test.xyz", frames[450:])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--water-extra", type=int, metavar="N", help="only write N more water geometries")
    parser.add_argument("--seed", type=int, default=1, help="random seed of --water-extra (0 draws the train/test set)")
    args = parser.parse_args()
    if args.seed == 0:
        parser.error("--seed 0 would repeat the train and test geometries")
    (HERE / "structures").mkdir(exist_ok=True)
    if args.water_extra:
        water_extra(args.water_extra, args.seed)
    else:
        water()
        ethanol()
