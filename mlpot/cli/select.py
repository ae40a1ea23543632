"""Choose the frames of a pool where a committee disagrees most, for labelling.

  mlpot select --model COMMITTEE [MORE ...] --pool FILE -n N -o OUT.xyz [--diverse] [--scores S.csv]

Writes the chosen frames (with everything the pool file held) to OUT.xyz and a CSV of every
pool frame's scores and whether and why it was chosen (default OUT_scores.csv beside OUT).
"""

import argparse
import csv
import sys
from pathlib import Path

from mlpot.errors import MLPotError
from mlpot.files import atomic_output, check_input_file, check_output_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, nargs="+", help="a committee model file, or several model files")
    parser.add_argument("--pool", required=True, help="candidate frames (any ASE-readable file)")
    parser.add_argument("-n", type=int, required=True, help="how many frames to choose")
    parser.add_argument("-o", "--output", required=True, help="extxyz file for the chosen frames")
    parser.add_argument("--diverse", action="store_true", help="farthest-point sampling in the model's features among the top 4N")
    parser.add_argument("--scores", help="CSV of every frame's scores (default: OUT_scores.csv)")
    parser.add_argument("--batch-size", type=int, default=10)


def run(args: argparse.Namespace) -> int:
    from mlpot.active.select import choose, describe, score_frames, selection_table
    from mlpot.data.dataset import read_frames
    from mlpot.data.extxyz import as_frame, write_extxyz
    from mlpot.models.io import load_model

    output = Path(args.output)
    if output.suffix not in (".xyz", ".extxyz"):
        raise MLPotError(f"-o {output} must end in .xyz or .extxyz")
    if args.n < 1:
        raise MLPotError(f"-n must be at least 1, got {args.n}")
    if args.batch_size < 1:
        raise MLPotError(f"--batch-size must be at least 1, got {args.batch_size}")
    check_output_file(output, "-o")
    scores_path = Path(args.scores) if args.scores else output.with_name(output.stem + "_scores.csv")
    check_output_file(scores_path, "--scores")
    if scores_path.resolve() == output.resolve():
        raise MLPotError(f"--scores {scores_path} is the -o file; give the scores their own file")
    check_input_file(args.pool, "pool file")
    if output.resolve() == Path(args.pool).resolve():
        raise MLPotError(f"-o {output} is the --pool file; the chosen frames would replace the pool")
    frames = [atoms for _, atoms in read_frames(args.pool)]
    if args.n > len(frames):
        print(f"mlpot: warning: -n {args.n} but {args.pool} holds {len(frames)} frames; selecting all {len(frames)}", file=sys.stderr)
    committee = load_model(args.model)
    scores = score_frames(committee, frames, args.batch_size, source=args.pool)
    chosen = choose(scores, args.n, args.diverse)
    write_extxyz(output, [as_frame(frames[i]) for i in chosen])
    rows = selection_table(scores, chosen, args.diverse)
    with atomic_output(scores_path, "w") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(describe(scores, chosen, args.diverse))
    print(f"wrote {output} and {scores_path}")
    return 0

