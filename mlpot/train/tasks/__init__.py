"""What ``mlpot train`` can learn; ``model.task`` in the config picks one."""

from typing import Dict, Type

from mlpot.errors import MLPotError
from mlpot.train.config import TrainConfig
from mlpot.train.tasks.potential import PotentialTask

TASKS: Dict[str, Type] = {"potential": PotentialTask}


def task_for(config: TrainConfig):
    name = config.model.get("task", "potential")
    if name not in TASKS:
        raise MLPotError(f"unknown 'model.task' {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name](config)
