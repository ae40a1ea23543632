"""SU(2) spin blocks of an atomic-orbital pair from O(3) environment features.

A spin-orbit Hamiltonian couples spin orbitals |l m, s>: the block between shells l1 and l2 is a
complex matrix H [(2 l1 + 1) * 2, (2 l2 + 1) * 2] (rows (m1, s1) m-major, columns (m2, s2)), and a
rotation U in SU(2) (rotating positions by its SO(3) image R) acts as

    H -> D1 H D2^dagger,   D_i = D^{l_i}(R) kron U     (D^l: e3nn's real Wigner matrices).

On vec(H) that is the representation (l1 x 1/2) x conj(l2 x 1/2) of SU(2); integer-l features
are SU(2) representations through the same Lie algebra. The group layer gives every intertwiner
from a feature of degree l into that space (orbital L in l1 x l2 coupled with spin 0 or 1 to l);
the layer mixes them with complex weights per channel. A feature of degree l enters only if
l1 + l2 + l is even: mlpot's features carry natural parity and the spin is even under inversion.
"""

from typing import List

import numpy as np
import torch
from torch import nn

from mlpot.groups.groups import SU2
from mlpot.groups.product import e3nn_generators
from mlpot.groups.reduce import intertwiners
from mlpot.groups.representation import Representation, tensor_product
from mlpot.nn.irreps import l_slice


def _e3nn_irrep(l: int) -> Representation:
    """The integer-spin irrep l in e3nn's real basis (its Cartesian-convention generators)."""
    return Representation(e3nn_generators(l), label=str(l))


def spin_orbital(l: int) -> Representation:
    """Spin orbitals of a shell: l x 1/2 on indices (m, s), m-major."""
    return tensor_product(_e3nn_irrep(l), SU2().irrep("1/2"))


def block_representation(l1: int, l2: int) -> Representation:
    """SU(2) on vec(H) of an (l1, l2) spin block: (l1 x 1/2) x conj(l2 x 1/2)."""
    columns = spin_orbital(l2)
    return tensor_product(spin_orbital(l1), Representation(columns.generators.conj(), label=f"conj({columns.label})"))


class SpinBlock(nn.Module):
    """Features [n, (lmax+1)^2, C] (mlpot's layout) -> spin blocks [n, 2(2 l1+1), 2(2 l2+1)] (complex)."""

    def __init__(self, lmax: int, l1: int, l2: int, channels: int):
        super().__init__()
        self.l1, self.l2, self.lmax = l1, l2, lmax
        block = block_representation(l1, l2)
        self.degrees: List[int] = []
        maps = []
        for l in range(lmax + 1):
            if (l1 + l2 + l) % 2:
                continue
            solutions = intertwiners(block, _e3nn_irrep(l))  # [k, d_block, 2l+1], orthonormal
            if len(solutions):
                self.degrees.append(l)
                maps.append(solutions)
        if not maps:
            raise ValueError(f"no feature of degree <= {lmax} couples to the ({l1}, {l2}) spin block")
        complex_dtype = torch.complex128 if torch.get_default_dtype() == torch.float64 else torch.complex64
        self.path_counts = [len(m) for m in maps]
        for l, solutions in zip(self.degrees, maps):
            self.register_buffer(f"coupling_{l}", torch.from_numpy(np.ascontiguousarray(solutions)).to(complex_dtype))
        num_paths = sum(self.path_counts)
        scale = 1.0 / np.sqrt(2 * num_paths * channels)
        self.weight = nn.Parameter(torch.randn(num_paths, channels, 2) * scale)  # real and imaginary parts

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        weight = torch.view_as_complex(self.weight.contiguous())  # [P, C]
        rows, columns = 2 * (2 * self.l1 + 1), 2 * (2 * self.l2 + 1)
        out = features.new_zeros((features.shape[0], rows * columns), dtype=weight.dtype)
        start = 0
        for l, count in zip(self.degrees, self.path_counts):
            coupling = getattr(self, f"coupling_{l}")  # [k, rows*columns, 2l+1]
            x = features[:, l_slice(l), :].to(weight.dtype)  # [n, 2l+1, C]
            mixed = torch.einsum("nmc,kc->nkm", x, weight[start : start + count])  # [n, k, 2l+1]
            out = out + torch.einsum("kbm,nkm->nb", coupling, mixed)
            start += count
        return out.view(-1, rows, columns)
