"""Action-Angle Network against an Euler-update network and a neural ODE on ethanol's low-temperature MD.

  OMP_NUM_THREADS=1 python benchmarks/action_angle_ethanol/run.py [--minutes 2] [--data runs/action_angle_ethanol]

Needs the trajectories of make_md.py (md-<T>K.extxyz, 1 fs between frames). Each propagator is
trained for the same wall time on pairs (t, t + k fs), k = 1..10, of the first 2 ps and then
asked for one-shot jumps of 1 fs to 5 ps (10^4 MD steps of 0.5 fs) from 64 start frames in the
first 1 ps (jumps past 1-2 ps land outside the training data). One invocation runs one temperature
and coordinate system, --methods side by side; results/<T>K-<coordinates>.json.

Two references need no training: the harmonic propagator (each normal mode rotating at its
Hessian frequency, q cos wt + p / w sin wt, with the small shift velocity Verlet gives it) and the frequencies the MD itself shows (the peak of
each mode's momentum spectrum over the 6 ps). The figures
error_vs_jump.png (at --grid-at K) and frequencies.png are drawn from all results present
(--plot-only: just the figures).
"""

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Callable, Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase.io import read  # noqa: E402

from mlpot.calculators import MLPotCalculator  # noqa: E402
from mlpot.dynamics import training  # noqa: E402
from mlpot.dynamics.molecule import (PhaseSpaceCoordinates, angular_frequency_to_wavenumber, molecule_normal_modes,  # noqa: E402
                                     read_trajectory)
from mlpot.models.io import load_model  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODEL = ROOT / "models" / "ethanol-rmd17" / "ethanol-rmd17.model"
METHODS = {"action-angle": "ActionAngleNetwork", "euler": "EulerUpdateNetwork", "ode": "NeuralODE"}
JUMPS_FS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
TRAIN_FRAMES = 2001  # 2 ps
STARTS = 64


def harmonic_propagator(omega: torch.Tensor, timestep_fs: float = 0.5) -> Callable:
    """forward(x [B, 2n], dt [B]) of uncoupled normal modes at angular frequencies omega [n]
    (rad/fs), as velocity Verlet with ``timestep_fs`` moves them: exactly, each mode turns at
    (2 / h) asin(omega h / 2) (0.5 % above omega for the O-H stretch at 0.5 fs) on an ellipse
    of axis ratio omega sqrt(1 - (omega h / 2)^2)."""
    half = omega * timestep_fs / 2.0
    turn = torch.asin(half) * 2.0 / timestep_fs  # [n]
    ratio = omega * torch.sqrt(1.0 - half**2)  # [n]

    def forward(x: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        n = omega.numel()
        q, p = x[:, :n], x[:, n:]
        phase = turn[None, :] * dt[:, None]  # [B, n]
        return torch.cat([q * torch.cos(phase) + p / ratio * torch.sin(phase), p * torch.cos(phase) - q * ratio * torch.sin(phase)], dim=1)

    return forward


def jump_errors(forward: Callable, states: torch.Tensor, coordinates: PhaseSpaceCoordinates, trajectory, jumps: List[int],
                chained: bool = False) -> Dict[str, List[float]]:
    """Relative state error (as training.prediction_error defines it) and RMS position error (Å)
    per jump, from the same STARTS start frames (spread over the frames that have the longest
    jump ahead). ``chained``: each jump continues from the previous one's prediction, which for
    the neural ODE is the same fixed-step RK4 integration (jumps are multiples of its substep) at
    a fifth of the cost of starting every jump afresh."""
    spread = states.std(dim=0)  # [2n]
    relative, position = [], []
    centre, velocity = trajectory.centre(), trajectory.centre_velocity()
    starts = torch.linspace(0, states.shape[0] - 1 - max(jumps), STARTS).round().long()  # [S]
    predicted, previous = states[starts], 0
    for jump in jumps:
        with torch.no_grad():
            source, step = (predicted, jump - previous) if chained else (states[starts], jump)
            predicted = forward(source, torch.full((STARTS,), float(step), dtype=torch.float64))  # [S, 2n]
        previous = jump
        relative.append(float(torch.sqrt((((predicted - states[starts + jump]) / spread) ** 2).mean())))
        targets = (starts + jump).numpy()
        positions, _ = coordinates.to_positions_momenta(predicted.numpy(), centre[targets], velocity[targets])
        position.append(float(np.sqrt(np.mean(np.sum((positions - trajectory.positions[targets]) ** 2, axis=2)))))
    return {"relative": relative, "position_rmse_A": position}


def md_wavenumbers(normal_states: np.ndarray, frame_fs: float) -> np.ndarray:
    """Frequency of each normal mode in the MD [n], cm^-1: the peak of its momentum's power
    spectrum (8x zero-padded). The momentum, not the position: a mode's position also carries
    the slow second-order drag of the large-amplitude torsions, its momentum hardly."""
    n = normal_states.shape[1] // 2
    momenta = normal_states[:, n:] - normal_states[:, n:].mean(axis=0)  # [T, n]
    size = 8 * len(momenta)
    power = np.abs(np.fft.rfft(momenta * np.hanning(len(momenta))[:, None], n=size, axis=0)) ** 2  # [F, n]
    omega = 2.0 * np.pi * np.fft.rfftfreq(size, d=frame_fs)  # [F] rad/fs
    return angular_frequency_to_wavenumber(omega[np.argmax(power[1:], axis=0) + 1])


def fit_one(method: str, states: torch.Tensor, minutes: float, seed: int):
    model = training.PROPAGATORS[METHODS[method]](states.shape[1] // 2)
    data = training.PairData(states[:TRAIN_FRAMES], 1.0, what=method)
    history = training.fit(model, data, (1.0, 10.0), minutes=minutes, seed=seed)
    return model.eval(), len(history["loss"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="training time of each propagator")
    parser.add_argument("--data", type=Path, default=ROOT / "runs" / "action_angle_ethanol")
    parser.add_argument("--temperature", type=float, default=30.0)
    parser.add_argument("--coordinates", default="normal-modes", choices=["normal-modes", "cartesian"])
    parser.add_argument("--methods", nargs="+", default=["action-angle"], choices=list(METHODS))
    parser.add_argument("--grid-at", type=float, default=30.0, help="temperature of the error-vs-jump figure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot-only", action="store_true", help="only draw the figures from results/*.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.plot_only:
        plot(args.grid_at)
        return

    trajectory = read_trajectory(args.data / f"md-{args.temperature:g}K.extxyz")
    assert abs(trajectory.frame_time_ps - 0.001) < 1e-9, "make_md.py writes a frame every fs"
    member = copy.deepcopy(load_model(MODEL).members[0])
    normal = molecule_normal_modes(trajectory.atoms(0), MLPotCalculator(member, dtype="float64"))
    omega = normal.angular_frequencies_per_fs  # [21] rad/fs
    normal_coordinates = PhaseSpaceCoordinates.from_normal_modes(normal)
    jumps = [jump for jump in JUMPS_FS if jump <= len(trajectory.times_ps) - 1001]  # starts in the first ps at least
    entry = {"temperature_K": args.temperature, "coordinates": args.coordinates, "frames": len(trajectory.times_ps),
             "harmonic_wavenumbers_cm-1": normal.wavenumbers.tolist(), "jumps_fs": jumps, "minutes": args.minutes,
             "train_frames": TRAIN_FRAMES, "starts": STARTS}
    normal_states = normal_coordinates.to_states(trajectory.positions, trajectory.momenta)  # [T, 42]
    entry["md_wavenumbers_cm-1"] = md_wavenumbers(normal_states, 1.0).tolist()
    verlet = 2.0 / 0.5 * np.arcsin(omega * 0.5 / 2.0)  # [21] rad/fs: what velocity Verlet at 0.5 fs makes of omega
    entry["verlet_harmonic_wavenumbers_cm-1"] = angular_frequency_to_wavenumber(verlet).tolist()
    harmonic = harmonic_propagator(torch.from_numpy(omega))
    if args.coordinates == "normal-modes":
        coordinates, forward = normal_coordinates, harmonic
    else:  # the same harmonic prediction, carried over to Cartesian states
        coordinates = PhaseSpaceCoordinates.cartesian(trajectory, normal.reference)

        def forward(x, dt):
            zero = np.zeros((len(x), 3))
            positions, momenta = coordinates.to_positions_momenta(x.numpy(), zero, zero)
            moved = harmonic(torch.from_numpy(normal_coordinates.to_states(positions, momenta)), dt).numpy()
            return torch.from_numpy(coordinates.to_states(*normal_coordinates.to_positions_momenta(moved, zero, zero)))

    states = torch.from_numpy(coordinates.to_states(trajectory.positions, trajectory.momenta))  # [T, 2n]
    entry["harmonic"] = jump_errors(forward, states, coordinates, trajectory, jumps)
    label = f"{args.temperature:g} K {args.coordinates}"
    print(f"{label} harmonic: relative error " + " ".join(f"{j}:{e:.2g}" for j, e in zip(jumps, entry["harmonic"]["relative"])), flush=True)
    (HERE / "results").mkdir(exist_ok=True)
    for method in args.methods:
        started = time.perf_counter()
        model, batches = fit_one(method, states, args.minutes, args.seed)
        evaluated = time.perf_counter()
        result = jump_errors(model, states, coordinates, trajectory, jumps, chained=method == "ode")
        result.update(batches=batches, evaluation_seconds=time.perf_counter() - evaluated)
        if method == "action-angle":
            with torch.no_grad():
                actions, _ = model.encode(states)
                learned = model.frequencies(actions).mean(dim=0).numpy()
            result["learned_wavenumbers_cm-1"] = angular_frequency_to_wavenumber(learned).tolist()
        entry[method] = result
        print(f"{label} {method}: {batches} batches, relative error " + " ".join(f"{j}:{e:.2g}" for j, e in zip(jumps, result["relative"]))
              + f" ({time.perf_counter() - started:.0f} s)", flush=True)
        (HERE / "results" / f"{args.temperature:g}K-{args.coordinates}.json").write_text(json.dumps(entry, indent=1))
    plot(args.grid_at)


def plot(grid_at: float) -> None:
    results = {}  # (temperature, coordinates) -> entry
    for path in (HERE / "results").glob("*K-*.json"):
        entry = json.loads(path.read_text())
        results[entry["temperature_K"], entry["coordinates"]] = entry
    if (grid_at, "normal-modes") not in results:
        return
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for axis, kind in zip(axes, ("normal-modes", "cartesian")):
        entry = results.get((grid_at, kind), {})
        for method in ("action-angle", "euler", "ode", "harmonic"):
            if method in entry:
                axis.loglog(entry["jumps_fs"], entry[method]["relative"], marker="o", label=method,
                            linestyle="--" if method == "harmonic" else "-")
        axis.axvspan(1, 10, color="0.9")
        axis.set_title(f"ethanol {grid_at:g} K, {kind}")
        axis.set_xlabel("jump (fs); 10 000 MD steps = 5000 fs; grey: training jumps")
        axis.legend()
    axes[0].set_ylabel("relative state error")
    figure.tight_layout()
    figure.savefig(HERE / "error_vs_jump.png", dpi=110)
    plt.close(figure)

    temperatures = sorted(t for t, kind in results if kind == "normal-modes")
    entry = results[grid_at, "normal-modes"]
    harmonic = np.array(entry["harmonic_wavenumbers_cm-1"])
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for temperature in temperatures:
        entry = results[temperature, "normal-modes"]
        md = np.array(entry["md_wavenumbers_cm-1"])
        axes[0].plot(harmonic, md - np.array(entry["verlet_harmonic_wavenumbers_cm-1"]), marker="o", linestyle="none",
                     label=f"{temperature:g} K")
        if "action-angle" in entry:
            difference = np.array(entry["action-angle"]["learned_wavenumbers_cm-1"]) - md
            inside = np.abs(difference) <= 80.0
            line, = axes[1].plot(harmonic[inside], difference[inside], marker="o", linestyle="none", label=f"{temperature:g} K")
            axes[1].plot(harmonic[~inside], np.clip(difference[~inside], -78.0, 78.0), marker="x", markersize=9, linestyle="none",
                         color=line.get_color())  # off the scale: x at the edge
    axes[1].set_ylim(-80.0, 80.0)
    axes[1].set_title("x: off the scale (the O-H stretch, learned at 210-340 cm$^{-1}$)", fontsize=9)
    axes[0].set_ylabel("MD - harmonic (Verlet 0.5 fs) frequency (cm$^{-1}$)")
    axes[1].set_ylabel("learned (action-angle, normal modes) - MD (cm$^{-1}$)")
    for axis in axes:
        axis.set_xlabel("harmonic frequency of the mode (cm$^{-1}$)")
        axis.axhline(0.0, color="0.5", linewidth=0.8)
        axis.legend()
    figure.tight_layout()
    figure.savefig(HERE / "frequencies.png", dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    main()
