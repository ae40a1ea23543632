"""How strongly an error in H reaches the orbital energies, HOMO-LUMO gap and orbitals.

    python sensitivity.py structures/ethanol_test.xyz 396 [--frames 5] [--draws 20]

For the first --frames geometries: the PBE/def2-SVP H and S (as `mlpot data qm` makes them),
then --draws symmetric Gaussian errors added to H, scaled so that their mean absolute entry is
the given MAE (µEh). Prints, per frame, the smallest eigenvalue of S, the squared coefficient
norms |c|^2 of HOMO and LUMO, the closest pair of occupied levels, and the errors the noise causes in the metrics of `mlpot eval`
(occupied orbital energies, gap, |cos psi|). To first order an error E in H moves orbital k by
c_k^T E c_k, whose spread for independent entries of spread sigma is about sqrt(2) sigma |c_k|^2:
an orbital with large coefficients (a near-linearly-dependent AO combination) magnifies H errors.
"""

import argparse

import numpy as np
from ase.io import read

from mlpot.qm.orbitals import compare_occupied, orbitals
from mlpot.qm.pyscf_runner import QMSettings, run_frame

MICRO = 1e6
MAE_OF_UNIT_GAUSSIAN = np.sqrt(2.0 / np.pi)


def symmetric_noise(size: int, mae: float, rng: np.random.Generator) -> np.ndarray:
    """[size, size] symmetric Gaussian matrix whose entries have mean |x| = mae."""
    upper = np.triu(rng.normal(size=(size, size)), 1)
    noise = upper + upper.T + np.diag(rng.normal(size=size))
    return noise * mae / MAE_OF_UNIT_GAUSSIAN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("structures")
    parser.add_argument("mae_micro_hartree", type=float)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--draws", type=int, default=20)
    args = parser.parse_args()
    settings = QMSettings(method="pbe", basis="def2-svp")
    rng = np.random.default_rng(0)
    mae = args.mae_micro_hartree / MICRO
    print(f"H errors of MAE {args.mae_micro_hartree:g} µEh; errors in µEh (mean over {args.draws} draws)")
    print(f"{'frame':>5} {'min eig S':>9} {'|c|^2 HOMO':>10} {'|c|^2 LUMO':>10} {'closest occ':>11} {'MAE eps_occ':>11} {'MAE gap':>9} {'min |cos|':>9}")
    for index, atoms in enumerate(read(args.structures, f":{args.frames}")):
        frame = run_frame(atoms.numbers, atoms.positions, settings)
        hamiltonian, overlap = frame["hamiltonian"], frame["overlap"]
        occupied = int(frame["num_electrons"]) // 2
        energies, coefficients = orbitals(hamiltonian, overlap)
        closest = np.diff(energies[:occupied]).min()  # levels this close swap under small errors
        norms = (coefficients**2).sum(axis=0)  # [n_ao] |c_k|^2
        eps_errors, gap_errors, similarity = [], [], []
        for _ in range(args.draws):
            noisy = hamiltonian + symmetric_noise(len(hamiltonian), mae, rng)
            result = compare_occupied(noisy, hamiltonian, overlap, occupied)
            eps_errors.append(np.abs(result.energies_predicted - result.energies_reference).mean())
            gap_errors.append(abs(result.gap_predicted - result.gap_reference))
            similarity.append(result.similarity.min())
        print(
            f"{index:>5} {np.linalg.eigvalsh(overlap)[0]:9.4f} {norms[occupied - 1]:10.2f} {norms[occupied]:10.2f} {closest * MICRO:11.0f} "
            f"{np.mean(eps_errors) * MICRO:11.1f} {np.mean(gap_errors) * MICRO:9.1f} {100 * np.mean(similarity):8.2f}%",
            flush=True,
        )


if __name__ == "__main__":
    main()
