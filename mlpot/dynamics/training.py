"""Training and evaluating learned propagators on pairs (state at t, state at t + dt) from one trajectory.

All three models (``ActionAngleNetwork``, ``EulerUpdateNetwork``, ``NeuralODE``) share the interface
``forward(x [B, 2n], dt [B]) -> x_pred [B, 2n]`` and ``loss(x0, x1, dt)``, carry their own state
normalisation (set from the training states by ``fit``, saved in the state_dict) and work in
float64, so that decode(encode(x)) reproduces x to rounding error.

Training draws jumps from a range of multiples of the trajectory's time step. Long jumps make the
loss a rapidly oscillating function of the learned frequencies (a phase omega * dt), with a local
minimum every 2 pi / dt; ``fit`` therefore starts with the shortest jumps and widens the range to its
full length over the first ``warmup`` fraction of the budget, so the frequencies are found while the
landscape is still smooth.
"""

import math
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from mlpot.dynamics.action_angle import ActionAngleNetwork
from mlpot.dynamics.baselines import EulerUpdateNetwork, NeuralODE
from mlpot.errors import MLPotError
from mlpot.files import atomic_output, check_input_file

PROPAGATORS = {cls.__name__: cls for cls in (ActionAngleNetwork, EulerUpdateNetwork, NeuralODE)}


def uniform_step(times: torch.Tensor, what: str = "trajectory") -> float:
    """The time step of ``times`` [T]; one line if there are fewer than two frames or the step varies."""
    if times.numel() < 2:
        raise MLPotError(f"{what}: needs at least 2 frames, got {times.numel()}")
    steps = times[1:] - times[:-1]  # [T - 1]
    step = float(steps.mean())
    if step <= 0 or float((steps - step).abs().max()) > 1e-6 * abs(step):
        raise MLPotError(
            f"{what}: non-uniform time step (from {float(steps.min()):g} to {float(steps.max()):g}); "
            "a propagator needs frames at equal intervals"
        )
    return step


class PairData:
    """Pairs (states[i], states[i + k]) of one trajectory [T, 2n] sampled every ``step`` time units."""

    def __init__(self, states: torch.Tensor, step: float, what: str = "trajectory"):
        self.states = states.to(torch.float64)  # [T, 2n]
        self.step = step
        self.what = what

    def frame_offsets(self, dt_range: Tuple[float, float]) -> Tuple[int, int]:
        """(shortest, longest) jump in frames for ``dt_range`` in time units; one line if the data is too short."""
        low, high = dt_range
        k_low = max(1, math.ceil(low / self.step - 1e-9))
        k_high = math.floor(high / self.step + 1e-9)
        if k_high < k_low:
            raise MLPotError(f"{self.what}: jump range {low:g}-{high:g} holds no multiple of the time step {self.step:g}")
        frames = self.states.shape[0]
        if frames <= k_high:
            raise MLPotError(
                f"{self.what}: {frames} frames are too few for jumps up to {high:g} time units "
                f"({k_high} steps of {self.step:g}); need at least {k_high + 1}"
            )
        return k_low, k_high

    def sample(
        self, batch_size: int, k_low: int, k_high: int, generator: torch.Generator
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A batch (x0 [B, 2n], x1 [B, 2n], dt [B]) with jumps drawn uniformly from k_low..k_high frames."""
        offsets = torch.randint(k_low, k_high + 1, (batch_size,), generator=generator)  # [B]
        starts = (torch.rand(batch_size, generator=generator, dtype=torch.float64) * (self.states.shape[0] - offsets)).long()
        return self.states[starts], self.states[starts + offsets], offsets.to(torch.float64) * self.step


def fit(
    model: nn.Module,
    data: PairData,
    dt_range: Tuple[float, float],
    epochs: Optional[int] = None,
    minutes: Optional[float] = None,
    lr: float = 1e-3,
    seed: int = 0,
    batch_size: int = 256,
    warmup: float = 0.3,
) -> Dict[str, List[float]]:
    """Adam on ``model.loss`` for ``epochs`` (each ceil(T / batch_size) batches) or ``minutes`` of wall time.

    The longest jump grows linearly from dt_range[0] to dt_range[1] over the first ``warmup`` of the
    budget; the learning rate follows a cosine from ``lr`` down to lr / 100. Returns the history:
    per batch the ``loss``, the ``longest_jump`` in time units and the ``seconds`` since the start.
    """
    if (epochs is None) == (minutes is None):
        raise ValueError("give exactly one of epochs and minutes")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    k_low, k_high = data.frame_offsets(dt_range)
    model.normalisation.set_from(data.states)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    total_batches = None if epochs is None else epochs * math.ceil(data.states.shape[0] / batch_size)
    history: Dict[str, List[float]] = {"loss": [], "longest_jump": [], "seconds": []}
    start = time.perf_counter()
    batch = 0
    while True:
        elapsed = time.perf_counter() - start
        progress = batch / total_batches if total_batches is not None else elapsed / (60.0 * minutes)
        if progress >= 1.0:
            break
        k_now = k_low + round((k_high - k_low) * min(1.0, progress / warmup)) if warmup > 0 else k_high
        for group in optimizer.param_groups:
            group["lr"] = lr * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress)))
        x0, x1, dt = data.sample(batch_size, k_low, k_now, generator)
        loss = model.loss(x0, x1, dt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history["loss"].append(loss.item())
        history["longest_jump"].append(k_now * data.step)
        history["seconds"].append(elapsed)
        batch += 1
    return history


@torch.no_grad()
def prediction_error(
    model: nn.Module,
    states: torch.Tensor,
    times: torch.Tensor,
    jumps: Sequence[float],
    max_starts: int = 512,
) -> Dict[float, float]:
    """Relative RMS error of one-shot predictions, per jump (time units), over start frames of ``states``.

    Error = sqrt(mean over starts of sum_j ((x_pred - x_true)_j / sigma_j)^2 / 2n), sigma_j being the
    standard deviation of coordinate j over ``states`` [T, 2n]: 0 is perfect, about 1.4 is a
    prediction no better than a random state of the same trajectory. Up to ``max_starts`` start
    frames, evenly spaced, are used per jump.
    """
    states = states.to(torch.float64)
    step = uniform_step(times)
    spread = states.std(dim=0)  # [2n]
    spread = torch.where(spread > 0, spread, torch.ones_like(spread))
    errors: Dict[float, float] = {}
    for jump in jumps:
        offset = round(jump / step)
        if abs(offset * step - jump) > 1e-6 * max(1.0, jump):
            raise MLPotError(f"jump {jump:g} is not a multiple of the time step {step:g}")
        available = states.shape[0] - offset
        if available < 1:
            raise MLPotError(f"{states.shape[0]} frames are too few for a jump of {jump:g} time units")
        starts = torch.linspace(0, available - 1, min(max_starts, available)).round().long()  # [S]
        predicted = model(states[starts], torch.full((starts.numel(),), offset * step, dtype=torch.float64))
        scaled = (predicted - states[starts + offset]) / spread  # [S, 2n]
        errors[jump] = float(torch.sqrt((scaled**2).mean()))
    return errors


def save(model: nn.Module, path: Union[str, Path]) -> None:
    """Write a fitted propagator: its class name, init args and state_dict (normalisation included)."""
    name = type(model).__name__
    if name not in PROPAGATORS:
        raise ValueError(f"{name} is not a dynamics propagator")
    with atomic_output(path, "wb") as stream:
        torch.save({"class": name, "init_args": model.init_args, "state_dict": model.state_dict()}, stream)


def load(path: Union[str, Path]) -> nn.Module:
    """Read a propagator written by ``save``; one line if the file is missing or is something else."""
    path = check_input_file(path, "propagator")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a file torch cannot read at all: user input, not a bug
        raise MLPotError(f"{path}: not a saved dynamics propagator ({type(error).__name__})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("class") not in PROPAGATORS:
        raise MLPotError(f"{path}: not a saved dynamics propagator (no known 'class' entry)")
    model = PROPAGATORS[checkpoint["class"]](**checkpoint["init_args"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()
