"""Restore all-atom structures from coarse-grained frames with a backmapping model.

  mlpot backmap --model M --cg FILE --samples K -o OUT.(xyz|extxyz|pdb) [--seed S]

FILE holds CG frames of the model's N beads (any ASE-readable format); all-atom frames of the
model's molecule are accepted too and are mapped to beads first. OUT receives K structures per
frame, drawn from the prior p(z | CG), frame by frame; extxyz frames carry ``cg_frame`` and
``sample``, PDB frames use the atom names the model was trained with.
"""

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from mlpot.errors import MLPotError

if TYPE_CHECKING:
    import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="backmapping model file")
    parser.add_argument("--cg", required=True, help="file with coarse-grained (or all-atom) frames")
    parser.add_argument("--samples", type=int, default=1, help="structures per CG frame (default 1)")
    parser.add_argument("-o", "--output", required=True, help="file to write: .xyz, .extxyz or .pdb")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the latent samples")
    parser.add_argument("--batch-size", type=int, default=64, help="CG frames decoded together")
    parser.add_argument("--device", default="cpu")


def read_cg_frames(path: str, model) -> "np.ndarray":
    """[F, N, 3] bead positions: frames of N beads as they are, frames of the molecule mapped."""
    import numpy as np

    from mlpot.data.dataset import read_frames

    frames = []
    for frame, atoms in read_frames(path):
        if len(atoms) == 0:
            continue
        if len(atoms) == model.num_beads:
            frames.append(np.asarray(atoms.positions, dtype=np.float64))
        elif len(atoms) == model.num_atoms and list(atoms.numbers) == model.config.atomic_numbers:
            frames.append(model.map_to_beads(np.asarray(atoms.positions, dtype=np.float64)[None])[0])
        else:
            raise MLPotError(
                f"{path}, frame {frame}: {len(atoms)} particles; the model needs {model.num_beads} beads "
                f"(or the {model.num_atoms} atoms of its molecule)"
            )
    if not frames:
        raise MLPotError(f"{path}: every frame is empty (no particles)")
    cg = np.stack(frames)
    if not np.isfinite(cg).all():
        raise MLPotError(f"{path}: non-finite coordinates")
    return cg


def run(args: argparse.Namespace) -> int:
    import torch

    from mlpot.cg.evaluation import sample
    from mlpot.cg.output import write_structures
    from mlpot.devices import check_device
    from mlpot.files import check_input_file, check_output_file
    from mlpot.models.io import load_model

    if args.samples < 1:
        raise MLPotError(f"--samples must be at least 1, got {args.samples}")
    if not str(args.output).endswith((".xyz", ".extxyz", ".pdb")):
        raise MLPotError(f"-o {args.output} must end in .xyz, .extxyz or .pdb")
    if args.batch_size < 1:
        raise MLPotError(f"--batch-size must be at least 1, got {args.batch_size}")
    check_output_file(args.output, "-o")
    check_input_file(args.cg, "--cg")
    if Path(args.output).resolve() == Path(args.cg).resolve():
        raise MLPotError(f"-o {args.output} is the --cg file; the structures would replace it")
    check_device(args.device, "--device")
    model = load_model(args.model, device=args.device)
    if model.config_dict().get("task") != "backmapping":
        raise MLPotError(f"{args.model} is not a backmapping model (task {model.config_dict().get('task', 'potential')!r})")
    cg = read_cg_frames(args.cg, model)
    torch.manual_seed(args.seed)
    structures = sample(model, cg, args.samples, args.batch_size)  # [F, K, n, 3]
    info = [{"cg_frame": f, "sample": k} for f in range(len(cg)) for k in range(args.samples)]
    write_structures(args.output, model.config.molecule(), structures.reshape(-1, model.num_atoms, 3), info)
    print(f"wrote {len(info)} structures ({len(cg)} CG frames x {args.samples} samples) to {args.output}")
    return 0
