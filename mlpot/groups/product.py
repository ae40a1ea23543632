"""MACE's product block with its coupling maps taken from the group layer.

:class:`mlpot.nn.product.SymmetricContraction` accepts a ``basis`` factory; this one computes the
O(3) symmetric-contraction bases with :func:`mlpot.groups.symmetric_contraction_basis` instead of
chaining e3nn's Wigner-3j symbols, written in mlpot's feature layout (e3nn's real components,
natural parities 0e, 1o, 2e, ...). The maps span the same functions as the default basis
(tests/test_groups_product.py), so a block built either way can represent the same potential;
they differ in normalisation and in the choice of basis inside that span.

    SymmetricContraction(irreps_in, irreps_out, correlation, num_elements, basis=o3_product_basis)
"""

import functools
import itertools
from typing import List, Tuple

import numpy as np
import torch
from e3nn import o3

from mlpot.groups.groups import O3, SO3
from mlpot.groups.reduce import intertwiners, symmetric_contraction_basis
from mlpot.groups.representation import Representation, direct_sum
from mlpot.nn.irreps import l_slice
from mlpot.nn.product import polynomial_coefficients


@functools.lru_cache(maxsize=None)
def e3nn_generators(l: int) -> np.ndarray:
    """e3nn's real generators of the irrep l [3, 2l+1, 2l+1] in float64 (e3nn computes them in the
    default dtype, and float32 rounding is far above the group layer's tolerances)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return o3.so3_generators(l).numpy()
    finally:
        torch.set_default_dtype(previous)


@functools.lru_cache(maxsize=None)
def e3nn_basis_change(l: int) -> np.ndarray:
    """Orthogonal S [2l+1, 2l+1] with v_group = S v_e3nn: the group layer's real basis of the
    irrep l from e3nn's (found from the generators: X_group S = S X_e3nn; sign arbitrary)."""
    e3nn_irrep = Representation(e3nn_generators(l), label=f"e3nn {l}")
    solution = intertwiners(SO3().irrep(str(l)), e3nn_irrep)[0]  # [2l+1, 2l+1], Frobenius norm 1
    return solution * np.sqrt(2 * l + 1)


def _natural(l: int) -> str:
    return f"{l}{'eo'[l % 2]}"


def _features_in_e3nn_basis(lmax: int) -> Representation:
    """O(3) on mlpot's feature components 0e + 1o + ... + lmax (e3nn's real order)."""
    irreps = []
    for l in range(lmax + 1):
        irrep = O3().irrep(_natural(l))
        change = e3nn_basis_change(l)
        irreps.append(Representation(change.T @ irrep.generators @ change, irrep.discrete, irrep.label))
    return direct_sum(*irreps)


@functools.lru_cache(maxsize=None)
def o3_product_basis(lmax_in: int, lmax_out: int, degree: int) -> Tuple[List[Tuple[int, ...]], torch.Tensor]:
    """Monomials and coupling maps [P, (lmax_out+1)^2, n_monomials] of one degree, in the format of
    :func:`mlpot.nn.product.independent_basis`, from the group layer."""
    features = _features_in_e3nn_basis(lmax_in)
    dim_in = features.dim
    all_monomials = torch.tensor(list(itertools.combinations_with_replacement(range(dim_in), degree)), dtype=torch.long)
    all_monomials = all_monomials.reshape(-1, degree)
    paths: List[Tuple[int, torch.Tensor]] = []  # (lo, coefficients [2lo+1, all_monomials])
    for lo in range(lmax_out + 1):
        tensors = symmetric_contraction_basis(O3(), features, degree, _natural(lo))  # [P, 2lo+1, D, ..., D]
        tensors = np.tensordot(e3nn_basis_change(lo).T, tensors, axes=([1], [1])).swapaxes(0, 1)  # output in e3nn's basis
        paths += [(lo, polynomial_coefficients(torch.from_numpy(np.ascontiguousarray(t)), all_monomials)) for t in tensors]
    used = torch.zeros(len(all_monomials), dtype=torch.bool)
    for _, coefficients in paths:
        used |= coefficients.abs().amax(dim=0) > 1e-12
    monomials = [tuple(key) for key, keep in zip(all_monomials.tolist(), used.tolist()) if keep]
    basis = torch.zeros(len(paths), (lmax_out + 1) ** 2, len(monomials), dtype=torch.float64)
    for p, (lo, coefficients) in enumerate(paths):
        basis[p, l_slice(lo), :] = coefficients[:, used]
    basis[basis.abs() < 1e-12] = 0.0  # rounding noise would only add work to the fused kernel
    return monomials, basis
