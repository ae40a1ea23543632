"""Exponential moving average of model parameters (evaluated and saved instead of the raw ones)."""

from contextlib import contextmanager
from typing import Dict, Iterator

import torch
from torch import nn


class ExponentialMovingAverage:
    """shadow <- d * shadow + (1 - d) * parameter after every step, d = min(decay, (1+n)/(10+n)).

    The warm-up term keeps early averages from being dominated by the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = {name: p.detach().clone() for name, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:  # a frozen one stays bit for bit (rounding would move it)
                self.shadow[name].mul_(decay).add_(parameter.detach(), alpha=1.0 - decay)

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[None]:
        """Temporarily load the averaged weights into ``model``."""
        saved = {name: p.detach().clone() for name, p in model.named_parameters()}
        self.copy_to(model)
        try:
            yield
        finally:
            with torch.no_grad():
                for name, parameter in model.named_parameters():
                    parameter.copy_(saved[name])

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        for name, parameter in model.named_parameters():
            parameter.copy_(self.shadow[name])

    def state_dict(self) -> Dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: Dict) -> None:
        self.decay = state["decay"]
        self.updates = state["updates"]
        self.shadow = {name: tensor.clone() for name, tensor in state["shadow"].items()}
