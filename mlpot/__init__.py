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

from mlpot.data.graph import AtomicGraph, atoms_to_graph
from mlpot.errors import MLPotError
from mlpot.models import build_model
from mlpot.models.io import load_model, save_model

__all__ = ["AtomicGraph", "MLPotError", "__version__", "atoms_to_graph", "build_model", "load_model", "save_model"]
