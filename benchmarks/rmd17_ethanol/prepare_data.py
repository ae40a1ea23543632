"""rMD17 (ethanol by default) as extxyz in eV: 950 train / 50 valid from the train file, 1000 test frames.

    python benchmarks/rmd17_ethanol/prepare_data.py WORKDIR [--molecule aspirin] [--data ../shared/data/rmd17]
"""

import argparse
from pathlib import Path

import numpy as np

from mlpot.data.extxyz import write_extxyz
from mlpot.data.rmd17 import frames_in_ev

ROOT = Path(__file__).resolve().parents[2]


def _ref_keys(frame):
    """Labels under REF_energy / REF_forces, the keys mace-torch reads by default."""
    atoms, info, arrays = frame
    return atoms, {"REF_energy": info["energy"]}, {"REF_forces": arrays["forces"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workdir")
    parser.add_argument("--data", default=ROOT.parent / "shared" / "data" / "rmd17")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--molecule", default="ethanol", help="ethanol or aspirin (the molecules in ../shared/data/rmd17)")
    args = parser.parse_args()
    workdir, data = Path(args.workdir), Path(args.data)
    workdir.mkdir(parents=True, exist_ok=True)
    train = [_ref_keys(frame) for frame in frames_in_ev(data / f"rmd17_{args.molecule}_train_01.npz")]
    order = np.random.default_rng(args.seed).permutation(len(train))
    write_extxyz(workdir / "train.xyz", [train[i] for i in sorted(order[:950])])
    write_extxyz(workdir / "valid.xyz", [train[i] for i in sorted(order[950:])])
    write_extxyz(workdir / "test.xyz", (_ref_keys(frame) for frame in frames_in_ev(data / f"rmd17_{args.molecule}_test_01.npz")))
    print(f"wrote train (950), valid (50), test (1000) to {workdir}")


if __name__ == "__main__":
    main()
