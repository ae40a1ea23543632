"""The training loop behind ``mlpot train``: EMA, checkpoints, resume, stage two, DDP.

Output directory::

    requested_config.yaml   the config as given (after --set), to recognise the same run
    config.yaml             the fully resolved config (defaults and data statistics filled in)
    checkpoint.pt           everything needed to continue (written atomically)
    log.csv, learning_curve.png
    best.model              EMA weights at the best validation loss
    final.model             EMA weights at the end
    test_metrics.json       errors of best.model on the test file, when one is given

Resuming is exact: batches come from a sampler seeded by (seed, epoch), a checkpoint stores the
position inside the epoch with the optimiser, scheduler, EMA and RNG states, and a restarted
run skips the batches it already took.
"""

import csv
import json
import math
import random
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler
from torch_geometric.loader import DataLoader
from tqdm import tqdm

from mlpot.config import DTYPES, parse_section
from mlpot.errors import MLPotError
from mlpot.files import atomic_output, check_output_directory
from mlpot.kernels import set_kernels
from mlpot.models import build_model
from mlpot.models.io import atomic_torch_save, save_model
from mlpot.train import lora, plots
from mlpot.train.config import TrainConfig
from mlpot.train.distributed import ProcessGroup
from mlpot.train.ema import ExponentialMovingAverage
from mlpot.train.tasks import task_for

CHECKPOINT = "checkpoint.pt"
REQUESTED = "requested_config.yaml"
# what a run writes before its first checkpoint (the first epoch's end writes the model and log)
RUN_FILES = (REQUESTED, "config.yaml", "best.model", "log.csv", "learning_curve.png")


def claim_output_directory(output: Path, requested: Dict[str, Any]) -> bool:
    """True if ``output`` holds this run (resume); raises if it holds something else or cannot
    be written. Reads only: a run writes its files once training starts."""
    check_output_directory(output, "output.directory")
    requested_path = output / REQUESTED
    if requested_path.is_file():
        try:
            previous = yaml.safe_load(requested_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError):
            raise MLPotError(f"{requested_path} is damaged (not YAML); choose another output.directory or remove that one") from None
        if previous != requested:
            difference = _first_difference(previous, requested)
            raise MLPotError(
                f"output directory {output} holds another run ({difference}); "
                "choose another output.directory or remove that one"
            )
        return True
    if output.exists() and any(output.iterdir()):
        raise MLPotError(f"output directory {output} is not empty and holds no mlpot run; choose another")
    return False


def release_output_directory(output: Path, names: Sequence[str], created: bool) -> None:
    """Remove the files ``names`` a run wrote into ``output`` (and ``output`` itself if the run
    created it and it is left empty), so that a run that failed before its first checkpoint does
    not make the directory refuse the corrected config as another run."""
    for name in names:
        path = output / name
        if path.is_dir():
            for member in path.iterdir():
                member.unlink()
            path.rmdir()
        elif path.exists():
            path.unlink()
    if created and output.is_dir() and not any(output.iterdir()):
        output.rmdir()


class Trainer:
    """One model's training. ``bootstrap_seed``: train on a resample of the training set drawn
    with replacement with this seed (committee members)."""

    def __init__(
        self, config: TrainConfig, requested: Dict[str, Any], group: ProcessGroup, bootstrap_seed: Optional[int] = None
    ) -> None:
        self.config = config
        self.requested = requested
        self.group = group
        self.bootstrap_seed = bootstrap_seed
        self.output = Path(config.output.directory)
        self.device = torch.device(config.training.device)
        self.task = task_for(config)  # checks the task's own config keys

    # ----------------------------------------------------------------------------- setup
    def _claim_output_directory(self) -> bool:
        """True to resume; raises if the directory holds something else."""
        return claim_output_directory(self.output, self.requested) and (self.output / CHECKPOINT).is_file()

    def _log(self, message: str) -> None:
        if self.group.is_main:
            tqdm.write(message)

    # ----------------------------------------------------------------------------- run
    def run(self) -> Path:
        resume = self._claim_output_directory()  # first: a directory that cannot hold the run fails before any work
        self.task.check_model_config()
        created = not self.output.exists()
        if resume:
            try:
                state = torch.load(self.output / CHECKPOINT, map_location="cpu", weights_only=True)
            except Exception as error:  # the unpickler raises many types for a damaged file
                raise MLPotError(
                    f"{self.output / CHECKPOINT} cannot be read ({type(error).__name__}); remove it to restart this run "
                    "from its first step"
                ) from None
            if state.get("finished"):
                self._log(f"run in {self.output} already finished; its models are best.model and final.model")
                return self.output
        self.group.barrier()
        dtype = DTYPES[self.config.model.get("dtype", "float64")]
        torch.manual_seed(self.config.training.seed)
        data = self.task.prepare(dtype)
        if self.bootstrap_seed is not None:
            draw = np.random.default_rng(self.bootstrap_seed).integers(0, len(data.train), len(data.train))
            data.train = [data.train[i] for i in draw]
            data.summary["bootstrap_seed"] = self.bootstrap_seed
        model = build_model(data.model_config).to(self.device)
        if hasattr(self.task, "initialize"):
            self.task.initialize(model)  # fine-tuning: parent weights, frozen layers
        if self.config.training.lora is not None:
            adapters = lora.add_adapters(model, parse_section(lora.LoRASettings, self.config.training.lora, "training.lora"))
            self._log(f"LoRA: {adapters} adapter parameters train, every other weight is fixed")
        set_kernels(model, self.config.training.kernel, self.device)
        self.model = model
        self.metadata = {"training_data": data.summary, "task": self.task.name}
        training = self.config.training
        self.optimizer = build_optimizer(model, training)
        self.scheduler = _scheduler(self.optimizer, training)
        self.ema = ExponentialMovingAverage(model, training.ema_decay) if training.ema_decay else None
        self.state: Dict[str, Any] = {
            "epoch": 0,
            "batch": 0,
            "elapsed": 0.0,
            "best_loss": math.inf,
            "best_epoch": -1,
            "history": [],
            "stage_two": False,
            "finished": False,
        }
        if resume:
            self._restore(state)
            self._log(f"resuming {self.output} at epoch {self.state['epoch']}, batch {self.state['batch']}")
        self.network = DistributedDataParallel(model) if self.group.active else model
        self._write_run_files()
        try:
            self._train(data)
        except BaseException:
            if self.group.is_main and not (self.output / CHECKPOINT).is_file():
                release_output_directory(self.output, RUN_FILES, created)
            raise
        return self._finish(data)

    def _write_run_files(self) -> None:
        """Claim the output directory for this run: from here on it resumes only this config."""
        if not self.group.is_main:
            return
        self.output.mkdir(parents=True, exist_ok=True)
        (self.output / REQUESTED).write_text(yaml.safe_dump(self.requested, sort_keys=False))
        resolved = self.config.as_dict()
        resolved["model"] = self.model.config_dict()
        (self.output / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))

    def _train(self, data) -> None:
        training = self.config.training
        local_batch = _local_batch_size(training.batch_size, self.group.world_size)
        sampler = DistributedSampler(
            data.train, num_replicas=self.group.world_size, rank=self.group.rank, shuffle=True, seed=training.seed
        )
        loader = DataLoader(data.train, batch_size=local_batch, sampler=sampler)
        valid_loader = self._eval_loader(data.valid)
        started = time.perf_counter()
        elapsed_before = self.state["elapsed"]
        last_checkpoint = started
        stop_reason = None
        while self.state["epoch"] < training.max_epochs and stop_reason is None:
            epoch = self.state["epoch"]
            self._maybe_enter_stage_two(epoch)
            weights = self.task.loss_weights(self.state["stage_two"])
            sampler.set_epoch(epoch)
            skip = self.state["batch"]
            train_sum = torch.zeros(2, dtype=torch.float64)  # [sum of this process's loss shares, steps]
            progress = tqdm(
                total=len(loader), initial=skip, desc=f"epoch {epoch}", disable=None if self.group.is_main else True, leave=False
            )
            for index, batch in enumerate(loader):
                if index < skip:
                    continue
                batch = batch.to(self.device)
                self._step_lr(epoch, index, len(loader))
                self.optimizer.zero_grad(set_to_none=True)
                out = self.task.forward(self.network, batch, training=True)
                loss = self.task.loss(out, batch, weights, self.group.reduce_sum, self.group.world_size)
                loss.backward()
                if training.clip_grad is not None:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), training.clip_grad)
                self.optimizer.step()
                if self.ema is not None:
                    self.ema.update(self.model)
                step_loss = loss.item()  # this process's share of the batch loss, times world_size
                if self._any_process(not math.isfinite(step_loss)):  # a NaN on one process spreads to all
                    self._diverged(epoch, index, step_loss)
                train_sum += torch.tensor([step_loss / self.group.world_size, 1.0])
                self.state["batch"] = index + 1
                self.state["elapsed"] = elapsed_before + time.perf_counter() - started
                progress.update(1)
                progress.set_postfix(loss=f"{step_loss / self.group.world_size:.4g}")
                if self._out_of_time():
                    stop_reason = f"time budget of {training.max_time_minutes} min reached"
                    break
                if time.perf_counter() - last_checkpoint > 60.0 * self.config.output.checkpoint_every_minutes:
                    self._checkpoint()
                    last_checkpoint = time.perf_counter()
            progress.close()
            epoch_done = self.state["batch"] >= len(loader)
            if epoch_done:
                self.state["epoch"] = epoch + 1
                self.state["batch"] = 0
            self.group.reduce_sum(train_sum)  # shares add up to each step's global loss
            train_loss = float(train_sum[0] * self.group.world_size / max(float(train_sum[1]), 1.0))
            stop_reason = self._end_of_epoch(epoch, train_loss, valid_loader) or stop_reason
            self._checkpoint()
            last_checkpoint = time.perf_counter()
        if stop_reason:
            self._log(f"stopping: {stop_reason}")

    def _end_of_epoch(self, epoch: int, train_loss: float, valid_loader) -> Optional[str]:
        """Validate with EMA weights, step the scheduler, log, keep the best model."""
        valid_loss, results = self.evaluate(valid_loader, ema=True)
        training = self.config.training
        warming_up = epoch + 1 < training.warmup_epochs
        if training.scheduler == "plateau" and not warming_up:
            self.scheduler.step(valid_loss)
        elif training.scheduler == "cosine":
            self.scheduler.step()
        row: Dict[str, float] = {
            "epoch": epoch,
            "stage": 2 if self.state["stage_two"] else 1,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": train_loss,
            "valid_loss": valid_loss,
            "elapsed_s": self.state["elapsed"],
        }
        for name, values in results.items():
            row[f"valid_{name}_mae"] = values["mae"]
            row[f"valid_{name}_rmse"] = values["rmse"]
        self.state["history"].append(row)
        improved = valid_loss < self.state["best_loss"]
        if improved:
            self.state["best_loss"] = valid_loss
            self.state["best_epoch"] = epoch
            self._save_model("best.model")
        eta = self._eta()
        self._log(
            f"epoch {epoch:4d}  train loss {train_loss:.4g}  valid loss {valid_loss:.4g}  "
            f"{self.task.epoch_summary(results)}  lr {row['lr']:.2e}  "
            f"{self.state['elapsed'] / 60:.1f} min{eta}{'  *best' if improved else ''}"
        )
        if self.group.is_main:
            self._write_log()
        if epoch == 0:
            self._warn_if_epochs_end_first()
        patience = training.patience
        if patience is not None and epoch - self.state["best_epoch"] >= patience:
            return f"no better validation loss for {patience} epochs"
        return None

    def _warn_if_epochs_end_first(self) -> None:
        """cosine_time anneals over the time budget; a max_epochs reached first ends the run at a high lr."""
        training = self.config.training
        if training.scheduler != "cosine_time":
            return
        projected = self.state["elapsed"] * training.max_epochs / max(self.state["epoch"], 1)
        if projected < 0.9 * 60.0 * training.max_time_minutes:
            self._log(
                f"warning: max_epochs {training.max_epochs} ends this run after about {projected / 60:.0f} min, before "
                f"the cosine_time schedule has annealed over max_time_minutes {training.max_time_minutes:g}; raise max_epochs"
            )

    def _diverged(self, epoch: int, index: int, loss: float) -> None:
        """Stop on a non-finite loss: the weights it produced are not saved, so best.model and the
        last checkpoint still hold finite ones (resuming repeats the same steps, hence the advice)."""
        lr = self.optimizer.param_groups[0]["lr"]
        best = self.output / "best.model"
        kept = f"{best} keeps the best weights so far" if best.is_file() else "no epoch finished, so there is no best.model"
        raise MLPotError(
            f"the training loss became {loss} at epoch {epoch}, batch {index}; lower training.lr (now {lr:g}) "
            f"or add training.clip_grad, then start a new run ({kept})"
        )

    def _eta(self) -> str:
        training = self.config.training
        done = self.state["epoch"]
        if done == 0:
            return ""
        remaining = (training.max_epochs - done) * self.state["elapsed"] / done
        if training.max_time_minutes is not None:
            remaining = min(remaining, 60.0 * training.max_time_minutes - self.state["elapsed"])
        return f"  ETA {max(remaining, 0.0) / 60:.1f} min"

    def _out_of_time(self) -> bool:
        budget = self.config.training.max_time_minutes
        if budget is None:
            return False
        return self._any_process(self.state["elapsed"] > 60.0 * budget)

    def _any_process(self, condition: bool) -> bool:
        """Whether ``condition`` holds on any process, so that every process stops at the same batch."""
        if not self.group.active:
            return condition
        return bool(self.group.reduce_sum(torch.tensor([float(condition)])).item() > 0)

    def _step_lr(self, epoch: int, index: int, steps_per_epoch: int) -> None:
        """The per-step learning rate: linear warm-up over ``training.warmup_epochs``, times the
        cosine over the time budget with ``scheduler: cosine_time``.

        A large first step from random weights sends the force loss far up (the Hamiltonian runs
        spent hundreds of epochs 10-100x above their validation loss at lr 0.005-0.01); ramping
        from lr / 100 avoids the jump. The warm-up follows from the step count, so resuming is
        exact; cosine_time follows the clock, so a resumed run takes the same schedule but not the
        same steps. Stage two owns the lr once it begins; outside these the epoch scheduler does.
        """
        training = self.config.training
        if self.state["stage_two"]:
            return
        factor = None
        if training.warmup_epochs > 0:
            progress = (epoch + (index + 1) / steps_per_epoch) / training.warmup_epochs
            if progress <= 1.0 + 1e-9:
                factor = min(1.0, 0.01 + 0.99 * progress)
        if training.scheduler == "cosine_time":
            factor = (1.0 if factor is None else factor) * self._time_cosine()
        if factor is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = training.lr * factor

    def _time_cosine(self) -> float:
        """0.5 (1 + cos(pi t)) at the fraction t of the time budget spent (the processes' mean, so
        that all of them step with one lr)."""
        elapsed = self.state["elapsed"]
        if self.group.active:
            elapsed = float(self.group.reduce_sum(torch.tensor([elapsed], dtype=torch.float64))[0]) / self.group.world_size
        spent = min(1.0, elapsed / (60.0 * self.config.training.max_time_minutes))
        return 0.5 * (1.0 + math.cos(math.pi * spent))

    def _maybe_enter_stage_two(self, epoch: int) -> None:
        training = self.config.training
        start = training.stage_two_start
        if start is None or self.state["stage_two"]:
            return
        if isinstance(start, float) and start < 1.0:  # a fraction of the run, by epochs or time
            begin = epoch >= start * training.max_epochs
            if training.max_time_minutes is not None:
                begin = begin or self.state["elapsed"] >= start * 60.0 * training.max_time_minutes
        else:
            begin = epoch >= int(start)
        if begin:
            self.state["stage_two"] = True
            for group in self.optimizer.param_groups:
                group["lr"] = training.stage_two_lr
            self._log(f"stage two from epoch {epoch}: loss weights re-balanced, lr {training.stage_two_lr:g}")

    # ----------------------------------------------------------------------------- evaluation
    def _eval_loader(self, graphs) -> DataLoader:
        shard = graphs[self.group.rank :: self.group.world_size]
        return DataLoader(shard, batch_size=self.config.training.valid_batch_size, shuffle=False)

    def evaluate(self, loader, ema: bool) -> Tuple[float, Dict[str, Dict[str, float]]]:
        """Stage-one weighted loss and error statistics over all processes' shards."""
        if ema and self.ema is not None:
            with self.ema.applied(self.model):
                return self._evaluate(loader)
        return self._evaluate(loader)

    def _evaluate(self, loader) -> Tuple[float, Dict[str, Dict[str, float]]]:
        stats = self.task.new_metrics()
        sums = None
        for batch in loader:
            batch = batch.to(self.device)
            out = self.task.forward(self.model, batch, training=False)
            terms = self.task.loss_terms(out, batch).detach().cpu().to(torch.float64)
            sums = terms if sums is None else sums + terms
            self.task.update_metrics(stats, out, batch)
        sums = self.group.reduce_sum(sums if sums is not None else torch.zeros(2, 3, dtype=torch.float64))
        stats.reduce(self.group.reduce_sum)
        loss = self.task.combine(sums[0], sums[1], self.task.loss_weights(stage_two=False))
        return float(loss), stats.result()

    # ----------------------------------------------------------------------------- files
    def _save_model(self, name: str) -> None:
        """The EMA weights, adapters merged (a saved model is a plain one)."""
        if not self.group.is_main:
            return
        if self.ema is not None:
            with self.ema.applied(self.model):
                save_model(lora.merged(self.model), self.output / name, metadata=self.metadata)
        else:
            save_model(lora.merged(self.model), self.output / name, metadata=self.metadata)

    def _checkpoint(self) -> None:
        if not self.group.is_main:
            return
        payload = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": _rng_state(),
            **self.state,
        }
        atomic_torch_save(payload, self.output / CHECKPOINT)

    def _restore(self, payload: Dict[str, Any]) -> None:
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        if self.ema is not None and payload["ema"] is not None:
            self.ema.load_state_dict(payload["ema"])
        _set_rng_state(payload["rng"])
        for key in self.state:
            self.state[key] = payload[key]

    def _write_log(self) -> None:
        history = self.state["history"]
        columns: List[str] = []
        for row in history:
            columns += [key for key in row if key not in columns]
        with atomic_output(self.output / "log.csv", "w") as stream:
            writer = csv.DictWriter(stream, fieldnames=columns)
            writer.writeheader()
            writer.writerows(history)
        plots.learning_curve(history, self.output / "learning_curve.png")

    def _finish(self, data) -> Path:
        self._save_model("final.model")
        if lora.has_adapters(self.model):  # best.model holds merged weights; so do the test and the last checkpoint
            self.model = lora.merged(self.model)
        if data.test:
            raw = {name: tensor.clone() for name, tensor in self.model.state_dict().items()}
            best = self.output / "best.model"
            evaluated = f"best.model (epoch {self.state['best_epoch']}"
            if best.is_file():
                from mlpot.models.io import read_model_file

                self.model.load_state_dict(read_model_file(best)["state_dict"])
            else:  # no epoch ran (training.max_epochs: 0, e.g. a fine-tune that returns its parent)
                evaluated = "final.model (no epoch finished"
            _, results = self._evaluate(self._eval_loader(data.test))
            self.model.load_state_dict(raw)  # the last checkpoint holds the raw weights, like every other one
            self._log(self.task.table(results, f"test errors of {evaluated}, {len(data.test)} frames)"))
            if self.group.is_main:
                (self.output / "test_metrics.json").write_text(json.dumps(results, indent=2))
        self.state["finished"] = True
        self._checkpoint()
        self._log(f"done: {self.output / 'best.model'} and {self.output / 'final.model'}")
        return self.output


def _local_batch_size(global_batch: int, world_size: int) -> int:
    if global_batch % world_size:
        raise MLPotError(f"training.batch_size {global_batch} must be divisible by the {world_size} processes")
    return global_batch // world_size


def build_optimizer(model: torch.nn.Module, training) -> torch.optim.Optimizer:
    """The optimizer ``training`` (a TrainingConfig) names, over the model's trainable parameters."""
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[training.optimizer]
    trainable = [p for p in model.parameters() if p.requires_grad]  # frozen layers stay out
    return kind(
        trainable, lr=training.lr, betas=tuple(training.betas), weight_decay=training.weight_decay, amsgrad=training.amsgrad
    )


def _scheduler(optimizer: torch.optim.Optimizer, training):
    if training.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=training.lr_factor, patience=training.scheduler_patience
        )
    if training.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=training.max_epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def _rng_state() -> Dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "numpy": torch.tensor(np.random.get_state()[1].astype(np.int64)),
        "numpy_pos": int(np.random.get_state()[2]),
        "python": torch.tensor(list(random.getstate()[1]), dtype=torch.int64),
    }


def _set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = np.random.get_state()
    np.random.set_state((numpy_state[0], state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    python_state = random.getstate()
    random.setstate((python_state[0], tuple(int(v) for v in state["python"].tolist()), python_state[2]))


def _first_difference(old: Any, new: Any, prefix: str = "") -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{prefix}{key}.")
    return f"{prefix.rstrip('.')} was {old!r}, now {new!r}"
