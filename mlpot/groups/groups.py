"""Groups shipped with the group layer: SO(3), O(3), SU(2) and the Lorentz group SO+(1,3).

Each group fixes the order of its Lie-algebra basis (every representation's generators follow
it), builds its irreps from that basis, and finds which irreps a representation contains by the
weight-multiplicity method: the eigenvalues of the Cartan generators (J_z for SU(2)/SO(3); A_z and
B_z of sl(2, C) = su(2) + su(2) for the Lorentz group) are the weights, and the multiplicity of
the irrep of highest weight j is N(j) - N(j + 1).

Conventions: generators X_a are real-algebra elements (group element = expm(sum_a theta_a X_a)),
with [X_x, X_y] = X_z, the structure constants of the Cartesian rotation generators
(L_a)_bc = -epsilon_abc, so expm(theta . X) on the irrep "1" is the rotation by |theta| about
theta / |theta|. The Lorentz algebra adds boosts K_a with [X_a, K_b] = epsilon_abc K_c,
[K_a, K_b] = -epsilon_abc X_c; on four-vectors (t, x, y, z), expm(eta K_x) is the usual boost of
rapidity eta along x.
"""

import re
from fractions import Fraction
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from mlpot.errors import MLPotError
from mlpot.groups.representation import Representation

RepLike = Union[str, Representation]
WEIGHT_TOLERANCE = 1e-6  # weights are half-integers; eigenvalues must land this close


def spin_matrices(j: Fraction) -> np.ndarray:
    """Hermitian J_x, J_y, J_z of spin j in the basis m = j, j-1, ..., -j: [3, 2j+1, 2j+1]."""
    dim = int(2 * j + 1)
    m = np.array([float(j) - k for k in range(dim)])
    raising = np.zeros((dim, dim), dtype=np.complex128)  # J+ |m> = sqrt(j(j+1) - m(m+1)) |m+1>
    for k in range(1, dim):
        raising[k - 1, k] = np.sqrt(float(j) * (float(j) + 1) - m[k] * (m[k] + 1))
    lowering = raising.conj().T
    return np.stack([(raising + lowering) / 2, (raising - lowering) / 2j, np.diag(m).astype(np.complex128)])


def _complex_to_real(l: int) -> np.ndarray:
    """Unitary U [2l+1, 2l+1]: rows are the real spherical harmonics m = -l..l in the complex
    basis m' = l..-l of :func:`spin_matrices` (Condon-Shortley phases)."""
    dim = 2 * l + 1
    column = {m: l - m for m in range(-l, l + 1)}  # position of |m> in spin_matrices' order
    u = np.zeros((dim, dim), dtype=np.complex128)
    s = 1 / np.sqrt(2)
    for m in range(-l, l + 1):
        row = m + l
        if m < 0:
            u[row, column[m]] = 1j * s
            u[row, column[-m]] = -1j * s * (-1) ** m
        elif m == 0:
            u[row, column[0]] = 1
        else:
            u[row, column[-m]] = s
            u[row, column[m]] = s * (-1) ** m
    return u


@lru_cache(maxsize=None)
def _so3_generators(l: int) -> np.ndarray:
    """Real antisymmetric generators [3, 2l+1, 2l+1] of the integer-spin irrep in the real basis."""
    u = _complex_to_real(l)
    generators = np.einsum("ij,ajk,lk->ail", u, -1j * spin_matrices(Fraction(l)), u.conj())
    if np.abs(generators.imag).max() > 1e-12:
        raise RuntimeError(f"real spherical-harmonic basis of l={l} gave complex generators")
    return np.ascontiguousarray(generators.real)


def _parse_spin(text: str) -> Optional[Fraction]:
    """'0', '1/2', '1', '3/2', ... -> Fraction, or None if not a non-negative half-integer."""
    if not re.fullmatch(r"\d+(/2)?", text.strip()):
        return None
    value = Fraction(text.strip())
    return value if (2 * value).denominator == 1 else None


def _spin_label(j: Fraction) -> str:
    return str(j.numerator) if j.denominator == 1 else f"{j.numerator}/{j.denominator}"


def _resolve(group: "Group", rep: Optional[RepLike], default: str) -> Representation:
    if rep is None:
        rep = default
    return group.irrep(rep) if isinstance(rep, str) else rep


def _weights(matrix: np.ndarray, what: str) -> np.ndarray:
    """Eigenvalues of a diagonalisable matrix with half-integer spectrum, rounded to halves."""
    values = np.linalg.eigvals(matrix)
    rounded = np.round(values.real * 2) / 2
    if np.abs(values - rounded).max(initial=0.0) > WEIGHT_TOLERANCE:
        raise MLPotError(f"{what}: weights are not half-integers (not a representation of this group in its generator convention)")
    return rounded


def _restrict(matrix: np.ndarray, subspace: np.ndarray) -> np.ndarray:
    """The matrix acting on an invariant subspace with basis columns ``subspace`` [d, k]: [k, k]."""
    return np.linalg.pinv(subspace) @ matrix @ subspace


def _spin_multiplicities(weights: np.ndarray, integer_only: bool, what: str) -> Dict[Fraction, int]:
    """Highest-weight multiplicities N(j) - N(j + 1) from a list of J_z weights."""
    counts: Dict[Fraction, int] = {}
    for w in weights:
        key = Fraction(int(round(2 * w)), 2)
        counts[key] = counts.get(key, 0) + 1
    result = {}
    for j in sorted({abs(key) for key in counts}):
        multiplicity = counts.get(j, 0) - counts.get(j + 1, 0)
        if multiplicity < 0:
            raise MLPotError(f"{what}: weights do not form a representation (multiplicity of spin {j} is negative)")
        if multiplicity:
            if integer_only and j.denominator != 1:
                raise MLPotError(f"{what}: contains half-integer spin {j}, which the group does not have")
            result[j] = multiplicity
    return result


class Group:
    """A Lie group with known irreps (subclasses fix the algebra basis and the labels)."""

    name = ""
    num_generators = 0
    num_discrete = 0

    def __eq__(self, other: object) -> bool:  # groups carry no state: one per class
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))

    def irrep(self, label: str) -> Representation:
        raise NotImplementedError

    def irreps_in(self, rep: Representation) -> List[Tuple[str, int]]:
        """The irreps in ``rep`` and their multiplicities (labels of :meth:`target`'s irreps)."""
        raise NotImplementedError

    def target(self, label: str, real: bool) -> Representation:
        """The irrep a reduction of a real (``real``) or complex representation maps onto."""
        return self.irrep(label)

    def check(self, rep: Representation) -> None:
        if len(rep.generators) != self.num_generators or len(rep.discrete) != self.num_discrete:
            raise MLPotError(
                f"representation {rep.label!r} has {len(rep.generators)} generators and {len(rep.discrete)} discrete elements; "
                f"{self.name} needs {self.num_generators} and {self.num_discrete}"
            )

    def _unknown(self, label: str, examples: str) -> MLPotError:
        return MLPotError(f"{self.name} has no irrep {label!r} (labels look like {examples})")


class SU2(Group):
    """SU(2): irreps of every spin j = 0, 1/2, 1, 3/2, ... (labels "0", "1/2", "1", ...), complex."""

    name = "SU(2)"
    num_generators = 3

    def irrep(self, label: str) -> Representation:
        j = _parse_spin(label)
        if j is None:
            raise self._unknown(label, "'0', '1/2', '1', '3/2'")
        return Representation(-1j * spin_matrices(j), label=_spin_label(j))

    def irreps_in(self, rep: Representation) -> List[Tuple[str, int]]:
        self.check(rep)
        weights = _weights(1j * rep.generators[2], f"{self.name} representation {rep.label!r}")
        return [(_spin_label(j), n) for j, n in _spin_multiplicities(weights, False, rep.label).items()]

    def element(self, rotation_vector: Sequence[float], rep: Optional[RepLike] = None) -> np.ndarray:
        """exp(theta . X) on ``rep`` (default the spinor "1/2"); |theta| = 2 pi gives -1 on half-integer spins."""
        return _resolve(self, rep, "1/2").exp(rotation_vector)


class SO3(Group):
    """SO(3): integer l (labels "0", "1", "2", ...), real spherical-harmonic basis m = -l..l."""

    name = "SO(3)"
    num_generators = 3

    def irrep(self, label: str) -> Representation:
        if not re.fullmatch(r"\d+", label.strip()):
            raise self._unknown(label, "'0', '1', '2'")
        return Representation(_so3_generators(int(label)), label=str(int(label)))

    def irreps_in(self, rep: Representation) -> List[Tuple[str, int]]:
        self.check(rep)
        weights = _weights(1j * rep.generators[2], f"{self.name} representation {rep.label!r}")
        return [(str(j), n) for j, n in _spin_multiplicities(weights, True, rep.label).items()]

    def element(self, rotation_vector: Sequence[float], rep: Optional[RepLike] = None) -> np.ndarray:
        return _resolve(self, rep, "1").exp(rotation_vector)


class O3(Group):
    """O(3) = SO(3) x {1, inversion}: labels "0e", "1o", ... (e: even, o: odd under inversion)."""

    name = "O(3)"
    num_generators = 3
    num_discrete = 1  # the inversion

    def irrep(self, label: str) -> Representation:
        match = re.fullmatch(r"(\d+)([eo])", label.strip())
        if not match:
            raise self._unknown(label, "'0e', '1o', '2e', '1e'")
        l, parity = int(match.group(1)), 1.0 if match.group(2) == "e" else -1.0
        generators = _so3_generators(l)
        return Representation(generators, parity * np.eye(2 * l + 1)[None], label=f"{l}{match.group(2)}")

    def irreps_in(self, rep: Representation) -> List[Tuple[str, int]]:
        self.check(rep)
        inversion = rep.discrete[0]
        result = []
        for parity, letter in ((1.0, "e"), (-1.0, "o")):
            # the inversion commutes with rotations: its eigenspaces are invariant subspaces
            _, s, vh = np.linalg.svd(inversion - parity * np.eye(rep.dim))
            subspace = vh[np.sum(s > 1e-8 * max(1.0, s.max(initial=0.0))) :].conj().T  # [d, k]
            if subspace.shape[1] == 0:
                continue
            weights = _weights(1j * _restrict(rep.generators[2], subspace), f"{self.name} representation {rep.label!r}")
            result += [(f"{j}{letter}", n) for j, n in _spin_multiplicities(weights, True, rep.label).items()]
        return sorted(result, key=lambda item: (int(item[0][:-1]), item[0][-1]))

    def element(self, rotation_vector: Sequence[float], inversion: bool = False, rep: Optional[RepLike] = None) -> np.ndarray:
        """The rotation expm(theta . X), followed by the inversion if ``inversion``, on ``rep`` (default "1o")."""
        rep = _resolve(self, rep, "1o")
        matrix = rep.exp(rotation_vector)
        return rep.discrete[0] @ matrix if inversion else matrix


def _parse_pair(text: str) -> Optional[Tuple[Fraction, Fraction]]:
    match = re.fullmatch(r"\(\s*([\d/]+)\s*,\s*([\d/]+)\s*\)", text.strip())
    if not match:
        return None
    m, n = _parse_spin(match.group(1)), _parse_spin(match.group(2))
    return None if m is None or n is None else (m, n)


def _pair_label(m: Fraction, n: Fraction) -> str:
    return f"({_spin_label(m)},{_spin_label(n)})"


class Lorentz(Group):
    """The proper orthochronous Lorentz group SO+(1,3) (its finite-dimensional irreps (m, n)).

    Generators: 3 rotations X_a then 3 boosts K_a. Over C the algebra is su(2) + su(2) with
    A_a = (i X_a + K_a) / 2, B_a = (i X_a - K_a) / 2; the irrep (m, n) is spin m under A and spin
    n under B, of dimension (2m+1)(2n+1). (m, n) is complex unless m = n; :meth:`real_form`
    gives real matrices for "(j,j)" and for "(m,n)+(n,m)" (the realification of (m, n)).
    "(1/2,1/2)" is the four-vector (t, x, y, z), metric diag(1, -1, -1, -1).
    Reductions of real representations use real forms (:meth:`target`).
    """

    name = "SO+(1,3)"
    num_generators = 6

    def irrep(self, label: str) -> Representation:
        pair = _parse_pair(label)
        if pair is None:
            raise self._unknown(label, "'(0,0)', '(1/2,0)', '(1/2,1/2)', '(1,0)'")
        return _lorentz_irrep(*pair)

    def real_form(self, label: str) -> Representation:
        """Real matrices of "(j,j)" or of "(m,n)+(n,m)" (m != n)."""
        parts = label.replace(" ", "").split("+")
        pairs = [_parse_pair(part) for part in parts]
        self_conjugate = len(pairs) == 1 and pairs[0] is not None and pairs[0][0] == pairs[0][1]
        conjugate_pair = len(pairs) == 2 and None not in pairs and pairs[0] == pairs[1][::-1] and pairs[0][0] != pairs[0][1]
        if not (self_conjugate or conjugate_pair):
            raise MLPotError(
                f"{self.name} has no real irrep {label!r} (real forms are '(j,j)' or '(m,n)+(n,m)', e.g. '(1/2,1/2)', '(0,1/2)+(1/2,0)')"
            )
        if len(pairs) == 1:
            return _lorentz_self_conjugate_real(pairs[0][0])
        m, n = min(pairs[0], pairs[1])
        return _lorentz_realified(m, n)

    def target(self, label: str, real: bool) -> Representation:
        return self.real_form(label) if real else self.irrep(label)

    def irreps_in(self, rep: Representation) -> List[Tuple[str, int]]:
        self.check(rep)
        what = f"{self.name} representation {rep.label!r}"
        a_z = (1j * rep.generators[2] + rep.generators[5]) / 2
        b_z = (1j * rep.generators[2] - rep.generators[5]) / 2
        # A_z and B_z commute: the eigenvalues of A_z + gamma B_z with a small gamma decode to pairs
        gamma = 1.0 / (4 * (rep.dim + 1))
        values = np.linalg.eigvals(a_z + gamma * b_z)
        a = np.round(values.real * 2) / 2
        b = np.round((values - a).real / gamma * 2) / 2
        if np.abs(values - a - gamma * b).max(initial=0.0) > WEIGHT_TOLERANCE * gamma:
            raise MLPotError(f"{what}: weights are not half-integers (not a representation in this group's generator convention)")
        counts: Dict[Tuple[Fraction, Fraction], int] = {}
        for x, y in zip(a, b):
            key = (Fraction(int(round(2 * x)), 2), Fraction(int(round(2 * y)), 2))
            counts[key] = counts.get(key, 0) + 1
        multiplicities = {}
        for m, n in sorted({(abs(x), abs(y)) for x, y in counts}):
            count = counts.get((m, n), 0) - counts.get((m + 1, n), 0) - counts.get((m, n + 1), 0) + counts.get((m + 1, n + 1), 0)
            if count < 0:
                raise MLPotError(f"{what}: weights do not form a representation (negative multiplicity of {_pair_label(m, n)})")
            if count:
                multiplicities[(m, n)] = count
        if not rep.is_real:
            return [(_pair_label(m, n), count) for (m, n), count in multiplicities.items()]
        result = []
        for (m, n), count in multiplicities.items():
            if m == n:
                result.append((_pair_label(m, n), count))
            elif m < n:  # a real representation holds (m, n) and (n, m) equally often
                result.append((f"{_pair_label(m, n)}+{_pair_label(n, m)}", count))
        return result

    def element(self, rotation_vector: Sequence[float], rapidity_vector: Sequence[float], rep: Optional[RepLike] = None) -> np.ndarray:
        """The boost expm(eta . K) times the rotation expm(theta . X) on ``rep`` (default the
        four-vector real form of "(1/2,1/2)")."""
        rep = self.real_form("(1/2,1/2)") if rep is None else (self.irrep(rep) if isinstance(rep, str) else rep)
        zeros = np.zeros(3)
        rotation = rep.exp(np.concatenate([np.asarray(rotation_vector, dtype=np.float64), zeros]))
        boost = rep.exp(np.concatenate([zeros, np.asarray(rapidity_vector, dtype=np.float64)]))
        return boost @ rotation


@lru_cache(maxsize=None)
def _lorentz_irrep(m: Fraction, n: Fraction) -> Representation:
    jm, jn = spin_matrices(m), spin_matrices(n)
    eye_m, eye_n = np.eye(len(jm[0])), np.eye(len(jn[0]))
    a = np.stack([np.kron(x, eye_n) for x in jm])  # spin m on the first factor
    b = np.stack([np.kron(eye_m, x) for x in jn])
    generators = np.concatenate([-1j * (a + b), a - b])  # rotations X = -i(A + B), boosts K = A - B
    return Representation(generators, label=_pair_label(m, n))


@lru_cache(maxsize=None)
def _lorentz_realified(m: Fraction, n: Fraction) -> Representation:
    """(m, n) on C^d seen as R^{2d}: its complexification is (m, n) + (n, m)."""
    x = _lorentz_irrep(m, n).generators
    generators = np.block([[x.real, -x.imag], [x.imag, x.real]])
    return Representation(generators, label=f"{_pair_label(m, n)}+{_pair_label(n, m)}")


def four_vector() -> Representation:
    """Rotations and boosts on (t, x, y, z): (L_a)_bc = -epsilon_abc, (K_a)_0a = (K_a)_a0 = 1."""
    generators = np.zeros((6, 4, 4))
    for a in range(3):
        for b in range(3):
            for c in range(3):
                generators[a, 1 + b, 1 + c] = -_epsilon(a, b, c)
        generators[3 + a, 0, 1 + a] = generators[3 + a, 1 + a, 0] = 1.0
    return Representation(generators, label="(1/2,1/2)")


def _epsilon(a: int, b: int, c: int) -> float:
    return float((a - b) * (b - c) * (c - a) / 2)


@lru_cache(maxsize=None)
def _lorentz_self_conjugate_real(j: Fraction) -> Representation:
    """Real basis of (j, j): the vectors fixed by its real structure v -> T conj(v)."""
    if j == Fraction(1, 2):
        return four_vector()
    from mlpot.groups.reduce import intertwiners  # reduce builds on this module

    complex_rep = _lorentz_irrep(j, j)
    conjugate = Representation(complex_rep.generators.conj(), label="conj")
    structure = intertwiners(complex_rep, conjugate)  # T conj(X) = X T, [1, d, d]
    t = structure[0]
    scale = (t @ t.conj())[0, 0].real  # T conj(T) = scale * identity, scale > 0 for a real-type irrep
    t = t / np.sqrt(scale)
    dim = complex_rep.dim
    candidates = np.concatenate([np.eye(dim) + t, 1j * (np.eye(dim) - t)], axis=1)  # fixed vectors, [d, 2d]
    stacked = np.concatenate([candidates.real, candidates.imag])  # [2d, 2d], real span
    u, _, _ = np.linalg.svd(stacked)
    basis = u[:dim, :dim] + 1j * u[dim:, :dim]  # [d, d] real basis vectors as columns
    generators = np.linalg.solve(basis[None], complex_rep.generators @ basis[None])
    if np.abs(generators.imag).max() > 1e-9:
        raise RuntimeError(f"real form of ({j},{j}) came out complex")
    return Representation(np.ascontiguousarray(generators.real), label=_pair_label(j, j))
