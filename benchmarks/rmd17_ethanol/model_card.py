"""Ship finished rMD17 runs as models/<name>/: the model, its configs, logs, learning curves and card.

    python model_card.py RUN_DIR STABILITY_JSON models/aspirin-rmd17 --molecule aspirin \
        --hardware "one thread of a shared 2-core AMD EPYC VM, torch 2.13.0 CPU"
    python model_card.py RUN_A RUN_B STABILITY_JSON models/ethanol-rmd17 --molecule ethanol \
        --test ethanol-data/test.xyz --hardware "..."

RUN_DIR is a finished `mlpot train` directory of long.yaml or long_aspirin.yaml (best.model,
config.yaml, log.csv, learning_curve.png, test_metrics.json). Several RUN_DIRs ship the
committee of their best.models (mean energy and forces, spread as uncertainty); its test errors
are computed here on --test, with the label keys of the first run's config. STABILITY_JSON is
what md_stability.py wrote for the shipped model file. Every number in the card is read from
those files or computed from them.
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
    config = yaml.safe_load((run / "config.yaml").read_text())
    return {"config": config, "log": log, "test": json.loads((run / "test_metrics.json").read_text()), "before": earlier_training(config)}


def earlier_training(config: dict) -> str:
    """What a run started from (model.init_from): that run's epochs and hours, read from its log.csv."""
    init_from = config["model"].get("init_from")
    if not init_from:
        return ""
    previous = Path(init_from).parent
    if not (previous / "log.csv").is_file():
        return f"; started from {init_from} (no log.csv beside it)"
    with open(previous / "log.csv") as stream:
        log = list(csv.DictReader(stream))
    hours = float(log[-1]["elapsed_s"]) / 3600.0
    return f"; started from {previous.name}'s {Path(init_from).name} after its {len(log)} epochs, {hours:.1f} h"


def best_epoch(log: list) -> int:
    return int(min(log, key=lambda row: float(row["valid_loss"]))["epoch"])


def committee_test_metrics(model_files: list, test_file: Path, label_keys: dict) -> dict:
    """The committee's test errors, in test_metrics.json's form (eV, eV/Å)."""
    import mlpot
    from mlpot.data.dataset import LabelKeys, read_labelled
    from mlpot.train.tasks.potential import evaluate_structures

    committee = mlpot.load_model(model_files)
    data = read_labelled(str(test_file), LabelKeys(**label_keys), require_energy=True)
    results, _ = evaluate_structures(committee, data, batch_size=25)
    return results


def member_row(index: int, run: dict) -> str:
    model, training, log, test = run["config"]["model"], run["config"]["training"], run["log"], run["test"]
    hours = float(log[-1]["elapsed_s"]) / 3600.0
    stage_two = "no stage two" if training["stage_two_start"] is None else f"stage two from {training['stage_two_start']}"
    return (
        f"| {index} | hidden {model['hidden_irreps']}, max_ell {model['max_ell']}, correlation {model['correlation']}, "
        f"{model['num_interactions']} interactions, radial MLP {model['radial_mlp']}, {model['dtype']} "
        f"| {len(log)} (best at {best_epoch(log)}), {hours:.1f} h; batch {training['batch_size']}, lr {training['lr']}, "
        f"{training['scheduler']}, EMA {training['ema_decay']}, {stage_two}{run['before']} "
        f"| {test['energy']['mae'] * 1000:.2f} | {test['forces']['mae'] * 1000:.2f} |"
    )


def card_text(name: str, molecule: str, runs: list, test: dict, stability: dict, hardware: str, trained_on: str) -> str:
    model = runs[0]["config"]["model"]
    energy, forces = test["energy"], test["forces"]
    mace_energy, mace_forces = PUBLISHED_MACE[molecule]
    verdict = "stable" if stability["stable"] else f"**not stable**: first failure at {stability['first_failure_ps']} ps"
    if len(runs) == 1:
        what = f"A potential for the {molecule} molecule"
        committee = ""
        files = "config `member-0-training-config.yaml`, log `member-0-log.csv`, curve `member-0-learning_curve.png`"
    else:
        what = f"A committee of {len(runs)} potentials for the {molecule} molecule"
        committee = (
            f"\nIt predicts the members' mean energy and forces (MD with it is conservative) and their spread\n"
            f"(`forces_std`, README \"Committees, uncertainty and fine-tuning\"); a force call costs the sum of its members'. It is\n"
            f"{len(runs)} models, not one: compare its errors with single models' with that in mind.\n"
        )
        files = "configs `member-K-training-config.yaml`, logs `member-K-log.csv`, curves `member-K-learning_curve.png`"
    members = "\n".join(member_row(index, run) for index, run in enumerate(runs))
    return f"""# {name} — model card

{what}, trained on {RMD17_CITATION} with the long-run recipe (README, "Long runs: the recipe").
Written by `benchmarks/rmd17_ethanol/model_card.py` from the runs' own files.
{committee}
| | |
|---|---|
| file | `{name}.model` (mlpot model format 1; run it in float64 for MD) |
| elements | {', '.join(model['elements'])} |
| r_max | {model['r_max']} Å |
| training data | 950 frames of `rmd17_{molecule}_train_01.npz` (50 more for validation; `benchmarks/rmd17_ethanol/prepare_data.py`), not shipped: `../shared/data/rmd17/` beside this repository, or the rMD17 archive on figshare (DOI 10.6084/m9.figshare.12672038) |
| files | {files} |
| hardware | {hardware}; trained {trained_on} |

| member | architecture | epochs, training time, recipe | test energy MAE alone (meV) | test force MAE alone (meV/Å) |
|---|---|---|---:|---:|
{members}

Test errors of `{name}.model` on the 1000 frames of `rmd17_{molecule}_test_01.npz` (total energy
per molecule, force components):

| quantity | MAE | RMSE |
|---|---:|---:|
| energy | {energy['mae'] * 1000:.2f} meV | {energy['rmse'] * 1000:.2f} meV |
| forces | {forces['mae'] * 1000:.2f} meV/Å | {forces['rmse'] * 1000:.2f} meV/Å |

Published for comparison (MACE, one model, long GPU training, 256 channels): energy {mace_energy} meV,
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
    parser.add_argument("runs", type=Path, nargs="+", help="finished run directories: one, or several for a committee")
    parser.add_argument("stability", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--molecule", required=True, choices=sorted(PUBLISHED_MACE))
    parser.add_argument("--test", type=Path, help="the test file (needed for a committee)")
    parser.add_argument("--hardware", required=True)
    parser.add_argument("--trained-on", default=date.today().isoformat(), help="date(s) of training")
    args = parser.parse_args()
    runs = [load_run(run) for run in args.runs]
    model_files = [str(run / "best.model") for run in args.runs]
    name = args.out.name
    if len(runs) == 1:
        test = runs[0]["test"]
    elif args.test is None:
        raise SystemExit("a committee needs --test: its errors are computed here")
    else:
        test = committee_test_metrics(model_files, args.test, runs[0]["config"]["data"].get("keys") or {})
    stability = json.loads(args.stability.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    if len(runs) == 1:
        shutil.copyfile(model_files[0], args.out / f"{name}.model")
    else:
        import mlpot

        mlpot.save_model(mlpot.load_model(model_files), args.out / f"{name}.model")
    for index, run in enumerate(args.runs):
        shutil.copyfile(run / "config.yaml", args.out / f"member-{index}-training-config.yaml")
        shutil.copyfile(run / "log.csv", args.out / f"member-{index}-log.csv")
        shutil.copyfile(run / "learning_curve.png", args.out / f"member-{index}-learning_curve.png")
    (args.out / "test_metrics.json").write_text(json.dumps(test, indent=2) + "\n")
    (args.out / "stability.json").write_text(json.dumps(stability, indent=2) + "\n")
    (args.out / "README.md").write_text(card_text(name, args.molecule, runs, test, stability, args.hardware, args.trained_on))
    print(f"wrote {args.out}: test force MAE {test['forces']['mae'] * 1000:.2f} meV/Å")


if __name__ == "__main__":
    main()
