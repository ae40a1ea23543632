"""Active learning on rMD17 ethanol: frames chosen by a committee's disagreement vs random frames.

    python benchmarks/active_learning/run.py WORKDIR [--cycles 3] [--start 50] [--add 50]

Both arms start from one committee of 3 trained from scratch on 50 frames of the 950 training
frames (split 01). Each cycle, per arm:

1. committee MD: `mlpot md` at 500 K (Langevin, 1 ps) with the current committee, logging the
   largest per-atom force spread (rMD17 has no reference calculator, so MD frames cannot be
   labelled; they show how far the committee trusts itself where the dynamics goes);
2. 50 new frames from the pool of unused training frames: `mlpot select --diverse` (largest
   spread, made diverse in the model's features) for the active arm, a seeded random draw for
   the random arm;
3. the committee is fine-tuned on all frames chosen so far (`model.init_from` of the committee:
   member k continues from member k) and tested on the 1000 test frames, with the Spearman rank
   correlation of the per-atom force spread against the per-atom force error and the 99th
   percentile of the per-atom force error (the tail, where selection by disagreement should
   help most).

Then member 0 of the last active committee is trained from scratch on the same frames, to
compare the time to reach the fine-tuned model's validation force error. Every `mlpot train`
resumes, so running the script again continues where it stopped. Results: results.json in
WORKDIR and a table on stdout (report.py prints it again).
"""

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
from ase.io import read

from mlpot.data.dataset import LabelKeys, LabelledStructures, read_labelled
from mlpot.data.extxyz import as_frame, write_extxyz
from mlpot.models.io import load_model
from mlpot.train.tasks.potential import evaluate_structures

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ARMS = ("active", "random")


def mlpot(*arguments: str) -> None:
    """Run an mlpot command (the same executable as this Python), failing loudly."""
    command = [sys.executable, "-m", "mlpot.cli.main", *map(str, arguments)]
    print("$ mlpot " + " ".join(map(str, arguments)), flush=True)
    subprocess.run(command, check=True)


def train(directory: Path, frames: Path, work: Path, parent: Path = None, epochs: int = None, committee: int = 3) -> float:
    """Train (or fine-tune from ``parent``) a committee into ``directory``; wall seconds taken."""
    if (directory / "best.model").is_file():
        return json.loads((directory / "timing.json").read_text())["seconds"]
    settings = [f"data.train={frames}", f"data.valid={work / 'valid.xyz'}", f"data.test={work / 'test.xyz'}",
                f"output.directory={directory}", f"training.committee={committee}"]
    if parent is not None:
        settings += [f"model.init_from={parent}"]
    if epochs is not None:
        settings += [f"training.max_epochs={epochs}"]
    start = time.perf_counter()
    mlpot("train", HERE / "committee.yaml", *[item for setting in settings for item in ("--set", setting)])
    seconds = time.perf_counter() - start
    (directory / "timing.json").write_text(json.dumps({"seconds": seconds}))
    return seconds


def committee_md(model: Path, start: Path, directory: Path, seed: int) -> Dict[str, float]:
    """1 ps of 500 K Langevin MD with the committee: the largest and median logged force spread."""
    log = directory / "md.csv"
    if not log.is_file():
        mlpot("md", "--model", model, "--structure", start, "--ensemble", "nvt", "--temperature", 500,
              "--timestep", 0.5, "--steps", 2000, "--interval", 20, "--seed", seed,
              "--output", directory / "md.xyz", "--log", log)
    spread = np.array([float(row["max_force_std_eV_per_A"]) for row in csv.DictReader(open(log))])
    return {"md_max_force_std": float(spread.max()), "md_median_force_std": float(np.median(spread))}


def choose(arm: str, model: Path, pool: List[int], frames: list, count: int, directory: Path, seed: int) -> List[int]:
    """Indices (into ``frames``) of the ``count`` pool frames this arm labels next."""
    if arm == "random":
        return sorted(np.random.default_rng(seed).choice(pool, count, replace=False).tolist())
    pool_file = directory / "pool.xyz"
    write_extxyz(pool_file, [as_frame(frames[i]) for i in pool])
    scores = directory / "scores.csv"
    if not scores.is_file():
        mlpot("select", "--model", model, "--pool", pool_file, "-n", count, "--diverse",
              "-o", directory / "selected.xyz", "--scores", scores)
    chosen = [int(row["frame"]) for row in csv.DictReader(open(scores)) if row["selected"] == "1"]
    return sorted(pool[i] for i in chosen)


def test_errors(directory: Path, test: LabelledStructures) -> Dict[str, float]:
    """The committee's test errors (from its run) and the tail of its per-atom force errors."""
    metrics = json.loads((directory / "test_metrics.json").read_text())
    _, predictions = evaluate_structures(load_model(directory / "best.model"), test, 50)
    errors = np.concatenate([np.linalg.norm(frame["forces"] - label.forces, axis=1) for frame, label in zip(predictions, test.labels)])
    return {
        "test_forces_mae_mev_per_a": 1e3 * metrics["forces"]["mae"],
        "test_forces_rmse_mev_per_a": 1e3 * metrics["forces"]["rmse"],
        "test_force_error_p99_mev_per_a": 1e3 * float(np.percentile(errors, 99)),
        "test_energy_mae_mev": 1e3 * metrics["energy"]["mae"],
        "spearman_force_spread_vs_error": metrics["calibration_forces"]["spearman"],
    }


def log_rows(run: Path) -> List[Dict[str, str]]:
    return list(csv.DictReader(open(run / "log.csv")))


def time_to_reach(log: Path, target: float) -> float:
    """Seconds until the validation force MAE (eV/Å) first reached ``target``; inf if never."""
    for row in csv.DictReader(open(log)):
        if float(row["valid_forces_mae"]) <= target:
            return float(row["elapsed_s"])
    return float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--start", type=int, default=50, help="frames of the first committee")
    parser.add_argument("--add", type=int, default=50, help="frames labelled per cycle")
    parser.add_argument("--fine-tune-epochs", type=int, default=30)
    parser.add_argument("--scratch-epochs", type=int, default=150)
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "test.xyz").is_file():
        subprocess.run([sys.executable, ROOT / "benchmarks" / "rmd17_ethanol" / "prepare_data.py", work], check=True)
    frames = read(work / "train.xyz", ":")
    test = read_labelled(work / "test.xyz", LabelKeys(energy="REF_energy", forces="REF_forces"))
    order = np.random.default_rng(0).permutation(len(frames)).tolist()
    start_frames = sorted(order[: args.start])
    write_extxyz(work / "start.xyz", [as_frame(frames[start_frames[0]])])

    first = work / "cycle-0"
    first.mkdir(exist_ok=True)
    write_extxyz(first / "train.xyz", [as_frame(frames[i]) for i in start_frames])
    seconds = train(first / "committee", first / "train.xyz", work)
    shared = {"cycle": 0, "train_frames": len(start_frames), "train_seconds": seconds, **test_errors(first / "committee", test)}
    results = {arm: [dict(shared)] for arm in ARMS}

    for arm in ARMS:
        labelled, parent = list(start_frames), first / "committee"
        for cycle in range(1, args.cycles + 1):
            directory = work / arm / f"cycle-{cycle}"
            directory.mkdir(parents=True, exist_ok=True)
            row = {"cycle": cycle, **committee_md(parent / "best.model", work / "start.xyz", directory, cycle)}
            taken = set(labelled)
            pool = [i for i in order if i not in taken]
            labelled += choose(arm, parent / "best.model", pool, frames, args.add, directory, seed=cycle)
            write_extxyz(directory / "train.xyz", [as_frame(frames[i]) for i in sorted(labelled)])
            row["train_frames"] = len(labelled)
            row["train_seconds"] = train(directory / "committee", directory / "train.xyz", work, parent / "best.model", args.fine_tune_epochs)
            row.update(test_errors(directory / "committee", test))
            results[arm].append(row)
            parent = directory / "committee"

    last = work / "active" / f"cycle-{args.cycles}" / "committee"
    target = min(float(r["valid_forces_mae"]) for r in log_rows(last / "member-0"))
    scratch = work / "scratch"
    train(scratch, last.parent / "train.xyz", work, epochs=args.scratch_epochs, committee=1)
    chain = [first / "committee" / "member-0"] + [work / "active" / f"cycle-{c}" / "committee" / "member-0" for c in range(1, args.cycles + 1)]
    results["fine_tune_vs_scratch"] = {
        "train_frames": results["active"][-1]["train_frames"],
        "target_valid_forces_mae_mev_per_a": 1e3 * target,
        "fine_tune_last_cycle_seconds": time_to_reach(last / "member-0" / "log.csv", target),
        "fine_tune_all_cycles_seconds": sum(float(log_rows(d)[-1]["elapsed_s"]) for d in chain[:-1])
        + time_to_reach(last / "member-0" / "log.csv", target),
        "scratch_seconds": time_to_reach(scratch / "log.csv", target),
        "scratch_epochs": len(log_rows(scratch)),
        "scratch_best_valid_forces_mae_mev_per_a": 1e3 * min(float(r["valid_forces_mae"]) for r in log_rows(scratch)),
    }
    (work / "results.json").write_text(json.dumps(results, indent=1))
    subprocess.run([sys.executable, HERE / "report.py", work / "results.json"], check=True)


if __name__ == "__main__":
    main()
