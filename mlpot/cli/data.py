"""Convert and inspect datasets.

  mlpot data convert IN.npz OUT.xyz      rMD17 npz (kcal/mol) -> extxyz (eV, eV/Å)
  mlpot data info FILE [--r-max R]       frames, elements, labels, neighbours, E0s
  mlpot data md-openmm OUTDIR [...]      OpenMM trajectory -> train/valid/test PDB (backmapping)
  mlpot data qm --structures FILE -o OUT PySCF H and S per frame (Hamiltonian data)
"""

import argparse
import math

from mlpot.cli import data_md_openmm, data_qm
from mlpot.errors import MLPotError
from mlpot.files import check_output_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    convert = actions.add_parser("convert", help="rMD17 .npz -> extxyz in eV")
    convert.add_argument("source", help="rMD17 .npz file")
    convert.add_argument("target", help="extxyz file to write")
    info = actions.add_parser("info", help="summarise a dataset")
    info.add_argument("file", help="any ASE-readable file (extxyz first)")
    info.add_argument("--r-max", type=float, default=5.0, help="cutoff for neighbour counts (Å, default 5)")
    info.add_argument("--energy-key", default="energy")
    info.add_argument("--forces-key", default="forces")
    info.add_argument("--stress-key", default="stress")
    data_md_openmm.add_action(actions)
    data_qm.add_action(actions)


def run(args: argparse.Namespace) -> int:
    if args.action == "md-openmm":
        return data_md_openmm.run(args)
    if args.action == "qm":
        return data_qm.run(args)
    if args.action == "convert":
        from mlpot.data.rmd17 import convert_npz

        if not str(args.target).endswith((".xyz", ".extxyz")):
            raise MLPotError(f"target {args.target} must end in .xyz or .extxyz")
        check_output_file(args.target, "target")
        count = convert_npz(args.source, args.target)
        print(f"wrote {count} frames to {args.target} (energies in eV, forces in eV/Å)")
        return 0
    return _info(args)


def _info(args: argparse.Namespace) -> int:
    from ase.data import chemical_symbols

    from mlpot.data.dataset import LabelKeys, label_counts, read_labelled
    from mlpot.data.statistics import average_num_neighbors, estimate_e0s

    if not (math.isfinite(args.r_max) and args.r_max > 0):
        raise MLPotError(f"--r-max must be a positive distance in Å, got {args.r_max:g}")
    label_keys = LabelKeys(energy=args.energy_key, forces=args.forces_key, stress=args.stress_key)
    data = read_labelled(args.file, label_keys, require_energy=False)
    elements = data.elements()
    counts = label_counts(data)
    atoms_per_frame = [len(atoms) for atoms in data.structures]
    print(f"file            {args.file}")
    print(f"frames          {len(data.structures)}")
    print(f"atoms/frame     {min(atoms_per_frame)}-{max(atoms_per_frame)} (total {sum(atoms_per_frame)})")
    print(f"elements        {' '.join(chemical_symbols[z] for z in elements)}")
    print("labels          " + ", ".join(f"{name} {count}/{len(data.structures)}" for name, count in counts.items()))
    print(f"neighbours      {average_num_neighbors(data.structures, args.r_max):.3f} mean within {args.r_max:g} Å")
    if counts["energy"]:
        e0s = estimate_e0s(data.structures, data.labels, elements)
        print("E0 (eV)         " + "  ".join(f"{symbol} {value:.6f}" for symbol, value in e0s.items()))
        energies = [label.energy for label in data.labels if label.energy is not None]
        print(f"energy (eV)     min {min(energies):.6f}  max {max(energies):.6f}")
    return 0
