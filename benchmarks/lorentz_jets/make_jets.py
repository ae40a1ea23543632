"""Write a toy top-tagging data set (mlpot.groups.jets.make_jets) to an .npz file.

    python benchmarks/lorentz_jets/make_jets.py --jets 40000 --seed 0 --output jets.npz

Arrays: momenta [n, max_constituents, 4] (E, px, py, pz in GeV, zero-padded, hardest first),
mask [n, max_constituents] (bool), label [n] (1 top, 0 QCD). The same arguments give the same
file. The physics and its simplifications: the docstring of mlpot/groups/jets.py.
"""

import argparse
import sys

import numpy as np

from mlpot.errors import MLPotError
from mlpot.files import atomic_output, check_output_file
from mlpot.groups.jets import jet_mass, make_jets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jets", type=int, default=40000, help="number of jets, half of them top")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--constituents", type=int, default=32, help="constituents kept per jet, hardest first")
    parser.add_argument("--output", required=True, help=".npz file to write")
    args = parser.parse_args()
    try:
        if args.jets < 2 or args.constituents < 1:
            raise MLPotError(f"--jets must be at least 2 and --constituents at least 1, got {args.jets} and {args.constituents}")
        check_output_file(args.output, "--output")
        sample = make_jets(args.jets, seed=args.seed, max_constituents=args.constituents)
        with atomic_output(args.output, "wb") as stream:
            np.savez_compressed(stream, momenta=sample.momenta, mask=sample.mask, label=sample.label)
    except MLPotError as error:
        print(f"make_jets: error: {error}", file=sys.stderr)
        sys.exit(2)
    mass = jet_mass(sample)
    counts = sample.mask.sum(axis=1)
    for label, name in ((1, "top"), (0, "QCD")):
        chosen = sample.label == label
        print(
            f"{name}: {chosen.sum()} jets, median mass {np.median(mass[chosen]):.1f} GeV, "
            f"mean constituents {counts[chosen].mean():.1f}"
        )


if __name__ == "__main__":
    main()
