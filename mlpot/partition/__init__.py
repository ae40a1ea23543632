"""Systems bigger than one process: partition the atom graph, evaluate the parts with exact
halos, in one process (memory bounded by the largest part) or across torch.distributed ranks.

Names are imported on first use, so that the CLI can read :data:`METHODS` without torch.
"""

import importlib
from typing import Any

METHODS = ("metis", "grid", "gnn")  # partitioners; the first is the default

_HOMES = {
    "PartitionedPotential": "mlpot.partition.evaluate",
    "evaluate_partitioned": "mlpot.partition.evaluate",
    "part_halos": "mlpot.partition.halo",
    "partition_atoms": "mlpot.partition.partitioners",
    "partition_quality": "mlpot.partition.partitioners",
}

__all__ = ["METHODS", *_HOMES]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'mlpot.partition' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
