"""Fine-tuning an imported mace-torch model vs the same architecture from scratch (issue 30, point 5).

    MACE_VENV=.venv-mace python benchmarks/mace_finetune/run.py WORKDIR [--minutes 8] [--foundation-epochs 15]

1. "Foundation" model: mace-torch itself (``mace_run_train`` in MACE_VENV, one thread) trains a
   small MACE (32x0e+32x1o, max_ell 2, correlation 2, 2 interactions, r_max 5, float64) on the
   1000 frames of rMD17 ethanol split 01 (950 train, 50 valid); ``mlpot import mace`` converts it.
2. Target: rMD17 aspirin (same elements H, C, O): 50 training and 50 validation frames drawn
   (seed 0) from the aspirin training file, 500 test frames drawn from its test file.
3. Arms, each ``mlpot train`` under the same wall-time budget (``--minutes``, cosine_time
   schedule, so each ends annealed), one thread, two at a time side by side:
   zero-shot (the imported model, 0 epochs: only the E0s refitted), scratch (the imported
   model's architecture, fresh weights, normalisation from the aspirin frames, lr 0.01),
   finetune (``--init-from``, lr 0.001), replay (finetune + 50 ethanol frames per epoch via
   data.replay), freeze (finetune + training.freeze_layers 1), finetune-lr0.01 (finetune at
   scratch's learning rate).
4. Test errors of each arm's best.model (lowest validation loss): results.json and a table.

Every step is skipped when its output exists, so running the script again continues.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import yaml

from mlpot.models.io import read_model_file
from mlpot.train.finetune import ARCHITECTURE_KEYS

RMD17 = Path(__file__).resolve().parents[3] / "shared" / "data" / "rmd17"
ARMS = ("scratch", "finetune", "replay", "freeze", "zero-shot", "finetune-lr0.01")  # run in this order, two at a time
#: Computed from the training data for a model trained from scratch, kept from the parent when fine-tuning.
NORMALISATION = ("avg_num_neighbors", "scale", "shift")

MACE_ARGS = [
    "--name", "ethanol_foundation", "--train_file", "../ethanol_mace.xyz", "--valid_fraction", "0.05", "--E0s", "average",
    "--model", "MACE", "--hidden_irreps", "32x0e+32x1o", "--max_ell", "2", "--correlation", "2", "--num_interactions", "2",
    "--r_max", "5.0", "--batch_size", "10", "--valid_batch_size", "20", "--eval_interval", "2", "--lr", "0.01",
    "--ema", "--ema_decay", "0.99", "--energy_weight", "1", "--forces_weight", "100", "--default_dtype", "float64",
    "--device", "cpu", "--seed", "1", "--save_cpu",
]


def one_thread() -> Dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def mlpot(*arguments) -> List[str]:
    return [sys.executable, "-m", "mlpot.cli.main", *map(str, arguments)]


def frames(path: Path) -> List[str]:
    """The frames of an extxyz file, each as its text."""
    lines = path.read_text().splitlines(keepends=True)
    out, start = [], 0
    while start < len(lines):
        count = int(lines[start])
        out.append("".join(lines[start : start + count + 2]))
        start += count + 2
    return out


def prepare(work: Path) -> None:
    """extxyz files in eV: ethanol (and a copy with mace's REF_ keys), the aspirin splits."""
    for name in ("ethanol_train", "aspirin_train", "aspirin_test"):
        if not (work / f"{name}.xyz").is_file():
            subprocess.run(mlpot("data", "convert", RMD17 / f"rmd17_{name}_01.npz", work / f"{name}.xyz"), check=True, env=one_thread())
    text = (work / "ethanol_train.xyz").read_text()
    (work / "ethanol_mace.xyz").write_text(text.replace(" energy=", " REF_energy=").replace(":forces:R:3", ":REF_forces:R:3"))
    rng = np.random.default_rng(0)
    train = frames(work / "aspirin_train.xyz")
    order = rng.permutation(len(train))
    (work / "aspirin_50.xyz").write_text("".join(train[i] for i in order[:50]))
    (work / "aspirin_valid.xyz").write_text("".join(train[i] for i in order[50:100]))
    test = frames(work / "aspirin_test.xyz")
    (work / "aspirin_test_500.xyz").write_text("".join(test[i] for i in sorted(rng.permutation(len(test))[:500])))


def foundation(work: Path, epochs: int) -> Path:
    """mace-torch trains the ethanol model; mlpot imports it."""
    directory = work / "foundation"
    mace_model = directory / "ethanol_foundation.model"
    if not mace_model.is_file():
        directory.mkdir(exist_ok=True)
        venv = Path(os.environ["MACE_VENV"])
        with open(directory / "train.log", "w") as log:
            subprocess.run([str(venv / "bin" / "mace_run_train"), *MACE_ARGS, "--max_num_epochs", str(epochs)], cwd=directory,
                           env={**one_thread(), "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}, stdout=log, stderr=subprocess.STDOUT, check=True)
    imported = work / "foundation.mlpot.model"
    if not imported.is_file():
        subprocess.run(mlpot("import", "mace", mace_model, "-o", imported), check=True, env=one_thread())
    return imported


def arm_config(arm: str, work: Path, parent: Path, minutes: float) -> Dict:
    training = {"batch_size": 5, "valid_batch_size": 10, "max_epochs": 0 if arm == "zero-shot" else 100000,
                "max_time_minutes": minutes, "scheduler": "cosine_time", "energy_weight": 1.0, "forces_weight": 100.0,
                "ema_decay": 0.99, "seed": 123}
    data = {"train": str(work / "aspirin_50.xyz"), "valid": str(work / "aspirin_valid.xyz"), "test": str(work / "aspirin_test_500.xyz")}
    if arm == "scratch":
        architecture = read_model_file(parent)["config"]
        model = {key: architecture[key] for key in ARCHITECTURE_KEYS if key in architecture and key not in NORMALISATION}
        training["lr"] = 0.01
    else:
        model = {"init_from": str(parent)}  # lr: the fine-tuning default, 0.001
    if arm == "replay":
        data["replay"] = {"file": str(work / "ethanol_train.xyz"), "count": 50, "seed": 0}
    if arm == "freeze":
        training["freeze_layers"] = 1
    if arm == "finetune-lr0.01":
        training["lr"] = 0.01  # scratch's rate
    return {"data": data, "model": model, "training": training, "output": {"directory": str(work / arm)}}


def train_arms(work: Path, parent: Path, minutes: float) -> None:
    """Two arms at a time, one thread each."""
    pending = [arm for arm in ARMS if not (work / arm / "test_metrics.json").is_file()]
    for pair in (pending[i : i + 2] for i in range(0, len(pending), 2)):
        running = []
        for arm in pair:
            config = work / f"{arm}.yaml"
            config.write_text(yaml.safe_dump(arm_config(arm, work, parent, minutes)))
            log = open(work / f"{arm}.log", "w")
            running.append((arm, subprocess.Popen(mlpot("train", config), env=one_thread(), stdout=log, stderr=subprocess.STDOUT)))
        for arm, process in running:
            if process.wait() != 0:
                raise SystemExit(f"{arm} failed: see {work / arm}.log")


def report(work: Path) -> str:
    """results.json (each arm's test metrics and epochs) and a markdown table of test MAEs."""
    results, rows = {}, ["| arm | epochs | energy MAE (meV) | energy MAE (meV/atom) | forces MAE (meV/Å) |", "|---|---|---|---|---|"]
    for arm in ARMS:
        metrics = json.loads((work / arm / "test_metrics.json").read_text())
        log = (work / arm / "log.csv").read_text().splitlines() if (work / arm / "log.csv").is_file() else []
        epochs = max(len(log) - 1, 0)
        results[arm] = {"epochs": epochs, **metrics}
        rows.append(f"| {arm} | {epochs} | {1000 * metrics['energy']['mae']:.1f} | {1000 * metrics['energy/atom']['mae']:.2f} "
                    f"| {1000 * metrics['forces']['mae']:.1f} |")
    (work / "results.json").write_text(json.dumps(results, indent=2))
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--minutes", type=float, default=8.0, help="wall-time budget of each arm")
    parser.add_argument("--foundation-epochs", type=int, default=15)
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    prepare(work)
    parent = foundation(work, args.foundation_epochs)
    train_arms(work, parent, args.minutes)
    print(report(work))


if __name__ == "__main__":
    main()
