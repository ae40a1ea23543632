"""The training config: sections ``data``, ``model``, ``training``, ``output``.

    mlpot train config.yaml --set training.lr=0.005 --set model.max_ell=2

Every key is checked: an unknown key names the key meant, a wrong type or value names the key,
and data files must exist. The fully resolved config (defaults filled in, statistics computed
from the data) is written into the output directory as ``config.yaml``.
"""

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Union

import yaml

from mlpot.config import likely_key, parse_section
from mlpot.errors import MLPotError
from mlpot.files import check_input_file

SECTIONS = ("data", "model", "training", "output")


@dataclass
class DataSection:
    train: str
    valid: Optional[str] = None
    valid_fraction: float = 0.1
    test: Optional[str] = None
    keys: Dict[str, str] = field(default_factory=dict)  # label -> key in the files; the task checks them
    r_max: Optional[float] = None  # sets model.r_max when given
    replay: Optional[Dict[str, Any]] = None  # fine-tuning: {file, count, seed} of the parent's data

    def validate(self, where: str) -> None:
        for name in ("train", "valid", "test"):
            path = getattr(self, name)
            if path is not None and not Path(path).exists():  # a file, or a directory (QM datasets)
                raise MLPotError(f"'{where}.{name}': file {path} does not exist")
        if self.valid is None and not 0.0 < self.valid_fraction < 1.0:
            raise MLPotError(f"'{where}.valid_fraction' must be between 0 and 1, got {self.valid_fraction}")


@dataclass
class TrainingSection:
    energy_weight: float = 1.0  # loss weight of squared per-atom energy errors
    forces_weight: float = 100.0  # of squared force-component errors
    stress_weight: float = 1.0  # of squared stress-component errors
    batch_size: int = 5  # global: split across processes under torchrun
    valid_batch_size: int = 10
    max_epochs: int = 200
    max_time_minutes: Optional[float] = None  # wall-time budget of the whole run, resumes included
    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = 0.01
    warmup_epochs: float = 0.0  # lr rises linearly from lr / 100 to lr over this many epochs (per step)
    weight_decay: float = 5e-7
    amsgrad: bool = True
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])  # Adam's moment decays (beta1, beta2)
    # cosine: over max_epochs; cosine_time: over max_time_minutes, step by step, so that a run sized
    # by wall time (a GPU hour, a job's time limit) ends annealed whatever its speed
    scheduler: Literal["plateau", "cosine", "cosine_time", "none"] = "plateau"
    lr_factor: float = 0.8  # plateau: multiply lr by this ...
    scheduler_patience: int = 50  # ... after this many epochs without improvement
    ema_decay: Optional[float] = 0.99
    clip_grad: Optional[float] = 10.0
    seed: int = 123
    # Second stage (MACE's "SWA"): from this epoch (or fraction of the time budget) on, the loss
    # is re-weighted towards energies and the learning rate lowered.
    stage_two_start: Optional[Union[int, float]] = None
    stage_two_energy_weight: float = 1000.0
    stage_two_forces_weight: float = 100.0
    stage_two_stress_weight: float = 1.0
    stage_two_lr: float = 0.001
    patience: Optional[int] = None  # early stopping: epochs without a better validation loss
    device: str = "cpu"
    kernel: Literal["auto", "fused", "reference"] = "auto"  # fused kernels where the device has them
    freeze_layers: int = 0  # fine-tuning: keep the embedding and this many first layers fixed
    lora: Optional[Dict[str, Any]] = None  # fine-tuning: {rank, alpha} low-rank adapters, base weights fixed (train/lora.py)
    committee: int = 1  # train this many members (seeds seed, seed + 1, ...) into one committee model
    bootstrap: bool = False  # each member trains on a resample (with replacement) of the training set
    loss: Dict[str, Any] = field(default_factory=dict)  # task-specific loss settings; the task checks them

    def validate(self, where: str) -> None:
        positive = ["batch_size", "valid_batch_size", "lr", "stage_two_lr"]
        if self.max_epochs < 0:  # 0 is allowed: a fine-tuned model that is its parent, E0s refitted
            raise MLPotError(f"'{where}.max_epochs' must not be negative, got {self.max_epochs}")
        for key in positive:
            if getattr(self, key) <= 0:
                raise MLPotError(f"'{where}.{key}' must be positive, got {getattr(self, key)!r}")
        for key in ("energy_weight", "forces_weight", "stress_weight", "weight_decay", "scheduler_patience",
                    "stage_two_energy_weight", "stage_two_forces_weight", "stage_two_stress_weight"):
            if getattr(self, key) < 0:
                raise MLPotError(f"'{where}.{key}' must not be negative, got {getattr(self, key)!r}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise MLPotError(f"'{where}.ema_decay' must be between 0 and 1, got {self.ema_decay}")
        if self.max_time_minutes is not None and self.max_time_minutes <= 0:
            raise MLPotError(f"'{where}.max_time_minutes' must be positive, got {self.max_time_minutes}")
        if self.scheduler == "cosine_time" and self.max_time_minutes is None:
            raise MLPotError(f"'{where}.scheduler: cosine_time' anneals over the time budget: set '{where}.max_time_minutes'")
        if self.stage_two_start is not None and self.stage_two_start < 0:
            raise MLPotError(f"'{where}.stage_two_start' must not be negative, got {self.stage_two_start}")
        if self.patience is not None and self.patience < 1:  # 0 would stop after the first epoch
            raise MLPotError(f"'{where}.patience' must be at least 1 epoch, got {self.patience}")
        if self.committee < 1:
            raise MLPotError(f"'{where}.committee' must be at least 1, got {self.committee}")
        if self.warmup_epochs < 0:
            raise MLPotError(f"'{where}.warmup_epochs' must not be negative, got {self.warmup_epochs}")
        if len(self.betas) != 2 or not all(0.0 <= beta < 1.0 for beta in self.betas):
            raise MLPotError(f"'{where}.betas' must be two numbers in [0, 1) (beta1, beta2), got {self.betas}")
        if not 0.0 < self.lr_factor < 1.0:
            raise MLPotError(f"'{where}.lr_factor' must be between 0 and 1, got {self.lr_factor}")
        from mlpot.devices import check_device

        check_device(self.device, f"'{where}.device'")


@dataclass
class OutputSection:
    directory: str = "mlpot-run"
    checkpoint_every_minutes: float = 10.0  # also mid-epoch, so a long epoch is not lost

    def validate(self, where: str) -> None:
        if self.checkpoint_every_minutes < 0:  # 0: after every step
            raise MLPotError(f"'{where}.checkpoint_every_minutes' must not be negative, got {self.checkpoint_every_minutes}")


@dataclass
class TrainConfig:
    data: DataSection
    model: Dict[str, Any]
    training: TrainingSection
    output: OutputSection

    def as_dict(self) -> Dict[str, Any]:
        return {
            "data": asdict(self.data),
            "model": copy.deepcopy(self.model),
            "training": asdict(self.training),
            "output": asdict(self.output),
        }


def read_yaml(path: Union[str, Path]) -> Dict[str, Any]:
    path = check_input_file(path, "config file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MLPotError(f"{path}: not a YAML config (binary data, not UTF-8 text)") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise MLPotError(f"{path}: not valid YAML{where}") from None
    if not isinstance(loaded, dict):
        raise MLPotError(f"{path}: a config is a mapping with sections {', '.join(SECTIONS)}")
    return loaded


def apply_overrides(raw: Dict[str, Any], overrides: List[str]) -> Dict[str, Any]:
    """``section.key=value`` (value parsed as YAML) into a copy of ``raw``."""
    result = copy.deepcopy(raw)
    for item in overrides:
        dotted, text = item.split("=", 1) if "=" in item else (item, None)
        if text is None or "." not in dotted or not all(dotted.split(".")):
            raise MLPotError(f"--set takes section.key=value, got {item!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise MLPotError(f"--set {dotted}: cannot parse value {text!r}") from None
        parts = dotted.split(".")
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise MLPotError(f"--set {dotted}: '{part}' is not a section")
        node[parts[-1]] = value
    return result


def parse_config(raw: Dict[str, Any], base_dir: Optional[Path] = None) -> TrainConfig:
    """Validate a raw config dict; relative data paths are taken from ``base_dir``."""
    for key in raw:
        if key not in SECTIONS:
            meant = likely_key(str(key), list(SECTIONS))
            hint = f"; did you mean '{meant}'?" if meant else f"; sections are {', '.join(SECTIONS)}"
            raise MLPotError(f"unknown section '{key}'{hint}")
    data_raw = dict(raw.get("data") or {})
    if base_dir is not None:
        for name in ("train", "valid", "test"):
            if isinstance(data_raw.get(name), str) and not Path(data_raw[name]).is_absolute():
                data_raw[name] = str((base_dir / data_raw[name]).resolve())
    data = parse_section(DataSection, data_raw, "data")
    model = dict(raw.get("model") or {})
    if not isinstance(raw.get("model", {}), (dict, type(None))):
        raise MLPotError("section 'model' must be a mapping")
    if isinstance(model.get("init_from"), str) and base_dir is not None and not Path(model["init_from"]).is_absolute():
        model["init_from"] = str((base_dir / model["init_from"]).resolve())
    if data.replay and isinstance(data.replay.get("file"), str) and base_dir is not None and not Path(data.replay["file"]).is_absolute():
        data.replay = {**data.replay, "file": str((base_dir / data.replay["file"]).resolve())}
    if data.r_max is not None:
        if "r_max" in model and float(model["r_max"]) != data.r_max:
            raise MLPotError(f"'data.r_max' ({data.r_max}) and 'model.r_max' ({model['r_max']}) disagree")
        model["r_max"] = data.r_max
    training = parse_section(TrainingSection, raw.get("training") or {}, "training")
    if model.get("init_from") and "lr" not in (raw.get("training") or {}):
        from mlpot.train.finetune import FINE_TUNE_LR

        training.lr = FINE_TUNE_LR  # a gentler default when continuing from a trained model
    if training.freeze_layers < 0:
        raise MLPotError(f"'training.freeze_layers' must not be negative, got {training.freeze_layers}")
    if training.freeze_layers and not model.get("init_from"):
        raise MLPotError("'training.freeze_layers' keeps layers of a trained model fixed: it needs model.init_from")
    if training.lora is not None:
        from mlpot.train.lora import LoRASettings

        parse_section(LoRASettings, training.lora, "training.lora")
        if not model.get("init_from"):
            raise MLPotError("'training.lora' adapts the weights of a trained model: it needs model.init_from")
        if training.freeze_layers:
            raise MLPotError("'training.lora' keeps every base weight fixed already: remove 'training.freeze_layers'")
    output = parse_section(OutputSection, raw.get("output") or {}, "output")
    return TrainConfig(data=data, model=model, training=training, output=output)


def load_config(path: Union[str, Path], overrides: Optional[List[str]] = None) -> TrainConfig:
    path = Path(path)
    return parse_config(apply_overrides(read_yaml(path), overrides or []), base_dir=path.parent)
