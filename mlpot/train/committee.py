"""``training.committee: K``: train K members one after another into one committee model.

Member k is an ordinary run with seed ``seed + k`` (and, with ``training.bootstrap``, its own
resample of the training set) in ``<output>/member-k``, so each resumes like any run and a
finished member is skipped when the command is run again. The output directory then holds
``best.model`` and ``final.model`` as committees of the members' best and final models, and the
committee's test errors and force-spread calibration (``test_metrics.json``, ``plots/``).

Fine-tuning a committee (``model.init_from``): from a single potential, every member starts from
it (the seeds then only change the data order); from a committee of K, member k starts from the
parent's member k, written out as ``<output>/parents/member-k.model``, so the members stay
diverse.
"""

import copy
import json
from pathlib import Path
from typing import Any, Dict

import yaml

from mlpot.data.dataset import LabelKeys, read_labelled
from mlpot.config import parse_section
from mlpot.errors import MLPotError
from mlpot.models.io import atomic_torch_save, load_model, read_model_file, resolve_model_path, save_model
from mlpot.train.config import TrainConfig
from mlpot.train.distributed import ProcessGroup
from mlpot.train.trainer import CHECKPOINT, REQUESTED, Trainer, claim_output_directory, release_output_directory


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
    created = not output.exists()
    size = config.training.committee
    try:
        _train_members(config, requested, group, output)
    except BaseException:
        if group.is_main and not any((output / f"member-{k}" / CHECKPOINT).is_file() for k in range(size)):
            release_output_directory(output, [REQUESTED, "parents"], created)  # no member started: nothing to resume
        raise
    group.barrier()
    if group.is_main:
        _assemble(config, output, size)
    return output


def _train_members(config: TrainConfig, requested: Dict[str, Any], group: ProcessGroup, output: Path) -> None:
    """Claim ``output`` for the committee, write the parents' members, train every member."""
    size = config.training.committee
    init_from = config.model.get("init_from")
    from_committee = bool(init_from) and _is_committee(init_from)
    if group.is_main:
        output.mkdir(parents=True, exist_ok=True)
        (output / REQUESTED).write_text(yaml.safe_dump(requested, sort_keys=False))
        if from_committee:
            _write_member_parents(init_from, size, output)
    group.barrier()
    for k in range(size):
        seed = config.training.seed + k
        directory = output / f"member-{k}"
        member = copy.deepcopy(config)
        member.training.seed = seed
        member.training.committee = 1
        member.output.directory = str(directory)
        member_raw = member_requested(requested, k, seed, directory)
        if from_committee:
            parent = str(_member_parent(output, k))
            member.model = {**member.model, "init_from": parent}
            member_raw.setdefault("model", {})["init_from"] = parent
        if group.is_main:
            print(f"committee member {k + 1} of {size} (seed {seed}) in {directory}", flush=True)
        Trainer(member, member_raw, group,
                bootstrap_seed=seed if config.training.bootstrap else None).run()


def _is_committee(path: str) -> bool:
    return read_model_file(resolve_model_path(path))["config"].get("task") == "committee"


def _member_parent(output: Path, k: int) -> Path:
    return output / "parents" / f"member-{k}.model"


def _write_member_parents(init_from: str, size: int, output: Path) -> None:
    """Write member k of the committee ``init_from`` to ``output/parents/member-k.model``."""
    payload = read_model_file(resolve_model_path(init_from))
    configs = payload["config"]["members"]
    if len(configs) != size:
        raise MLPotError(
            f"model.init_from {init_from} is a committee of {len(configs)}, but training.committee is {size}; "
            "they must match (member k fine-tunes the parent's member k)"
        )
    for k, member_config in enumerate(configs):
        prefix = f"members.{k}."
        state = {name[len(prefix):]: tensor for name, tensor in payload["state_dict"].items() if name.startswith(prefix)}
        path = _member_parent(output, k)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_torch_save({**payload, "config": member_config, "state_dict": state}, path)


def _assemble(config: TrainConfig, output: Path, size: int) -> None:
    members = [output / f"member-{k}" for k in range(size)]
    for name in ("best.model", "final.model"):
        # a member that trained no epoch (training.max_epochs: 0) has no best.model: its final one
        files = [directory / name if (directory / name).is_file() else directory / "final.model" for directory in members]
        committee = load_model(files)
        committee.metadata = {"committee_members": [str(directory) for directory in members], "task": "potential"}
        save_model(committee, output / name)
    if config.data.test is None:
        return
    from mlpot.train.tasks.potential import PotentialTask, describe_calibration, evaluate_structures, force_calibration

    committee = load_model(output / "best.model")
    data = read_labelled(config.data.test, parse_section(LabelKeys, config.data.keys, "data.keys"))
    results, predictions = evaluate_structures(committee, data, config.training.valid_batch_size)
    print(PotentialTask.table(results, f"test errors of the committee of {size} ({len(data.structures)} frames)"))
    calibration = force_calibration(data, predictions, output / "plots" / "calibration_forces.png")
    if calibration:
        print(describe_calibration(calibration))
        results["calibration_forces"] = calibration
    (output / "test_metrics.json").write_text(json.dumps(results, indent=2))
    print(f"done: {output / 'best.model'} and {output / 'final.model'} (committees of {size})")
