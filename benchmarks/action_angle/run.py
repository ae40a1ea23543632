"""Action-Angle Network vs Euler-update network vs neural ODE on the toy systems of issue 33.

Every model is trained on the same pairs (jumps 1-10 time units, frames every 0.1 from t = 0 to
100 of one exact trajectory) for the same wall-clock budget on one thread, then predicts jumps of
1, 2, 5, 10, 20 and 50 time units from start frames in the unseen stretch t = 100-300. Also
measured: the cost of one prediction against the jump, the learned frequencies against the exact
ones; then where the method stops working: the Action-Angle Network alone on Kepler orbits of
growing eccentricity, and all three models on a regular and a chaotic Henon-Heiles orbit. Writes
results.json and action_angle.png next to this file (or to --out).

    OMP_NUM_THREADS=1 python benchmarks/action_angle/run.py --minutes 2
"""

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Dict, List

import torch

from mlpot.dynamics.action_angle import ActionAngleNetwork
from mlpot.dynamics.baselines import EulerUpdateNetwork, NeuralODE
from mlpot.dynamics.systems import CoupledOscillators, HenonHeiles, KeplerOrbit, uniform_times
from mlpot.dynamics.training import PairData, fit, prediction_error

JUMPS = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0]
STEP = 0.1
TRAIN_END = 100.0
DURATION = 300.0
MODELS = {"action-angle": ActionAngleNetwork, "euler-update": EulerUpdateNetwork, "neural-ODE": NeuralODE}


def cost_per_prediction(model: torch.nn.Module, state: torch.Tensor, repeats: int) -> Dict[float, float]:
    """Fastest of ``repeats`` timings of one prediction (batch of 1) per jump: the least disturbed by other load."""
    costs = {}
    with torch.no_grad():
        for jump in JUMPS:
            dt = torch.tensor([jump], dtype=torch.float64)
            samples = []
            for _ in range(repeats):
                start = time.perf_counter()
                model(state[None], dt)
                samples.append(time.perf_counter() - start)
            costs[jump] = min(samples)
    return costs


def mean_frequencies(model: ActionAngleNetwork, states: torch.Tensor) -> List[float]:
    """The learned omega(I) of each latent pair averaged over ``states`` [T, 2n], ascending."""
    with torch.no_grad():
        actions, _ = model.encode(states)
        return sorted(model.frequencies(actions).mean(dim=0).tolist())


def run_case(name: str, times: torch.Tensor, states: torch.Tensor, args, model_names: List[str]) -> Dict:
    """Train each model on the first TRAIN_END time units, test on the rest; returns errors, costs, frequencies."""
    split = round(TRAIN_END / STEP) + 1
    train, test, test_times = states[:split], states[split - 1 :], times[split - 1 :]
    num_dof = states.shape[1] // 2
    case: Dict = {}
    for model_name in model_names:
        model = MODELS[model_name](num_dof, hidden=args.hidden, layers=args.layers)
        history = fit(model, PairData(train, STEP), (1.0, 10.0), minutes=args.minutes, lr=args.lr, seed=args.seed)
        model.eval()
        result = {
            "batches": len(history["loss"]),
            "final_loss": statistics.mean(history["loss"][-20:]),
            "error": prediction_error(model, test, test_times, JUMPS),
            "train_error": prediction_error(model, train, times[:split], [1.0, 10.0]),
            "cost_s": cost_per_prediction(model, test[0], args.repeats),
        }
        if isinstance(model, ActionAngleNetwork):
            result["frequencies"] = mean_frequencies(model, train)
        case[model_name] = result
        print(name, model_name, json.dumps(result), flush=True)
    return case


def plot(results: Dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(16, 9))
    axes = axes.ravel()
    error_panels = [(0, "oscillators"), (1, "kepler e=0.5"), (4, "henon-heiles regular"), (5, "henon-heiles chaotic")]
    for axis, case in [(axes[i], name) for i, name in error_panels]:
        for model_name, result in results[case]["models"].items():
            axis.plot(JUMPS, [result["error"][str(j)] for j in JUMPS], "o-", label=model_name)
        axis.axvspan(1, 10, color="0.9", label="trained jumps")
        title = case if "henon" not in case else f"{case} (lambda = {results[case]['lyapunov']:.3f})"
        axis.set(xscale="log", yscale="log", xlabel="jump (time units)", ylabel="relative RMS error", title=title)
        axis.legend()
    for model_name, result in results["oscillators"]["models"].items():
        axes[2].plot(JUMPS, [1e3 * result["cost_s"][str(j)] for j in JUMPS], "o-", label=model_name)
    axes[2].set(xscale="log", yscale="log", xlabel="jump (time units)", ylabel="ms per prediction", title="cost (oscillators)")
    axes[2].legend()
    for e, result in sorted(results["eccentricity scan"].items()):
        axes[3].plot(JUMPS, [result["error"][str(j)] for j in JUMPS], "o-", label=f"e = {e}")
    axes[3].set(xscale="log", yscale="log", xlabel="jump (time units)", ylabel="relative RMS error", title="action-angle, Kepler")
    axes[3].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="training wall time per model")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=30, help="timings per jump for the cost")
    parser.add_argument("--eccentricities", type=float, nargs="*", default=[0.7, 0.9, 0.97])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    torch.set_num_threads(1)
    times = uniform_times(DURATION, STEP)
    results: Dict = {"settings": vars(args) | {"out": str(args.out)}}

    oscillators = CoupledOscillators(masses=(1.0, 2.0, 1.5), springs=(1.0, 0.5, 0.8, 1.5))
    _, states = oscillators.random_trajectory(DURATION, STEP, seed=args.seed)
    models = run_case("oscillators", times, states, args, list(MODELS))
    exact = oscillators.normal_mode_frequencies().tolist()
    learned = models["action-angle"]["frequencies"]
    results["oscillators"] = {
        "models": models,
        "exact_frequencies": exact,
        "frequency_relative_error": [abs(w - w0) / w0 for w, w0 in zip(learned, exact)],
    }

    kepler = KeplerOrbit(eccentricity=0.5)
    models = run_case("kepler e=0.5", times, kepler.trajectory(times, 0.3), args, list(MODELS))
    results["kepler e=0.5"] = {"models": models, "mean_motion": kepler.mean_motion()}

    scan = {0.5: models["action-angle"]}
    for e in args.eccentricities:
        orbit = KeplerOrbit(eccentricity=e)
        scan[e] = run_case(f"kepler e={e}", times, orbit.trajectory(times, 0.3), args, ["action-angle"])["action-angle"]
    results["eccentricity scan"] = scan

    henon_heiles = HenonHeiles()
    for regime, energy, y in [("regular", 1.0 / 12.0, 0.1), ("chaotic", 1.0 / 6.0, -0.1)]:
        state0 = henon_heiles.initial_state(energy, y)
        name = f"henon-heiles {regime}"
        models = run_case(name, times, henon_heiles.trajectory(times, state0), args, list(MODELS))
        results[name] = {
            "models": models,
            "energy": energy,
            "initial_state": state0.tolist(),
            "lyapunov": henon_heiles.lyapunov_exponent(state0),
        }

    args.out.mkdir(parents=True, exist_ok=True)
    # json turns the float keys (jumps, eccentricities) into strings; the plot reads them back that way
    results = json.loads(json.dumps(results))
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    plot(results, args.out / "action_angle.png")


if __name__ == "__main__":
    main()
