"""Error accumulators and the metrics tables printed by training and evaluation."""

import math
from typing import Callable, Dict, List, Optional

import torch

# A reducer sums a tensor over processes in place (identity in a single process).
Reducer = Callable[[torch.Tensor], torch.Tensor]


def no_reduce(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


class ErrorStats:
    """Running sums of |error| and error^2 for named quantities; MAE and RMSE at the end."""

    def __init__(self, names: List[str]) -> None:
        self.names = names
        self.sums = torch.zeros(len(names), 3, dtype=torch.float64)  # [|e|, e^2, count]

    def add(self, name: str, errors: torch.Tensor, mask: Optional[torch.Tensor] = None) -> None:
        errors = errors.detach().to(torch.float64).cpu()
        if mask is not None:
            errors = errors[mask.detach().cpu().bool()]
        row = self.names.index(name)
        self.sums[row, 0] += errors.abs().sum()
        self.sums[row, 1] += errors.pow(2).sum()
        self.sums[row, 2] += errors.numel()

    def reduce(self, reducer: Reducer) -> None:
        self.sums = reducer(self.sums)

    def result(self) -> Dict[str, Dict[str, float]]:
        """{name: {"mae", "rmse", "count"}} for names with at least one value."""
        out: Dict[str, Dict[str, float]] = {}
        for row, name in enumerate(self.names):
            absolute, squared, count = self.sums[row].tolist()
            if count > 0:
                out[name] = {"mae": absolute / count, "rmse": math.sqrt(squared / count), "count": count}
        return out


def format_table(rows: Dict[str, Dict[str, float]], units: Dict[str, str], scale: Dict[str, float], title: str) -> str:
    """A fixed-width table of MAE and RMSE per quantity, in the given display units."""
    lines = [title, f"{'quantity':<22}{'MAE':>12}{'RMSE':>12}  unit"]
    for name, values in rows.items():
        factor = scale.get(name, 1.0)
        lines.append(f"{name:<22}{values['mae'] * factor:>12.4f}{values['rmse'] * factor:>12.4f}  {units.get(name, '')}")
    return "\n".join(lines)
