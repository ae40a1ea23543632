"""Every equivariant block through the same symmetry checker, in float32 and float64."""

import ast
from pathlib import Path

import pytest
import torch
from e3nn import o3
from symmetry import assert_block_equivariant, random_o3, rotate_features

import mlpot
from mlpot.config import default_dtype
from mlpot.models.backbone import Backbone, InteractionLayer
from mlpot.nn import (
    EdgeTensorProduct,
    ElementLinear,
    EquivariantLinear,
    FeatureIrreps,
    Interaction,
    PathLinear,
    RadialEmbedding,
    SymmetricContraction,
)
from mlpot.nn.attention import AttentionSettings
from mlpot.nn.product import independent_basis

DTYPES = ["float32", "float64"]
COUNTS = [3, 0, 4]  # nodes per element, sorted by element; element 1 absent


def _features(n, lmax, channels, dtype):
    return torch.randn(n, (lmax + 1) ** 2, channels, dtype=dtype)


def _edges(num_nodes, num_edges, dtype):
    generator = torch.Generator().manual_seed(0)
    sender = torch.randint(0, num_nodes, (num_edges,), generator=generator)
    receiver = torch.randint(0, num_nodes, (num_edges,), generator=generator)
    vectors = torch.randn(num_edges, 3, dtype=dtype, generator=generator)
    return sender, receiver, vectors


def _sh(vectors, lmax):
    return o3.spherical_harmonics(list(range(lmax + 1)), vectors, normalize=True, normalization="component")


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_blocks(dtype):
    with default_dtype(dtype):
        torch.manual_seed(0)
        linear = EquivariantLinear(FeatureIrreps(5, 2), FeatureIrreps(3, 1), bias=True)
        element_linear = ElementLinear(FeatureIrreps(5, 2), FeatureIrreps(4, 2), num_elements=3)
    x = _features(7, 2, 5, getattr(torch, dtype))
    assert_block_equivariant(linear, [x], [2], 1)
    assert_block_equivariant(element_linear, [x], [2], 2, extra=[COUNTS])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lmax_in,lmax_out,correlation", [(3, 1, 3), (3, 0, 3), (2, 2, 2), (1, 1, 1)])
def test_symmetric_contraction(dtype, lmax_in, lmax_out, correlation):
    with default_dtype(dtype):
        torch.manual_seed(0)
        block = SymmetricContraction(FeatureIrreps(4, lmax_in), FeatureIrreps(4, lmax_out), correlation, 3)
    x = _features(7, lmax_in, 4, getattr(torch, dtype))
    assert_block_equivariant(block, [x], [lmax_in], lmax_out, extra=[COUNTS])


def test_symmetric_contraction_is_polynomial_of_its_degree():
    """Scaling the input by t scales the degree-nu part by t^nu: the basis has no cross-degree leak."""
    torch.manual_seed(0)
    with default_dtype("float64"):
        block = SymmetricContraction(FeatureIrreps(2, 2), FeatureIrreps(2, 1), 3, 1)
    x = torch.randn(5, 9, 2, dtype=torch.float64)
    values = torch.stack([block(t * x, [5]) for t in (1.0, 2.0, 3.0, 4.0)])
    # A cubic with no constant term: fit c1 t + c2 t^2 + c3 t^3 on 3 points, predict the 4th.
    t = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    design = torch.stack([t, t**2, t**3], dim=1)
    coefficients = torch.linalg.solve(design, values[:3].reshape(3, -1))
    predicted = torch.tensor([4.0, 16.0, 64.0], dtype=torch.float64) @ coefficients
    torch.testing.assert_close(predicted, values[3].reshape(-1), atol=1e-9, rtol=1e-9)


def test_independent_basis_counts_are_stable():
    """Path counts of the symmetric contraction (saved models depend on them)."""
    counts = [independent_basis(3, 1, degree)[1].shape[0] for degree in (1, 2, 3)]
    assert counts == [2, 7, 21]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lmax_in", [0, 1, 2])
def test_edge_tensor_product_and_interaction(dtype, lmax_in):
    torch_dtype = getattr(torch, dtype)
    num_nodes, lmax_sh, channels = 6, 3, 4
    sender, receiver, vectors = _edges(num_nodes, 20, torch_dtype)
    radial_features = torch.rand(20, 5, dtype=torch_dtype)
    envelope = torch.rand(20, 1, dtype=torch_dtype)
    with default_dtype(dtype):
        torch.manual_seed(0)
        tp = EdgeTensorProduct(lmax_in, lmax_sh, lmax_sh)
        tp.fused = False  # the path-major weights below are the reference path's layout
        mix = PathLinear(tp, channels, FeatureIrreps(channels, lmax_sh))
        interaction = Interaction(FeatureIrreps(channels, lmax_in), FeatureIrreps(channels, lmax_sh), lmax_sh, 5, [8], 3.0)
    weights = torch.randn(tp.num_paths, 20, channels, dtype=torch_dtype)

    def through_tp(h, sh):
        return mix(tp(h, sh[:, :, 0], weights, sender, receiver))

    def through_interaction(h, sh):
        return interaction(h, sh[:, :, 0], radial_features, envelope, sender, receiver)

    h = _features(num_nodes, lmax_in, channels, torch_dtype)
    sh = _sh(vectors, lmax_sh).unsqueeze(-1)  # harmonics rotate like one-channel features
    assert_block_equivariant(through_tp, [h, sh], [lmax_in, lmax_sh], lmax_sh)
    assert_block_equivariant(through_interaction, [h, sh], [lmax_in, lmax_sh], lmax_sh)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interaction,attention", [("mace", None), ("attention", AttentionSettings(heads=2)),
                                                   ("attention", AttentionSettings(heads=1, value_channels=6, nonlinear=True))])
def test_interaction_layer(dtype, interaction, attention):
    torch_dtype = getattr(torch, dtype)
    sender, receiver, vectors = _edges(7, 30, torch_dtype)
    radial_features = torch.rand(30, 5, dtype=torch_dtype)
    envelope = torch.rand(30, 1, dtype=torch_dtype)
    with default_dtype(dtype):
        torch.manual_seed(0)
        layer = InteractionLayer(
            FeatureIrreps(4, 2), FeatureIrreps(4, 1), 3, 3, 3, 5, [8], 3.0, self_connection=True,
            interaction=interaction, attention=attention,
        )

    def run(h, sh):
        return layer(h, sh[:, :, 0], radial_features, envelope, sender, receiver, COUNTS)

    assert_block_equivariant(run, [_features(7, 2, 4, torch_dtype), _sh(vectors, 3).unsqueeze(-1)], [2, 3], 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_backbone_features_follow_the_structure(dtype):
    torch_dtype = getattr(torch, dtype)
    with default_dtype(dtype):
        torch.manual_seed(0)
        backbone = Backbone(3, 4.0, 6, 5, 2, FeatureIrreps(4, 1), 3, 2, [8], 4.0, last_lmax=2)
    positions = torch.randn(8, 3, dtype=torch_dtype) * 1.5
    species = torch.tensor([2, 0, 1, 0, 2, 2, 1, 0])
    pairs = [(i, j) for i in range(8) for j in range(8) if i != j]
    edge_index = torch.tensor(pairs).T

    def vectors(positions):
        return positions[edge_index[0]] - positions[edge_index[1]]

    features = backbone(vectors(positions), species, edge_index)
    atol = 1e-10 if dtype == "float64" else 1e-4
    for seed, reflect in [(0, False), (1, True)]:
        rotation = random_o3(seed, reflect).to(torch_dtype)
        rotated = backbone(vectors(positions @ rotation.T + 1.0), species, edge_index)
        assert len(rotated) == len(features) == 2
        for layer, (original, moved) in enumerate(zip(features, rotated)):
            lmax = backbone.irreps_out[layer].lmax
            assert original.shape == (8, (lmax + 1) ** 2, 4)
            assert original.abs().max() > 1e-3  # not trivially zero
            torch.testing.assert_close(moved, rotate_features(original, lmax, rotation), atol=atol, rtol=0)


def test_radial_embedding_vanishes_smoothly_at_cutoff():
    embedding = RadialEmbedding(r_max=4.0, num_bessel=8, num_polynomial_cutoff=5).double()
    r = torch.tensor([[3.999999], [4.0], [4.5]], dtype=torch.float64, requires_grad=True)
    values = embedding(r)
    assert values[1:].abs().max() == 0.0
    assert values[0].abs().max() < 1e-12
    (gradient,) = torch.autograd.grad(values.sum(), r)
    assert gradient.abs().max() < 1e-8


def test_e3nn_l1_convention_is_cartesian():
    """Saved models store CG buffers that must match e3nn's harmonics; fail loudly if e3nn changes."""
    unit = torch.eye(3, dtype=torch.float64)
    sh = o3.spherical_harmonics(1, unit, normalize=True, normalization="component")
    torch.testing.assert_close(sh, 3**0.5 * unit)


def test_generic_blocks_import_no_task_package():
    """mlpot.nn is shared by every task, so it may lean on the kernels and errors only: a task
    convention (an AO order, a loss) comes in as an argument, never as an import."""
    allowed = ("mlpot.nn", "mlpot.kernels", "mlpot.errors")
    offenders = []
    for path in sorted((Path(mlpot.__file__).parent / "nn").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{path.name}: {name}" for name in names if name.startswith("mlpot") and not name.startswith(allowed)]
    assert offenders == []
