"""mlpot: E(3)-equivariant machine-learning models for atoms.

Public API::

    build_model(config) -> model          untrained model from a config dict
    save_model(model, path)               one file: config, weights, format version, metadata
    load_model(path, dtype=None)          rebuild a saved model (never executes code from the file)
    atoms_to_graph(atoms, r_max)          ASE Atoms -> AtomicGraph (torch_geometric Data)
    MLPotError                            raised for user mistakes, with a one-line message
"""

from pathlib import Path as _Path

__version__ = "0.1.0"

# The top-level `calculators/` folder is installed as `mlpot.calculators` (a package-dir mapping),
# so in a source checkout it sits beside this package rather than inside it. When the checkout
# itself is imported (`python -m mlpot...` from the repository root puts it first on sys.path),
# let `mlpot.calculators` resolve there too.
_CHECKOUT = _Path(__file__).resolve().parent.parent
if not (_Path(__file__).parent / "calculators").is_dir() and (_CHECKOUT / "calculators" / "__init__.py").is_file():
    __path__.append(str(_CHECKOUT))

from mlpot.errors import MLPotError
from mlpot.threads import prefer_passive_wait as _prefer_passive_wait

# Before anything loads torch: its OpenMP runtime reads the wait policy once, when loaded, and
# spinning threads collapse on cores shared with other processes (mlpot/threads.py).
_prefer_passive_wait()

# The rest of the API loads torch and torch-geometric (seconds), so it is imported on first use:
# `import mlpot` (and through it `mlpot --help`) stays instant.
_LAZY = {
    "AtomicGraph": "mlpot.data.graph",
    "atoms_to_graph": "mlpot.data.graph",
    "build_model": "mlpot.models",
    "load_model": "mlpot.models.io",
    "save_model": "mlpot.models.io",
}

__all__ = ["AtomicGraph", "MLPotError", "__version__", "atoms_to_graph", "build_model", "load_model", "save_model"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'mlpot' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
