"""Learning curves of Hamiltonian runs side by side: validation MAE(H) and how far the raw
training loss sits above the validation loss, at a few epochs.

    python compare_logs.py results/water/log.csv results/water_betas/*/log.csv

Each cell is "MAE(H) in µEh / median of train_loss / valid_loss over the 25 epochs before" (the
training loss is that of the raw weights during the epoch, the validation loss that of the EMA
weights), so a run's spikes and its accuracy read off one line.
"""

import argparse
import csv
from pathlib import Path

import numpy as np

EPOCHS = (10, 25, 50, 100, 200, 300, 400, 500, 600, 699)


def row(path: Path) -> str:
    with open(path) as stream:
        log = list(csv.DictReader(stream))
    train = np.array([float(entry["train_loss"]) for entry in log])
    valid = np.array([float(entry["valid_loss"]) for entry in log])
    mae = np.array([float(entry["valid_H_mae"]) for entry in log]) * 1e6  # µEh
    cells = []
    for epoch in EPOCHS:
        if epoch < len(log):
            window = slice(max(epoch - 24, 5), epoch + 1)  # skip the first epochs' fall
            cells.append(f"{mae[epoch]:5.0f}/{np.median(train[window] / valid[window]):3.0f}x")
        else:
            cells.append(f"{'':>10}")
    return f"{path.parent.name:<16} " + " ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="+", type=Path)
    args = parser.parse_args()
    print(f"{'run':<16} " + " ".join(f"{'epoch ' + str(epoch):>10}" for epoch in EPOCHS))
    for path in args.logs:
        print(row(path))


if __name__ == "__main__":
    main()
