"""Fine-tuning target at the foundation's level of theory: acetic acid, PBE/def2-SVP with PySCF (issue 30, point 5).

    OMP_NUM_THREADS=1 python benchmarks/mace_finetune/make_target.py WORKDIR [--frames 250] [--temperature 500] [--worker K --workers N]

rMD17 (the foundation's data) is PBE/def2-SVP computed with ORCA. Acetic acid (CH3COOH, 8 atoms) is in
neither ethanol nor aspirin but shares their motifs: a methyl group and a carboxylic acid (aspirin's),
a C-O-H (ethanol's).

1. Optimise the geometry (ASE's BFGS, fmax 0.02 eV/Å) and compute the analytic Hessian there, both
   with PBE/def2-SVP on PySCF's coarse grid level 1 (they only choose where to sample; the machine
   this ran on was too loaded for more). ``target/minimum.npz`` keeps the geometry, the Hessian and
   the density matrix, so a rerun skips this.
2. Normal-mode Boltzmann sampling: each of the 3N-6 mass-weighted normal modes of angular frequency
   w_k is displaced by a Gaussian amplitude of variance kT / w_k^2 (the classical harmonic
   distribution at ``--temperature``, as the ANI data sets sampled their conformers), seed 0.
   All displacements are drawn before any label, so a resumed run labels the same frames.
3. Label each frame: energy and gradient, PBE/def2-SVP, PySCF's default grid (level 3), density
   fitting of the Coulomb term with def2/J (as ORCA's default RI-J for GGAs), SCF converged to
   1e-9 Hartree from the minimum's density matrix. Each frame is written to
   ``target/frames/NNNN.npz`` as it is done, so a killed run resumes and N worker processes
   (``--worker K --workers N``, one thread each) share the frames; the worker that finds all of
   them done writes ``target/acetic_acid.xyz`` (energy in eV, forces in eV/Å; Hartree and Bohr
   from ASE).
``--check-rmd17 N`` instead labels the first N frames of rMD17 ethanol (training split 01) the same
way and prints the force MAE and the spread of energy differences against rMD17's ORCA labels:
the size of the PySCF-vs-ORCA difference (grids, SCF and RI settings) this target carries.
"""

import argparse
import time
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes
from ase.io import write
from ase.optimize import BFGS

from mlpot.data.rmd17 import KCAL_PER_MOL

RMD17 = Path(__file__).resolve().parents[3] / "shared" / "data" / "rmd17"
SAMPLING_GRID = 1  # PySCF grid level of the optimisation and Hessian (the labels use level 3)

#: A rough acetic acid (syn conformer), Å; optimised below.
ACETIC_ACID = Atoms(
    "CCOOHHHH",
    positions=[[0.000, 0.000, 0.000], [1.500, 0.000, 0.000], [2.150, 1.050, 0.000], [2.100, -1.200, 0.000],
               [3.050, -1.100, 0.000], [-0.360, 1.020, 0.000], [-0.360, -0.510, 0.890], [-0.360, -0.510, -0.890]],
)


def pbe(atoms: Atoms, grid_level: int = 3):
    """A PySCF PBE/def2-SVP calculation (restricted Kohn-Sham, density fitting with def2-universal-jfit,
    i.e. def2/J as ORCA's RI-J) of a neutral closed-shell molecule."""
    from pyscf import dft, gto

    molecule = gto.M(atom=[(s, p) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)], basis="def2-svp",
                     unit="Angstrom", verbose=0)
    scf = dft.RKS(molecule).density_fit(auxbasis="def2-universal-jfit")
    scf.xc, scf.conv_tol, scf.grids.level = "pbe,pbe", 1e-9, grid_level
    return scf


def pbe_energy_forces(atoms: Atoms, guess: Optional[np.ndarray] = None, grid_level: int = 3) -> Tuple[float, np.ndarray]:
    """Energy (eV) and forces [N, 3] (eV/Å); ``guess``: a starting density matrix."""
    scf = pbe(atoms, grid_level)
    energy = scf.kernel(dm0=guess)
    if not scf.converged:
        raise RuntimeError("SCF did not converge")
    gradient = scf.nuc_grad_method().kernel()  # [N, 3] Hartree/Bohr
    return energy * units.Hartree, -gradient * units.Hartree / units.Bohr


class SamplingCalculator(Calculator):
    """PBE/def2-SVP on the coarse grid used only to find the geometry to sample around."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results["energy"], self.results["forces"] = pbe_energy_forces(self.atoms, grid_level=SAMPLING_GRID)


def minimum(directory: Path) -> Tuple[Atoms, np.ndarray, np.ndarray]:
    """The optimised molecule, its Hessian [3N, 3N] (eV/Å^2) and density matrix (coarse grid)."""
    path = directory / "minimum.npz"
    if path.is_file():
        saved = np.load(path)
        return Atoms(ACETIC_ACID.symbols, positions=saved["positions"]), saved["hessian"], saved["density"]
    atoms = ACETIC_ACID.copy()
    atoms.calc = SamplingCalculator()
    BFGS(atoms, logfile=str(directory / "optimise.log")).run(fmax=0.02)
    atoms = Atoms(atoms.symbols, positions=atoms.positions)
    scf = pbe(atoms, SAMPLING_GRID)
    scf.kernel()
    hessian = scf.Hessian().kernel()  # [N, N, 3, 3] Hartree/Bohr^2
    n = len(atoms)
    hessian = hessian.transpose(0, 2, 1, 3).reshape(3 * n, 3 * n) * units.Hartree / units.Bohr**2
    np.savez(path, positions=atoms.positions, hessian=hessian, density=scf.make_rdm1())
    return atoms, hessian, scf.make_rdm1()


def normal_mode_samples(atoms: Atoms, hessian: np.ndarray, count: int, temperature: float, seed: int) -> np.ndarray:
    """[count, N, 3] positions: Gaussian displacements along the vibrational normal modes at temperature (K)."""
    masses = np.repeat(atoms.get_masses(), 3)  # [3N] amu
    weighted = hessian / np.sqrt(np.outer(masses, masses))  # [3N, 3N] eV/(Å^2 amu)
    # Project out translations and rotations (a finite DFT grid leaves them with spurious curvature).
    centred = atoms.positions - atoms.get_center_of_mass()  # [N, 3]
    rigid = [np.tile(np.eye(3)[axis], len(atoms)) for axis in range(3)]
    rigid += [np.cross(np.eye(3)[axis], centred).ravel() for axis in range(3)]
    basis, _ = np.linalg.qr(np.array(rigid).T * np.sqrt(masses)[:, None])  # [3N, 6] orthonormal, mass-weighted
    projector = np.eye(len(masses)) - basis @ basis.T
    eigenvalues, modes = np.linalg.eigh(projector @ weighted @ projector)  # eigenvalues = w^2, ascending
    vibrational = np.argsort(np.abs(eigenvalues))[6:]  # drop the 6 projected-out modes (w^2 = 0)
    # The methyl torsion of the planar (Cs) geometry the optimiser keeps comes out imaginary
    # (83i cm^-1 on the coarse grid); a linear displacement along a torsion would stretch the C-H
    # bonds anyway, so modes of negative curvature are not displaced.
    vibrational = vibrational[eigenvalues[vibrational] > 0]
    curvature = eigenvalues[vibrational]
    kT = units.kB * temperature  # eV
    rng = np.random.default_rng(seed)
    amplitudes = rng.normal(size=(count, len(vibrational))) * np.sqrt(kT / curvature)  # [count, modes] Å sqrt(amu)
    displacements = amplitudes @ modes[:, vibrational].T / np.sqrt(masses)  # [count, 3N] Å
    return atoms.positions[None] + displacements.reshape(count, len(atoms), 3)


def check_against_rmd17(count: int) -> None:
    data = np.load(RMD17 / "rmd17_ethanol_train_01.npz")
    force_errors, energy_differences = [], []
    for index in range(count):
        atoms = Atoms(numbers=data["nuclear_charges"], positions=data["coords"][index])
        energy, forces = pbe_energy_forces(atoms)
        force_errors.append(np.abs(forces - data["forces"][index] * KCAL_PER_MOL).mean())
        energy_differences.append(energy - data["energies"][index] * KCAL_PER_MOL)
    spread = np.array(energy_differences) - np.mean(energy_differences)
    print(f"PySCF vs rMD17 (ORCA), {count} ethanol frames: forces MAE {1000 * np.mean(force_errors):.2f} meV/Å, "
          f"energy offset {np.mean(energy_differences):.4f} eV, spread of energy differences (std) {1000 * spread.std():.2f} meV")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--temperature", type=float, default=500.0)
    parser.add_argument("--worker", type=int, default=0, help="this process labels frames K, K + N, ...")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--check-rmd17", type=int, default=0, metavar="N")
    args = parser.parse_args()
    if args.check_rmd17:
        check_against_rmd17(args.check_rmd17)
        return
    directory = args.work / "target"
    (directory / "frames").mkdir(parents=True, exist_ok=True)
    atoms, hessian, density = minimum(directory)
    positions = normal_mode_samples(atoms, hessian, args.frames, args.temperature, seed=0)
    for index in range(args.worker, args.frames, args.workers):
        path = directory / "frames" / f"{index:04d}.npz"
        if path.is_file():
            continue
        start = time.time()
        energy, forces = pbe_energy_forces(Atoms(atoms.symbols, positions=positions[index]), guess=density)
        np.savez(path.with_suffix(".tmp.npz"), positions=positions[index], energy=energy, forces=forces)
        path.with_suffix(".tmp.npz").rename(path)
        print(f"frame {index}: E {energy:.6f} eV, max |F| {np.linalg.norm(forces, axis=1).max():.3f} eV/Å, "
              f"{time.time() - start:.1f} s", flush=True)
    done = [directory / "frames" / f"{index:04d}.npz" for index in range(args.frames)]
    if all(path.is_file() for path in done):
        frames = []
        for path in done:
            saved = np.load(path)
            frame = Atoms(atoms.symbols, positions=saved["positions"])
            frame.info["energy"] = float(saved["energy"])
            frame.arrays["forces"] = saved["forces"]
            frames.append(frame)
        write(directory / "acetic_acid.xyz", frames, format="extxyz")
        print(f"wrote {len(frames)} frames to {directory / 'acetic_acid.xyz'}")


if __name__ == "__main__":
    main()
