"""Assembled models, built from a config dict by :func:`build_model`."""

from typing import Any, Callable, Dict

from torch import nn

from mlpot.errors import MLPotError
from mlpot.models.backmapping import BackmappingVAE
from mlpot.models.committee import Committee
from mlpot.models.hamiltonian import HamiltonianModel
from mlpot.models.potential import MACEPotential

MODEL_TASKS: Dict[str, Callable[[Dict[str, Any]], nn.Module]] = {
    "potential": MACEPotential.from_config,
    "backmapping": BackmappingVAE.from_config,
    "hamiltonian": HamiltonianModel.from_config,
    "committee": Committee.from_config,
}


def build_model(config: Dict[str, Any]) -> nn.Module:
    """Untrained model from a config dict; ``config["task"]`` picks the model (default potential).

    >>> model = build_model({"elements": ["H", "O"], "hidden_irreps": "8x0e+8x1o"})
    """
    if not isinstance(config, dict):
        raise MLPotError(f"model config must be a mapping, got {type(config).__name__}")
    task = config.get("task", "potential")
    if task not in MODEL_TASKS:
        raise MLPotError(f"unknown 'model.task' {task!r}; choose one of {', '.join(MODEL_TASKS)}")
    return MODEL_TASKS[task](config)


__all__ = ["MODEL_TASKS", "Committee", "MACEPotential", "build_model"]
