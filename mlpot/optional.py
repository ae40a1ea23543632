"""Optional dependencies: import one or say in one line which extra brings it."""

import importlib
from types import ModuleType

from mlpot.errors import MLPotError


def require_extra(module: str, extra: str, purpose: str) -> ModuleType:
    """``module`` imported, or an :class:`MLPotError` such as "mlpot phonons: phonopy is not
    installed; install the 'analysis' extra: pip install 'mlpot[analysis]'"."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise MLPotError(
            f"{purpose}: {top} is not installed; install the '{extra}' extra: pip install 'mlpot[{extra}]'"
        ) from None
