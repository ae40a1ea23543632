"""MD-engine adapters, installed as ``mlpot.calculators``."""

from mlpot.calculators.ase import MLPotCalculator

__all__ = ["MLPotCalculator"]
