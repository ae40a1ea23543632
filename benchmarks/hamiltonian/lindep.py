"""Orbital levels of a Hamiltonian model solved with S's smallest eigen-directions dropped.

    python lindep.py --model runs/ethanol/best.model --data data/ethanol_test

Per threshold (canonical orthogonalisation, `mlpot predict --lindep`): how many directions are
dropped, how far that moves the reference HOMO-LUMO gap (exact H, truncated basis, against the
full basis), the predicted gap's MAE and the occupied orbital energies' MAE (predicted H,
truncated basis) against the full-basis reference, the frames whose predicted LUMO lies
more than 10 mEh below the reference one (spurious "intruder" levels, and large plain errors),
and the mean and minimum |cos| of the occupied orbitals (as `mlpot eval` measures it).
"""

import argparse

import numpy as np

import mlpot
from mlpot.qm.dataset import read_qm_dataset
from mlpot.qm.inference import predict_matrices
from mlpot.qm.orbitals import compare_occupied, orbitals

MILLI = 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.0, 0.002, 0.005, 0.01, 0.02, 0.05])
    args = parser.parse_args()
    model = mlpot.load_model(args.model)
    frames = read_qm_dataset(args.data).frames
    predictions = predict_matrices(model, [frame.atoms() for frame in frames], args.data)
    print(f"{args.data}: {len(frames)} frames; smallest S eigenvalue "
          f"{min(np.linalg.eigvalsh(frame.overlap)[0] for frame in frames):.4f}; energies in mEh")
    print(f"{'lindep':>8}{'dropped':>9}{'ref gap shift':>15}{'gap MAE':>10}{'eps_occ MAE':>13}{'low LUMO':>11}{'|cos| mean, min %':>20}")
    for threshold in args.thresholds:
        dropped, shift, gap_error, occupied_error, intruders, cosines = [], [], [], [], 0, []
        for frame, predicted in zip(frames, predictions):
            occupied = frame.num_occupied
            result = compare_occupied(predicted["hamiltonian"], frame.hamiltonian, frame.overlap, occupied, lindep=threshold)
            reference, _ = orbitals(frame.hamiltonian, frame.overlap, threshold)  # exact H, truncated basis
            lumo_error = result.energies_predicted[-1] + result.gap_predicted - frame.orbital_energies[occupied]
            dropped.append(int((np.linalg.eigvalsh(frame.overlap) <= threshold).sum()) if threshold > 0 else 0)
            shift.append(abs(reference[occupied] - reference[occupied - 1] - result.gap_reference))
            gap_error.append(abs(result.gap_predicted - result.gap_reference))
            occupied_error.append(np.abs(result.energies_predicted - result.energies_reference).mean())
            intruders += int(lumo_error < -0.01)
            cosines.append(result.similarity)
        cosines = 100 * np.concatenate(cosines)
        print(f"{threshold:>8.3f}{np.mean(dropped):>9.1f}{MILLI * np.mean(shift):>15.3f}{MILLI * np.mean(gap_error):>10.2f}"
              f"{MILLI * np.mean(occupied_error):>13.3f}{intruders:>11d}{cosines.mean():>12.2f}{cosines.min():>8.2f}")


if __name__ == "__main__":
    main()
