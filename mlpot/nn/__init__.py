"""Reusable equivariant blocks on ``[n, D, C]`` features (see :mod:`mlpot.nn.irreps`)."""

from mlpot.nn.convolution import EdgeTensorProduct, Interaction, PathLinear
from mlpot.nn.irreps import FeatureIrreps, wigner_d
from mlpot.nn.linear import ElementLinear, EquivariantLinear, ScaledLinear
from mlpot.nn.product import SymmetricContraction
from mlpot.nn.radial import BesselBasis, PolynomialCutoff, RadialEmbedding, RadialMLP
from mlpot.nn.readout import LinearReadout, MLPReadout
from mlpot.nn.scatter import scatter_sum

__all__ = [
    "BesselBasis",
    "EdgeTensorProduct",
    "ElementLinear",
    "EquivariantLinear",
    "FeatureIrreps",
    "Interaction",
    "LinearReadout",
    "MLPReadout",
    "PathLinear",
    "PolynomialCutoff",
    "RadialEmbedding",
    "RadialMLP",
    "ScaledLinear",
    "SymmetricContraction",
    "scatter_sum",
    "wigner_d",
]
