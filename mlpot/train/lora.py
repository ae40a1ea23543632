"""LoRA adapters for fine-tuning (``training.lora: {rank: R, alpha: A}``, with ``model.init_from``).

Every channel-mixing matrix W [C_in, C_out] of the model's linear layers (per degree l and per
element in mlpot's equivariant linears, the MLP matrices of radial and readout networks) becomes
W + (alpha / r) D U with D [C_in, r] and U [r, C_out], r = min(rank, C_in, C_out). W stays fixed;
only D and U train. U starts at zero, so training starts from the parent exactly. A low-rank
update of each per-l mixing matrix is still a per-l mixing matrix, so equivariance is kept.

Saved models hold the merged weights W + (alpha / r) D U (:func:`merged`): they are ordinary mlpot
models (LAMMPS export, kernels, fine-tuning again) with no trace of the adapters.
"""

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn.utils import parametrize

from mlpot.errors import MLPotError
from mlpot.models import build_model
from mlpot.nn.linear import ElementLinear, EquivariantLinear, ScaledLinear

#: Modules whose ``weight`` is a stack of channel-mixing matrices [..., C_in, C_out].
ADAPTED = (EquivariantLinear, ElementLinear, ScaledLinear)


@dataclass
class LoRASettings:
    """``training.lora``: the rank r of every update and its scale alpha (the update is (alpha / r) D U)."""

    rank: int
    alpha: Optional[float] = None  # default: rank, an update scale of 1

    def validate(self, where: str) -> None:
        if self.rank < 1:
            raise MLPotError(f"'{where}.rank' must be at least 1, got {self.rank}")
        if self.alpha is not None and self.alpha <= 0:
            raise MLPotError(f"'{where}.alpha' must be positive, got {self.alpha}")


class LowRankUpdate(nn.Module):
    """W -> W + scaling * D @ U for each matrix of a stack W [..., C_in, C_out]."""

    def __init__(self, weight: torch.Tensor, rank: int, alpha: float) -> None:
        super().__init__()
        *stack, c_in, c_out = weight.shape
        rank = min(rank, c_in, c_out)
        self.down = nn.Parameter(torch.randn(*stack, c_in, rank, dtype=weight.dtype, device=weight.device))  # unit scale, as W
        self.up = nn.Parameter(torch.zeros(*stack, rank, c_out, dtype=weight.dtype, device=weight.device))
        self.scaling = alpha / rank

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.scaling * torch.matmul(self.down, self.up)


def add_adapters(model: nn.Module, settings: LoRASettings) -> int:
    """Fix every parameter of ``model`` and add a trainable low-rank update to each adapted
    linear's weight; returns the number of adapter parameters."""
    model.requires_grad_(False)
    alpha = float(settings.alpha if settings.alpha is not None else settings.rank)
    count = 0
    for module in list(model.modules()):
        if isinstance(module, (*ADAPTED, nn.Linear)):
            update = LowRankUpdate(module.weight.t() if isinstance(module, nn.Linear) else module.weight, settings.rank, alpha)
            if isinstance(module, nn.Linear):  # torch keeps W as [C_out, C_in]
                update = _Transposed(update)
            parametrize.register_parametrization(module, "weight", update)
            count += sum(p.numel() for p in update.parameters())
    if count == 0:
        raise MLPotError("'training.lora': the model has no linear layer to adapt")
    return count


class _Transposed(nn.Module):
    """A LowRankUpdate applied to a weight stored as [C_out, C_in]."""

    def __init__(self, update: LowRankUpdate) -> None:
        super().__init__()
        self.update = update

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return self.update(weight.t()).t()


def merged(model: nn.Module) -> nn.Module:
    """A plain model (built from ``model``'s config) holding ``model``'s weights with every adapter
    folded in; ``model`` itself when it has none. (Not a deepcopy with the parametrizations
    removed: the copy would share, and strip, the parametrized classes of ``model``.)"""
    if not has_adapters(model):
        return model
    state = {name: tensor for name, tensor in model.state_dict().items() if ".parametrizations." not in name}
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            state[f"{name}.weight" if name else "weight"] = module.weight.detach()
    with torch.random.fork_rng():  # building draws random weights; the caller's stream stays put
        plain = build_model(model.config_dict())
    plain.load_state_dict(state)
    if hasattr(model, "metadata"):
        plain.metadata = model.metadata
    first = next(model.parameters())
    return plain.to(device=first.device)


def has_adapters(model: nn.Module) -> bool:
    return any(parametrize.is_parametrized(module) for module in model.modules())
