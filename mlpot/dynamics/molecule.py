"""A molecule's MD trajectory as phase-space states (q, p) for a learned propagator, and back.

Two coordinate systems, both mass-weighted so that the kinetic energy is sum(p^2) / 2 and a
harmonic potential is sum(omega_k^2 q_k^2) / 2:

- ``cartesian``: q = sqrt(m_i) (x_i - centre of mass - x_i^ref) and p = dq/dt = sqrt(m_i) (v_i - v_com),
  3N pairs. Nothing is removed: rotation, if the molecule spins, is part of the motion.
- ``normal-modes``: the projections of those onto the 3N - 6 (3N - 5 for a linear molecule)
  mass-weighted normal modes of the potential's Hessian at its minimum, translations and
  rotations projected out. Near the minimum these are uncoupled harmonic oscillators, which is
  where an action-angle propagator is exact; anharmonicity couples them as the energy rises.

Frames are in ASE's units (positions Å, masses amu, momenta amu Å / t_ASE; eigenvalues of the
mass-weighted Hessian are omega^2 in eV / (amu Å^2) = 1 / t_ASE^2); states use femtoseconds:
q in sqrt(amu) Å, p in sqrt(amu) Å / fs, so that with omega in rad/fs a harmonic mode moves as
q cos(wt) + p / w sin(wt). The centre of mass moves freely
(``MolecularTrajectory.centre_velocity``) and is put back, not learned.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np
from ase import Atoms, units

from mlpot.errors import MLPotError

COORDINATES = ("normal-modes", "cartesian")
SPEED_OF_LIGHT_CM_PER_S = 2.99792458e10


def angular_frequency_to_wavenumber(omega_per_fs: np.ndarray) -> np.ndarray:
    """omega in rad/fs -> wavenumber in cm^-1."""
    return np.asarray(omega_per_fs) * 1e15 / (2.0 * np.pi * SPEED_OF_LIGHT_CM_PER_S)


# ---------------------------------------------------------------- the trajectory


@dataclass
class MolecularTrajectory:
    """Frames of one molecule in vacuum, at a uniform time step."""

    numbers: np.ndarray  # [N]
    masses: np.ndarray  # [N] amu
    positions: np.ndarray  # [T, N, 3] Å
    momenta: np.ndarray  # [T, N, 3] amu Å / t_ASE
    times_ps: np.ndarray  # [T]

    @property
    def frame_time_ps(self) -> float:
        return float(self.times_ps[1] - self.times_ps[0]) if len(self.times_ps) > 1 else 0.0

    def centre(self) -> np.ndarray:
        """Centre of mass of each frame [T, 3]."""
        return np.einsum("i,tic->tc", self.masses, self.positions) / self.masses.sum()

    def centre_velocity(self) -> np.ndarray:
        """Velocity of the centre of mass of each frame [T, 3], Å / t_ASE."""
        return self.momenta.sum(axis=1) / self.masses.sum()

    def atoms(self, frame: int) -> Atoms:
        atoms = Atoms(numbers=self.numbers, positions=self.positions[frame], masses=self.masses)
        atoms.set_momenta(self.momenta[frame])
        return atoms


def _frame_momenta(atoms: Atoms) -> Optional[np.ndarray]:
    """Momenta [N, 3] of a read frame: ASE's ``momenta`` or mlpot md's ``velocities`` (Å / t_ASE)."""
    if "momenta" in atoms.arrays:
        return np.asarray(atoms.arrays["momenta"], dtype=np.float64)
    if "velocities" in atoms.arrays:
        return np.asarray(atoms.arrays["velocities"], dtype=np.float64) * atoms.get_masses()[:, None]
    return None


def read_trajectory(path: Union[str, Path], frame_time_fs: Optional[float] = None, min_frames: int = 2) -> MolecularTrajectory:
    """Every frame of an extxyz or ASE trajectory, checked: the same atoms in every frame, no
    periodic cell (or the same one, unused), momenta or velocities in each, and times
    (``time_ps``, as ``mlpot md`` writes them, or ``frame_time_fs`` apart) on a uniform step.
    A single frame needs no time (it is t = 0)."""
    from mlpot.data.dataset import read_frames
    from mlpot.data.geometry import check_finite

    numbers = cell = pbc = None
    positions, momenta, times = [], [], []
    for frame, atoms in read_frames(path):
        where = f"{path}, frame {frame}"
        if numbers is None:
            numbers, cell, pbc = atoms.numbers.copy(), atoms.cell.array.copy(), atoms.pbc.copy()
            first_info = dict(atoms.info)
        elif len(atoms) != len(numbers) or not np.array_equal(atoms.numbers, numbers):
            raise MLPotError(f"{where}: the atoms differ from frame 0 ({atoms.get_chemical_formula()} vs "
                             f"{Atoms(numbers=numbers).get_chemical_formula()}, or another order)")
        elif not np.array_equal(atoms.pbc, pbc) or not np.allclose(atoms.cell.array, cell, rtol=0, atol=1e-8):
            raise MLPotError(f"{where}: the cell differs from frame 0")
        check_finite(atoms, where)
        frame_momenta = _frame_momenta(atoms)
        if frame_momenta is None:
            raise MLPotError(f"{where}: no momenta or velocities (a propagator needs the whole phase-space state; "
                             "mlpot md writes velocities)")
        if not np.isfinite(frame_momenta).all():
            raise MLPotError(f"{where}: non-finite momenta or velocities")
        if frame_time_fs is None:
            if "time_ps" not in atoms.info and frame > 0:
                raise MLPotError(f"{where}: no time_ps in the frame's info (mlpot md writes it); give the time between frames (--frame-time)")
            times.append(float(atoms.info.get("time_ps", 0.0)))
        positions.append(atoms.positions.copy())
        momenta.append(frame_momenta)
    count = len(positions)
    if count < min_frames:
        raise MLPotError(f"{path}: {count} frame(s); at least {min_frames} are needed")
    if numbers is not None and pbc.any():
        raise MLPotError(f"{path}: the frames have a periodic cell; this is for one molecule in vacuum (pbc F F F)")
    if frame_time_fs is not None:
        if not frame_time_fs > 0:
            raise MLPotError(f"the time between frames must be positive, got {frame_time_fs} fs")
        times_ps = np.arange(count) * frame_time_fs / 1000.0
    else:
        times_ps = np.asarray(times)
        if count > 1 and "time_ps" not in first_info:
            raise MLPotError(f"{path}, frame 0: no time_ps in the frame's info (mlpot md writes it); give the time between frames (--frame-time)")
        check_uniform_times(times_ps, str(path))
    masses = Atoms(numbers=numbers).get_masses()
    return MolecularTrajectory(numbers, masses, np.asarray(positions), np.asarray(momenta), times_ps)


def check_uniform_times(times_ps: np.ndarray, where: str) -> None:
    """One line naming the first frame whose step differs from the first step (or goes backwards)."""
    if len(times_ps) < 2:
        return
    steps = np.diff(times_ps)  # [T - 1]
    step = steps[0]
    if not step > 0:
        raise MLPotError(f"{where}, frame 1: time {times_ps[1]:g} ps does not come after frame 0's {times_ps[0]:g} ps")
    off = np.flatnonzero(np.abs(steps - step) > 1e-6 * step + 1e-9)
    if off.size:
        k = int(off[0]) + 1
        raise MLPotError(f"{where}, frame {k}: non-uniform time step ({steps[k - 1]:g} ps after frame {k - 1}, "
                         f"{step:g} ps between frames 0 and 1)")


# ---------------------------------------------------------------- the minimum and its Hessian


def relax(atoms: Atoms, calculator, fmax: float = 1e-4, steps: int = 2000) -> Atoms:
    """A copy of ``atoms`` at the calculator's nearest minimum (BFGS to ``fmax`` eV/Å)."""
    from ase.optimize import BFGS

    relaxed = Atoms(numbers=atoms.numbers, positions=atoms.positions, masses=atoms.get_masses())
    relaxed.calc = calculator
    optimizer = BFGS(relaxed, logfile=None)
    if not optimizer.run(fmax=fmax, steps=steps):
        largest = float(np.linalg.norm(relaxed.get_forces(), axis=1).max())
        raise MLPotError(f"relaxation to {fmax} eV/Å did not converge in {steps} BFGS steps (largest force {largest:.2g} eV/Å)")
    relaxed.calc = None
    return relaxed


def hessian(atoms: Atoms, calculator, delta: float = 5e-3) -> np.ndarray:
    """Cartesian Hessian [3N, 3N] in eV/Å^2 by central differences of the forces (2 x 3N force
    calls, ``delta`` Å), symmetrised."""
    displaced = Atoms(numbers=atoms.numbers, positions=atoms.positions, masses=atoms.get_masses())
    displaced.calc = calculator
    size = 3 * len(atoms)
    columns = np.empty((size, size))
    reference = atoms.positions.reshape(-1)
    for j in range(size):
        forces = []
        for sign in (1.0, -1.0):
            moved = reference.copy()
            moved[j] += sign * delta
            displaced.positions = moved.reshape(-1, 3)
            forces.append(displaced.get_forces().reshape(-1))
        columns[:, j] = -(forces[0] - forces[1]) / (2.0 * delta)
    return 0.5 * (columns + columns.T)


def rigid_motions(positions: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Orthonormal basis [3N, r] of the mass-weighted translations and rotations (r = 6, or 5
    for a linear molecule) about the centre of mass of ``positions`` [N, 3]."""
    sqrt_m = np.sqrt(masses)  # [N]
    centred = positions - masses @ positions / masses.sum()
    vectors = []
    for axis in np.eye(3):
        vectors.append((sqrt_m[:, None] * axis[None, :]).reshape(-1))  # translation
        vectors.append((sqrt_m[:, None] * np.cross(axis, centred)).reshape(-1))  # rotation
    basis, singular, _ = np.linalg.svd(np.array(vectors).T, full_matrices=False)
    return basis[:, singular > 1e-6 * singular[0]]


@dataclass
class NormalModes:
    """Mass-weighted normal modes at a minimum: ``modes`` [3N, M] orthonormal, orthogonal to
    translations and rotations, ``eigenvalues`` [M] (omega^2, 1 / t_ASE^2), lowest first."""

    numbers: np.ndarray  # [N]
    masses: np.ndarray  # [N]
    reference: np.ndarray  # [N, 3] the minimum, centre of mass at the origin
    modes: np.ndarray  # [3N, M]
    eigenvalues: np.ndarray  # [M]

    @property
    def angular_frequencies_per_fs(self) -> np.ndarray:
        """omega [M] in rad/fs; an unstable mode (negative eigenvalue) gives a negative value."""
        return np.sign(self.eigenvalues) * np.sqrt(np.abs(self.eigenvalues)) * units.fs

    @property
    def wavenumbers(self) -> np.ndarray:
        """Harmonic frequencies [M] in cm^-1 (negative: imaginary)."""
        return angular_frequency_to_wavenumber(self.angular_frequencies_per_fs)


def normal_modes(atoms: Atoms, hessian_matrix: np.ndarray) -> NormalModes:
    """Diagonalise the mass-weighted Hessian within the complement of the rigid motions."""
    masses = atoms.get_masses()
    inverse_sqrt_m = np.repeat(1.0 / np.sqrt(masses), 3)  # [3N]
    weighted = hessian_matrix * inverse_sqrt_m[:, None] * inverse_sqrt_m[None, :]  # [3N, 3N]
    rigid = rigid_motions(atoms.positions, masses)  # [3N, r]
    projector = np.eye(len(weighted)) - rigid @ rigid.T
    internal, singular, _ = np.linalg.svd(projector)
    internal = internal[:, singular > 0.5]  # [3N, 3N - r]: a basis of the vibrations' space
    eigenvalues, rotation = np.linalg.eigh(internal.T @ weighted @ internal)
    centred = atoms.positions - masses @ atoms.positions / masses.sum()
    return NormalModes(atoms.numbers.copy(), masses, centred, internal @ rotation, eigenvalues)


def molecule_normal_modes(atoms: Atoms, calculator, fmax: float = 1e-4, delta: float = 5e-3) -> NormalModes:
    """Relax ``atoms`` with ``calculator`` and take the normal modes of its Hessian there; one
    line if the minimum is not one (an imaginary mode beyond numerical noise)."""
    minimum = relax(atoms, calculator, fmax=fmax)
    modes = normal_modes(minimum, hessian(minimum, calculator, delta))
    lowest = float(modes.wavenumbers[0])
    if lowest < -10.0:
        raise MLPotError(f"the relaxed structure is a saddle, not a minimum: a mode at {-lowest:.0f}i cm^-1")
    return modes


# ---------------------------------------------------------------- states and back


@dataclass
class PhaseSpaceCoordinates:
    """The map between frames (positions, momenta) and states x = (q, p) [T, 2n].

    ``modes`` is None for Cartesian coordinates (n = 3N), else [3N, n] (normal modes)."""

    kind: str
    numbers: np.ndarray  # [N]
    masses: np.ndarray  # [N]
    reference: np.ndarray  # [N, 3], centre of mass at the origin
    modes: Optional[np.ndarray] = None  # [3N, n]
    wavenumbers: Optional[np.ndarray] = None  # [n] harmonic frequencies, cm^-1 (normal modes)

    @classmethod
    def from_normal_modes(cls, normal: NormalModes) -> "PhaseSpaceCoordinates":
        return cls("normal-modes", normal.numbers, normal.masses, normal.reference, normal.modes, normal.wavenumbers)

    @classmethod
    def cartesian(cls, trajectory: MolecularTrajectory, reference: Optional[np.ndarray] = None) -> "PhaseSpaceCoordinates":
        """Cartesian coordinates about ``reference`` [N, 3] (default: the trajectory's mean
        centred positions)."""
        if reference is None:
            reference = (trajectory.positions - trajectory.centre()[:, None, :]).mean(axis=0)
        reference = reference - trajectory.masses @ reference / trajectory.masses.sum()
        return cls("cartesian", trajectory.numbers.copy(), trajectory.masses.copy(), reference)

    @property
    def num_dof(self) -> int:
        return 3 * len(self.numbers) if self.modes is None else self.modes.shape[1]

    def check_atoms(self, numbers: np.ndarray, where: str) -> None:
        if len(numbers) != len(self.numbers) or not np.array_equal(numbers, self.numbers):
            raise MLPotError(f"{where}: the atoms ({Atoms(numbers=numbers).get_chemical_formula()}) are not those the "
                             f"propagator was fitted on ({Atoms(numbers=self.numbers).get_chemical_formula()}, in that order)")

    def to_states(self, positions: np.ndarray, momenta: np.ndarray) -> np.ndarray:
        """positions, momenta [T, N, 3] -> states [T, 2n]."""
        total = self.masses.sum()
        sqrt_m = np.sqrt(self.masses)[None, :, None]  # [1, N, 1]
        centre = np.einsum("i,tic->tc", self.masses, positions) / total  # [T, 3]
        velocity = momenta.sum(axis=1) / total  # [T, 3]
        q = (sqrt_m * (positions - centre[:, None, :] - self.reference[None])).reshape(len(positions), -1)  # [T, 3N]
        p = ((momenta - self.masses[None, :, None] * velocity[:, None, :]) / sqrt_m * units.fs).reshape(len(positions), -1)  # [T, 3N]
        if self.modes is not None:
            q, p = q @ self.modes, p @ self.modes  # [T, n]
        return np.concatenate([q, p], axis=1)

    def to_positions_momenta(self, states: np.ndarray, centre: np.ndarray, centre_velocity: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """states [T, 2n] with the centre of mass [T, 3] and its velocity [T, 3] -> positions,
        momenta [T, N, 3] (any centre-of-mass part of the states removed); rigid rotation,
        absent from normal-mode states, stays absent."""
        n = self.num_dof
        q, p = states[:, :n], states[:, n:]
        if self.modes is not None:
            q, p = q @ self.modes.T, p @ self.modes.T  # [T, 3N]
        sqrt_m = np.sqrt(self.masses)[None, :, None]
        masses = self.masses[None, :, None]  # [1, N, 1]
        count = len(states)
        # A learned Cartesian propagator may move the centre of mass; it is put where it belongs.
        displacement = q.reshape(count, -1, 3) / sqrt_m  # [T, N, 3]
        displacement -= (masses * displacement).sum(axis=1, keepdims=True) / self.masses.sum()
        internal_momenta = p.reshape(count, -1, 3) * sqrt_m / units.fs  # [T, N, 3] amu Å / t_ASE
        internal_momenta -= masses * internal_momenta.sum(axis=1, keepdims=True) / self.masses.sum()
        positions = self.reference[None] + displacement + centre[:, None, :]
        momenta = internal_momenta + masses * centre_velocity[:, None, :]
        return positions, momenta

    def to_dict(self) -> Dict:
        return {"kind": self.kind, "numbers": self.numbers.tolist(), "masses": self.masses.tolist(),
                "reference": self.reference.tolist(), "modes": None if self.modes is None else self.modes.tolist(),
                "wavenumbers": None if self.wavenumbers is None else self.wavenumbers.tolist()}

    @classmethod
    def from_dict(cls, data: Dict) -> "PhaseSpaceCoordinates":
        optional = {key: None if data[key] is None else np.asarray(data[key], dtype=np.float64) for key in ("modes", "wavenumbers")}
        return cls(data["kind"], np.asarray(data["numbers"], dtype=np.int64), np.asarray(data["masses"], dtype=np.float64),
                   np.asarray(data["reference"], dtype=np.float64), **optional)


# ---------------------------------------------------------------- a fitted propagator with its coordinates


def save_propagator(model, coordinates: PhaseSpaceCoordinates, frame_time_fs: float, path: Union[str, Path], **details) -> None:
    """:func:`mlpot.dynamics.training.save`'s file (class, init_args, state_dict; its ``load``
    reads it) plus the coordinates, the time unit (fs) and the trajectory's frame time."""
    import torch

    from mlpot.files import atomic_output

    payload = {"class": type(model).__name__, "init_args": model.init_args, "state_dict": model.state_dict(),
               "molecule": coordinates.to_dict(), "time_unit": "fs", "frame_time_fs": float(frame_time_fs), **details}
    with atomic_output(path, "wb") as stream:
        torch.save(payload, stream)


def load_propagator(path: Union[str, Path]):
    """(model, coordinates, details) of a file written by :func:`save_propagator`; one line for
    any other file."""
    import torch

    from mlpot.dynamics.training import load

    model = load(path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if "molecule" not in checkpoint:
        raise MLPotError(f"{path}: a propagator without a molecule's coordinates (not written by mlpot dynamics fit)")
    details = {key: value for key, value in checkpoint.items() if key not in ("class", "init_args", "state_dict", "molecule")}
    return model, PhaseSpaceCoordinates.from_dict(checkpoint["molecule"]), details
