"""The group layer: representations of Lie groups given by their generators, the reduction of
tensor products into irreps, and MACE's symmetric-contraction bases on any shipped group
(SO(3), O(3), SU(2), the Lorentz group). numpy only; see README "Equivariance beyond O(3)"."""

from mlpot.groups.groups import O3, SO3, SU2, Group, Lorentz
from mlpot.groups.reduce import decompose, intertwiners, reduce_product, symmetric_contraction_basis, symmetric_power
from mlpot.groups.representation import Representation, direct_sum, tensor_product

__all__ = [
    "Group",
    "Lorentz",
    "O3",
    "Representation",
    "SO3",
    "SU2",
    "decompose",
    "direct_sum",
    "intertwiners",
    "reduce_product",
    "symmetric_contraction_basis",
    "symmetric_power",
    "tensor_product",
]
