"""mlpot.dynamics.molecule: normal modes of a finite-difference Hessian, and the map between
frames and phase-space states.

Pair potentials (ASE's Morse) make the cases small and exact: a diatomic's frequency is
sqrt(k / mu) with k = 2 epsilon (rho0 / r0)^2, and a tetrahedron's modes are compared with ASE's
own finite-difference Vibrations.
"""

import numpy as np
import pytest
from ase import Atoms, units
from ase.calculators.morse import MorsePotential
from ase.vibrations import Vibrations

from mlpot.dynamics.molecule import (MolecularTrajectory, PhaseSpaceCoordinates, angular_frequency_to_wavenumber, hessian,
                                     molecule_normal_modes, normal_modes, rigid_motions)

MORSE = dict(epsilon=0.5, rho0=4.0, r0=1.2)


def tetrahedron() -> Atoms:
    """Four atoms of different masses, every pair at the Morse minimum distance, slightly off it."""
    corners = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float)
    atoms = Atoms(numbers=[6, 8, 1, 7], positions=corners * MORSE["r0"] / np.sqrt(8.0))
    atoms.positions += np.random.default_rng(0).normal(scale=0.02, size=(4, 3))
    return atoms


def test_diatomic_frequency_is_the_analytic_one():
    atoms = Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.3]])
    modes = molecule_normal_modes(atoms, MorsePotential(**MORSE), fmax=1e-6, delta=1e-3)
    assert modes.modes.shape == (6, 1)  # linear: 3N - 5 vibrations
    masses = atoms.get_masses()
    k = 2.0 * MORSE["epsilon"] * (MORSE["rho0"] / MORSE["r0"]) ** 2  # eV / Å^2
    omega_per_fs = np.sqrt(k / (masses[0] * masses[1] / masses.sum())) * units.fs
    assert modes.wavenumbers[0] == pytest.approx(float(angular_frequency_to_wavenumber(omega_per_fs)), rel=1e-5)


def test_tetrahedron_modes_are_orthonormal_and_match_ase_vibrations(tmp_path):
    calculator = MorsePotential(**MORSE)
    modes = molecule_normal_modes(tetrahedron(), calculator, fmax=1e-6, delta=1e-3)
    assert modes.modes.shape == (12, 6)
    assert np.allclose(modes.modes.T @ modes.modes, np.eye(6), atol=1e-12)
    rigid = rigid_motions(modes.reference, modes.masses)
    assert rigid.shape == (12, 6) and np.abs(rigid.T @ modes.modes).max() < 1e-10
    minimum = Atoms(numbers=modes.numbers, positions=modes.reference)
    minimum.calc = calculator
    vibrations = Vibrations(minimum, delta=1e-3, nfree=2, name=str(tmp_path / "vib"))
    vibrations.run()
    reference = np.sort(np.real(vibrations.get_frequencies()))[-6:]  # cm^-1; the 6 rigid ones are near 0
    assert np.allclose(modes.wavenumbers, reference, rtol=1e-4)


def test_hessian_is_the_derivative_of_the_forces():
    """Its product with a small displacement is the force change (harmonic region)."""
    calculator = MorsePotential(**MORSE)
    minimum = molecule_normal_modes(tetrahedron(), calculator, fmax=1e-6).reference
    atoms = Atoms(numbers=[6, 8, 1, 7], positions=minimum)
    matrix = hessian(atoms, calculator, delta=1e-3)
    assert np.allclose(matrix, matrix.T)
    step = np.random.default_rng(1).normal(scale=1e-5, size=(4, 3))
    atoms.calc = calculator
    before = atoms.get_forces().reshape(-1)
    atoms.positions = minimum + step
    change = atoms.get_forces().reshape(-1) - before
    assert np.allclose(change, -matrix @ step.reshape(-1), atol=1e-4 * np.abs(change).max(), rtol=0)


class InvertedMorse(MorsePotential):
    """-Morse: its pair distance r0 is a maximum."""

    def calculate(self, *args, **kwargs):
        super().calculate(*args, **kwargs)
        self.results = {key: -value for key, value in self.results.items()}


def test_saddle_is_refused():
    from mlpot.errors import MLPotError

    atoms = Atoms("CO", positions=[[0, 0, 0], [0, 0, MORSE["r0"]]])  # zero force: BFGS stops at once
    with pytest.raises(MLPotError, match="saddle, not a minimum"):
        molecule_normal_modes(atoms, InvertedMorse(**MORSE), fmax=1e-3)


def random_frames(count: int, atoms: Atoms, seed: int = 0):
    rng = np.random.default_rng(seed)
    positions = atoms.positions[None] + rng.normal(scale=0.05, size=(count, len(atoms), 3)) + rng.normal(size=3)
    momenta = rng.normal(size=(count, len(atoms), 3)) * atoms.get_masses()[None, :, None] * 0.01
    return positions, momenta


def test_cartesian_round_trip_is_exact_with_the_centre_put_back():
    atoms = tetrahedron()
    positions, momenta = random_frames(5, atoms)
    trajectory = MolecularTrajectory(atoms.numbers, atoms.get_masses(), positions, momenta, np.arange(5) * 0.001)
    coordinates = PhaseSpaceCoordinates.cartesian(trajectory)
    states = coordinates.to_states(positions, momenta)
    assert states.shape == (5, 24)
    back_positions, back_momenta = coordinates.to_positions_momenta(states, trajectory.centre(), trajectory.centre_velocity())
    assert np.allclose(back_positions, positions, atol=1e-12) and np.allclose(back_momenta, momenta, atol=1e-12)
    # Mass-weighted: the kinetic energy without the centre's motion is sum(p^2) / 2 (in amu Å^2 / fs^2).
    kinetic = 0.5 * np.sum(momenta**2 / atoms.get_masses()[None, :, None], axis=(1, 2))
    centre = 0.5 * atoms.get_masses().sum() * np.sum(trajectory.centre_velocity() ** 2, axis=1)
    assert np.allclose(0.5 * np.sum(states[:, 12:] ** 2, axis=1), (kinetic - centre) * units.fs**2)  # p in sqrt(amu) Å / fs


def test_normal_mode_round_trip_keeps_vibrations_and_drops_rigid_motion():
    calculator = MorsePotential(**MORSE)
    normal = molecule_normal_modes(tetrahedron(), calculator, fmax=1e-6, delta=1e-3)
    coordinates = PhaseSpaceCoordinates.from_normal_modes(normal)
    assert coordinates.num_dof == 6
    atoms = Atoms(numbers=normal.numbers, positions=normal.reference)
    positions, momenta = random_frames(4, atoms)
    centre = np.einsum("i,tic->tc", normal.masses, positions) / normal.masses.sum()
    velocity = momenta.sum(axis=1) / normal.masses.sum()
    states = coordinates.to_states(positions, momenta)  # [4, 12]
    back = coordinates.to_positions_momenta(states, centre, velocity)
    assert np.allclose(coordinates.to_states(*back), states, atol=1e-12)  # the projection is idempotent
    # Frames made from states (a vibration, no rotation) come back exactly.
    vib_positions, vib_momenta = back
    again = coordinates.to_positions_momenta(coordinates.to_states(vib_positions, vib_momenta), centre, velocity)
    assert np.allclose(again[0], vib_positions, atol=1e-12) and np.allclose(again[1], vib_momenta, atol=1e-12)
    # The harmonic energy sum(p^2 + omega^2 q^2) / 2 of a small displacement is the Hessian's.
    step = 1e-3 * np.random.default_rng(2).normal(size=(1, 4, 3))
    q = coordinates.to_states(normal.reference[None] + step, np.zeros((1, 4, 3)))[0, :6]
    matrix = hessian(atoms, calculator, delta=1e-3)
    sqrt_m = np.repeat(np.sqrt(normal.masses), 3)
    projected = (normal.modes @ normal.modes.T @ (sqrt_m * step.reshape(-1))) / sqrt_m  # the vibrational part
    assert 0.5 * np.sum(normal.eigenvalues * q**2) == pytest.approx(0.5 * projected @ matrix @ projected, rel=1e-6)


def test_saved_coordinates_come_back():
    normal = normal_modes(tetrahedron(), hessian(tetrahedron(), MorsePotential(**MORSE), delta=1e-3))
    coordinates = PhaseSpaceCoordinates.from_normal_modes(normal)
    again = PhaseSpaceCoordinates.from_dict(coordinates.to_dict())
    assert again.kind == "normal-modes" and np.array_equal(again.modes, coordinates.modes)
    assert np.array_equal(again.numbers, coordinates.numbers) and np.array_equal(again.reference, coordinates.reference)
