"""Join QM datasets into one training set, keeping the validation frames of the base run.

    python combine_sets.py data/water_train data/water_extra --out data/water_2450

writes ``OUT/train`` (the base set's fitted frames, then every frame of the added sets) and
``OUT/valid`` (the frames that ``valid_fraction`` and ``seed`` hold out of the base set in
``mlpot train``), so a run on more data selects its model on the same 50 geometries as the run on
the base set alone. Frames are symbolic links; only the metadata is new.
"""

import argparse
import json
import os
from pathlib import Path
from typing import Dict, List

from mlpot.data.dataset import split
from mlpot.qm.dataset import METADATA, frame_path, read_metadata

# Metadata that must agree for frames to belong in one dataset.
SAME_SOURCE = ("settings", "shells", "ao_order", "units", "density_fitting", "pyscf_version")


def write_dataset(out: Path, frames: List[Path], metadata: Dict, sources: List[str]) -> None:
    (out / "frames").mkdir(parents=True, exist_ok=True)
    for index, source in enumerate(frames):
        link = frame_path(out, index)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(source.resolve(), link.parent))
    joined = {key: value for key, value in metadata.items() if key not in ("structures", "structures_sha256")}
    joined.update(num_frames=len(frames), complete=True, structures=sources)
    (out / METADATA).write_text(json.dumps(joined, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", type=Path, help="the dataset the base run trained on (its validation frames are kept)")
    parser.add_argument("added", type=Path, nargs="+", help="datasets whose frames all join the training set")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--valid-fraction", type=float, default=0.1, help="the base run's data.valid_fraction")
    parser.add_argument("--seed", type=int, default=1, help="the base run's training.seed")
    args = parser.parse_args()

    base = read_metadata(args.base)
    base_frames = [frame_path(args.base, k) for k in range(int(base["num_frames"]))]
    fitted, held = split(base_frames, args.valid_fraction, args.seed)
    sources = [base["structures"]]
    for directory in args.added:
        metadata = read_metadata(directory)
        differing = [key for key in SAME_SOURCE if metadata.get(key) != base.get(key)]
        if differing or not metadata.get("complete"):
            raise SystemExit(f"{directory}: unfinished, or differs from {args.base} in {differing}")
        fitted += [frame_path(directory, k) for k in range(int(metadata["num_frames"]))]
        sources.append(metadata["structures"])
    missing = [str(frame) for frame in fitted + held if not frame.is_file()]
    if missing:
        raise SystemExit(f"{len(missing)} frame files are missing, the first {missing[0]}")
    write_dataset(args.out / "train", fitted, base, sources)
    write_dataset(args.out / "valid", held, base, [base["structures"]])
    print(f"{args.out}: {len(fitted)} training frames, {len(held)} validation frames")


if __name__ == "__main__":
    main()
