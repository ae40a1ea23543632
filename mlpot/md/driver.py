"""The MD driver behind ``mlpot md``: ASE dynamics with an mlpot potential.

Ensembles: nve (velocity Verlet), nvt (Langevin), npt (Berendsen barostat and thermostat,
periodic cells only). The trajectory (extxyz with energies and forces) and a CSV log are
written as the run goes and flushed at every write, so a run stopped by Ctrl-C or SIGTERM
leaves files that hold exactly the steps done so far. Every value and output path is checked
before the first force call, and the files are opened only after it, so a run refused at the
start leaves no file; a step that fails (the calculator refuses overlapping atoms or a
non-finite result) ends the run with an :class:`MLPotError` naming the step, and the files
end at the last frame written, never at a bad one.

With a committee calculator the log and trajectory carry the largest per-atom force spread
(``max_force_std``, eV/Å; the trajectory also each atom's ``forces_std``). Every step is
checked against ``uncertainty_stop`` (the run ends there, naming the step and the atoms above
it) and ``dump_threshold`` (the frame is appended to ``uncertainty_dump`` for labelling).
"""

import csv
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from ase import Atoms, units
from ase.md import velocitydistribution
from ase.md.langevin import Langevin
from ase.md.nptberendsen import NPTBerendsen
from ase.md.velocitydistribution import Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet
from tqdm import tqdm

from mlpot.data.extxyz import format_frame
from mlpot.errors import MLPotError
from mlpot.files import check_output_file
from mlpot.md.settings import MDSettings

# ASE 3.29 renamed MaxwellBoltzmannDistribution to thermalize_momenta (same arguments); ase >= 3.23 is allowed.
thermalize_momenta = getattr(velocitydistribution, "thermalize_momenta", None) or velocitydistribution.MaxwellBoltzmannDistribution


@dataclass
class MDSummary:
    steps_done: int
    wall_seconds: float
    ns_per_day: float
    drift_mev_per_atom_per_ps: Optional[float]
    fluctuation_mev_per_atom: Optional[float]
    interrupted: Optional[str]
    uncertain: Optional[str] = None  # why --uncertainty-stop ended the run
    dumped_frames: int = 0


def force_spread(atoms: Atoms) -> Optional[np.ndarray]:
    """Per-atom committee force spread [N] of the last calculation, or None without a committee."""
    results = getattr(atoms.calc, "results", {}) or {}
    return results.get("forces_std")


class _StopRequested(Exception):
    """Raised from a signal handler to end the run between steps."""


class _TooUncertain(Exception):
    """Raised when the committee's force spread passes --uncertainty-stop."""


def make_dynamics(atoms: Atoms, settings: MDSettings):
    timestep = settings.timestep * units.fs
    if settings.ensemble == "nve":
        return VelocityVerlet(atoms, timestep)
    rng = np.random.default_rng(settings.seed)
    if settings.ensemble == "nvt":
        return Langevin(atoms, timestep, temperature_K=settings.temperature, friction=settings.friction / units.fs, fixcm=False, rng=rng)
    return NPTBerendsen(
        atoms,
        timestep,
        temperature_K=settings.temperature,
        taut=settings.taut * units.fs,
        pressure_au=settings.pressure * units.bar,
        taup=settings.taup * units.fs,
        compressibility_au=settings.compressibility / units.bar,
    )


def initial_velocities(atoms: Atoms, settings: MDSettings) -> None:
    """Maxwell-Boltzmann at the temperature unless the structure has momenta; no drift or spin."""
    momenta = atoms.get_momenta()
    if not np.isfinite(momenta).all():
        raise MLPotError(f"structure: atom {int(np.argwhere(~np.isfinite(momenta))[0, 0])} has a non-finite velocity")
    if momenta.any():
        return
    thermalize_momenta(atoms, temperature_K=settings.temperature, rng=np.random.default_rng(settings.seed))
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)


def run_md(
    atoms: Atoms,
    settings: MDSettings,
    trajectory: Optional[Path] = None,
    log: Optional[Path] = None,
    progress: bool = True,
    uncertainty_dump: Optional[Path] = None,
) -> MDSummary:
    """Run MD on ``atoms`` (which carries the calculator) and write what was asked for."""
    settings.validate()
    settings.check_structure(atoms)
    check_outputs({"--output": trajectory, "--log": log, "--uncertainty-dump": uncertainty_dump})
    if settings.dump_threshold is not None and uncertainty_dump is None:
        raise MLPotError("--dump-threshold needs --uncertainty-dump (the file the frames above it go to)")
    atoms.get_forces()
    committee = force_spread(atoms) is not None
    watching = settings.uncertainty_stop is not None or uncertainty_dump is not None
    if watching and not committee:
        raise MLPotError("--uncertainty-stop and --uncertainty-dump need a committee (several --model files or a committee model)")
    if uncertainty_dump is not None and settings.dump_threshold is None:
        raise MLPotError("--uncertainty-dump needs --dump-threshold (eV/Å)")
    initial_velocities(atoms, settings)
    dynamics = make_dynamics(atoms, settings)
    periodic = bool(atoms.pbc.all())
    times, energies = [], []
    recorded: List[int] = []  # steps written to the trajectory and log
    streams: List[IO] = []
    trajectory_stream = _open(trajectory, streams)
    log_writer = None
    log_stream = _open(log, streams)
    if log_stream is not None:
        log_writer = csv.writer(log_stream)
        header = ["step", "time_ps", "epot_eV", "ekin_eV", "etot_eV", "temperature_K"]
        header += (["pressure_bar", "volume_A3"] if periodic else []) + (["max_force_std_eV_per_A"] if committee else [])
        log_writer.writerow(header)

    def record(step: int) -> None:
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        time_ps = step * settings.timestep / 1000.0
        times.append(time_ps)
        energies.append(epot + ekin)
        recorded.append(step)
        if log_writer is not None:
            row = [step, f"{time_ps:.6f}", repr(float(epot)), repr(float(ekin)), repr(float(epot + ekin))]
            row.append(f"{atoms.get_temperature():.4f}")
            if periodic:
                pressure = -np.trace(atoms.get_stress(voigt=False)) / 3.0 / units.bar
                row += [f"{pressure:.4f}", f"{atoms.get_volume():.6f}"]
            if committee:
                row.append(repr(float(force_spread(atoms).max())))
            log_writer.writerow(row)
            log_stream.flush()
        if trajectory_stream is not None:
            trajectory_stream.write(format_frame(*_frame(atoms, step, time_ps, epot, committee)))
            trajectory_stream.flush()

    dump_stream = _open(uncertainty_dump, streams)
    dumped = [0]

    def check_spread() -> None:
        """Every step: dump the frame above the lower threshold, stop above the upper one."""
        spread = force_spread(atoms)
        step = dynamics.nsteps
        if dump_stream is not None and spread.max() > settings.dump_threshold:
            epot = atoms.get_potential_energy()
            dump_stream.write(format_frame(*_frame(atoms, step, step * settings.timestep / 1000.0, epot, True)))
            dump_stream.flush()
            dumped[0] += 1
        if settings.uncertainty_stop is not None and spread.max() > settings.uncertainty_stop:
            above = np.flatnonzero(spread > settings.uncertainty_stop)
            listed = ", ".join(f"{i} ({atoms.get_chemical_symbols()[i]}, {spread[i]:.3f})" for i in above[:10])
            more = f" and {len(above) - 10} more" if len(above) > 10 else ""
            raise _TooUncertain(
                f"step {step}: committee force spread {spread.max():.3f} eV/Å passed --uncertainty-stop "
                f"{settings.uncertainty_stop:g} eV/Å on atom(s) {listed}{more}"
            )

    # A signal only sets a flag; the run stops at the next step boundary, where the state is
    # consistent, and that step is written before the files are closed.
    requested: List[str] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: requested.append(signal.Signals(signum).name))

    def check_stop() -> None:
        if requested:
            raise _StopRequested(requested[0])

    dynamics.attach(check_stop, interval=1)
    if watching:
        dynamics.attach(check_spread, interval=1)
    interrupted = None
    uncertain = None
    started = time.perf_counter()
    bar = tqdm(total=settings.steps, disable=None if progress else True, unit="step")
    try:
        record(0)
        while dynamics.nsteps < settings.steps:
            chunk = min(settings.interval, settings.steps - dynamics.nsteps)
            dynamics.run(chunk)
            record(dynamics.nsteps)
            bar.update(chunk)
            rate = _ns_per_day(dynamics.nsteps, settings.timestep, time.perf_counter() - started)
            bar.set_postfix(ns_per_day=f"{rate:.3g}")
    except _StopRequested as reason:
        interrupted = str(reason)
        record(dynamics.nsteps)
    except _TooUncertain as reason:
        uncertain = str(reason)
        record(dynamics.nsteps)
    except MLPotError as error:
        files = [str(path) for path in (trajectory, log) if path is not None]
        ending = f"; {' and '.join(files)} end at step {recorded[-1]}" if files and recorded else ""
        raise MLPotError(f"step {dynamics.nsteps + 1}: {error}{ending}") from None
    finally:
        bar.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for stream in streams:
            stream.close()
    steps_done = dynamics.nsteps
    wall = time.perf_counter() - started
    drift, fluctuation = (None, None)
    if settings.ensemble == "nve" and len(times) >= 3:
        drift, fluctuation = energy_drift(np.array(times), np.array(energies), len(atoms))
    return MDSummary(
        steps_done, wall, _ns_per_day(steps_done, settings.timestep, wall), drift, fluctuation, interrupted, uncertain, dumped[0]
    )


def _frame(atoms: Atoms, step: int, time_ps: float, epot: float, committee: bool):
    """(atoms, info, arrays) of one trajectory frame."""
    info = {"step": step, "time_ps": time_ps, "energy": epot}
    arrays = {"forces": atoms.get_forces(), "velocities": atoms.get_velocities()}
    if committee:
        spread = force_spread(atoms)
        info["max_force_std"] = float(spread.max())
        arrays["forces_std"] = spread
    return atoms, info, arrays


def energy_drift(times_ps: np.ndarray, total_energies: np.ndarray, num_atoms: int):
    """(slope of a linear fit in meV/atom/ps, RMS deviation from it in meV/atom)."""
    slope, intercept = np.polyfit(times_ps, total_energies, 1)
    residual = total_energies - (slope * times_ps + intercept)
    return 1000.0 * slope / num_atoms, 1000.0 * float(np.sqrt(np.mean(residual**2))) / num_atoms


def _ns_per_day(steps: int, timestep_fs: float, seconds: float) -> float:
    return steps * timestep_fs * 1e-6 / max(seconds, 1e-12) * 86400.0


def check_outputs(outputs: Dict[str, Optional[Union[str, Path]]], inputs: Sequence[Tuple[str, Union[str, Path]]] = ()) -> None:
    """Each output given (option -> path) can be written, and none is named twice or is one of
    ``inputs`` ((option, path) pairs; an output there would overwrite what the run reads)."""
    seen = {Path(path).resolve(): option for option, path in inputs}
    for option, path in outputs.items():
        if path is None:
            continue
        check_output_file(path, option)
        resolved = Path(path).resolve()
        if resolved in seen:
            raise MLPotError(f"{seen[resolved]} and {option} both name {path}; give {option} another file")
        seen[resolved] = option


def _open(path: Optional[Path], streams: List[IO]) -> Optional[IO]:
    if path is None:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = open(path, "w", newline="")
    streams.append(stream)
    return stream


def describe(summary: MDSummary, settings: MDSettings) -> str:
    lines = [
        f"{summary.steps_done} steps of {settings.timestep:g} fs in {summary.wall_seconds:.1f} s "
        f"({summary.steps_done / max(summary.wall_seconds, 1e-12):.1f} steps/s, {summary.ns_per_day:.3g} ns/day)"
    ]
    if summary.drift_mev_per_atom_per_ps is not None and math.isfinite(summary.drift_mev_per_atom_per_ps):
        lines.append(
            f"NVE energy drift {summary.drift_mev_per_atom_per_ps:+.4f} meV/atom/ps, "
            f"fluctuation {summary.fluctuation_mev_per_atom:.4f} meV/atom (RMS about the fit)"
        )
    if summary.interrupted:
        lines.append(f"stopped by {summary.interrupted} after step {summary.steps_done}; the trajectory and log end there")
    if summary.uncertain:
        lines.append(f"stopped at {summary.uncertain}; the trajectory and log end there")
    if summary.dumped_frames:
        lines.append(f"{summary.dumped_frames} frames above --dump-threshold {settings.dump_threshold:g} eV/Å written for labelling")
    return "\n".join(lines)
