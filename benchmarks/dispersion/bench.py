"""D3(BJ) on a 648-atom water box: mlpot's dispersion term (torch-dftd) against tad-dftd3.

    python benchmarks/dispersion/bench.py [--cutoffs 10 15 21.17] [--repeats 3]

216 water molecules on a 6 x 6 x 6 grid in a periodic 18.6 Å box (1.0 g/cm^3), seeded random
orientations. For each cutoff: energy, forces and stress (one backward) of a potential with
``model.dispersion`` minus the same potential without it, i.e. the D3 term's own cost including
its neighbour list; the best of --repeats calls after one warm-up. tad-dftd3 (if importable) has
no lattice, so it runs on the same 648 atoms as a cluster (all pairs, energy and forces): a speed
comparison only, its energy is not the periodic one. One thread; prints one line per case.
"""

import argparse
import time

import numpy as np
import torch
from ase import Atoms
from ase.build import molecule
from scipy.spatial.transform import Rotation

import mlpot
from mlpot.calculators import MLPotCalculator


def water_box() -> Atoms:
    rng = np.random.default_rng(0)
    spacing = 3.104  # Å: 216 molecules in 18.62^3 Å^3 = 1.00 g/cm^3
    box = Atoms(cell=[6 * spacing] * 3, pbc=True)
    for index in np.ndindex(6, 6, 6):
        water = molecule("H2O")
        water.positions = Rotation.random(random_state=rng.integers(1 << 31)).apply(water.positions) + (np.array(index) + 0.5) * spacing
        box += water
    return box


def best_of(call, repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cutoffs", type=float, nargs="+", default=[10.0, 15.0, 21.17])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    atoms = water_box()
    base = {"elements": ["H", "O"], "r_max": 3.0, "hidden_irreps": "4x0e", "max_ell": 1, "radial_mlp": [4], "num_interactions": 1}
    for cutoff in args.cutoffs:
        timings = {}
        for label, config in (("with", {**base, "dispersion": {"kind": "d3bj", "cutoff": cutoff}}), ("without", base)):
            calculator = MLPotCalculator(mlpot.build_model(config), dtype="float64")

            def call():
                calculator.reset()
                calculator.get_property("stress", atoms)

            timings[label] = best_of(call, args.repeats)
        calculator = MLPotCalculator(mlpot.build_model({**base, "dispersion": {"kind": "d3bj", "cutoff": cutoff}}), dtype="float64")
        edges = calculator.model.dispersion.neighbours(
            torch.tensor(atoms.positions), torch.tensor(atoms.cell.array)[None], torch.tensor(atoms.pbc)[None], torch.zeros(len(atoms), dtype=torch.long)
        )[0].shape[1]
        print(f"mlpot dispersion (torch-dftd), periodic, cutoff {cutoff:5.2f} Å: {edges} directed pairs, "
              f"energy+forces+stress {timings['with'] - timings['without']:.2f} s (model with D3 {timings['with']:.2f} s, without {timings['without']:.3f} s)", flush=True)
    try:
        import tad_dftd3
    except ImportError:
        print("tad-dftd3 not importable: skipped")
        return
    numbers = torch.tensor(atoms.numbers)
    param = {"s6": torch.tensor(1.0), "a1": torch.tensor(0.4289), "s8": torch.tensor(0.7875), "a2": torch.tensor(4.4407)}  # PBE-D3(BJ)

    def tad_call():
        positions = torch.tensor(atoms.positions / 0.52917721, requires_grad=True)  # bohr
        energy = tad_dftd3.dftd3(numbers, positions, param).sum()
        energy.backward()

    print(f"tad-dftd3 {tad_dftd3.__version__}, cluster (no lattice), all pairs: energy+forces {best_of(tad_call, args.repeats):.2f} s", flush=True)


if __name__ == "__main__":
    main()
