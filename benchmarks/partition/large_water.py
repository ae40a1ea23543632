"""One energy + forces call on ~10^5 water atoms in one CPU process, one thread, partitioned.

Unpartitioned this member needs about 0.6 MB per atom in float32 (measured on 1536 atoms: 58 GB
for 98,304), more than this machine's 24 GB. Default: the whole call through
MLPotCalculator(partitions=K). With --largest N only the N parts with the most atoms to evaluate
are run (the peak memory is that of the largest part; the time of the whole call is extrapolated
from their CPU time per evaluated atom), for a machine too busy to run all parts in time.
Writes large_water.json beside this file.

    OMP_NUM_THREADS=1 python benchmarks/partition/large_water.py [--partitions 64] [--largest 2]
"""

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from mlpot.calculators import MLPotCalculator
from mlpot.data.neighbours import neighbour_pairs
from mlpot.models.io import load_model
from mlpot.partition import part_halos, partition_atoms
from mlpot.partition.evaluate import evaluate_parts
from systems import water_box

HERE = Path(__file__).resolve().parent


def peak_gb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--partitions", type=int, default=64)
    parser.add_argument("--atoms", type=int, default=100_000)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--largest", type=int, default=0, help="run only the N parts with the most atoms (0: the whole call)")
    parser.add_argument("--output", default=str(HERE / "large_water.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    member = load_model(HERE.parents[1] / "models" / "ethanol-rmd17" / "ethanol-rmd17.model").members[0]
    atoms = water_box(args.atoms)
    result = {"atoms": len(atoms), "partitions": args.partitions, "dtype": args.dtype, "threads": 1,
              "model": "models/ethanol-rmd17 member 0 (64x0e+64x1o, 2 interactions, r_max 5 Å)"}
    wall, cpu = time.perf_counter(), time.process_time()
    if args.largest == 0:
        atoms.calc = MLPotCalculator(member, dtype=args.dtype, partitions=args.partitions)
        atoms.get_forces()
        result.update(wall_s=round(time.perf_counter() - wall, 1), cpu_s=round(time.process_time() - cpu, 1),
                      energy_eV=atoms.get_potential_energy())
    else:
        calculator = MLPotCalculator(member, dtype=args.dtype)  # its model, converted as the calculator does
        sender, receiver, unit_shifts = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc, member.r_max)
        edge_index = np.stack([sender, receiver])
        labels = partition_atoms(len(atoms), edge_index, args.partitions)
        halos = part_halos(edge_index, labels, args.partitions, member.num_interactions)
        result["graph_partition_halo_wall_s"] = round(time.perf_counter() - wall, 1)
        result["graph_partition_halo_cpu_s"] = round(time.process_time() - cpu, 1)
        evaluated = np.array([len(halo.nodes) for halo in halos])
        chosen = [halos[p] for p in np.argsort(-evaluated)[: args.largest]]
        dtype = calculator.dtype
        shifts = torch.tensor(unit_shifts.astype(np.float64) @ atoms.cell.array, dtype=dtype)
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        evaluate_parts(calculator.model, torch.tensor(atoms.positions, dtype=dtype), torch.tensor(atoms.numbers),
                       shifts, chosen, compute_stress=True)
        part_wall, part_cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
        per_atom = part_cpu / sum(len(halo.nodes) for halo in chosen)
        result.update(parts_run=args.largest, atoms_evaluated_in_parts_run=int(sum(len(h.nodes) for h in chosen)),
                      parts_run_wall_s=round(part_wall, 1), parts_run_cpu_s=round(part_cpu, 1),
                      atoms_evaluated_whole_call=int(evaluated.sum()), largest_part_evaluated=int(evaluated.max()),
                      redundancy=round(float(evaluated.sum() / len(atoms)), 2),
                      whole_call_cpu_s_extrapolated=round(per_atom * evaluated.sum() + result["graph_partition_halo_cpu_s"], 0))
    result.update(peak_rss_gb=peak_gb(), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
