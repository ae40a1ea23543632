"""Reusable equivariant blocks on ``[n, D, C]`` features (see :mod:`mlpot.nn.irreps`)."""

from mlpot.nn.convolution import EdgeTensorProduct, Interaction, PathLinear
from mlpot.nn.gated import GatedInteraction
from mlpot.nn.irreps import FeatureIrreps, wigner_d
from mlpot.nn.linear import ElementLinear, EquivariantLinear, ScaledLinear
from mlpot.nn.product import SymmetricContraction
from mlpot.nn.radial import AgnesiTransform, BesselBasis, PolynomialCutoff, RadialEmbedding, RadialMLP
from mlpot.nn.readout import LinearReadout, MLPReadout
from mlpot.nn.repulsion import ZBLRepulsion
from mlpot.nn.scatter import scatter_sum

__all__ = [
    "AgnesiTransform",
    "BesselBasis",
    "EdgeTensorProduct",
    "ElementLinear",
    "EquivariantLinear",
    "FeatureIrreps",
    "GatedInteraction",
    "Interaction",
    "LinearReadout",
    "MLPReadout",
    "PathLinear",
    "PolynomialCutoff",
    "RadialEmbedding",
    "RadialMLP",
    "ScaledLinear",
    "SymmetricContraction",
    "ZBLRepulsion",
    "scatter_sum",
    "wigner_d",
]
