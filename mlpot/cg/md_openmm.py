"""All-atom MD trajectories with OpenMM for backmapping data (``mlpot data md-openmm``).

amber14 with OBC2 implicit solvent, Langevin dynamics at constant temperature, hydrogen bonds
constrained and hydrogen masses repartitioned so that a 4 fs step is stable. The trajectory is
cut into three contiguous time blocks (train, valid, test; 70/10/20 by default) so that test
frames are not the neighbours in time of training frames. Each block is a multi-model PDB
file that keeps atom and residue names.

The default starting structure is capped alanine (ACE-ALA-NME, 22 atoms), taken at run time
from the first frame of the Amber test system that the MDAnalysisTests package ships.
"""

import time
import warnings
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from mlpot.errors import MLPotError
from mlpot.files import atomic_output

SPLIT_NAMES = ("train", "valid", "test")


def _require_openmm():
    try:
        import openmm
        from openmm import app, unit
    except ImportError:
        raise MLPotError('OpenMM is not installed; install it with: pip install "mlpot[cg]"') from None
    return openmm, app, unit


def capped_alanine():
    """(OpenMM Topology, positions [22, 3] Å) of ACE-ALA-NME from MDAnalysisTests' Amber data."""
    _, app, _ = _require_openmm()
    try:
        import MDAnalysis
        from MDAnalysisTests.datafiles import PRMpbc, TRJpbc_bz2
    except ImportError:
        raise MLPotError('the default structure needs MDAnalysis and MDAnalysisTests: pip install "mlpot[cg]"') from None
    with warnings.catch_warnings():  # the Amber file has no elements; OpenMM's topology does
        warnings.simplefilter("ignore", UserWarning)
        universe = MDAnalysis.Universe(PRMpbc, TRJpbc_bz2)
    solute = universe.select_atoms("resname ACE ALA NME")
    modeller = app.Modeller(app.AmberPrmtopFile(PRMpbc).topology, [(0.0, 0.0, 0.0)] * len(universe.atoms))
    modeller.delete([residue for residue in modeller.topology.residues() if residue.name not in ("ACE", "ALA", "NME")])
    modeller.topology.setPeriodicBoxVectors(None)
    return modeller.topology, np.asarray(solute.positions, dtype=np.float64)


def read_structure_pdb(path: str):
    """(OpenMM Topology, positions [n, 3] Å) of a PDB file the amber14 force field can type."""
    _, app, unit = _require_openmm()
    if not Path(path).is_file():
        raise MLPotError(f"structure file {path} does not exist")
    try:
        pdb = app.PDBFile(str(path))
    except Exception as error:  # OpenMM's reader raises IndexError, ValueError, ... on what is not a PDB
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise MLPotError(f"{path}: not a PDB file OpenMM can read ({reason})") from None
    if pdb.topology.getNumAtoms() == 0:
        raise MLPotError(f"{path}: no ATOM or HETATM records")
    positions = np.array(pdb.getPositions(asNumpy=True).value_in_unit(unit.angstrom))
    pdb.topology.setPeriodicBoxVectors(None)
    return pdb.topology, positions


def split_counts(frames: int, fractions: Sequence[float]) -> List[int]:
    """Frames in each contiguous block; the last block takes the rounding remainder."""
    counts = [int(round(frames * f)) for f in fractions[:-1]]
    counts.append(frames - sum(counts))
    if min(counts) < 1:
        raise MLPotError(f"{frames} frames are too few to split {list(fractions)}")
    return counts


def run_md(
    topology,
    positions: np.ndarray,
    frames: int,
    steps_per_frame: int,
    equilibration_steps: int,
    temperature: float = 300.0,
    timestep_fs: float = 4.0,
    seed: int = 1,
    threads: int = 1,
    progress: Optional[Callable[[int, float], None]] = None,
) -> np.ndarray:
    """Minimise, equilibrate, then record ``frames`` frames; returns [frames, n, 3] in Å."""
    openmm, app, unit = _require_openmm()
    forcefield = app.ForceField("amber14-all.xml", "implicit/obc2.xml")
    try:
        system = forcefield.createSystem(
            topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds, hydrogenMass=4.0 * unit.amu
        )
    except ValueError as error:
        raise MLPotError(f"amber14 cannot type the structure ({str(error).splitlines()[0]})") from None
    integrator = openmm.LangevinMiddleIntegrator(
        temperature * unit.kelvin, 1.0 / unit.picosecond, timestep_fs * unit.femtoseconds
    )
    integrator.setRandomNumberSeed(seed)
    platform = openmm.Platform.getPlatformByName("CPU")
    simulation = app.Simulation(topology, system, integrator, platform, {"Threads": str(threads)})
    simulation.context.setPositions(positions * unit.angstrom)
    simulation.minimizeEnergy()
    simulation.context.setVelocitiesToTemperature(temperature * unit.kelvin, seed)
    simulation.step(equilibration_steps)
    trajectory = np.empty((frames, len(positions), 3))
    started = time.perf_counter()
    for frame in range(frames):
        simulation.step(steps_per_frame)
        state = simulation.context.getState(getPositions=True)
        trajectory[frame] = state.getPositions(asNumpy=True).value_in_unit(unit.angstrom)
        if progress is not None:
            progress(frame + 1, time.perf_counter() - started)
    return trajectory


def write_pdb_frames(path: Path, topology, trajectory: np.ndarray) -> None:
    """A multi-model PDB of ``trajectory`` [F, n, 3] (Å), written atomically."""
    _, app, unit = _require_openmm()
    with atomic_output(path, "w") as stream:
        app.PDBFile.writeHeader(topology, stream)
        for model, positions in enumerate(trajectory):
            app.PDBFile.writeModel(topology, positions * unit.angstrom, stream, modelIndex=model + 1)
        app.PDBFile.writeFooter(topology, stream)


def write_splits(
    directory: Path, topology, trajectory: np.ndarray, fractions: Sequence[float] = (0.7, 0.1, 0.2)
) -> List[Tuple[Path, int]]:
    """train.pdb, valid.pdb, test.pdb as contiguous time blocks; returns (path, frames) each."""
    written = []
    start = 0
    for name, count in zip(SPLIT_NAMES, split_counts(len(trajectory), fractions)):
        path = Path(directory) / f"{name}.pdb"
        write_pdb_frames(path, topology, trajectory[start : start + count])
        written.append((path, count))
        start += count
    return written
