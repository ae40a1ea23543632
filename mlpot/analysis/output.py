"""Files of ``mlpot analyze`` and ``mlpot phonons``: CSV tables, PNG plots, JSON summaries.

Every file is written through :func:`mlpot.files.atomic_output` and only after all results are
computed, so a run stopped by an error leaves no file behind. CSV headers name each column
with its unit (``Q_1/A``, ``frequency_THz``, ``msd_Cu_A2``, ...).
"""

import csv
import io
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mlpot.errors import MLPotError  # noqa: E402
from mlpot.files import atomic_output  # noqa: E402

Columns = Dict[str, np.ndarray]  # header (name_unit) -> [n] column


def csv_text(columns: Columns) -> str:
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(list(columns))
    for row in zip(*columns.values()):
        writer.writerow([f"{float(value):.8g}" for value in row])
    return stream.getvalue()


def figure_bytes(figure) -> bytes:
    stream = io.BytesIO()
    figure.tight_layout()
    figure.savefig(stream, format="png", dpi=110)
    plt.close(figure)
    return stream.getvalue()


def write_all(directory: Path, files: Dict[str, object]) -> List[Path]:
    """Write ``name -> str | bytes | dict`` (dict: JSON) into ``directory``, each file atomically."""
    written = []
    for name, content in files.items():
        path = directory / name
        if isinstance(content, dict):
            content = json.dumps(content, indent=2, sort_keys=False) + "\n"
        with atomic_output(path, "w" if isinstance(content, str) else "wb") as stream:
            stream.write(content)
        written.append(path)
    return written


def line_plot(curves: Sequence[Tuple[np.ndarray, np.ndarray, str]], xlabel: str, ylabel: str, title: str = "",
              reference: Optional[Tuple[np.ndarray, np.ndarray, str]] = None, x_max: Optional[float] = None) -> bytes:
    figure, axis = plt.subplots(figsize=(6, 4))
    if x_max is not None:
        axis.set_xlim(0.0, x_max)
    for x, y, label in curves:
        axis.plot(x, y, label=label, linewidth=1.2)
    if reference is not None:
        axis.plot(reference[0], reference[1], "k.", markersize=3, label=reference[2])
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title, fontsize=10)
    axis.legend(fontsize=8)
    return figure_bytes(figure)


def read_reference(path: Path, column: str) -> Tuple[np.ndarray, np.ndarray]:
    """(x, y) from a two-column text file (whitespace or commas, '#' comments, optional header),
    or from a CSV of another run: there the column named ``column`` if its header has one."""
    if not path.is_file():
        raise MLPotError(f"--compare file {path} does not exist")
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise MLPotError(f"--compare file {path} holds no data")
    header = None
    try:
        _numbers(lines[0])
    except ValueError:
        header, lines = [h.strip() for h in lines[0].replace(",", " ").split()], lines[1:]
    pick = header.index(column) if header and column in header else 1
    xs, ys = [], []
    for number, line in enumerate(lines, start=2 if header else 1):
        try:
            values = _numbers(line)
        except ValueError:
            raise MLPotError(f"--compare file {path}, line {number}: not numbers: {line[:60]!r}") from None
        if len(values) <= pick:
            raise MLPotError(f"--compare file {path}, line {number}: needs at least {pick + 1} columns")
        xs.append(values[0])
        ys.append(values[pick])
    if len(xs) < 2:
        raise MLPotError(f"--compare file {path} needs at least two data rows")
    order = np.argsort(xs)
    return np.array(xs)[order], np.array(ys)[order]


def _numbers(line: str) -> List[float]:
    return [float(v) for v in line.replace(",", " ").split()]


def r_factor(x_ref: np.ndarray, y_ref: np.ndarray, x: np.ndarray, y: np.ndarray) -> Tuple[float, int]:
    """R = sqrt(sum (y_sim - y_ref)^2 / sum y_ref^2) at the reference points inside the simulated
    x range (simulation linearly interpolated); returns (R, points used)."""
    finite = np.isfinite(y)
    x, y = x[finite], y[finite]
    inside = (x_ref >= x.min()) & (x_ref <= x.max())
    if inside.sum() < 2:
        raise MLPotError(f"--compare: the reference's x range {x_ref.min():g}..{x_ref.max():g} does not overlap the simulated {x.min():g}..{x.max():g}")
    simulated = np.interp(x_ref[inside], x, y)
    reference = y_ref[inside]
    return float(np.sqrt(np.sum((simulated - reference) ** 2) / np.sum(reference**2))), int(inside.sum())
