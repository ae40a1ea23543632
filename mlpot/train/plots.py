"""Learning curves and parity plots (PNG, matplotlib's Agg backend: no display needed)."""

from pathlib import Path
from typing import Dict, List, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mlpot.files import atomic_output  # noqa: E402


def learning_curve(history: List[Dict[str, float]], path: Path) -> None:
    """Training and validation loss per epoch, log scale, plus validation errors."""
    epochs = [row["epoch"] for row in history]
    error_keys = [k for k in history[-1] if k.startswith("valid_") and k.endswith("_mae")] if history else []
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].semilogy(epochs, [row["train_loss"] for row in history], label="train")
    axes[0].semilogy(epochs, [row["valid_loss"] for row in history], label="validation")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    axes[0].legend()
    for key in error_keys:
        axes[1].semilogy(epochs, [row.get(key, np.nan) for row in history], label=key[len("valid_") :])
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("validation MAE")
    if error_keys:
        axes[1].legend()
    figure.tight_layout()
    _save(figure, path)


def parity(reference: Sequence[float], predicted: Sequence[float], label: str, unit: str, path: Path) -> None:
    reference, predicted = np.asarray(reference), np.asarray(predicted)
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.scatter(reference, predicted, s=4, alpha=0.5)
    low, high = float(min(reference.min(), predicted.min())), float(max(reference.max(), predicted.max()))
    axis.plot([low, high], [low, high], "k--", linewidth=0.8)
    mae = float(np.mean(np.abs(predicted - reference)))
    axis.set_title(f"{label}: MAE {mae:.4g} {unit}")
    axis.set_xlabel(f"reference ({unit})")
    axis.set_ylabel(f"predicted ({unit})")
    figure.tight_layout()
    _save(figure, path)


def calibration(spread: np.ndarray, error: np.ndarray, rho: float, path: Path) -> None:
    """A committee's predicted force spread against the actual force error, per atom, log-log."""
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    floor = 1e-6
    axis.scatter(np.maximum(spread, floor), np.maximum(error, floor), s=3, alpha=0.4)
    low = max(floor, float(min(spread.min(), error.min())))
    high = float(max(spread.max(), error.max(), low * 10))
    axis.plot([low, high], [low, high], "k--", linewidth=0.8)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_title(f"force spread vs error, Spearman {rho:.3f}")
    axis.set_xlabel("committee force std per atom (eV/Å)")
    axis.set_ylabel("|force error| per atom (eV/Å)")
    figure.tight_layout()
    _save(figure, path)


def _save(figure, path: Path) -> None:
    with atomic_output(path, "wb") as stream:
        figure.savefig(stream, format="png", dpi=110)
    plt.close(figure)
