"""mlpot: E(3)-equivariant machine-learning models for atoms.

Public API::

    build_model(config) -> model          untrained model from a config dict
    save_model(model, path)               one file: config, weights, format version, metadata
    load_model(path, dtype=None)          rebuild a saved model (never executes code from the file)
    atoms_to_graph(atoms, r_max)          ASE Atoms -> AtomicGraph (torch_geometric Data)
    MLPotError                            raised for user mistakes, with a one-line message
"""

__version__ = "0.1.0"

from mlpot.data.graph import AtomicGraph, atoms_to_graph
from mlpot.errors import MLPotError
from mlpot.models import build_model
from mlpot.models.io import load_model, save_model

__all__ = ["AtomicGraph", "MLPotError", "__version__", "atoms_to_graph", "build_model", "load_model", "save_model"]
