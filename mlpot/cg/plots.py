"""Ramachandran histograms of reference and backmapped structures (PNG, Agg backend)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mlpot.files import atomic_output  # noqa: E402


def ramachandran(reference: np.ndarray, sampled: np.ndarray, residue: str, path: Path) -> None:
    """Side-by-side (phi, psi) 2D histograms, angles [M, 2] in degrees."""
    figure, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True)
    edges = np.linspace(-180.0, 180.0, 61)
    for axis, angles, title in ((axes[0], reference, "reference"), (axes[1], sampled, "backmapped samples")):
        axis.hist2d(angles[:, 0], angles[:, 1], bins=[edges, edges], cmap="viridis", density=True)
        axis.set_title(f"{residue}: {title}")
        axis.set_xlabel("phi (degrees)")
    axes[0].set_ylabel("psi (degrees)")
    figure.tight_layout()
    with atomic_output(path, "wb") as stream:
        figure.savefig(stream, format="png", dpi=110)
    plt.close(figure)
