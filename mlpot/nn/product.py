"""Symmetric-contraction product basis (MACE's higher-order features).

For every node and channel, the block forms all equivariant polynomials of degree 1..correlation
in the channel's (lmax_in + 1)^2 components and mixes them with element-dependent weights:

    out[n, k, c] = sum_nu sum_p w_nu[z_n, p, c] * B_nu[p](x[n, :, c])[k]

The coupling tensors B_nu are chains of e3nn Wigner-3j couplings ((l1 x l2) -> L, (L x l3) -> lo),
symmetrised over the identical inputs. Symmetrised chains are linearly dependent, so only an
independent subset is kept (greedy, in a fixed order). Each kept chain is expressed on the
distinct monomials x_a x_b x_c (a <= b <= c) that it touches. The chains are stored as buffers,
so a saved model never depends on how a later run enumerates them.

Two execution paths give the same numbers: fused (:mod:`mlpot.kernels.symmetric`: one operator
per node and channel, monomials formed in registers, its derivatives the same operator in other
modes) and reference (one gather per degree plus one batched matmul per element over channels,
building [C, n, monomials] tensors).
"""

import functools
import itertools
import math
from typing import Callable, Final, List, Tuple

import torch
from e3nn import o3
from torch import nn

from mlpot.kernels import default_fused
from mlpot.kernels.symmetric import coupling_pairs, monomial_table, symmetric
from mlpot.nn.irreps import FeatureIrreps, l_slice
from mlpot.nn.linear import elements_in_rows


def _coupling_chains(lmax_in: int, lo: int, degree: int) -> List[torch.Tensor]:
    """All coupling tensors [2lo+1, D, ..., D] (degree input axes) with natural parities."""
    dim = (lmax_in + 1) ** 2
    chains: List[torch.Tensor] = []
    if degree == 1:
        if lo <= lmax_in:
            tensor = torch.zeros(2 * lo + 1, dim, dtype=torch.float64)
            tensor[:, l_slice(lo)] = torch.eye(2 * lo + 1, dtype=torch.float64)
            chains.append(tensor)
        return chains
    for ls in itertools.product(range(lmax_in + 1), repeat=degree):
        if (sum(ls) + lo) % 2:
            continue  # natural parity in and out: parity (-1)^sum(l) must equal (-1)^lo
        for path in _intermediate_paths(ls, lo):
            chains.append(_chain_tensor(ls, path, lo, dim))
    return chains


def _intermediate_paths(ls: Tuple[int, ...], lo: int) -> List[Tuple[int, ...]]:
    """Intermediate degrees (L_2, ..., L_{n-1}) coupling l_1 x l_2 -> L_2 x l_3 -> ... -> lo."""
    paths: List[Tuple[int, ...]] = [()]
    current = [ls[0]]
    for step, l_next in enumerate(ls[1:], start=1):
        last = step == len(ls) - 1
        new_paths = []
        new_current = []
        for path, l_prev in zip(paths, current):
            targets = [lo] if last else range(abs(l_prev - l_next), l_prev + l_next + 1)
            for target in targets:
                if abs(l_prev - l_next) <= target <= l_prev + l_next:
                    new_paths.append(path + ((target,) if not last else ()))
                    new_current.append(target)
        paths, current = new_paths, new_current
    return paths


def _chain_tensor(ls: Tuple[int, ...], mids: Tuple[int, ...], lo: int, dim: int) -> torch.Tensor:
    """Component-normalised chain of Wigner-3j couplings, embedded in [2lo+1, D, ..., D]."""
    degrees = list(mids) + [lo]
    chain = torch.eye(2 * ls[0] + 1, dtype=torch.float64)  # [m_out_so_far, m1]
    l_prev = ls[0]
    for l_next, l_out in zip(ls[1:], degrees):
        cg = o3.wigner_3j(l_prev, l_next, l_out, dtype=torch.float64) * math.sqrt(2 * l_out + 1)
        # [M_prev, m1..m_k] x [M_prev, m_next, M_out] -> [M_out, m1..m_k, m_next]
        chain = torch.einsum("p...,pqo->o...q", chain, cg)
        l_prev = l_out
    full = torch.zeros((2 * lo + 1,) + (dim,) * len(ls), dtype=torch.float64)
    index = (slice(None),) + tuple(l_slice(l) for l in ls)
    full[index] = chain
    return full


def _on_monomials(tensor: torch.Tensor, monomials: torch.Tensor, orderings: torch.Tensor) -> torch.Tensor:
    """Coefficients [2lo+1, n_monomials] of the polynomial sum T[k, a, b, ..] x_a x_b .. .

    ``monomials`` [n_monomials, degree] holds sorted component indices, ``orderings`` how many
    distinct orderings each has.
    """
    axes = range(1, tensor.dim())
    symmetric = sum(tensor.permute(0, *perm) for perm in itertools.permutations(axes))
    symmetric = symmetric / math.factorial(tensor.dim() - 1)
    return symmetric[(slice(None),) + tuple(monomials.T)] * orderings


def polynomial_coefficients(tensor: torch.Tensor, monomials: torch.Tensor) -> torch.Tensor:
    """Coefficients [2lo+1, n_monomials] of the polynomial sum T[k, a, b, ..] x_a x_b .. of a
    coupling tensor [2lo+1, D, ..., D] on sorted monomials [n_monomials, degree] (this is how a
    coupling tensor stored elsewhere, such as mace-torch's U matrices, is compared with this basis)."""
    orderings = torch.tensor([_distinct_orderings(tuple(key)) for key in monomials.tolist()], dtype=torch.float64)
    return _on_monomials(tensor.to(torch.float64), monomials, orderings)


def _distinct_orderings(key: Tuple[int, ...]) -> int:
    count = math.factorial(len(key))
    for repeat in (key.count(a) for a in set(key)):
        count //= math.factorial(repeat)
    return count


@functools.lru_cache(maxsize=None)
def independent_basis(lmax_in: int, lmax_out: int, degree: int) -> Tuple[List[Tuple[int, ...]], torch.Tensor]:
    """Monomials that matter and an independent set of coupling maps on them.

    Returns (monomials, basis), basis [P, (lmax_out + 1)^2, len(monomials)]; path p maps the
    monomials of one channel to an output supported on a single degree lo.
    """
    dim_in = (lmax_in + 1) ** 2
    all_monomials = list(itertools.combinations_with_replacement(range(dim_in), degree))
    monomial_index = torch.tensor(all_monomials, dtype=torch.long).reshape(len(all_monomials), degree)
    orderings = torch.tensor([_distinct_orderings(key) for key in all_monomials], dtype=torch.float64)
    paths: List[Tuple[int, torch.Tensor]] = []  # (lo, coefficients [2lo+1, all_monomials])
    for lo in range(lmax_out + 1):
        orthonormal: List[torch.Tensor] = []
        for chain in _coupling_chains(lmax_in, lo, degree):
            coefficients = _on_monomials(chain, monomial_index, orderings)
            vector = coefficients.flatten()
            residual = vector.clone()
            for q in orthonormal:
                residual -= (q @ residual) * q
            if residual.norm() > 1e-8 * max(vector.norm().item(), 1e-300):
                orthonormal.append(residual / residual.norm())
                paths.append((lo, coefficients))
    used = torch.zeros(len(all_monomials), dtype=torch.bool)
    for _, coefficients in paths:
        used |= coefficients.abs().amax(dim=0) > 1e-12
    monomials = [key for key, keep in zip(all_monomials, used.tolist()) if keep]
    basis = torch.zeros(len(paths), (lmax_out + 1) ** 2, len(monomials), dtype=torch.float64)
    for p, (lo, coefficients) in enumerate(paths):
        basis[p, l_slice(lo), :] = coefficients[:, used]
    return monomials, basis


# (lmax_in, lmax_out, degree) -> (sorted monomials, basis [P, (lmax_out+1)^2, n_monomials])
BasisFactory = Callable[[int, int, int], Tuple[List[Tuple[int, ...]], torch.Tensor]]


class SymmetricContraction(nn.Module):
    """Element-dependent equivariant polynomials of degree 1..correlation, channel by channel.

    Input [n, (lmax_in+1)^2, C] -> output [n, (lmax_out+1)^2, C]. Nodes must be sorted by
    element, ``element_counts[z]`` of element index z in a row. :attr:`fused` picks the path.
    ``basis`` builds the coupling maps of one degree (default :func:`independent_basis`; e.g.
    :func:`mlpot.groups.product.o3_product_basis` takes them from the group layer).
    """

    fused: Final[bool]  # a TorchScript constant: a scripted model holds only the chosen path

    def __init__(
        self,
        irreps_in: FeatureIrreps,
        irreps_out: FeatureIrreps,
        correlation: int,
        num_elements: int,
        basis: BasisFactory = independent_basis,
    ):
        super().__init__()
        if irreps_in.channels != irreps_out.channels:
            raise ValueError("symmetric contraction keeps the number of channels")
        if not 1 <= correlation <= 3:
            raise ValueError(f"correlation must be 1, 2 or 3, got {correlation}")
        self.irreps_in = irreps_in
        self.irreps_out = irreps_out
        self.correlation = correlation
        channels = irreps_in.channels
        bases, pair_monomials, triple_monomials, single = [], [], [], []
        for degree in range(1, correlation + 1):
            monomials, degree_basis = basis(irreps_in.lmax, irreps_out.lmax, degree)
            bases.append(degree_basis)
            {1: single, 2: pair_monomials, 3: triple_monomials}[degree].extend(monomials)
        # Pairs are evaluated once and reused as prefixes of the triples.
        pairs = sorted(set(pair_monomials) | {key[:2] for key in triple_monomials})
        pair_position = {key: i for i, key in enumerate(pairs)}
        self.register_buffer("single_index", torch.tensor([key[0] for key in single], dtype=torch.long))
        self.register_buffer("pair_first", torch.tensor([key[0] for key in pairs], dtype=torch.long).reshape(-1))
        self.register_buffer("pair_second", torch.tensor([key[1] for key in pairs], dtype=torch.long).reshape(-1))
        self.register_buffer(
            "pair_select", torch.tensor([pair_position[key] for key in pair_monomials], dtype=torch.long).reshape(-1)
        )
        self.register_buffer(
            "triple_prefix", torch.tensor([pair_position[key[:2]] for key in triple_monomials], dtype=torch.long).reshape(-1)
        )
        self.register_buffer("triple_last", torch.tensor([key[2] for key in triple_monomials], dtype=torch.long).reshape(-1))
        # One basis over the concatenated monomials of all degrees: [P, D_out, n_monomials].
        num_monomials = [b.shape[-1] for b in bases]
        dim_out = irreps_out.dim
        num_paths = sum(b.shape[0] for b in bases)
        basis = torch.zeros(num_paths, dim_out, sum(num_monomials), dtype=torch.float64)
        p0, m0 = 0, 0
        for b in bases:
            basis[p0 : p0 + b.shape[0], :, m0 : m0 + b.shape[-1]] = b
            p0, m0 = p0 + b.shape[0], m0 + b.shape[-1]
        self.register_buffer("basis", basis.to(torch.get_default_dtype()))
        self.num_paths = num_paths
        # Paths of one degree share a 1/sqrt(P_degree) start so each degree contributes O(1).
        init_scale = torch.cat([torch.full((b.shape[0],), 1.0 / math.sqrt(b.shape[0])) for b in bases])
        self.weight = nn.Parameter(torch.randn(num_elements, num_paths, channels) * init_scale[None, :, None])
        self._set_tables()
        self.fused = default_fused()

    def _set_tables(self) -> None:
        """The fused kernel's tables from the saved buffers (not saved: derived again on load)."""
        monomials = monomial_table(
            self.single_index, self.pair_first, self.pair_second, self.pair_select, self.triple_prefix, self.triple_last
        )
        starts, pair_k, pair_basis = coupling_pairs(self.basis)
        device = self.basis.device
        self.register_buffer("kernel_monomials", monomials.to(device), persistent=False)
        self.register_buffer("kernel_starts", starts.to(device), persistent=False)
        self.register_buffer("kernel_pair_k", pair_k.to(device), persistent=False)
        self.register_buffer("pair_basis", pair_basis.t().contiguous(), persistent=False)  # [nnz, P]

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._set_tables()

    def monomials(self, x: torch.Tensor) -> torch.Tensor:
        """[C, n, D_in] -> all used monomials of degree 1..correlation, [C, n, n_monomials]."""
        features = [x.index_select(2, self.single_index)]
        if self.correlation >= 2:
            pairs = x.index_select(2, self.pair_first) * x.index_select(2, self.pair_second)
            features.append(pairs.index_select(2, self.pair_select))
            if self.correlation >= 3:
                features.append(pairs.index_select(2, self.triple_prefix) * x.index_select(2, self.triple_last))
        return torch.cat(features, dim=2)

    def forward(self, x: torch.Tensor, element_counts: List[int]) -> torch.Tensor:
        if self.fused:
            return self._fused(x, element_counts)
        monomials = self.monomials(x.permute(2, 0, 1))  # [C, n, M]
        num_paths, dim_out, num_monomials = self.basis.shape
        basis = self.basis.reshape(num_paths, dim_out * num_monomials)  # [P, D_out * M]
        blocks: List[torch.Tensor] = []
        # split, not slicing: its backward concatenates instead of zero-filling per element
        for z, group in enumerate(torch.split(monomials, element_counts, dim=1)):
            if torch.compiler.is_compiling() or element_counts[z] > 0:  # export: no branch on a count
                coefficients = torch.mm(self.weight[z].t(), basis).view(-1, dim_out, num_monomials)  # [C, D_out, M]
                blocks.append(torch.bmm(group, coefficients.transpose(1, 2)))  # [C, n_z, D_out]
        return torch.cat(blocks, dim=1).permute(1, 2, 0)  # [n, D_out, C]

    def _fused(self, x: torch.Tensor, element_counts: List[int]) -> torch.Tensor:
        num_elements = self.weight.shape[0]
        element = elements_in_rows(element_counts, x.device)  # [n]
        coefficients = torch.matmul(self.pair_basis, self.weight)  # [Z, nnz, C]
        dims = [x.shape[0], x.shape[1], self.basis.shape[1], coefficients.shape[1], x.shape[2], num_elements]
        return symmetric(
            x, coefficients, None, None, self.kernel_monomials, self.kernel_starts, self.kernel_pair_k, element, 0, dims  # mode VALUE
        )
