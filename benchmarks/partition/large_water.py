"""One energy + forces call on ~10^5 water atoms in one CPU process, one thread, partitioned.

Unpartitioned this member needs about 0.6 MB per atom in float32 (measured on 1536 atoms: 58 GB
for 98,304), more than this machine's 24 GB. Writes large_water.json beside this file.

    OMP_NUM_THREADS=1 python benchmarks/partition/large_water.py [--partitions 64] [--atoms 100000]
"""

import argparse
import json
import resource
import time
from pathlib import Path

import torch

from mlpot.calculators import MLPotCalculator
from mlpot.models.io import load_model
from systems import water_box

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--partitions", type=int, default=64)
    parser.add_argument("--atoms", type=int, default=100_000)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--output", default=str(HERE / "large_water.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    member = load_model(HERE.parents[1] / "models" / "ethanol-rmd17" / "ethanol-rmd17.model").members[0]
    atoms = water_box(args.atoms)
    calculator = MLPotCalculator(member, dtype=args.dtype, partitions=args.partitions)
    atoms.calc = calculator
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    start = time.perf_counter()
    atoms.get_forces()
    wall = time.perf_counter() - start
    result = {
        "atoms": len(atoms),
        "partitions": args.partitions,
        "dtype": args.dtype,
        "model": "models/ethanol-rmd17 member 0 (64x0e+64x1o, 2 interactions, r_max 5 Å)",
        "wall_s": round(wall, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "rss_before_call_gb": round(before, 2),
        "energy_eV": atoms.get_potential_energy(),
        "max_force_eV_per_A": float(abs(atoms.get_forces()).max()),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
