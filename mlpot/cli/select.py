"""Choose the frames of a pool where a committee disagrees most, for labelling.

  mlpot select --model COMMITTEE [MORE ...] --pool FILE -n N -o OUT.xyz [--diverse] [--scores S.csv]

Writes the chosen frames (with everything the pool file held) to OUT.xyz and a CSV of every
pool frame's scores and whether and why it was chosen (default OUT_scores.csv beside OUT).
"""

import argparse
import csv
from pathlib import Path

from mlpot.errors import MLPotError
from mlpot.files import atomic_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, nargs="+", help="a committee model file, or several model files")
    parser.add_argument("--pool", required=True, help="candidate frames (any ASE-readable file)")
    parser.add_argument("-n", type=int, required=True, help="how many frames to choose")
    parser.add_argument("-o", "--output", required=True, help="extxyz file for the chosen frames")
    parser.add_argument("--diverse", action="store_true", help="farthest-point sampling in the model's features among the top 4N")
    parser.add_argument("--scores", help="CSV of every frame's scores (default: OUT_scores.csv)")
    parser.add_argument("--batch-size", type=int, default=10)


def run(args: argparse.Namespace) -> int:
    from ase.io import read

    from mlpot.active.select import choose, describe, score_frames, selection_table
    from mlpot.data.extxyz import as_frame, write_extxyz
    from mlpot.models.io import load_model

    output = Path(args.output)
    if output.suffix not in (".xyz", ".extxyz"):
        raise MLPotError(f"-o {output} must end in .xyz or .extxyz")
    if args.n < 1:
        raise MLPotError(f"-n must be at least 1, got {args.n}")
    if not Path(args.pool).is_file():
        raise MLPotError(f"pool file {args.pool} does not exist")
    try:
        frames = read(args.pool, ":")
    except Exception as error:  # ASE raises many types for malformed files
        raise MLPotError(f"{args.pool}: cannot read frames ({str(error).splitlines()[0]})") from None
    if not frames:
        raise MLPotError(f"{args.pool} holds no frames")
    committee = load_model(args.model)
    scores = score_frames(committee, frames, args.batch_size)
    chosen = choose(scores, args.n, args.diverse)
    write_extxyz(output, [as_frame(frames[i]) for i in chosen])
    scores_path = Path(args.scores) if args.scores else output.with_name(output.stem + "_scores.csv")
    rows = selection_table(scores, chosen, args.diverse)
    with atomic_output(scores_path, "w") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(describe(scores, chosen, args.diverse))
    print(f"wrote {output} and {scores_path}")
    return 0

