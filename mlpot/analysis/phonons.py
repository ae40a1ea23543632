"""Harmonic phonons of a crystal with phonopy and any ASE calculator.

Steps: optional relaxation of positions and cell (ASE's BFGS on a FrechetCellFilter), phonopy's
symmetry-reduced finite displacements in a supercell, forces from the calculator, force
constants, then band structure along seekpath's standard path (phonopy's
``auto_band_structure``), total and element-projected DOS on a mesh, the neutron-weighted DOS
sum_a (sigma_a / M_a) g_a(f) (normalised to 3 modes per atom, like the total), and thermal
properties (Helmholtz free energy, entropy, heat capacity). phonopy's own files are written
too, so phonopy's tools read them: ``phonopy_params.yaml`` (structure, displacements, forces,
force constants; ``phonopy.load`` opens it), ``band.yaml``, ``total_dos.dat``,
``projected_dos.dat`` and ``thermal_properties.yaml``.
"""

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.data import atomic_masses, atomic_numbers

from mlpot.analysis import output
from mlpot.analysis.dynamics import MEV_PER_THZ
from mlpot.analysis.settings import PhononSettings
from mlpot.analysis.structure import perpendicular_widths
from mlpot.analysis.weights import neutron_weights
from mlpot.data.geometry import check_geometry
from mlpot.errors import MLPotError
from mlpot.optional import require_extra

PURPOSE = "mlpot phonons"


def require_libraries() -> None:
    """phonopy, seekpath (phonopy's band path) and periodictable (neutron weights), or one line
    naming the extra: checked before any work, as seekpath is only imported deep inside phonopy."""
    for module in ("phonopy", "seekpath", "periodictable"):
        require_extra(module, "analysis", PURPOSE)


def check_crystal(atoms: Atoms, where: str) -> None:
    """Refuse what phonopy cannot take: a structure not periodic in 3D, and (check_geometry) a cell
    without volume, non-finite coordinates (spglib crashes the process on NaN), overlapping atoms."""
    if not atoms.pbc.all():
        raise MLPotError(f"{where}: not periodic in all three directions; phonons need a crystal")
    check_geometry(atoms, where)


def default_supercell(atoms: Atoms, min_length: float) -> Tuple[int, int, int]:
    widths = perpendicular_widths(atoms.cell.array)
    return tuple(int(max(1, np.ceil(min_length / w - 1e-9))) for w in widths)


def relax(atoms: Atoms, calculator: Calculator, fmax: float, steps: int) -> Tuple[Atoms, int]:
    """Positions and cell relaxed (BFGS on ASE's FrechetCellFilter); returns (atoms, steps)."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    relaxed = atoms.copy()
    relaxed.calc = calculator
    optimizer = BFGS(FrechetCellFilter(relaxed), logfile=None)
    if not optimizer.run(fmax=fmax, steps=steps):
        raise MLPotError(f"--relax: forces still above {fmax:g} eV/Å after {steps} BFGS steps")
    relaxed.calc = None
    return relaxed, optimizer.nsteps


def _to_phonopy(atoms: Atoms):
    PhonopyAtoms = require_extra("phonopy.structure.atoms", "analysis", PURPOSE).PhonopyAtoms

    return PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=atoms.cell.array, scaled_positions=atoms.get_scaled_positions(),
                        masses=atoms.get_masses())


def force_constants(atoms: Atoms, calculator: Calculator, settings: PhononSettings):
    """A Phonopy object with forces and force constants from ``calculator`` (any ASE calculator)."""
    Phonopy = require_extra("phonopy", "analysis", PURPOSE).Phonopy

    settings.validate()
    check_crystal(atoms, "structure")
    supercell = settings.supercell or default_supercell(atoms, settings.min_length)
    phonon = Phonopy(_to_phonopy(atoms), supercell_matrix=np.diag(supercell), primitive_matrix="auto")
    phonon.generate_displacements(distance=settings.displacement)
    forces = []
    displaced_cells = phonon.supercells_with_displacements
    for k, displaced in enumerate(displaced_cells):
        cell = Atoms(displaced.symbols, cell=displaced.cell, scaled_positions=displaced.scaled_positions, pbc=True)
        cell.calc = calculator
        try:
            forces.append(cell.get_forces())  # [n_supercell, 3] eV/Å
        except MLPotError as error:
            raise MLPotError(f"displaced supercell {k + 1} of {len(displaced_cells)} (--displacement {settings.displacement:g} Å): {error}") from None
    forces = np.array(forces)
    forces -= forces.mean(axis=1, keepdims=True)  # remove the drift, as phonopy's own scripts do
    phonon.forces = forces
    phonon.produce_force_constants()
    return phonon


@dataclass
class PhononResults:
    phonon: object  # phonopy.Phonopy
    supercell: Tuple[int, int, int]
    frequencies_thz: np.ndarray  # [n_f] DOS grid
    total_dos: np.ndarray  # [n_f] 1/THz per primitive cell
    element_dos: Dict[str, np.ndarray]  # [n_f] 1/THz per primitive cell, summed over the element's atoms
    neutron_dos: np.ndarray  # [n_f] 1/THz, normalised to 3 per atom
    thermal: Dict[str, np.ndarray]


def phonon_properties(phonon, settings: PhononSettings, supercell: Tuple[int, int, int]) -> PhononResults:
    phonon.auto_band_structure(npoints=51)
    phonon.run_mesh(settings.mesh, with_eigenvectors=True, is_mesh_symmetry=False)
    phonon.run_total_dos()
    phonon.run_projected_dos()
    phonon.run_thermal_properties(t_min=0.0, t_max=settings.t_max, t_step=settings.t_step, exclude_gamma_acoustic=True)
    symbols = list(phonon.primitive.symbols)
    elements = sorted(set(symbols), key=lambda s: atomic_numbers[s])
    element_dos = {s: sum(phonon.projected_dos.projected_dos[i] for i, t in enumerate(symbols) if t == s) for s in elements}
    neutron = neutron_weights(elements)
    weighted = sum(neutron.cross_section[s] / atomic_masses[atomic_numbers[s]] * element_dos[s] for s in elements)
    frequency = np.asarray(phonon.total_dos.frequency_points)
    norm = np.trapezoid(weighted, frequency)
    neutron_dos = weighted * 3.0 / norm if norm > 0 else weighted
    thermal = phonon.thermal_properties
    return PhononResults(phonon, supercell, frequency, np.asarray(phonon.total_dos.dos), element_dos, neutron_dos,
                         {"temperatures": thermal.temperatures, "free_energy": thermal.free_energy, "entropy": thermal.entropy,
                          "heat_capacity": thermal.heat_capacity})


def frequencies_at(phonon, q_points: np.ndarray) -> np.ndarray:
    """[n_q, 3 n_primitive] frequencies (THz) at q in reduced coordinates of the primitive cell."""
    phonon.run_qpoints(q_points)
    return np.asarray(phonon.qpoints.frequencies)


def write_phonon_files(results: PhononResults, directory: Path, summary: Dict) -> List[Path]:
    """phonopy's files (written by phonopy into a temporary directory, then moved) and mlpot's
    CSV, PNG and summary.json, all after everything, plots included, was computed."""
    phonon = results.phonon
    f = results.frequencies_thz
    dos_columns = {"frequency_THz": f, "energy_meV": f * MEV_PER_THZ, "dos_total_1/THz": results.total_dos}
    dos_columns.update({f"dos_{s}_1/THz": d for s, d in results.element_dos.items()})
    dos_columns["dos_neutron_1/THz"] = results.neutron_dos
    thermal = results.thermal
    thermal_columns = {"temperature_K": thermal["temperatures"], "free_energy_kJ/mol": thermal["free_energy"],
                       "entropy_J/K/mol": thermal["entropy"], "heat_capacity_J/K/mol": thermal["heat_capacity"]}
    files = {
        "phonon_dos.csv": output.csv_text(dos_columns),
        "thermal.csv": output.csv_text(thermal_columns),
        "band_structure.png": _band_plot(phonon),
        "phonon_dos.png": output.line_plot([(f, results.total_dos, "total")] + [(f, d, s) for s, d in results.element_dos.items()]
                                           + [(f, results.neutron_dos * len(phonon.primitive) / 3.0, "neutron-weighted")],
                                           "frequency (THz)", "DOS (1/THz per primitive cell)", "phonon DOS (phonopy)"),
        "thermal.png": output.line_plot([(thermal["temperatures"], thermal["free_energy"], "free energy (kJ/mol)"),
                                         (thermal["temperatures"], thermal["heat_capacity"], "C_v (J/K/mol)"),
                                         (thermal["temperatures"], thermal["entropy"], "S (J/K/mol)")],
                                        "temperature (K)", "per mole of primitive cells", "thermal properties (harmonic)"),
        "summary.json": summary,
    }
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix=".phonopy-", dir=directory) as scratch:
        scratch = Path(scratch)
        phonon.save(scratch / "phonopy_params.yaml", settings={"force_constants": True})
        phonon.write_yaml_band_structure(filename=scratch / "band.yaml")
        phonon.write_total_dos(scratch / "total_dos.dat")
        phonon.write_projected_dos(scratch / "projected_dos.dat")
        phonon.write_yaml_thermal_properties(scratch / "thermal_properties.yaml")
        for name in ("phonopy_params.yaml", "band.yaml", "total_dos.dat", "projected_dos.dat", "thermal_properties.yaml"):
            os.replace(scratch / name, directory / name)
            written.append(directory / name)
    return written + output.write_all(directory, files)


def plain_labels(phonon) -> List[str]:
    """phonopy's LaTeX path labels as plain text (Γ, X, ...)."""
    return [label.replace("$\\Gamma$", "Γ").replace("$\\mathrm{", "").replace("}$", "") for label in phonon.band_structure.labels]


def _band_plot(phonon) -> bytes:
    """Bands with phonopy's labels: a path break (``path_connections`` False) starts the next
    segment at a new label, drawn as "U|K" where two labels share a tick."""
    import matplotlib.pyplot as plt

    bands = phonon.band_structure
    labels = plain_labels(phonon)
    figure, axis = plt.subplots(figsize=(7, 4))
    ticks: Dict[float, str] = {}
    next_label = iter(labels)
    for k, (distance, frequency) in enumerate(zip(bands.distances, bands.frequencies)):
        axis.plot(distance, frequency, "C0", linewidth=1)
        if k == 0 or not bands.path_connections[k - 1]:
            start = round(float(distance[0]), 8)
            ticks[start] = f"{ticks[start]}|{next(next_label)}" if start in ticks else next(next_label)
        ticks[round(float(distance[-1]), 8)] = next(next_label)
    axis.set_xticks(list(ticks), list(ticks.values()))
    for tick in ticks:
        axis.axvline(tick, color="0.7", linewidth=0.6)
    axis.axhline(0.0, color="0.5", linewidth=0.6)
    axis.set_xlim(min(ticks), max(ticks))
    axis.set_ylabel("frequency (THz)")
    axis.set_title("phonon band structure (phonopy, seekpath path)", fontsize=10)
    return output.figure_bytes(figure)
