"""The group layer (mlpot.groups): reductions checked against e3nn, character theory, SU(2) and
Lorentz equivariance, one-line errors, SU(2) spin blocks and the README's worked examples."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from e3nn import o3
from scipy.linalg import expm

from mlpot.errors import MLPotError
from mlpot.groups import (
    O3,
    SU2,
    Lorentz,
    Representation,
    direct_sum,
    intertwiners,
    reduce_product,
    symmetric_contraction_basis,
    symmetric_power,
    tensor_product,
)
from mlpot.groups.product import e3nn_generators
from mlpot.groups.spin import SpinBlock
from mlpot.nn.irreps import l_slice
from mlpot.nn.product import independent_basis

README = Path(__file__).resolve().parents[1] / "README.md"


def _cartesian_generators() -> np.ndarray:
    """(L_a)_bc = -epsilon_abc: expm(theta . L) rotates 3-vectors by |theta| about theta."""
    epsilon = np.zeros((3, 3, 3))
    for a, b, c in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        epsilon[a, b, c], epsilon[a, c, b] = 1.0, -1.0
    return -epsilon


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max()))


def _equivariance_error(group, coupling, target, rep1, rep2, *params) -> float:
    """C D1 x D2 vs D_target C for one group element, relative."""
    d1, d2, dt = (group.element(*params, rep=rep) for rep in (rep1, rep2, target))
    lhs = np.einsum("ij,jab->iab", dt, coupling)
    rhs = np.einsum("iab,ax,by->ixy", coupling, d1, d2)
    return _relative(lhs, rhs)


# --- O(3) against e3nn ----------------------------------------------------------------------


def _e3nn_to_group(l: int) -> np.ndarray:
    """S with v_group = S v_e3nn, from matching the generators (X_group S = S X_e3nn)."""
    natural_parity = (-1.0) ** l * np.eye(2 * l + 1)[None]
    e3nn_irrep = Representation(e3nn_generators(l), natural_parity, label=f"e3nn {l}")
    solutions = intertwiners(O3().irrep(f"{l}{'eo'[l % 2]}"), e3nn_irrep)
    assert len(solutions) == 1  # Schur: one basis change up to scale
    return solutions[0] * np.sqrt(2 * l + 1)


def test_o3_clebsch_gordan_equal_e3nn_up_to_basis():
    group = O3()
    changes = {l: _e3nn_to_group(l) for l in range(7)}
    for l in range(7):
        assert np.allclose(changes[l] @ changes[l].T, np.eye(2 * l + 1), atol=1e-12)  # orthogonal
    checked = 0
    for l1 in range(4):
        for l2 in range(4):
            rep1, rep2 = group.irrep(f"{l1}{'eo'[l1 % 2]}"), group.irrep(f"{l2}{'eo'[l2 % 2]}")
            couplings = reduce_product(group, rep1, rep2)
            assert [label for label, _ in couplings] == [f"{l3}{'eo'[(l1 + l2) % 2]}" for l3 in range(abs(l1 - l2), l1 + l2 + 1)]
            for label, mine in couplings:
                l3 = int(label[:-1])
                theirs = o3.wigner_3j(l1, l2, l3, dtype=torch.float64).numpy()  # [d1, d2, d3]
                theirs = np.einsum("kc,ia,jb,abc->kij", changes[l3], changes[l1], changes[l2], theirs)
                overlap = abs(np.vdot(mine, theirs)) / (np.linalg.norm(mine) * np.linalg.norm(theirs))
                assert overlap == pytest.approx(1.0, abs=1e-10), (l1, l2, l3)
                checked += 1
    assert checked == 44


def test_o3_rotation_and_inversion_act_on_reductions():
    group = O3()
    rng = np.random.default_rng(0)
    rep1, rep2 = group.irrep("2e"), group.irrep("1o")
    for label, coupling in reduce_product(group, rep1, rep2):
        target = group.irrep(label)
        for inversion in (False, True):
            assert _equivariance_error(group, coupling, target, rep1, rep2, rng.normal(size=3), inversion) < 1e-12
    vector = Representation(_cartesian_generators(), -np.eye(3)[None], "cartesian")
    assert group.irreps_in(vector) == [("1o", 1)]  # the group's "1o" is the rotation of 3-vectors


# --- path counts: character theory, the chains, and mlpot's product block ----------------------


def _character_count(group: O3, rep: Representation, order: int, label: str, points: int = 64) -> int:
    """Multiplicity of irrep ``label`` in Sym^order(rep) by integrating characters over O(3):
    Weyl's formula over rotation angles about z, both cosets of the inversion; the character of
    Sym^n from power sums of the traces of g, g^2, g^3."""
    target = group.irrep(label)
    total = 0.0
    for inversion in (False, True):
        for theta in 2 * np.pi * np.arange(points) / points:
            chi = [np.trace(group.element([0, 0, k * theta], inversion and k % 2 == 1, rep=rep)) for k in (1, 2, 3)]
            sym = {1: chi[0], 2: (chi[0] ** 2 + chi[1]) / 2, 3: (chi[0] ** 3 + 3 * chi[0] * chi[1] + 2 * chi[2]) / 6}[order]
            weight = (1 - np.cos(theta)) / points / 2  # (1 / 2 pi) int (1 - cos) over the circle, then / 2 cosets
            total += weight * np.trace(group.element([0, 0, theta], inversion, rep=target)) * sym
    assert abs(total - round(total)) < 1e-9
    return int(round(total))


def _product_block_paths(lmax_in: int, lmax_out: int, degree: int):
    """Paths per output degree that mlpot's product block keeps today: (all, those not ~0)."""
    _, basis = independent_basis(lmax_in, lmax_out, degree)
    kept, nonzero = [0] * (lmax_out + 1), [0] * (lmax_out + 1)
    for path in basis:
        norms = [float(path[l_slice(l)].abs().max()) for l in range(lmax_out + 1)]
        lo = int(np.argmax(norms))
        kept[lo] += 1
        nonzero[lo] += norms[lo] > 1e-12
    return kept, nonzero


def test_symmetric_contraction_path_counts():
    group = O3()
    rep = direct_sum(*[group.irrep(label) for label in ("0e", "1o", "2e", "3o")])
    outputs = ("0e", "1o", "2e")
    counts = {}
    for order in (1, 2, 3):
        bases = [symmetric_contraction_basis(group, rep, order, label) for label in outputs]
        counts[order] = [len(basis) for basis in bases]
        assert counts[order] == [_character_count(group, rep, order, label) for label in outputs]
        _, product_block = _product_block_paths(3, 2, order)
        assert counts[order] == product_block
        for label, basis in zip(outputs, bases):  # symmetric, orthonormal and equivariant
            for axis in range(2, order + 1):  # symmetric under swapping neighbouring inputs
                assert np.allclose(basis, np.swapaxes(basis, axis, axis + 1), atol=1e-12)
            assert np.allclose(basis.reshape(len(basis), -1) @ basis.reshape(len(basis), -1).T, np.eye(len(basis)), atol=1e-10)
            theta = np.array([0.3, -1.1, 0.7])
            d_in, d_out = group.element(theta, True, rep=rep), group.element(theta, True, rep=label)
            rotated = np.einsum("ij,pj...->pi...", d_out, basis)
            acted = basis
            for axis in range(order):
                acted = np.moveaxis(np.tensordot(acted, d_in, axes=([2 + axis], [0])), -1, 2 + axis)  # T D_in on each input
            assert _relative(rotated, acted) < 1e-10
    assert counts == {1: [1, 1, 1], 2: [4, 3, 5], 3: [8, 12, 14]}  # the numbers


def test_symmetric_power_decomposes_like_characters():
    group = O3()
    sym, basis = symmetric_power(group, group.irrep("1o"), 2)
    assert sym.dim == 6 and basis.shape == (6, 3, 3)
    assert group.irreps_in(sym) == [("0e", 1), ("2e", 1)]
    scalar_and_vector = direct_sum(group.irrep("0e"), group.irrep("1o"))
    sym3, _ = symmetric_power(group, scalar_and_vector, 3)
    found = group.irreps_in(sym3)
    assert sum(group.irrep(label).dim * count for label, count in found) == sym3.dim == 20
    assert found == [(label, _character_count(group, scalar_and_vector, 3, label)) for label, _ in found]


# --- SU(2) ----------------------------------------------------------------------------------


def test_su2_half_times_half_and_two_pi_rotation():
    group = SU2()
    half = group.irrep("1/2")
    couplings = reduce_product(group, half, half)
    assert [(label, c.shape) for label, c in couplings] == [("0", (1, 2, 2)), ("1", (3, 2, 2))]
    rng = np.random.default_rng(1)
    for label, coupling in couplings:
        assert _equivariance_error(group, coupling, group.irrep(label), half, half, rng.normal(size=3)) < 1e-12
    for label, sign in (("1/2", -1), ("1", 1), ("3/2", -1), ("2", 1)):
        axis = rng.normal(size=3)
        full_turn = group.element(2 * np.pi * axis / np.linalg.norm(axis), rep=label)
        assert np.allclose(full_turn, sign * np.eye(group.irrep(label).dim), atol=1e-10)
    assert group.irreps_in(tensor_product(group.irrep("3/2"), half)) == [("1", 1), ("2", 1)]


# --- Lorentz --------------------------------------------------------------------------------


def _random_lorentz(rng):
    rapidity = rng.normal(size=3)
    return rng.normal(size=3), rapidity * rng.uniform(0.5, 3.0) / np.linalg.norm(rapidity)


def test_lorentz_four_vector_and_real_forms():
    group = Lorentz()
    rng = np.random.default_rng(2)
    metric = np.diag([1.0, -1.0, -1.0, -1.0])
    for _ in range(3):
        matrix = group.element(*_random_lorentz(rng))
        assert np.allclose(matrix.T @ metric @ matrix, metric, atol=1e-10)
    eta = 0.7
    assert np.allclose(group.element([0, 0, 0], [eta, 0, 0])[:2, :2], [[np.cosh(eta), np.sinh(eta)], [np.sinh(eta), np.cosh(eta)]])
    assert group.irreps_in(group.irrep("(1/2,1/2)")) == [("(1/2,1/2)", 1)]
    for label in ("(1/2,1/2)", "(1,1)", "(0,1/2)+(1/2,0)", "(1,0)+(0,1)"):
        real = group.real_form(label)
        assert real.is_real and group.irreps_in(real) == [(real.label, 1)]
    assert group.real_form("(1/2,0)+(0,1/2)").label == "(0,1/2)+(1/2,0)"
    assert group.real_form("(1,0)+(0,1)").dim == 6  # the field strength F_{mu nu}


@pytest.mark.parametrize(
    "first, second, real",
    [
        ("(1/2,1/2)", "(1/2,1/2)", True),
        ("(1/2,1/2)", "(1,1)", True),
        ("(0,1/2)+(1/2,0)", "(1/2,1/2)", True),
        ("(0,1)+(1,0)", "(1/2,1/2)", True),
        ("(0,1)+(1,0)", "(0,1)+(1,0)", True),  # (0,0) and (1,1) twice each
        ("(1,1)", "(1,1)", True),
        ("(1,1)", "(0,1/2)+(1/2,0)", True),
        ("(1/2,0)", "(0,1/2)", False),
        ("(1/2,0)", "(1/2,0)", False),
        ("(1,1/2)", "(1/2,1/2)", False),
    ],
)
def test_lorentz_reductions_are_equivariant(first, second, real):
    group = Lorentz()
    rep1 = group.real_form(first) if real else group.irrep(first)
    rep2 = group.real_form(second) if real else group.irrep(second)
    couplings = reduce_product(group, rep1, rep2)
    assert sum(c.shape[0] for _, c in couplings) == rep1.dim * rep2.dim  # a complete change of basis
    stacked = np.concatenate([c.reshape(c.shape[0], -1) for _, c in couplings])
    assert np.linalg.matrix_rank(stacked) == rep1.dim * rep2.dim
    rng = np.random.default_rng(3)
    for _ in range(3):
        params = _random_lorentz(rng)
        for label, coupling in couplings:
            assert _equivariance_error(group, coupling, group.target(label, real), rep1, rep2, *params) < 1e-10


def test_lorentz_symmetric_contraction_of_four_vectors():
    group = Lorentz()
    vector = group.real_form("(1/2,1/2)")
    outputs = ("(0,0)", "(1/2,1/2)", "(1,1)")
    counts = {order: [len(symmetric_contraction_basis(group, vector, order, out)) for out in outputs] for order in (1, 2, 3)}
    assert counts == {1: [0, 1, 0], 2: [1, 0, 1], 3: [0, 1, 0]}  # p.p; the traceless p p; (p.p) p
    invariant = symmetric_contraction_basis(group, vector, 2, "(0,0)")[0, 0]  # [4, 4]: proportional to the metric
    assert _relative(invariant / invariant[0, 0], np.diag([1.0, -1.0, -1.0, -1.0])) < 1e-12
    rng = np.random.default_rng(4)
    basis = symmetric_contraction_basis(group, vector, 3, "(1/2,1/2)")  # [1, 4, 4, 4, 4]
    matrix = group.element(*_random_lorentz(rng))
    acted = np.einsum("pkabc,ax,by,cz->pkxyz", basis, matrix, matrix, matrix)
    assert _relative(np.einsum("ij,pjabc->piabc", matrix, basis), acted) < 1e-10


def test_lorentz_symmetric_powers_and_complex_type_outputs():
    group = Lorentz()
    cubes, _ = symmetric_power(group, group.real_form("(1/2,1/2)"), 3)
    assert group.irreps_in(cubes) == [("(1/2,1/2)", 1), ("(3/2,3/2)", 1)]  # 20 = 4 + 16
    spinor = group.real_form("(0,1/2)+(1/2,0)")  # a Dirac spinor as 4 real components
    squares, _ = symmetric_power(group, spinor, 2)
    assert group.irreps_in(squares) == [("(0,1)+(1,0)", 1), ("(1/2,1/2)", 1)]
    # (0,1)+(1,0) is real of complex type: one copy gives two real paths (C and J C)
    basis = symmetric_contraction_basis(group, spinor, 2, "(0,1)+(1,0)")
    assert basis.shape == (2, 6, 4, 4)
    rng = np.random.default_rng(7)
    params = _random_lorentz(rng)
    d_in, d_out = group.element(*params, rep=spinor), group.element(*params, rep=group.real_form("(0,1)+(1,0)"))
    assert _relative(np.einsum("ij,pjab->piab", d_out, basis), np.einsum("pkab,ax,by->pkxy", basis, d_in, d_in)) < 1e-10


# --- bad input: one line --------------------------------------------------------------------


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_bad_input_is_one_line():
    rng = np.random.default_rng(5)
    with pytest.raises(MLPotError) as error:
        a, b = rng.normal(size=(2, 3, 3))
        Representation(np.stack([a - a.T, b - b.T]), label="two rotations")
    assert "do not close" in _one_line(error)
    with pytest.raises(MLPotError) as error:
        Representation(np.zeros((3, 2, 3)), label="wide")
    assert "square" in _one_line(error)
    with pytest.raises(MLPotError) as error:
        Representation(np.zeros((3, 2, 2)), np.zeros((1, 3, 3)), label="mismatched")
    assert "discrete" in _one_line(error)
    with pytest.raises(MLPotError) as error:
        tensor_product(O3().irrep("1o"), SU2().irrep("1/2"))
    assert "different groups" in _one_line(error)
    for group, label in ((O3(), "1x"), (SU2(), "1/3"), (Lorentz(), "(1/2)")):
        with pytest.raises(MLPotError) as error:
            group.irrep(label)
        assert repr(label) in _one_line(error)
    with pytest.raises(MLPotError) as error:
        Lorentz().real_form("(1/2,0)")
    assert "real irrep" in _one_line(error)
    from mlpot.groups import SO3

    with pytest.raises(MLPotError) as error:
        SO3().irreps_in(SU2().irrep("1/2"))
    assert "half-integer" in _one_line(error)
    nilpotent = np.zeros((3, 2, 2))
    nilpotent[0, 0, 1] = 1.0  # a one-dimensional algebra of a non-diagonalisable matrix
    with pytest.raises(MLPotError) as error:
        intertwiners(Representation(nilpotent[:1], label="shear"), Representation(nilpotent[:1], label="shear"))
    assert "diagonalisable" in _one_line(error)


# --- SU(2) spin blocks ----------------------------------------------------------------------


def _environment_features(positions: torch.Tensor, lmax: int, channels: int) -> torch.Tensor:
    """Sum over neighbours of Y_l(r_j) exp(-a_c |r_j|^2): [1, (lmax+1)^2, C] in mlpot's layout."""
    harmonics = o3.spherical_harmonics(list(range(lmax + 1)), positions, normalize=True)  # [n_nb, D]
    radial = torch.exp(-positions.norm(dim=1, keepdim=True) ** 2 * torch.linspace(0.2, 1.0, channels))  # [n_nb, C]
    return torch.einsum("jd,jc->dc", harmonics, radial)[None]


@pytest.mark.parametrize("l1, l2", [(1, 1), (2, 1), (0, 2)])
def test_spin_blocks_rotate_with_su2(l1, l2):
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        block = SpinBlock(lmax=3, l1=l1, l2=l2, channels=4)
        positions = torch.randn(6, 3)
        rng = np.random.default_rng(6)
        for turn in (rng.normal(size=3), 2 * np.pi * np.array([0.0, 0.6, 0.8])):
            spinor = SU2().element(turn)  # U [2, 2]
            rotation = torch.from_numpy(expm(np.tensordot(turn, _cartesian_generators(), axes=1)))  # its SO(3) image R
            with torch.no_grad():
                before = block(_environment_features(positions, 3, 4))[0].numpy()
                after = block(_environment_features(positions @ rotation.T, 3, 4))[0].numpy()
            d1 = np.kron(o3.Irrep(l1, 1).D_from_matrix(rotation).numpy(), spinor)
            d2 = np.kron(o3.Irrep(l2, 1).D_from_matrix(rotation).numpy(), spinor)
            assert before.shape == (2 * (2 * l1 + 1), 2 * (2 * l2 + 1))
            assert np.abs(before).max() > 1e-3
            assert _relative(after, d1 @ before @ d2.conj().T) < 1e-10
    finally:
        torch.set_default_dtype(previous)


# --- README -----------------------------------------------------------------------------------


def test_readme_group_examples_run():
    text = README.read_text()
    section = text[text.index("## Equivariance beyond O(3)") :]
    section = section[: section.index("\n## ", 4)] if "\n## " in section[4:] else section
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 3
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
