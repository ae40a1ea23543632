"""What ``mlpot train`` can learn; ``model.task`` in the config picks one.

A task is a class built from the :class:`TrainConfig` (it checks ``data.keys`` and
``training.loss``, the sections it owns) that the trainer drives through:

- ``name``; ``check_model_config()`` (fail on bad model keys before reading data);
- ``prepare(dtype) -> PreparedData`` (train/valid/test graphs, the completed model config,
  a summary stored in the model's metadata);
- ``loss_weights(stage_two)``; ``forward(model, batch, training) -> out``;
- ``loss_terms(out, batch) -> [2, K]`` (error sums, e.g. weighted squared errors, and label counts),
  ``combine(sums, counts, weights)`` and ``loss(out, batch, weights, reducer, world_size)``;
- ``new_metrics() -> ErrorStats``, ``update_metrics(stats, out, batch)``,
  ``table(results, title)``, ``epoch_summary(results)``;
- ``evaluate_file(model, path, output, plots_dir, batch_size, keys) -> str`` for ``mlpot eval``
  (a static method: no training config needed; the Hamiltonian task's also takes ``lindep``);
- optionally ``initialize(model)``, called on the fresh model before training (the potential
  task loads a parent's weights there when fine-tuning).

See :mod:`mlpot.train.tasks.potential` for the reference implementation.
"""

from typing import Dict, Type

from mlpot.errors import MLPotError
from mlpot.train.config import TrainConfig
from mlpot.train.tasks.backmapping import BackmappingTask
from mlpot.train.tasks.hamiltonian import HamiltonianTask
from mlpot.train.tasks.potential import PotentialTask

TASKS: Dict[str, Type] = {"potential": PotentialTask, "backmapping": BackmappingTask, "hamiltonian": HamiltonianTask}
MODEL_TASK_OF = {"committee": "potential"}  # committees train, and are evaluated, as potentials


def task_class(name: str) -> Type:
    name = MODEL_TASK_OF.get(name, name)
    if name not in TASKS:
        raise MLPotError(f"unknown 'model.task' {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name]


def task_for(config: TrainConfig):
    return task_class(config.model.get("task", "potential"))(config)
