"""Fine-tuning an imported mace-torch model vs the same architecture from scratch (issue 30, point 5).

    OMP_NUM_THREADS=1 python benchmarks/mace_finetune/make_target.py WORKDIR --worker K --workers N   # optional: the target data
    MACE_VENV=.venv-mace python benchmarks/mace_finetune/run.py WORKDIR [--minutes 7] [--foundation-epochs 40]

1. Foundation: mace-torch itself (``mace_run_train`` in MACE_VENV, one thread) trains MACE
   (32x0e+32x1o, max_ell 2, correlation 2, 2 interactions, r_max 5, float64) on 500 ethanol + 500
   aspirin frames of the rMD17 training splits (seed 0; 5% of them mace's validation set);
   ``mlpot import mace`` converts it. rMD17 is PBE/def2-SVP.
2. Target: acetic acid at PBE/def2-SVP (make_target.py: PySCF, normal-mode sampling at 500 K),
   a molecule the foundation has not seen; without its frames in WORKDIR, the shipped copy
   ``acetic_acid_pbe_def2svp.xyz`` (all 250, 230 kB). Frames 0-49 train, 50-64 validation, 65 onwards test
   (every frame labelled when the report is made: the labelling may still run beside the arms).
3. Arms, each ``mlpot train`` under the same wall-time budget (``--minutes``, cosine_time
   schedule, so each ends annealed), one thread, three at a time side by side:
   zero-shot (the imported model, 0 epochs: only the E0s fitted), then the groups
   (scratch, finetune, finetune-lr0.001) and (lora, replay, freeze). scratch: the imported
   model's architecture, fresh weights, normalisation from the target frames, lr 0.01.
   finetune: ``model.init_from``, lr 0.01; finetune-lr0.001: the same at mlpot's fine-tuning
   default. lora: rank-4 adapters on every linear, base weights fixed, lr 0.01. replay:
   + 50 foundation training frames per epoch (``data.replay``); freeze: + the embedding and first
   layer fixed (``training.freeze_layers: 1``); both at the learning rate of the better plain
   fine-tune (lower best validation loss).
4. Report: each arm's best.model (lowest validation loss) on the test frames, evaluated here,
   and its force error on 50 + 50 frames of the rMD17 ethanol and aspirin test splits (what
   fine-tuning forgets; energies there are not compared, the E0s having moved): results.json, a
   table of test errors and one of validation force MAE against epochs.

Every step is skipped when its output exists, so running the script again continues.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
import yaml
from ase import Atoms

import mlpot
from mlpot.data import keys
from mlpot.data.dataset import make_loader, read_labelled
from mlpot.data.extxyz import write_extxyz
from mlpot.data.graph import graph_to_inputs
from mlpot.models.io import read_model_file
from mlpot.train.finetune import ARCHITECTURE_KEYS

RMD17 = Path(__file__).resolve().parents[3] / "shared" / "data" / "rmd17"
SHIPPED_TARGET = Path(__file__).resolve().parent / "acetic_acid_pbe_def2svp.xyz"  # make_target.py's 250 frames
GROUPS = (("scratch", "finetune", "finetune-lr0.001"), ("lora", "replay", "freeze"))  # run side by side
ARMS = ("zero-shot",) + tuple(arm for group in GROUPS for arm in group)
TRAIN, VALID = range(0, 50), range(50, 65)  # target frame indices; the test set is every later one
EPOCHS_SHOWN = (0, 5, 10, 20, 30, 40, 60)
#: Computed from the training data for a model trained from scratch, kept from the parent when fine-tuning.
NORMALISATION = ("avg_num_neighbors", "scale", "shift")

MACE_ARGS = [
    "--name", "foundation", "--train_file", "../foundation_mace.xyz", "--valid_fraction", "0.05", "--E0s", "average",
    "--model", "MACE", "--hidden_irreps", "32x0e+32x1o", "--max_ell", "2", "--correlation", "2", "--num_interactions", "2",
    "--r_max", "5.0", "--batch_size", "10", "--valid_batch_size", "20", "--eval_interval", "1", "--lr", "0.01",
    "--ema", "--ema_decay", "0.99", "--energy_weight", "1", "--forces_weight", "100", "--default_dtype", "float64",
    "--device", "cpu", "--seed", "1", "--save_cpu",
]


def one_thread() -> Dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def mlpot_command(*arguments) -> List[str]:
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


def prepare_foundation_data(work: Path) -> None:
    """500 + 500 frames of the rMD17 ethanol and aspirin training splits (eV), and a copy with mace's REF_ keys."""
    if (work / "foundation_mace.xyz").is_file():
        return
    text = "".join(rmd17_sample(work, "train", 500))
    (work / "foundation_train.xyz").write_text(text)
    (work / "foundation_mace.xyz").write_text(text.replace(" energy=", " REF_energy=").replace(":forces:R:3", ":REF_forces:R:3"))


def foundation(work: Path, epochs: int) -> Path:
    """mace-torch trains the foundation; mlpot imports it."""
    directory = work / "foundation"
    mace_model = directory / "foundation.model"
    if not mace_model.is_file():
        directory.mkdir(exist_ok=True)
        venv = Path(os.environ["MACE_VENV"])
        with open(directory / "train.log", "a") as log:
            subprocess.run([str(venv / "bin" / "mace_run_train"), *MACE_ARGS, "--max_num_epochs", str(epochs)], cwd=directory,
                           env={**one_thread(), "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}, stdout=log, stderr=subprocess.STDOUT, check=True)
    imported = work / "foundation.mlpot.model"
    if not imported.is_file():
        subprocess.run(mlpot_command("import", "mace", mace_model, "-o", imported), check=True, env=one_thread())
    return imported


def target_frames(work: Path) -> List[Atoms]:
    """The labelled acetic acid frames (make_target.py), in order, up to the first one not yet labelled;
    without make_target.py's frames in ``work``, the shipped copy of all 250."""
    if not (work / "target" / "frames").is_dir():
        shipped = read_labelled(SHIPPED_TARGET)
        return [(Atoms(atoms.numbers, atoms.positions), {"energy": label.energy}, {"forces": label.forces})
                for atoms, label in zip(shipped.structures, shipped.labels)]
    out = []
    while (path := work / "target" / "frames" / f"{len(out):04d}.npz").is_file():
        saved = np.load(path)
        atoms = Atoms("CCOOHHHH", positions=saved["positions"])
        out.append((atoms, {"energy": float(saved["energy"])}, {"forces": saved["forces"]}))
    return out


def write_splits(work: Path) -> None:
    labelled = target_frames(work)
    if len(labelled) <= VALID[-1]:
        raise SystemExit(f"only {len(labelled)} target frames are labelled; train and validation need {VALID[-1] + 1}")
    for name, indices in (("train", TRAIN), ("valid", VALID), ("test", range(VALID[-1] + 1, len(labelled)))):
        write_extxyz(work / f"target_{name}.xyz", [labelled[i] for i in indices])


def prepare_foundation_test(work: Path) -> Path:
    """50 + 50 frames of the rMD17 ethanol and aspirin test splits (seed 0): what fine-tuning may forget."""
    path = work / "foundation_test.xyz"
    if not path.is_file():
        path.write_text("".join(rmd17_sample(work, "test", 50)))
    return path


def rmd17_sample(work: Path, split: str, count: int) -> List[str]:
    """``count`` frames (extxyz text, eV) of each of rMD17's ethanol and aspirin ``split``, drawn with seed 0."""
    rng = np.random.default_rng(0)
    chosen = []
    for name in (f"ethanol_{split}", f"aspirin_{split}"):
        if not (work / f"{name}.xyz").is_file():
            subprocess.run(mlpot_command("data", "convert", RMD17 / f"rmd17_{name}_01.npz", work / f"{name}.xyz"), check=True, env=one_thread())
        available = frames(work / f"{name}.xyz")
        chosen += [available[i] for i in sorted(rng.permutation(len(available))[:count])]
    return chosen


def best_validation_loss(work: Path, arm: str) -> float:
    with open(work / arm / "log.csv") as stream:
        return min(float(row["valid_loss"]) for row in csv.DictReader(stream))


def arm_config(arm: str, work: Path, parent: Path, minutes: float) -> Dict:
    training = {"batch_size": 5, "valid_batch_size": 10, "max_epochs": 0 if arm == "zero-shot" else 100000,
                "max_time_minutes": minutes, "scheduler": "cosine_time", "energy_weight": 1.0, "forces_weight": 100.0,
                "ema_decay": 0.99, "seed": 123, "lr": 0.01}
    data = {"train": str(work / "target_train.xyz"), "valid": str(work / "target_valid.xyz")}
    if arm == "scratch":
        architecture = read_model_file(parent)["config"]
        model = {key: architecture[key] for key in ARCHITECTURE_KEYS if key in architecture and key not in NORMALISATION}
    else:
        model = {"init_from": str(parent)}
    if arm == "finetune-lr0.001":
        training["lr"] = 0.001
    if arm == "lora":
        training["lora"] = {"rank": 4}
    if arm in ("replay", "freeze"):  # the better plain fine-tune's rate
        better = min(("finetune", "finetune-lr0.001"), key=lambda name: best_validation_loss(work, name))
        training["lr"] = 0.001 if better == "finetune-lr0.001" else 0.01
    if arm == "replay":
        data["replay"] = {"file": str(work / "foundation_train.xyz"), "count": 50, "seed": 0}
    if arm == "freeze":
        training["freeze_layers"] = 1
    return {"data": data, "model": model, "training": training, "output": {"directory": str(work / arm)}}


def train_arms(work: Path, parent: Path, minutes: float) -> None:
    """Zero-shot, then the groups, their arms side by side, one thread each."""
    for group in (("zero-shot",),) + GROUPS:
        running = []
        for arm in group:
            if (work / arm / "final.model").is_file():
                continue
            config = work / f"{arm}.yaml"
            config.write_text(yaml.safe_dump(arm_config(arm, work, parent, minutes)))
            log = open(work / f"{arm}.log", "w")
            running.append((arm, subprocess.Popen(mlpot_command("train", config), env=one_thread(), stdout=log, stderr=subprocess.STDOUT)))
        for arm, process in running:
            if process.wait() != 0:
                raise SystemExit(f"{arm} failed: see {work / arm}.log")


def test_errors(model_path: Path, test_path: Path) -> Dict[str, float]:
    """MAE of energy (eV and eV/atom) and force components (eV/Å) over the test frames."""
    model = mlpot.load_model(model_path)
    data = read_labelled(test_path)
    energy, per_atom, forces = [], [], []
    for batch in make_loader(data.graphs(model.r_max, torch.float64), batch_size=10, shuffle=False):
        out = model(graph_to_inputs(batch), compute_forces=True)
        atoms = torch.bincount(batch[keys.BATCH]).to(torch.float64)
        error = (out[keys.ENERGY] - batch[keys.ENERGY]).detach()
        energy.append(error.abs())
        per_atom.append((error / atoms).abs())
        forces.append((out[keys.FORCES] - batch[keys.FORCES]).detach().abs().flatten())
    return {"energy_mae": float(torch.cat(energy).mean()), "energy_per_atom_mae": float(torch.cat(per_atom).mean()),
            "forces_mae": float(torch.cat(forces).mean()), "frames": len(data.structures)}


def report(work: Path) -> str:
    """results.json and two markdown tables: test errors, validation force MAE against epochs."""
    write_splits(work)  # the test set grows while the labelling runs
    results = {}
    foundation_test = prepare_foundation_test(work)
    rows = ["| arm | lr | epochs | energy MAE (meV) | energy MAE (meV/atom) | forces MAE (meV/Å) | ethanol + aspirin forces MAE (meV/Å) |",
            "|---|---|---|---|---|---|---|"]
    curves = [f"| arm | {' | '.join(f'epoch {e}' for e in EPOCHS_SHOWN)} | last |", "|---|" + "---|" * (len(EPOCHS_SHOWN) + 1)]
    for arm in ARMS:
        log = list(csv.DictReader(open(work / arm / "log.csv"))) if (work / arm / "log.csv").is_file() else []
        model = work / arm / ("best.model" if log else "final.model")
        lr = yaml.safe_load((work / f"{arm}.yaml").read_text())["training"]["lr"]
        results[arm] = {"epochs": len(log), "lr": lr, **test_errors(model, work / "target_test.xyz"),
                        "foundation_test_forces_mae": test_errors(model, foundation_test)["forces_mae"]}
        r = results[arm]
        rows.append(f"| {arm} | {lr if arm != 'zero-shot' else '-'} | {len(log)} | {1000 * r['energy_mae']:.1f} | "
                    f"{1000 * r['energy_per_atom_mae']:.2f} | {1000 * r['forces_mae']:.1f} | {1000 * r['foundation_test_forces_mae']:.1f} |")
        if log:
            cells = [f"{1000 * float(log[e]['valid_forces_mae']):.0f}" if e < len(log) else "" for e in EPOCHS_SHOWN]
            curves.append(f"| {arm} | {' | '.join(cells)} | {1000 * float(log[-1]['valid_forces_mae']):.0f} ({len(log) - 1}) |")
    (work / "results.json").write_text(json.dumps(results, indent=2))
    return "\n".join(rows + [""] + curves) + f"\n\ntest frames: {results['zero-shot']['frames']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--minutes", type=float, default=7.0, help="wall-time budget of each arm")
    parser.add_argument("--foundation-epochs", type=int, default=40)
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    prepare_foundation_data(work)
    parent = foundation(work, args.foundation_epochs)
    write_splits(work)
    train_arms(work, parent, args.minutes)
    print(report(work))


if __name__ == "__main__":
    main()
