"""A group representation given by its Lie-algebra generators (plus discrete elements).

A connected Lie group acts on a vector space through exponentials of its Lie algebra, so the
generators X_a (one matrix per basis element of the algebra, in the group's fixed order) fix the
representation of the identity component; elements outside it (such as O(3)'s inversion) are
given as matrices of their own. Everything the group layer computes (reductions of tensor
products, symmetric powers, contraction bases) is linear algebra on these matrices, which is how
arXiv 2306.00091 (lie-nn) treats any reductive Lie group.
"""

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.linalg import expm

from mlpot.errors import MLPotError

CLOSURE_TOLERANCE = 1e-8  # relative residual of a commutator outside the generators' span


@dataclass(frozen=True)
class Representation:
    """Matrices of the algebra's generators and of extra discrete group elements.

    The generators of two representations of one group must follow the same algebra basis
    (the group's order), so that tensor products and intertwiners are meaningful.
    """

    generators: np.ndarray  # [n_gen, d, d], real or complex
    discrete: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))  # [n_disc, d, d]
    label: str = ""

    def __post_init__(self) -> None:
        generators = np.asarray(self.generators)
        if generators.ndim != 3 or generators.shape[1] != generators.shape[2]:
            raise MLPotError(
                f"representation {self.label!r}: generators must be square matrices [n_gen, d, d], got shape {generators.shape}"
            )
        discrete = np.asarray(self.discrete)
        if discrete.size == 0:
            discrete = np.zeros((0,) + generators.shape[1:], dtype=generators.dtype)
        if discrete.ndim != 3 or discrete.shape[1:] != generators.shape[1:]:
            raise MLPotError(
                f"representation {self.label!r}: discrete elements must be [n_disc, {generators.shape[1]}, {generators.shape[1]}] "
                f"like the generators, got shape {discrete.shape}"
            )
        object.__setattr__(self, "generators", generators)
        object.__setattr__(self, "discrete", discrete)
        _check_closure(generators, self.label)

    @property
    def dim(self) -> int:
        return self.generators.shape[1]

    @property
    def is_real(self) -> bool:
        return not (np.iscomplexobj(self.generators) or np.iscomplexobj(self.discrete))

    def exp(self, coefficients: Sequence[float]) -> np.ndarray:
        """The group element exp(sum_a c_a X_a) on this representation, [d, d]."""
        coefficients = np.asarray(coefficients, dtype=np.float64)
        if coefficients.shape != (len(self.generators),):
            raise MLPotError(
                f"representation {self.label!r}: need {len(self.generators)} algebra coefficients, got shape {coefficients.shape}"
            )
        return expm(np.tensordot(coefficients, self.generators, axes=1))


def _check_closure(generators: np.ndarray, label: str) -> None:
    """Every commutator [X_a, X_b] must lie in the span of the generators (a Lie algebra)."""
    n_gen, dim = generators.shape[:2]
    if n_gen == 0:
        return
    span = generators.reshape(n_gen, dim * dim).T  # [d*d, n_gen]
    scale = max(np.abs(generators).max(), 1e-300) ** 2
    for a in range(n_gen):
        for b in range(a + 1, n_gen):
            commutator = (generators[a] @ generators[b] - generators[b] @ generators[a]).reshape(-1)
            coefficients = np.linalg.lstsq(span, commutator, rcond=None)[0]
            residual = np.abs(span @ coefficients - commutator).max()
            if residual > CLOSURE_TOLERANCE * scale * dim:
                raise MLPotError(
                    f"representation {label!r}: generators do not close into a Lie algebra "
                    f"(the commutator [X_{a}, X_{b}] lies outside their span, residual {residual:.2e})"
                )


def direct_sum(*reps: Representation, label: str = "") -> Representation:
    """Block-diagonal representation rep_1 + rep_2 + ... (same algebra and discrete elements)."""
    _check_compatible(reps)
    dims = [rep.dim for rep in reps]
    total = sum(dims)
    dtype = np.result_type(*[rep.generators for rep in reps], *[rep.discrete for rep in reps])
    generators = np.zeros((len(reps[0].generators), total, total), dtype=dtype)
    discrete = np.zeros((len(reps[0].discrete), total, total), dtype=dtype)
    start = 0
    for rep in reps:
        block = slice(start, start + rep.dim)
        generators[:, block, block] = rep.generators
        discrete[:, block, block] = rep.discrete
        start += rep.dim
    return Representation(generators, discrete, label or "+".join(rep.label for rep in reps))


def tensor_product(rep1: Representation, rep2: Representation) -> Representation:
    """rep1 x rep2 on the space of index pairs (i, j) flattened row-major: X1 x 1 + 1 x X2."""
    _check_compatible((rep1, rep2))
    eye1, eye2 = np.eye(rep1.dim), np.eye(rep2.dim)
    generators = np.stack([np.kron(x1, eye2) + np.kron(eye1, x2) for x1, x2 in zip(rep1.generators, rep2.generators)])
    discrete = np.stack([np.kron(d1, d2) for d1, d2 in zip(rep1.discrete, rep2.discrete)]) if len(rep1.discrete) else None
    return Representation(generators, discrete if discrete is not None else np.zeros(0), f"({rep1.label})x({rep2.label})")


def _check_compatible(reps: Sequence[Representation]) -> None:
    n_gen = {len(rep.generators) for rep in reps}
    n_disc = {len(rep.discrete) for rep in reps}
    if len(n_gen) > 1 or len(n_disc) > 1:
        labels = ", ".join(repr(rep.label) for rep in reps)
        raise MLPotError(
            f"representations {labels} belong to different groups "
            f"(numbers of generators {sorted(n_gen)}, discrete elements {sorted(n_disc)})"
        )
