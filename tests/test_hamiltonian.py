"""Hamiltonian model and its blocks: O(3) equivariance in PySCF's AO order, exact symmetry,
permutations, the cutoff, model files and config errors. No PySCF needed (see test_qm.py)."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from symmetry import random_o3, rotate_features

import mlpot
from mlpot import MLPotError
from mlpot.config import default_dtype
from mlpot.data.graph import atoms_to_graph, graph_to_inputs
from mlpot.nn.orbital import OrbitalBlockReadout
from mlpot.nn.tensor_product import ChannelTensorProduct, ParityIrreps, parity_wigner_d
from mlpot.qm.ao_order import ao_wigner_d, pyscf_from_e3nn
from mlpot.qm.inference import predict_matrices
from mlpot.qm.layout import OrbitalLayout

SHELLS = {"H": [0, 0, 1], "O": [0, 0, 0, 1, 1, 2]}  # def2-SVP: d shells need L up to 4


def tiny_model(dtype="float64", **changes):
    torch.manual_seed(0)
    config = {
        "task": "hamiltonian",
        "elements": ["H", "O"],
        "shells": SHELLS,
        "hidden_irreps": "4x0e+4x1o+4x2e",
        "block_channels": 4,
        "radial_mlp": [8],
        "r_max": 4.0,
        "overlap": True,
        "onsite_reference": {"O": [[-20.0 if a == b else 0.0 for b in range(6)] for a in range(6)]},
        "dtype": dtype,
        **changes,
    }
    return mlpot.build_model(config)


def water_pair(shift=3.0):
    """Two distorted waters, ``shift`` Å apart along a tilted axis."""
    first = molecule("H2O")
    second = molecule("H2O")
    second.positions += shift * np.array([0.8, 0.36, 0.48])
    atoms = first + second
    atoms.positions += np.random.default_rng(3).normal(0.0, 0.08, atoms.positions.shape)
    return atoms


def matrices(model, atoms):
    return predict_matrices(model, [atoms], "test")[0]


def ao_rotation(layout, numbers, rotation):
    return torch.block_diag(*[ao_wigner_d(layout.shells[int(z)], rotation) for z in numbers]).numpy()


@pytest.mark.parametrize("interaction", ["mace", "attention"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_model_is_o3_equivariant_in_pyscf_ao_order(dtype, interaction):
    model = tiny_model(dtype, interaction=interaction, attention={"heads": 2})
    atoms = water_pair()
    reference = matrices(model, atoms)
    atol = 1e-10 if dtype == "float64" else 5e-5
    for seed, reflect in [(0, False), (1, True)]:
        rotation = random_o3(seed, reflect)
        moved = atoms.copy()
        moved.positions = atoms.positions @ rotation.numpy().T + np.array([0.4, -1.1, 2.3])
        result = matrices(model, moved)
        d = ao_rotation(model.layout, atoms.numbers, rotation)
        for name in ("hamiltonian", "overlap"):
            np.testing.assert_allclose(result[name], d @ reference[name] @ d.T, atol=atol, rtol=0)


def test_matrices_are_symmetric_and_permute_with_the_atoms():
    model = tiny_model()
    atoms = water_pair()
    reference = matrices(model, atoms)
    for name in ("hamiltonian", "overlap"):
        assert np.abs(reference[name]).max() > 1e-3
        np.testing.assert_array_equal(reference[name], reference[name].T)
    permutation = np.random.default_rng(1).permutation(len(atoms))
    shuffled = matrices(model, atoms[permutation])
    offsets = model.layout.offsets(atoms.numbers)
    orbitals = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in permutation])
    np.testing.assert_allclose(shuffled["hamiltonian"], reference["hamiltonian"][np.ix_(orbitals, orbitals)], atol=1e-12, rtol=0)


def test_off_diagonal_blocks_vanish_continuously_at_the_cutoff():
    model = tiny_model()
    dimer = Atoms("OO", positions=[[0, 0, 0], [0, 0, model.r_max - 1e-3]])
    beyond = Atoms("OO", positions=[[0, 0, 0], [0, 0, model.r_max + 1e-3]])
    inside = matrices(model, dimer)["hamiltonian"]
    outside = matrices(model, beyond)["hamiltonian"]
    assert np.abs(inside[:14, 14:]).max() < 1e-8
    np.testing.assert_array_equal(outside[:14, 14:], 0.0)
    np.testing.assert_allclose(inside[:14, :14], outside[:14, :14], atol=1e-8, rtol=0)


def test_channel_tensor_product_is_equivariant_in_both_parities():
    torch.manual_seed(0)
    with default_dtype("float64"):
        product = ChannelTensorProduct(lmax1=2, lmax2=1, lmax_out=3, channels=3, channels_out=5)
    x = torch.randn(4, 9, 3, dtype=torch.float64)
    y = torch.randn(4, 4, 3, dtype=torch.float64)
    weights = torch.randn(4, product.num_paths, 3, dtype=torch.float64)
    out = product(x, y, weights)
    unnatural = out[:, out.shape[1] // 2 :]
    assert unnatural[:, 1:4].abs().max() > 1e-3  # 1e from 1o x 1o (cross products) is there
    for seed, reflect in [(0, False), (1, True), (2, True)]:
        rotation = random_o3(seed, reflect)
        rotated = product(rotate_features(x, 2, rotation), rotate_features(y, 1, rotation), weights)
        expected = torch.einsum("ij,njc->nic", parity_wigner_d(3, rotation), out)
        torch.testing.assert_close(rotated, expected, atol=1e-12, rtol=0)


def test_orbital_block_readout_rotates_like_ao_blocks():
    torch.manual_seed(0)
    layout = OrbitalLayout.from_symbols(SHELLS)
    irreps = ParityIrreps(channels=3, lmax=4)
    with default_dtype("float64"):
        readout = OrbitalBlockReadout(
            [(SHELLS["O"], SHELLS["H"]), (SHELLS["H"], SHELLS["H"])], irreps, layout.max_orbitals, pyscf_from_e3nn
        )
    features = torch.randn(5, irreps.dim, 3, dtype=torch.float64)
    types = torch.tensor([0, 1, 0, 0, 1])
    blocks = readout(features, types)
    assert blocks[types == 1][:, 5:].abs().max() == 0  # H-H blocks: padding stays zero
    for seed, reflect in [(0, False), (1, True)]:
        rotation = random_o3(seed, reflect)
        rotated = readout(torch.einsum("ij,njc->nic", parity_wigner_d(4, rotation), features), types)
        rows_o, rows_h = ao_wigner_d(SHELLS["O"], rotation), ao_wigner_d(SHELLS["H"], rotation)
        torch.testing.assert_close(rotated[0, :14, :5], rows_o @ blocks[0, :14, :5] @ rows_h.T, atol=1e-12, rtol=0)
        torch.testing.assert_close(rotated[1, :5, :5], rows_h @ blocks[1, :5, :5] @ rows_h.T, atol=1e-12, rtol=0)


def test_layout_cuts_and_reassembles_a_matrix():
    layout = OrbitalLayout.from_symbols(SHELLS)
    atoms = water_pair()
    size = layout.offsets(atoms.numbers)[-1]
    matrix = np.random.default_rng(0).normal(size=(size, size))
    edge_index = np.array([(j, i) for i in range(len(atoms)) for j in range(len(atoms)) if i != j]).T
    node, edge = layout.to_blocks(matrix, atoms.numbers, edge_index)
    assert node.shape == (6, 14, 14) and edge.shape == (30, 14, 14)
    hydrogen = atoms.numbers == 1  # 5 AOs of 14: the rest of its rows and columns is padding
    assert np.all(node[hydrogen][:, 5:, :] == 0) and np.all(node[hydrogen][:, :, 5:] == 0)
    first = edge_index[:, 0]  # receiver edge_index[1], sender edge_index[0]
    rows, cols = layout.offsets(atoms.numbers)[[first[1], first[0]]]
    np.testing.assert_array_equal(edge[0, :2, :2], matrix[rows : rows + 2, cols : cols + 2])
    np.testing.assert_array_equal(layout.to_matrix(node, edge, atoms.numbers, edge_index), matrix)


def test_save_load_round_trip_is_exact(tmp_path):
    model = tiny_model()
    atoms = water_pair()
    mlpot.save_model(model, tmp_path / "h.model")
    loaded = mlpot.load_model(tmp_path / "h.model")
    assert loaded.layout == model.layout
    for name in ("hamiltonian", "overlap"):
        np.testing.assert_array_equal(matrices(loaded, atoms)[name], matrices(model, atoms)[name])


def test_torchscript_equals_eager():
    model = tiny_model()
    inputs = graph_to_inputs(atoms_to_graph(water_pair(), model.r_max, dtype=torch.float64))
    scripted = torch.jit.script(model)
    eager, script = model(inputs), scripted(inputs)
    assert set(eager) == set(script)
    for key in eager:
        torch.testing.assert_close(script[key], eager[key], atol=0, rtol=0)


def test_periodic_structures_and_unknown_elements_are_refused():
    model = tiny_model()
    periodic = water_pair()
    periodic.set_cell([10, 10, 10])
    periodic.pbc = True
    with pytest.raises(MLPotError, match=r"test, frame 0: periodic structure"):
        matrices(model, periodic)
    with pytest.raises(MLPotError, match=r"test, frame 0: C not among the model's elements"):
        matrices(model, molecule("CH4"))


@pytest.mark.parametrize(
    "change,message",
    [
        ({"shells": {"H": [0]}}, r"'model.shells.O' must list the l"),
        ({"hidden_irreps": "4x0e+4x1o"}, r"'model.hidden_irreps' needs lmax >= 2"),
        ({"onsite_reference": {"H": [[0, 1, 2], [1, 0, 0], [2, 0, 0]]}}, r"'model.onsite_reference.H' is not zero between shells 0 and 2"),
        ({"block_channel": 8}, r"unknown key 'model.block_channel'; did you mean 'block_channels'\?"),
    ],
)
def test_config_errors_name_the_key(change, message):
    with pytest.raises(MLPotError, match=message):
        tiny_model(**change)


def test_loss_kinds_average_squared_and_absolute_errors_over_real_entries():
    """mse, mae and QHNet's mse+mae: means over the unpadded block entries, errors in mEh."""
    from mlpot.data import keys
    from mlpot.train.tasks.hamiltonian import HamiltonianLoss, HamiltonianTask

    generator = torch.Generator().manual_seed(0)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])  # [N=2, O=3]: the second atom has one orbital
    edge_index = torch.tensor([[0, 1], [1, 0]])
    batch = {keys.ORBITAL_MASK: mask, keys.EDGE_INDEX: edge_index}
    out = {}
    for key, count in ((keys.HAMILTONIAN_NODE_BLOCKS, 2), (keys.HAMILTONIAN_EDGE_BLOCKS, 2)):
        batch[key] = torch.randn(count, 3, 3, generator=generator, dtype=torch.float64)
        out[key] = batch[key] + 1e-3 * torch.randn(count, 3, 3, generator=generator, dtype=torch.float64)
    out[keys.HAMILTONIAN_NODE_BLOCKS][1, 1:, :] += 5.0  # padded rows of atom 1's block: ignored
    out[keys.HAMILTONIAN_EDGE_BLOCKS][0, 1:, :] += 5.0  # padded rows of the block [1 <- 0]: ignored
    real = []
    for key, rows, columns in (
        (keys.HAMILTONIAN_NODE_BLOCKS, [mask[0], mask[1]], [mask[0], mask[1]]),
        (keys.HAMILTONIAN_EDGE_BLOCKS, [mask[1], mask[0]], [mask[0], mask[1]]),  # block [i <- j]: rows of receiver i
    ):
        for k in range(2):
            entries = (rows[k].unsqueeze(1) * columns[k].unsqueeze(0)).bool()
            real.append((out[key][k] - batch[key][k])[entries] * 1e3)
    errors = torch.cat(real)  # mEh
    assert errors.numel() == 9 + 1 + 3 + 3 and errors.abs().max() < 10.0
    terms = HamiltonianTask.loss_terms(out, batch)
    expected = {"mse": errors.square().mean(), "mae": errors.abs().mean()}
    expected["mse+mae"] = expected["mse"] + expected["mae"]
    for kind, value in expected.items():
        loss = HamiltonianTask.combine(terms[0], terms[1], HamiltonianLoss(hamiltonian_weight=2.0, kind=kind))
        torch.testing.assert_close(loss, 2.0 * value)
    with pytest.raises(MLPotError, match=r"'training.loss.kind' must be one of 'mse', 'mae', 'mse\+mae', got 'l1'"):
        mlpot.config.parse_section(HamiltonianLoss, {"kind": "l1"}, "training.loss")


def test_lindep_drops_the_near_null_direction_of_s_and_its_intruder_level():
    """An H error along an eigenvector of S with eigenvalue 1e-3 makes a spurious level far below
    the others; canonical orthogonalisation at lindep 1e-2 solves in the span of the other
    eigenvectors, where that error does not reach."""
    from mlpot.qm.orbitals import compare_occupied, orbitals

    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    overlap = basis @ np.diag([1e-3, 0.3, 0.8, 1.0, 1.4, 2.0]) @ basis.T  # [6, 6]
    hamiltonian = rng.normal(size=(6, 6))
    hamiltonian = hamiltonian + hamiltonian.T
    energies, coefficients = orbitals(hamiltonian, overlap)
    np.testing.assert_allclose(coefficients.T @ overlap @ coefficients, np.eye(6), atol=1e-8)
    kept_energies, kept_coefficients = orbitals(hamiltonian, overlap, lindep=1e-2)
    assert kept_energies.shape == (5,) and kept_coefficients.shape == (6, 5)
    np.testing.assert_allclose(kept_coefficients.T @ overlap @ kept_coefficients, np.eye(5), atol=1e-10)
    residual = hamiltonian @ kept_coefficients - overlap @ kept_coefficients * kept_energies  # H C - S C eps
    assert np.abs(kept_coefficients.T @ residual).max() < 1e-10  # solved within the kept span

    null = basis[:, 0]  # the near-null direction of S
    error = -0.05 * np.outer(null, null)  # a small H error along it ...
    intruded, _ = orbitals(hamiltonian + error, overlap)
    assert intruded[0] < energies[0] - 10.0  # ... is amplified by 1 / 1e-3 into a spurious level
    cleaned, _ = orbitals(hamiltonian + error, overlap, lindep=1e-2)
    np.testing.assert_allclose(cleaned, kept_energies, atol=1e-12)  # the error lies wholly in the dropped span
    comparison = compare_occupied(hamiltonian + error, hamiltonian, overlap, num_occupied=2, lindep=1e-2)
    np.testing.assert_allclose(comparison.energies_predicted, kept_energies[:2])
    with pytest.raises(MLPotError, match="lindep 0.9 leaves 3 orbitals for 4 occupied ones"):
        compare_occupied(hamiltonian, hamiltonian, overlap, num_occupied=4, lindep=0.9)
