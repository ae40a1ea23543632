"""Learned long-time propagators (Action-Angle Networks) for a molecule's near-harmonic motion.

  mlpot dynamics fit TRAJ -o PROPAGATOR.pt [--coordinates normal-modes|cartesian] [--model M]
                     [--jumps 1:10] [--minutes N] [--method action-angle|euler|ode]
  mlpot dynamics predict PROPAGATOR.pt --from TRAJ[:FRAME] --times T... -o PRED.extxyz [--plot error.png]

fit trains on pairs of frames (t, t + k frames), k from --jumps, of an NVE trajectory written by
mlpot md (positions, velocities, time_ps; one molecule, no cell), in mass-weighted normal-mode
coordinates of --model's Hessian at its minimum or in mass-weighted Cartesian ones. predict
jumps from one frame to each of the --times (ps after it) in one step each, writes the frames
(positions, velocities, time_ps) and, where the trajectory has frames at those times, their
RMS position error (info position_rmse_A, and --plot). The method suits vibrations close to
harmonic (low temperature): not reactions, conformer changes or diffusion.
"""

import argparse
from typing import List, Tuple

from mlpot.errors import MLPotError

METHODS = {"action-angle": "ActionAngleNetwork", "euler": "EulerUpdateNetwork", "ode": "NeuralODE"}
COORDINATES = ("normal-modes", "cartesian")  # mlpot.dynamics.molecule.COORDINATES, without importing numpy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    fit = actions.add_parser("fit", help="train a propagator on a trajectory", description="train a propagator on a trajectory")
    fit.add_argument("trajectory", metavar="TRAJ", help="NVE trajectory (extxyz of mlpot md, or an ASE trajectory)")
    fit.add_argument("-o", "--output", required=True, help="propagator file to write (.pt)")
    fit.add_argument("--coordinates", default="normal-modes", choices=COORDINATES,
                     help="normal modes of --model's Hessian (default) or mass-weighted Cartesian")
    fit.add_argument("--model", help="the potential whose minimum and Hessian give the normal modes (model file or directory)")
    fit.add_argument("--jumps", default="1:10", help="training jumps in frames, LOW:HIGH (default 1:10)")
    fit.add_argument("--minutes", type=float, default=2.0, help="training time (default 2)")
    fit.add_argument("--method", default="action-angle", choices=list(METHODS), help="action-angle network or a baseline")
    fit.add_argument("--hidden", type=int, default=64, help="hidden width of the networks")
    fit.add_argument("--layers", type=int, default=4, help="layers of the networks")
    fit.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (cosine to 1/100 of it)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--frame-time", type=float, help="fs between frames, for files without time_ps")
    predict = actions.add_parser("predict", help="predict frames at later times from one frame",
                                 description="predict frames at later times from one frame")
    predict.add_argument("propagator", metavar="PROPAGATOR", help="file written by mlpot dynamics fit")
    predict.add_argument("--from", dest="start", required=True, metavar="TRAJ[:FRAME]",
                         help="trajectory and the frame to start from (default frame 0)")
    predict.add_argument("--times", required=True, nargs="+", metavar="T",
                         help="ps after the start frame: numbers, or START:STOP:STEP ranges (STOP included)")
    predict.add_argument("-o", "--output", required=True, help="predicted frames (extxyz)")
    predict.add_argument("--plot", help="PNG of the RMS position error against time, where the trajectory has frames")
    predict.add_argument("--frame-time", type=float, help="fs between frames, for files without time_ps")


def run(args: argparse.Namespace) -> int:
    return fit(args) if args.action == "fit" else predict(args)


def parse_jumps(text: str) -> Tuple[int, int]:
    parts = text.split(":")
    try:
        low, high = (int(parts[0]), int(parts[1])) if len(parts) == 2 else (int(text), int(text))
    except ValueError:
        raise MLPotError(f"--jumps must be LOW:HIGH in frames, e.g. 1:10; got {text!r}") from None
    if not 1 <= low <= high:
        raise MLPotError(f"--jumps {text}: need 1 <= LOW <= HIGH")
    return low, high


def parse_times(words: List[str]) -> List[float]:
    """Numbers and START:STOP:STEP ranges (ps) -> times in order given."""
    times: List[float] = []
    for word in words:
        try:
            parts = [float(part) for part in word.split(":")]
        except ValueError:
            raise MLPotError(f"--times: {word!r} is not a number or START:STOP:STEP") from None
        if len(parts) == 1:
            times.append(parts[0])
        elif len(parts) == 3 and parts[2] > 0 and parts[1] >= parts[0]:
            count = int((parts[1] - parts[0]) / parts[2] + 1e-9) + 1
            times.extend(parts[0] + k * parts[2] for k in range(count))
        else:
            raise MLPotError(f"--times: {word!r} is not START:STOP:STEP with STEP > 0 and STOP >= START")
    return times


def parse_start(text: str) -> Tuple[str, int]:
    """'traj.extxyz:12' -> ('traj.extxyz', 12); no integer after the last colon -> frame 0."""
    path, _, frame = text.rpartition(":")
    if path and frame.lstrip("-").isdigit():
        return path, int(frame)
    return text, 0


def fit(args: argparse.Namespace) -> int:
    from mlpot.files import check_input_file, check_output_file

    low, high = parse_jumps(args.jumps)
    if not args.minutes > 0:
        raise MLPotError(f"--minutes must be positive, got {args.minutes}")
    for option, value in (("--hidden", args.hidden), ("--layers", args.layers), ("--lr", args.lr)):
        if not value > 0:
            raise MLPotError(f"{option} must be positive, got {value}")
    if args.coordinates == "normal-modes" and not args.model:
        raise MLPotError("--coordinates normal-modes needs --model (the potential whose Hessian gives the modes)")
    check_input_file(args.trajectory, "trajectory")
    check_output_file(args.output, "-o")

    import numpy as np
    import torch

    from mlpot.dynamics import training
    from mlpot.dynamics.molecule import PhaseSpaceCoordinates, molecule_normal_modes, read_trajectory, relax, save_propagator
    model_path = None
    if args.model:
        from mlpot.models.io import resolve_model_path

        model_path = resolve_model_path(args.model)
    trajectory = read_trajectory(args.trajectory, args.frame_time)
    if len(trajectory.times_ps) <= high:
        raise MLPotError(f"{args.trajectory}: {len(trajectory.times_ps)} frames are too few for jumps up to {high} frames "
                         f"(--jumps {args.jumps}); need at least {high + 1}")
    frame_fs = trajectory.frame_time_ps * 1000.0
    if model_path is not None:
        from mlpot.calculators import MLPotCalculator

        calculator = MLPotCalculator(model_path, dtype="float64")
        if args.coordinates == "normal-modes":
            coordinates = PhaseSpaceCoordinates.from_normal_modes(molecule_normal_modes(trajectory.atoms(0), calculator))
        else:
            coordinates = PhaseSpaceCoordinates.cartesian(trajectory, relax(trajectory.atoms(0), calculator).positions)
    else:
        coordinates = PhaseSpaceCoordinates.cartesian(trajectory)
    states = torch.from_numpy(coordinates.to_states(trajectory.positions, trajectory.momenta))  # [T, 2n]
    model = training.PROPAGATORS[METHODS[args.method]](coordinates.num_dof, hidden=args.hidden, layers=args.layers)
    data = training.PairData(states, frame_fs, what=str(args.trajectory))
    print(f"{len(states)} frames {frame_fs:g} fs apart, {coordinates.kind} ({coordinates.num_dof} pairs), "
          f"{args.method}, jumps {low}-{high} frames, {args.minutes:g} min")
    history = training.fit(model, data, (low * frame_fs, high * frame_fs), minutes=args.minutes, lr=args.lr, seed=args.seed)
    errors = training.prediction_error(model.eval(), states, torch.from_numpy(trajectory.times_ps * 1000.0),
                                       [low * frame_fs, high * frame_fs])
    print(f"{len(history['loss'])} batches, last loss {history['loss'][-1]:.3g}; relative error on the training "
          f"trajectory: " + ", ".join(f"{jump:g} fs {error:.3g}" for jump, error in errors.items()))
    details = {"method": args.method, "jumps": [low, high], "trajectory": str(args.trajectory),
               "potential": None if model_path is None else str(model_path)}
    if args.method == "action-angle":
        with torch.no_grad():
            actions, _ = model.encode(states)
            omega = model.frequencies(actions).mean(dim=0).numpy()  # [n] rad/fs
        from mlpot.dynamics.molecule import angular_frequency_to_wavenumber

        learned = angular_frequency_to_wavenumber(omega)
        details["learned_wavenumbers_cm-1"] = learned.tolist()
        print("learned frequencies (cm^-1): " + " ".join(f"{w:.0f}" for w in np.sort(learned)))
        if coordinates.wavenumbers is not None:
            print("harmonic frequencies (cm^-1): " + " ".join(f"{w:.0f}" for w in coordinates.wavenumbers))
    save_propagator(model, coordinates, frame_fs, args.output, **details)
    print(f"wrote {args.output}")
    return 0


def predict(args: argparse.Namespace) -> int:
    from mlpot.files import check_input_file, check_output_file

    times = parse_times(args.times)
    path, frame = parse_start(args.start)
    check_input_file(args.propagator, "propagator")
    check_input_file(path, "--from")
    check_output_file(args.output, "-o")
    if args.plot:
        check_output_file(args.plot, "--plot")

    import numpy as np
    import torch
    from ase import Atoms, units

    from mlpot.data.extxyz import write_extxyz
    from mlpot.dynamics.molecule import load_propagator, read_trajectory

    model, coordinates, details = load_propagator(args.propagator)
    trajectory = read_trajectory(path, args.frame_time, min_frames=1)
    count = len(trajectory.times_ps)
    if not -count <= frame < count:
        raise MLPotError(f"--from {args.start}: {path} has {count} frame(s), no frame {frame}")
    frame %= count
    coordinates.check_atoms(trajectory.numbers, f"{path}, frame {frame}")
    start = coordinates.to_states(trajectory.positions[frame : frame + 1], trajectory.momenta[frame : frame + 1])  # [1, 2n]
    jumps_fs = np.asarray(times) * 1000.0  # [K]
    with torch.no_grad():
        x0 = torch.from_numpy(start).expand(len(times), -1)  # [K, 2n]
        predicted = model(x0, torch.from_numpy(jumps_fs)).numpy()  # [K, 2n]
    velocity = np.repeat(trajectory.centre_velocity()[frame : frame + 1], len(times), axis=0)  # [K, 3]
    centre = trajectory.centre()[frame][None, :] + velocity * (jumps_fs * units.fs)[:, None]  # [K, 3]
    positions, momenta = coordinates.to_positions_momenta(predicted, centre, velocity)
    start_time = trajectory.times_ps[frame]
    errors = {}
    for k, time in enumerate(times):
        match = np.flatnonzero(np.abs(trajectory.times_ps - (start_time + time)) < 1e-6)
        if match.size:
            errors[k] = float(np.sqrt(np.mean(np.sum((positions[k] - trajectory.positions[match[0]]) ** 2, axis=1))))
    masses = coordinates.masses
    frames = []
    for k, time in enumerate(times):
        info = {"time_ps": float(start_time + time), "predicted_from_frame": frame}
        if k in errors:
            info["position_rmse_A"] = errors[k]
        frames.append((Atoms(numbers=coordinates.numbers, positions=positions[k]), info, {"velocities": momenta[k] / masses[:, None]}))
    if args.plot and not errors:
        raise MLPotError(f"--plot: {path} has no frames at the --times after frame {frame}, nothing to compare with")
    write_extxyz(args.output, frames)
    if args.plot:
        plot_errors(args.plot, [times[k] for k in errors], list(errors.values()), f"{details.get('method', '')}, {coordinates.kind}")
    described = f"; RMS position error {min(errors.values()):.3g}-{max(errors.values()):.3g} Å at the {len(errors)} times the trajectory has" if errors else ""
    print(f"wrote {len(frames)} predicted frames to {args.output}{described}")
    return 0


def plot_errors(path: str, times: List[float], errors: List[float], label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlpot.files import atomic_output

    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(times, errors, marker="." if len(times) < 50 else None, label=label)
    axis.set_xlabel("time after the start frame (ps)")
    axis.set_ylabel("RMS position error (Å)")
    axis.legend()
    figure.tight_layout()
    with atomic_output(path, "wb") as stream:
        figure.savefig(stream, format="png", dpi=120)
    plt.close(figure)
