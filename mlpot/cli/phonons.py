"""Phonons of a crystal from a trained potential (phonopy, finite displacements).

  mlpot phonons --model M --structure FILE -o DIR [--relax] [--supercell N N N] [--mesh L]

Writes phonopy's own files (phonopy_params.yaml, band.yaml, total_dos.dat, projected_dos.dat,
thermal_properties.yaml), the DOS and thermal properties as CSV, PNG plots of bands, DOS and
thermal properties, and summary.json into DIR.
"""

import argparse
from pathlib import Path

from mlpot.analysis.settings import PhononSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = PhononSettings()
    parser.add_argument("--model", required=True, help="model file, or a directory holding one")
    parser.add_argument("--structure", required=True, help="crystal structure, periodic (any ASE format)")
    parser.add_argument("--index", type=int, default=0, help="frame of the structure file (default 0)")
    parser.add_argument("-o", "--output", required=True, help="output directory")
    parser.add_argument("--relax", action="store_true", help="relax positions and cell first (BFGS, FrechetCellFilter)")
    parser.add_argument("--fmax", type=float, default=defaults.fmax, help="relaxation force threshold, eV/Å")
    parser.add_argument("--supercell", type=int, nargs=3, metavar="N", help="repeats of the input cell (default: >= --min-length wide)")
    parser.add_argument("--min-length", type=float, default=defaults.min_length, help="smallest supercell width for the default, Å")
    parser.add_argument("--displacement", type=float, default=defaults.displacement, help="finite displacement, Å")
    parser.add_argument("--mesh", type=float, default=defaults.mesh, help="phonopy mesh length for DOS and thermal properties")
    parser.add_argument("--t-max", type=float, default=defaults.t_max, help="highest temperature of the thermal properties, K")
    parser.add_argument("--t-step", type=float, default=defaults.t_step, help="temperature step, K")
    parser.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from mlpot.analysis.phonons import (check_crystal, default_supercell, force_constants, frequencies_at, phonon_properties, plain_labels,
                                        relax, require_libraries, write_phonon_files)
    from mlpot.calculators import MLPotCalculator
    from mlpot.data.dataset import read_structure
    from mlpot.devices import check_device
    from mlpot.files import check_input_file, check_output_directory
    from mlpot.models.io import resolve_model_path

    settings = PhononSettings(supercell=tuple(args.supercell) if args.supercell else None, min_length=args.min_length,
                              displacement=args.displacement, mesh=args.mesh, t_max=args.t_max, t_step=args.t_step,
                              relax=args.relax, fmax=args.fmax)
    settings.validate()
    require_libraries()
    check_input_file(args.structure, "--structure")
    check_output_directory(args.output, "-o")
    check_device(args.device, "--device")
    atoms = read_structure(args.structure, args.index)
    check_crystal(atoms, f"{args.structure}, frame {args.index}")
    model = resolve_model_path(args.model)
    calculator = MLPotCalculator(model, device=args.device, dtype="float64")
    summary = {"model": str(model), "structure": str(args.structure), "atoms_in_cell": len(atoms)}
    if settings.relax:
        atoms, steps = relax(atoms, calculator, settings.fmax, settings.relax_steps)
        summary["relaxation"] = {"bfgs_steps": steps, "fmax_eV/A": settings.fmax, "cell_A": atoms.cell.array.tolist()}
    supercell = settings.supercell or default_supercell(atoms, settings.min_length)
    print(f"{len(atoms)} atoms, supercell {' x '.join(map(str, supercell))}, model {model}")
    phonon = force_constants(atoms, calculator, settings)
    results = phonon_properties(phonon, settings, supercell)
    gamma = frequencies_at(phonon, np.zeros((1, 3)))[0]
    lowest = float(min(np.min(f) for f in phonon.band_structure.frequencies))
    thermal = results.thermal
    at_300 = int(np.argmin(np.abs(np.asarray(thermal["temperatures"]) - 300.0)))
    summary.update({
        "supercell": list(supercell),
        "displacements": len(phonon.supercells_with_displacements),
        "displacement_A": settings.displacement,
        "primitive_atoms": len(phonon.primitive),
        "band_path": plain_labels(phonon),
        "gamma_frequencies_THz": [float(f) for f in gamma],
        "lowest_band_frequency_THz": lowest,
        "highest_band_frequency_THz": float(max(np.max(f) for f in phonon.band_structure.frequencies)),
        "thermal_at_K": float(thermal["temperatures"][at_300]),
        "free_energy_kJ/mol": float(thermal["free_energy"][at_300]),
        "heat_capacity_J/K/mol": float(thermal["heat_capacity"][at_300]),
        "units": "thermal properties per mole of primitive cells (phonopy)",
    })
    written = write_phonon_files(results, Path(args.output), summary)
    if lowest < -0.05:
        print(f"warning: imaginary modes down to {lowest:.3f} THz: the structure is not at a minimum (try --relax)")
    print(f"wrote {len(written)} files to {args.output}: {', '.join(p.name for p in written)}")
    return 0
