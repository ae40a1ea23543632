"""Where a Hamiltonian model's orbital errors come from: HOMO vs LUMO, first order vs exact, swaps.

    python orbital_errors.py --model runs/ethanol/best.model --data data/ethanol_test

For every test frame: the predicted H (the exact S), its generalised eigenproblem against the
reference one, and per orbital the first-order error c_k^T (H_pred - H) c_k (what the loss's
orbital-energy term trains on). Prints the HOMO and LUMO energy errors that make up the gap
error, how much of each the first order explains, |c|^2 of HOMO and LUMO, and the occupied
orbitals with the lowest |cos psi| (as `mlpot eval` measures it): the spacing to their nearest
occupied level and whether their best-matching predicted orbital is a neighbour (a swap).
"""

import argparse
from typing import List

import numpy as np

import mlpot
from mlpot.qm.dataset import read_qm_dataset
from mlpot.qm.inference import predict_matrices
from mlpot.qm.orbitals import compare_occupied, orbitals

MICRO = 1e6


def mae(values: List[float]) -> float:
    return float(np.abs(np.asarray(values)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--worst", type=int, default=8, help="how many of the lowest-|cos| orbitals to list")
    args = parser.parse_args()
    model = mlpot.load_model(args.model)
    frames = read_qm_dataset(args.data).frames
    predictions = predict_matrices(model, [frame.atoms() for frame in frames], args.data)

    homo, lumo, homo_first, lumo_first, norms_homo, norms_lumo, worst = [], [], [], [], [], [], []
    for index, (frame, predicted) in enumerate(zip(frames, predictions)):
        occupied = frame.num_occupied
        energies_r, coefficients_r = orbitals(frame.hamiltonian, frame.overlap)
        energies_p, coefficients_p = orbitals(predicted["hamiltonian"], frame.overlap)
        change = predicted["hamiltonian"] - frame.hamiltonian
        first_order = np.einsum("ak,ab,bk->k", coefficients_r, change, coefficients_r)  # [n_ao] Eh
        homo.append(energies_p[occupied - 1] - energies_r[occupied - 1])
        lumo.append(energies_p[occupied] - energies_r[occupied])
        homo_first.append(first_order[occupied - 1])
        lumo_first.append(first_order[occupied])
        norms = (coefficients_r**2).sum(axis=0)
        norms_homo.append(norms[occupied - 1])
        norms_lumo.append(norms[occupied])
        comparison = compare_occupied(predicted["hamiltonian"], frame.hamiltonian, frame.overlap, occupied)
        match = np.abs(coefficients_r[:, :occupied].T @ frame.overlap @ coefficients_p)  # [occ, n_ao] |<ref k|S|pred m>|
        for k in range(occupied):
            spacing = np.abs(np.delete(energies_r[:occupied], k) - energies_r[k]).min()
            worst.append((comparison.similarity[k], index, k, spacing, int(match[k].argmax()), energies_p[k] - energies_r[k]))

    gap = np.asarray(lumo) - np.asarray(homo)
    print(f"{args.data}: {len(frames)} frames; errors in µEh (MAE over frames)")
    print(f"  gap {mae(gap) * MICRO:10.1f}   HOMO {mae(homo) * MICRO:10.1f}   LUMO {mae(lumo) * MICRO:10.1f}")
    print(f"  first order: HOMO {mae(homo_first) * MICRO:10.1f}   LUMO {mae(lumo_first) * MICRO:10.1f}   "
          f"exact minus first order: HOMO {mae(np.subtract(homo, homo_first)) * MICRO:.1f}, LUMO {mae(np.subtract(lumo, lumo_first)) * MICRO:.1f}")
    print(f"  |c|^2 HOMO {np.mean(norms_homo):.2f}   LUMO {np.mean(norms_lumo):.2f} (mean)")
    swaps = sum(1 for _, _, k, _, best, _ in worst if best != k)
    print(f"  occupied orbitals whose best-matching predicted orbital is another one: {swaps} of {len(worst)}")
    print(f"  lowest |cos psi|:  {'frame':>5} {'orbital':>7} {'|cos|':>8} {'spacing µEh':>11} {'best match':>10} {'eps error µEh':>13}")
    for similarity, index, k, spacing, best, error in sorted(worst)[: args.worst]:
        print(f"  {'':17}{index:>5} {k:>7} {similarity:8.4f} {spacing * MICRO:11.0f} {best:>10} {error * MICRO:13.1f}")


if __name__ == "__main__":
    main()
