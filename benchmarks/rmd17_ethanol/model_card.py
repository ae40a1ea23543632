"""Ship a finished rMD17 run as models/<name>/: the model, its config, log, learning curve and card.

    python model_card.py RUN_DIR STABILITY_JSON models/aspirin-rmd17 --molecule aspirin \
        --hardware "one thread of a shared 2-core AMD EPYC VM, torch 2.13.0 CPU"

RUN_DIR is a finished `mlpot train` directory of long.yaml or long_aspirin.yaml (best.model,
config.yaml, log.csv, learning_curve.png, test_metrics.json); STABILITY_JSON is what
md_stability.py wrote for RUN_DIR/best.model. Every number in the card is read from those files.
"""

import argparse
import csv
import json
import shutil
from datetime import date
from pathlib import Path

import yaml

RMD17_CITATION = "revised MD17 (rMD17, Christensen & von Lilienfeld 2020; PBE/def2-SVP, CC0)"
PUBLISHED_MACE = {"ethanol": (0.4, 2.1), "aspirin": (2.2, 6.6)}  # energy meV, forces meV/Å (MACE paper)


def load_run(run: Path) -> dict:
    missing = [name for name in ("best.model", "config.yaml", "log.csv", "test_metrics.json") if not (run / name).is_file()]
    if missing:
        raise SystemExit(f"{run} is not a finished run: no {', '.join(missing)}")
    with open(run / "log.csv") as stream:
        log = list(csv.DictReader(stream))
    return {
        "config": yaml.safe_load((run / "config.yaml").read_text()),
        "log": log,
        "test": json.loads((run / "test_metrics.json").read_text()),
    }


def best_epoch(log: list) -> int:
    return int(min(log, key=lambda row: float(row["valid_loss"]))["epoch"])


def card_text(name: str, molecule: str, run: dict, stability: dict, hardware: str, trained_on: str) -> str:
    model, training, log, test = run["config"]["model"], run["config"]["training"], run["log"], run["test"]
    hours = float(log[-1]["elapsed_s"]) / 3600.0
    energy, forces = test["energy"], test["forces"]
    mace_energy, mace_forces = PUBLISHED_MACE[molecule]
    stage_two = "no stage two" if training["stage_two_start"] is None else f"stage two from epoch {training['stage_two_start']}"
    verdict = "stable" if stability["stable"] else f"**not stable**: first failure at {stability['first_failure_ps']} ps"
    return f"""# {name} — model card

A potential for the {molecule} molecule, trained on {RMD17_CITATION} with the
long-run recipe (README, "Long runs: the recipe"). Written by
`benchmarks/rmd17_ethanol/model_card.py` from the run's own files.

| | |
|---|---|
| file | `{name}.model` (mlpot model format 1, {model['dtype']} weights; run it in float64 for MD) |
| elements | {', '.join(model['elements'])} |
| r_max | {model['r_max']} Å, {model['num_interactions']} interactions |
| architecture | MACE-style, hidden {model['hidden_irreps']}, max_ell {model['max_ell']}, correlation {model['correlation']}, radial MLP {model['radial_mlp']} |
| training data | 950 frames of `rmd17_{molecule}_train_01.npz` (50 more for validation; `benchmarks/rmd17_ethanol/prepare_data.py`), not shipped: `../shared/data/rmd17/` beside this repository, or the rMD17 archive on figshare (DOI 10.6084/m9.figshare.12672038) |
| training | {len(log)} epochs (best validation loss at epoch {best_epoch(log)}), {hours:.1f} h of training time, batch {training['batch_size']}, lr {training['lr']}, {training['scheduler']} schedule, EMA {training['ema_decay']}, {stage_two}; config `training-config.yaml`, log `log.csv`, curve `learning_curve.png` |
| hardware | {hardware}; trained {trained_on} |

Test errors on the 1000 frames of `rmd17_{molecule}_test_01.npz` (total energy per molecule,
force components):

| quantity | MAE | RMSE |
|---|---:|---:|
| energy | {energy['mae'] * 1000:.2f} meV | {energy['rmse'] * 1000:.2f} meV |
| forces | {forces['mae'] * 1000:.2f} meV/Å | {forces['rmse'] * 1000:.2f} meV/Å |

Published for comparison (MACE, long GPU training, 256 channels): energy {mace_energy} meV,
forces {mace_forces} meV/Å.

MD check (`benchmarks/rmd17_ethanol/md_stability.py`): from an rMD17 test geometry,
{stability.get('equilibration_ps', 0):g} ps of Langevin dynamics at {stability['temperature_K']:g} K, then
{stability['time_ps']:g} ps of NVE with {stability['timestep_fs']:g} fs steps in float64: {verdict}.
Mean NVE temperature {stability['temperature_mean_K']:.0f} K; largest bond-length deviation
{stability['max_bond_deviation_A']:.2f} Å ({stability['worst_bond']}; failure above 0.5 Å), closest
non-bonded pair {stability['closest_non_bonded_A']:.2f} Å; energy drift
{stability['drift_meV_per_atom_per_ps']:+.4f} meV/atom/ps, fluctuation {stability['fluctuation_meV_per_atom']:.2f} meV/atom.

Intended use: MD of one isolated {molecule} molecule in vacuum up to about 500 K (the rMD17
geometries come from 500 K DFT MD). Limits: no condensed phase, no other molecules, no bond
breaking or forming; E0s come from a least-squares fit over frames of a single composition,
so the per-element values in the model file have no meaning of their own (their sum does).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("stability", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--molecule", required=True, choices=sorted(PUBLISHED_MACE))
    parser.add_argument("--hardware", required=True)
    parser.add_argument("--trained-on", default=date.today().isoformat(), help="date(s) of training")
    args = parser.parse_args()
    run = load_run(args.run)
    stability = json.loads(args.stability.read_text())
    name = args.out.name
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.run / "best.model", args.out / f"{name}.model")
    shutil.copyfile(args.run / "config.yaml", args.out / "training-config.yaml")
    shutil.copyfile(args.run / "log.csv", args.out / "log.csv")
    shutil.copyfile(args.run / "learning_curve.png", args.out / "learning_curve.png")
    (args.out / "stability.json").write_text(json.dumps(stability, indent=2))
    (args.out / "README.md").write_text(card_text(name, args.molecule, run, stability, args.hardware, args.trained_on))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
