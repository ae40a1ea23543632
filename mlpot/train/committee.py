"""``training.committee: K``: train K members one after another into one committee model.

Member k is an ordinary run with seed ``seed + k`` (and, with ``training.bootstrap``, its own
resample of the training set) in ``<output>/member-k``, so each resumes like any run and a
finished member is skipped when the command is run again. The output directory then holds
``best.model`` and ``final.model`` as committees of the members' best and final models, and the
committee's test errors and force-spread calibration (``test_metrics.json``, ``plots/``).
"""

import copy
import json
from pathlib import Path
from typing import Any, Dict

import yaml

from mlpot.data.dataset import LabelKeys, read_labelled
from mlpot.config import parse_section
from mlpot.models.io import load_model, save_model
from mlpot.train.config import TrainConfig
from mlpot.train.distributed import ProcessGroup
from mlpot.train.trainer import REQUESTED, Trainer, claim_output_directory


def member_requested(requested: Dict[str, Any], k: int, seed: int, directory: Path) -> Dict[str, Any]:
    """The requested config of member k (what its directory remembers to recognise the run)."""
    member = copy.deepcopy(requested)
    training = member.setdefault("training", {})
    training["seed"] = seed
    training["committee"] = 1
    training.pop("bootstrap", None)
    member.setdefault("output", {})["directory"] = str(directory)
    return member


def train_committee(config: TrainConfig, requested: Dict[str, Any], group: ProcessGroup) -> Path:
    output = Path(config.output.directory)
    claim_output_directory(output, requested)
    if group.is_main:
        output.mkdir(parents=True, exist_ok=True)
        (output / REQUESTED).write_text(yaml.safe_dump(requested, sort_keys=False))
    size = config.training.committee
    for k in range(size):
        seed = config.training.seed + k
        directory = output / f"member-{k}"
        member = copy.deepcopy(config)
        member.training.seed = seed
        member.training.committee = 1
        member.output.directory = str(directory)
        if group.is_main:
            print(f"committee member {k + 1} of {size} (seed {seed}) in {directory}", flush=True)
        Trainer(member, member_requested(requested, k, seed, directory), group,
                bootstrap_seed=seed if config.training.bootstrap else None).run()
    group.barrier()
    if group.is_main:
        _assemble(config, output, size)
    return output


def _assemble(config: TrainConfig, output: Path, size: int) -> None:
    members = [output / f"member-{k}" for k in range(size)]
    for name in ("best.model", "final.model"):
        committee = load_model([directory / name for directory in members])
        committee.metadata = {"committee_members": [str(directory) for directory in members], "task": "potential"}
        save_model(committee, output / name)
    if config.data.test is None:
        return
    from mlpot.train.tasks.potential import PotentialTask, evaluate_structures, force_calibration

    committee = load_model(output / "best.model")
    data = read_labelled(config.data.test, parse_section(LabelKeys, config.data.keys, "data.keys"))
    results, predictions = evaluate_structures(committee, data, config.training.valid_batch_size)
    print(PotentialTask.table(results, f"test errors of the committee of {size} ({len(data.structures)} frames)"))
    calibration = force_calibration(data, predictions, output / "plots" / "calibration_forces.png")
    if calibration:
        print(calibration)
    (output / "test_metrics.json").write_text(json.dumps(results, indent=2))
    print(f"done: {output / 'best.model'} and {output / 'final.model'} (committees of {size})")
