"""Reduction of representations into irreps, symmetric powers and MACE's contraction bases.

An intertwiner S: V -> W commutes with the group, X_W S - S X_V = 0 for every generator and
D_W S - S D_V = 0 for every discrete element; these are linear equations in S, and their null
space is the space Hom_G(V, W). Reducing V into irreps is finding that space for every
irrep W that V contains (the group's weight count says which, and how often), then picking one
intertwiner per copy (arXiv 2306.00091, lie-nn). Arrays are numpy float64 / complex128.
"""

import itertools
import math
from functools import lru_cache
from typing import List, Tuple

import numpy as np

from mlpot.errors import MLPotError
from mlpot.groups.groups import Group
from mlpot.groups.representation import Representation, tensor_product

NULL_TOLERANCE = 1e-10  # squared singular values below this fraction of the largest span the null space
INDEPENDENCE_TOLERANCE = 1e-8  # relative residual below which a tensor counts as dependent


def intertwiners(target: Representation, source: Representation) -> np.ndarray:
    """A Frobenius-orthonormal basis of Hom_G(source, target): [k, d_target, d_source].

    The first generator (a rotation, diagonalisable with eigenvalues -i m) is diagonalised on
    both sides first: in its eigenbases an intertwiner only links equal eigenvalues, which
    leaves one unknown per pair of equal weights instead of d_target * d_source.
    """
    if len(target.generators) != len(source.generators) or len(target.discrete) != len(source.discrete):
        raise MLPotError(f"representations {target.label!r} and {source.label!r} belong to different groups")
    d_t, d_s = target.dim, source.dim
    if len(target.generators) == 0:
        raise MLPotError("intertwiners need at least one generator")
    values_t, vectors_t = _eigenbasis(target.generators[0])
    values_s, vectors_s = _eigenbasis(source.generators[0])
    inverse_t = np.linalg.inv(vectors_t)
    inverse_s = np.linalg.inv(vectors_s)
    rows, columns = np.nonzero(np.abs(values_t[:, None] - values_s[None, :]) < 1e-6)  # unknowns S'[i, j]
    if len(rows) == 0:
        return np.zeros((0, d_t, d_s))
    # null space from the Gram matrix G = sum_g E_g^H E_g of the equations E_g S' = A S' - S' B
    # over the unknowns (its eigenvalues are the squared singular values; the nonzero ones are O(1)
    # for these integer-weight equations, so the gap is wide)
    gram = np.zeros((len(rows), len(rows)), dtype=np.complex128)
    same_row = rows[:, None] == rows[None, :]
    same_column = columns[:, None] == columns[None, :]
    for m_t, m_s in list(zip(target.generators[1:], source.generators[1:])) + list(zip(target.discrete, source.discrete)):
        a = inverse_t @ m_t @ vectors_t  # [d_t, d_t] in the eigenbasis
        b = inverse_s @ m_s @ vectors_s  # [d_s, d_s]
        a_sub, b_sub = a[np.ix_(rows, rows)], b[np.ix_(columns, columns)]  # [U, U]
        # unknown u is E_u = a[:, i_u] e_{j_u}^T - e_{i_u} b[j_u, :]; G[u, v] = <E_u, E_v>
        gram += (a.conj().T @ a)[np.ix_(rows, rows)] * same_column
        gram -= a_sub.conj().T * b_sub.T + a_sub * b_sub.conj()
        gram += same_row * (b @ b.conj().T)[np.ix_(columns, columns)].T
    if len(target.generators) + len(target.discrete) > 1:
        values, vectors = np.linalg.eigh(gram)
        null = vectors[:, values < NULL_TOLERANCE * max(values.max(initial=0.0), 1.0)].T  # [k, unknowns]
    else:
        null = np.eye(len(rows), dtype=np.complex128)
    if len(null) == 0:
        return np.zeros((0, d_t, d_s))
    primed = np.zeros((len(null), d_t, d_s), dtype=np.complex128)
    primed[:, rows, columns] = null
    solutions = (vectors_t[None] @ primed @ inverse_s[None]).reshape(len(null), -1)  # S = P_t S' P_s^-1
    if target.is_real and source.is_real:  # the real solutions span the same space: Re and Im parts
        solutions = np.concatenate([solutions.real, solutions.imag])
    return _orthonormal_span(solutions, len(null)).reshape(-1, d_t, d_s)


def _eigenbasis(matrix: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Eigenvalues [d] and eigenvectors [d, d] (columns) of a diagonalisable matrix, each
    eigenspace given an orthonormal basis (np.linalg.eig returns nearly parallel vectors inside
    a degenerate eigenspace, which makes the basis singular)."""
    hermitian = 1j * matrix  # Hermitian when the matrix is anti-Hermitian (a unitary action)
    if np.abs(hermitian - hermitian.conj().T).max(initial=0.0) < 1e-12 * max(np.abs(matrix).max(initial=0.0), 1.0):
        values, basis = np.linalg.eigh(hermitian)
        return -1j * values, basis
    estimates = np.linalg.eigvals(matrix)
    values, vectors = [], []
    remaining = list(estimates)
    while remaining:
        centre = remaining[0]
        cluster = [v for v in remaining if abs(v - centre) < 1e-6]
        remaining = [v for v in remaining if abs(v - centre) >= 1e-6]
        centre = np.mean(cluster)
        _, _, vh = np.linalg.svd(matrix - centre * np.eye(len(matrix)))
        vectors.append(vh[len(matrix) - len(cluster) :].conj().T)
        values += [centre] * len(cluster)
    basis = np.concatenate(vectors, axis=1)
    values = np.array(values)
    residual = np.abs(matrix @ basis - basis * values[None, :]).max(initial=0.0)
    if np.linalg.cond(basis) > 1e8 or residual > 1e-8 * max(np.abs(matrix).max(), 1.0):
        raise MLPotError("the first generator is not diagonalisable: order the generators with a compact one (a rotation) first")
    return values, basis


def _orthonormal_span(vectors: np.ndarray, rank: int) -> np.ndarray:
    """An orthonormal basis [rank, n] of the row span of ``vectors`` [m, n]."""
    if rank == 0:
        return np.zeros((0, vectors.shape[1]), dtype=vectors.dtype)
    _, _, vh = np.linalg.svd(vectors, full_matrices=False)
    return vh[:rank]


def _copies(solutions: np.ndarray, multiplicity: int, target: Representation, source: Representation) -> List[np.ndarray]:
    """``multiplicity`` intertwiners with independent images' preimages (row spaces), each scaled
    to squared Frobenius norm d_target (orthonormal rows where the group acts unitarily)."""
    chosen: List[np.ndarray] = []
    rows = np.zeros((0, source.dim), dtype=solutions.dtype)
    for solution in solutions:
        # Gram-Schmidt against the copies kept so far, then keep it if it adds a whole irrep's rows
        for kept in chosen:
            solution = solution - np.vdot(kept, solution) / np.vdot(kept, kept) * kept
        stacked = np.concatenate([rows, solution])
        if np.linalg.matrix_rank(stacked, tol=1e-8 * np.abs(stacked).max()) == len(rows) + target.dim:
            chosen.append(solution * np.sqrt(target.dim) / np.linalg.norm(solution))
            rows = np.concatenate([rows, chosen[-1]])
        if len(chosen) == multiplicity:
            return chosen
    raise RuntimeError(f"found {len(chosen)} of {multiplicity} copies of {target.label!r} in {source.label!r}")


def decompose(group: Group, rep: Representation) -> List[Tuple[str, np.ndarray]]:
    """``rep`` split into irreps: (label, S [d_irrep, d]) per copy, S intertwining rep -> irrep.

    Real representations map onto real irreps (the group's :meth:`target`), complex ones onto
    complex irreps. The S stacked over all copies form an invertible change of basis.
    """
    result = []
    for label, multiplicity in group.irreps_in(rep):
        target = group.target(label, rep.is_real)
        solutions = intertwiners(target, rep)
        result += [(label, s) for s in _copies(solutions, multiplicity, target, rep)]
    return result


def reduce_product(group: Group, rep1: Representation, rep2: Representation) -> List[Tuple[str, np.ndarray]]:
    """rep1 x rep2 into irreps: (label, C [d_irrep, d1, d2]) per copy (Clebsch-Gordan coefficients)."""
    group.check(rep1)
    group.check(rep2)
    return [(label, c.reshape(-1, rep1.dim, rep2.dim)) for label, c in decompose(group, tensor_product(rep1, rep2))]


@lru_cache(maxsize=None)
def _irrep_product(group: Group, label_a: str, label_b: str, real: bool) -> Tuple[Tuple[str, np.ndarray], ...]:
    """reduce_product of two irreps, kept: chains of every correlation order reuse them."""
    return tuple(reduce_product(group, group.target(label_a, real), group.target(label_b, real)))


def symmetric_power(group: Group, rep: Representation, order: int) -> Tuple[Representation, np.ndarray]:
    """Sym^order(rep): its representation and its orthonormal basis [d_sym, d, ..., d] of
    symmetric tensors (one per multiset of indices), in which the generators are written."""
    group.check(rep)
    if order < 1:
        raise MLPotError(f"symmetric power order must be at least 1, got {order}")
    dim = rep.dim
    keys = list(itertools.combinations_with_replacement(range(dim), order))
    basis = np.zeros((len(keys),) + (dim,) * order)
    for row, key in enumerate(keys):
        for index in set(itertools.permutations(key)):
            basis[row][index] = 1.0
        basis[row] /= np.linalg.norm(basis[row])
    flat = basis.reshape(len(keys), -1)  # [d_sym, d^order]

    def represent(matrix: np.ndarray, derivation: bool) -> np.ndarray:
        acted = np.zeros(basis.shape, dtype=np.result_type(matrix, basis))
        if derivation:  # Lie-algebra action: X on one axis at a time
            for axis in range(order):
                acted = acted + np.moveaxis(np.tensordot(matrix, basis, axes=([1], [axis + 1])), 0, axis + 1)
        else:  # group element: D on every axis
            acted = basis.astype(acted.dtype)
            for axis in range(order):
                acted = np.moveaxis(np.tensordot(matrix, acted, axes=([1], [axis + 1])), 0, axis + 1)
        return acted.reshape(len(keys), -1) @ flat.T  # [d_sym, d_sym]: column q = image of basis q

    generators = np.stack([represent(x, True).T for x in rep.generators])
    discrete = np.stack([represent(g, False).T for g in rep.discrete]) if len(rep.discrete) else np.zeros(0)
    return Representation(generators, discrete, f"Sym^{order}({rep.label})"), basis


def symmetric_contraction_basis(group: Group, rep: Representation, order: int, irrep_out: str) -> np.ndarray:
    """All equivariant maps Sym^order(rep) -> irrep_out as symmetric tensors [n_paths, d_out, d, ..., d].

    Coupling chains ((V_1 x V_2) -> K_2, (K_2 x V_3) -> K_3, ...) over the irreps of ``rep`` (in
    sorted order: the other orders differ by a recoupling and an input permutation) span all
    such maps; each is symmetrised over the inputs, multiplied by a basis of the output's
    commutant (the identity for real-type irreps), and an orthonormal independent set is kept.
    This is the basis of one output irrep in MACE's product block at correlation ``order``.
    """
    group.check(rep)
    if order < 1:
        raise MLPotError(f"correlation order must be at least 1, got {order}")
    real = rep.is_real
    out = group.target(irrep_out, real)
    parts = decompose(group, rep)  # (label, Q [d_k, d])

    def couple(label_a: str, label_b: str) -> Tuple[Tuple[str, np.ndarray], ...]:
        return _irrep_product(group, label_a, label_b, real)

    chains: List[np.ndarray] = []
    for sequence in itertools.combinations_with_replacement(range(len(parts)), order):
        partial = [(parts[sequence[0]][0], parts[sequence[0]][1])]  # (label, T [d_label, d, ...])
        for step, k in enumerate(sequence[1:], start=2):
            label_k, q_k = parts[k]
            partial = [
                (label, np.tensordot(np.tensordot(c, tensor, axes=([1], [0])), q_k, axes=([1], [0])))
                for label_prev, tensor in partial
                for label, c in couple(label_prev, label_k)
                if step < order or label == out.label
            ]
        chains += [tensor for label, tensor in partial if label == out.label]
    commutant = intertwiners(out, out)  # [c, d_out, d_out]
    endomorphisms = [np.eye(out.dim)] if len(commutant) == 1 else list(commutant)
    kept: List[np.ndarray] = []
    for chain in chains:
        symmetric = sum(np.transpose(chain, (0,) + tuple(1 + p for p in perm)) for perm in itertools.permutations(range(order)))
        symmetric = symmetric / math.factorial(order)
        for endomorphism in endomorphisms:
            vector = np.tensordot(endomorphism, symmetric, axes=([1], [0])).reshape(-1)
            # measured against the chain before symmetrisation: a chain that symmetrises to
            # (numerically) zero is dependent, not a path
            norm = np.linalg.norm(np.tensordot(endomorphism, chain, axes=([1], [0])))
            for _ in range(2):  # Gram-Schmidt twice: one pass loses orthogonality in floating point
                for q in kept:
                    vector = vector - np.vdot(q, vector) * q
            if norm > 0 and np.linalg.norm(vector) > INDEPENDENCE_TOLERANCE * norm:
                kept.append(vector / np.linalg.norm(vector))
    shape = (out.dim,) + (rep.dim,) * order
    dtype = np.result_type(out.generators, rep.generators, float)
    return np.stack([q.reshape(shape) for q in kept]) if kept else np.zeros((0,) + shape, dtype=dtype)
