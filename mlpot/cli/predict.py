"""Orbital energies and HOMO-LUMO gaps of molecules from a trained Hamiltonian model.

  mlpot predict --model M --structures FILE [--overlap pyscf|model] [--lindep 0.01] [--output OUT.npz]

Solves H C = S C eps with the predicted H and either the exact overlap S from PySCF (the
default: it is cheap, and needs the ``qm`` extra) or the model's own S (a model trained with
``overlap: true``). Prints HOMO, LUMO and gap per frame in eV; --output writes, per frame k,
hamiltonian_k and orbital_energies_k (Eh), and arrays homo, lumo, gap (Eh).
"""

import argparse
from pathlib import Path

from mlpot.errors import MLPotError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a Hamiltonian model file")
    parser.add_argument("--structures", required=True, help="any ASE-readable file of molecules")
    parser.add_argument("--overlap", choices=("pyscf", "model"), default="pyscf", help="where S comes from (default pyscf)")
    parser.add_argument("--lindep", type=float, default=0.0, help="drop S eigenvalues below this (canonical orthogonalisation; default 0: none)")
    parser.add_argument("--charge", type=int, default=0, help="molecular charge (closed shells; default 0)")
    parser.add_argument("--output", help=".npz file for matrices and orbital energies")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from ase.units import Hartree

    from mlpot.data.dataset import read_frames
    from mlpot.devices import check_device
    from mlpot.files import check_input_file, check_output_file
    from mlpot.models.io import load_model
    from mlpot.qm.inference import predict_matrices
    from mlpot.qm.orbitals import check_lindep, orbitals
    from mlpot.qm.pyscf_runner import overlap_matrix

    if args.output is not None and not str(args.output).endswith(".npz"):
        raise MLPotError(f"--output {args.output} must end in .npz")
    check_lindep(args.lindep)
    if args.batch_size < 1:
        raise MLPotError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.output is not None:
        check_output_file(args.output, "--output")
    check_input_file(args.structures, "--structures")
    check_device(args.device, "--device")
    model = load_model(args.model, device=args.device)
    if model.config_dict().get("task") != "hamiltonian":
        raise MLPotError(f"{args.model} is not a Hamiltonian model; 'mlpot predict' needs one")
    if args.overlap == "model" and not model.config.overlap:
        raise MLPotError(f"{args.model} does not predict S (trained without overlap: true); use --overlap pyscf")
    if args.overlap == "pyscf" and not model.config.basis:
        raise MLPotError(f"{args.model} does not name its basis set; use --overlap model")
    structures = [atoms for _, atoms in read_frames(args.structures)]
    predictions = predict_matrices(model, structures, args.structures, args.batch_size)
    saved, homo, lumo = {}, [], []
    print(f"{'frame':>6}{'HOMO (eV)':>14}{'LUMO (eV)':>14}{'gap (eV)':>12}")
    for k, (atoms, predicted) in enumerate(zip(structures, predictions)):
        electrons = int(atoms.numbers.sum()) - args.charge
        if electrons % 2:
            raise MLPotError(f"{args.structures}, frame {k}: {electrons} electrons; only closed shells are supported")
        if args.overlap == "pyscf":
            overlap = overlap_matrix(atoms.numbers, atoms.positions, model.config.basis, args.charge)
        else:
            overlap = predicted["overlap"]
        energies, _ = orbitals(predicted["hamiltonian"], overlap, args.lindep)
        occupied = electrons // 2
        if not 0 < occupied < len(energies):
            raise MLPotError(f"{args.structures}, frame {k}: no HOMO-LUMO pair among {len(energies)} orbitals")
        homo.append(energies[occupied - 1])
        lumo.append(energies[occupied])
        saved[f"hamiltonian_{k}"] = predicted["hamiltonian"]
        saved[f"orbital_energies_{k}"] = energies
        print(f"{k:>6}{homo[-1] * Hartree:>14.4f}{lumo[-1] * Hartree:>14.4f}{(lumo[-1] - homo[-1]) * Hartree:>12.4f}")
    if args.output is not None:
        from mlpot.files import atomic_output

        homo_array, lumo_array = np.array(homo), np.array(lumo)
        with atomic_output(Path(args.output), "wb") as stream:
            np.savez(stream, homo=homo_array, lumo=lumo_array, gap=lumo_array - homo_array, **saved)
        print(f"matrices and orbital energies in {args.output}")
    return 0
