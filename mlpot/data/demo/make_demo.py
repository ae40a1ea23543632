"""Generate the demo dataset shipped with mlpot: Cu-Au alloys labelled by ASE's EMT.

    python -m mlpot.data.demo.make_demo      (rewrites train.xyz and test.xyz beside this file)

Random fcc Cu(1-x)Au(x) cells of 16 atoms at Vegard's lattice constant, strained by up to 3 %
and run through short Langevin MD at 300-1200 K with EMT, one frame every 25 steps; energies,
forces and stress from EMT (effective-medium theory, Jacobsen et al. 1996), which ships with
ASE. Two isolated atoms give E0s directly. Deterministic for a given ASE version.
"""

from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from mlpot.data.extxyz import write_extxyz

HERE = Path(__file__).resolve().parent
LATTICE = {"Cu": 3.61, "Au": 4.08}


def labelled(atoms: Atoms):
    atoms = atoms.copy()
    atoms.calc = EMT()
    info = {"energy": float(atoms.get_potential_energy())}
    arrays = {"forces": atoms.get_forces()}
    if atoms.pbc.all():
        info["stress"] = atoms.get_stress(voigt=False)
    plain = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    return plain, info, arrays


def trajectory(rng: np.random.Generator, frames: int):
    gold = rng.uniform(0.0, 1.0)
    lattice = (1 - gold) * LATTICE["Cu"] + gold * LATTICE["Au"]
    atoms = bulk("Cu", "fcc", a=lattice, cubic=True) * (2, 2, 1)
    atoms.symbols[rng.random(len(atoms)) < gold] = "Au"
    strain = np.eye(3) + rng.uniform(-0.03, 0.03, (3, 3))
    atoms.set_cell(atoms.cell.array @ (0.5 * (strain + strain.T)), scale_atoms=True)
    atoms.calc = EMT()
    temperature = rng.uniform(300, 1200)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    dynamics = Langevin(atoms, 4 * units.fs, temperature_K=temperature, friction=0.02, fixcm=False, rng=rng)
    for _ in range(frames):
        dynamics.run(25)
        yield labelled(atoms)


def main() -> None:
    rng = np.random.default_rng(2026)
    frames = [frame for _ in range(40) for frame in trajectory(rng, 5)]
    order = rng.permutation(len(frames))
    test = [frames[i] for i in order[:40]]
    train = [frames[i] for i in order[40:]]
    train += [labelled(Atoms(symbol, cell=[12.0, 12.0, 12.0], pbc=False)) for symbol in ("Cu", "Au")]
    print("train", write_extxyz(HERE / "train.xyz", train), "frames;", "test", write_extxyz(HERE / "test.xyz", test), "frames")


if __name__ == "__main__":
    main()
