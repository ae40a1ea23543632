"""D3 term per MD-like call: the kept Verlet list (cutoff + 1 Å skin) against a list built on every call.

    cd benchmarks/dispersion && OMP_NUM_THREADS=1 python neighbour_reuse.py

One process, one thread, the two alternating call by call on the same positions: a periodic water box
(648 atoms, 1 g/cm^3) and ethanol; each call moves every atom by 0.002 Å (an MD step's order), so the
kept list is reused and rebuilt only when an atom has moved past half the skin. Energies and forces of
the two are compared (they must agree: reuse is exact).
"""

import time

import numpy as np
import torch
from ase.build import molecule

from bench import water_box  # the same 648-atom box as bench.py
from mlpot.models.dispersion import D3BJDispersion


def inputs(atoms, positions):
    cell = torch.tensor(atoms.cell.array).unsqueeze(0)
    pbc = torch.tensor(atoms.pbc).unsqueeze(0)
    return (positions, torch.tensor(atoms.numbers), cell, pbc, torch.zeros(len(atoms), dtype=torch.long))


def energy_and_forces(module, atoms, positions):
    positions = positions.clone().requires_grad_(True)
    energy = module(*inputs(atoms, positions)).sum()
    (gradient,) = torch.autograd.grad(energy, positions)
    return float(energy), -gradient


def main() -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    for name, atoms in (("water 648", water_box()), ("ethanol", molecule("CH3CH2OH"))):
        kept = D3BJDispersion().double()
        times = {"kept": [], "rebuilt": []}
        positions = torch.tensor(atoms.positions)
        for step in range(21):
            positions = positions + torch.tensor(rng.normal(scale=0.002 / np.sqrt(3), size=positions.shape))
            results = {}
            for label in ("kept", "rebuilt") if step % 2 else ("rebuilt", "kept"):
                module = kept if label == "kept" else D3BJDispersion().double()
                start = time.perf_counter()
                results[label] = energy_and_forces(module, atoms, positions)
                if step:  # the first call builds both lists
                    times[label].append(time.perf_counter() - start)
            assert abs(results["kept"][0] - results["rebuilt"][0]) < 1e-10
            assert torch.allclose(results["kept"][1], results["rebuilt"][1], rtol=0, atol=1e-10)
        kept_ms, rebuilt_ms = (1e3 * float(np.median(times[k])) for k in ("kept", "rebuilt"))
        print(f"{name}: kept {kept_ms:.1f} ms, rebuilt {rebuilt_ms:.1f} ms per call, ratio {kept_ms / rebuilt_ms:.2f}")


if __name__ == "__main__":
    main()
