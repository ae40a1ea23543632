"""Physics of the MACE-style potential, through the shared helpers in symmetry.py (float64)."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from symmetry import (
    assert_forces_are_gradients,
    assert_model_symmetric,
    assert_stress_is_strain_derivative,
    evaluate,
)
from torch_geometric.data import Batch

import mlpot
from mlpot.data.graph import atoms_to_graph, graph_to_inputs

# every physics test runs on the fused kernels and on the reference path (conftest.kernel)
pytestmark = pytest.mark.usefixtures("kernel")

SMALL = {"hidden_irreps": "8x0e+8x1o", "radial_mlp": [16, 16], "num_bessel": 6, "max_ell": 2}


@pytest.fixture(autouse=True, params=["mace", "attention"])
def interaction(request, monkeypatch):
    """Every physics test runs with each interaction of the trunk (and each kernel, above)."""
    monkeypatch.setitem(SMALL, "interaction", request.param)
    if request.param == "attention":
        monkeypatch.setitem(SMALL, "attention", {"heads": 2})  # divides every channel count used here
    return request.param


def small_model(elements=("H", "C", "O"), **overrides):
    torch.manual_seed(0)
    config = {"elements": list(elements), "r_max": 4.0, "avg_num_neighbors": 8.0, **SMALL, **overrides}
    return mlpot.build_model(config)


def ethanol():
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=3)
    return atoms


def periodic_cu_au():
    atoms = bulk("Cu", "fcc", a=3.7) * (2, 1, 1)
    atoms.cell[1] += [0.4, 0.0, 0.2]  # triclinic, smaller than the cutoff
    atoms.symbols[1] = "Au"
    atoms.rattle(0.05, seed=4)
    return atoms


@pytest.mark.parametrize("correlation", [1, 2, 3])
def test_symmetries_molecule(correlation):
    assert_model_symmetric(small_model(correlation=correlation), ethanol())


def test_symmetries_periodic():
    assert_model_symmetric(small_model(elements=["Cu", "Au"]), periodic_cu_au())


def test_symmetries_three_layers_lmax2_hidden():
    model = small_model(num_interactions=3, hidden_irreps="6x0e+6x1o+6x2e", max_ell=3)
    assert_model_symmetric(model, ethanol())


def test_forces_are_minus_energy_gradient():
    assert_forces_are_gradients(small_model(), ethanol())
    assert_forces_are_gradients(small_model(elements=["Cu", "Au"]), periodic_cu_au())


def test_stress_is_strain_derivative_over_volume():
    assert_stress_is_strain_derivative(small_model(elements=["Cu", "Au"]), periodic_cu_au())


def test_supercell_energy_is_extensive():
    model = small_model(elements=["Cu", "Au"])
    cell = periodic_cu_au()
    single = evaluate(model, [cell], stress=True)
    double = evaluate(model, [cell * (2, 2, 2)], stress=True)
    np.testing.assert_allclose(double["energy"][0], 8 * single["energy"][0], rtol=1e-10)
    np.testing.assert_allclose(double["forces"][: len(cell)], single["forces"], atol=1e-10)
    np.testing.assert_allclose(double["stress"], single["stress"], atol=1e-10)


def test_energy_and_forces_continuous_across_cutoff():
    model = small_model()
    r_max = model.r_max

    def trimer(distance):
        # A water-like trimer whose third atom crosses the cutoff of the first.
        return Atoms("OHH", positions=[[0, 0, 0], [0.96, 0, 0], [distance, 0.3, 0.0]])

    just_inside = evaluate(model, [trimer(np.sqrt(r_max**2 - 0.09) - 1e-7)])
    just_outside = evaluate(model, [trimer(np.sqrt(r_max**2 - 0.09) + 1e-7)])
    assert abs(just_inside["energy"][0] - just_outside["energy"][0]) < 1e-9
    np.testing.assert_allclose(just_inside["forces"], just_outside["forces"], atol=1e-7)


def test_dimer_beyond_cutoff_is_two_isolated_atoms():
    model = small_model(atomic_energies={"H": -13.6, "O": -432.0}, shift=0.25)
    isolated = evaluate(model, [Atoms("O"), Atoms("H")])["energy"]
    far = evaluate(model, [Atoms("OH", positions=[[0, 0, 0], [0, 0, model.r_max + 0.01]])])
    np.testing.assert_allclose(far["energy"][0], isolated.sum(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(far["forces"], 0.0, atol=1e-14)
    # Without neighbours every message is zero, so an isolated atom has E0 + shift exactly.
    np.testing.assert_allclose(isolated, [-432.0 + 0.25, -13.6 + 0.25], rtol=0, atol=1e-12)


def test_batch_gives_each_structure_its_own_numbers_and_no_gradient_leak():
    model = small_model(elements=["H", "C", "O", "Cu", "Au"])
    structures = [ethanol(), periodic_cu_au(), molecule("H2O")]
    together = evaluate(model, structures, stress=True)
    offset = 0
    for k, atoms in enumerate(structures):
        alone = evaluate(model, [atoms], stress=True)
        np.testing.assert_allclose(together["energy"][k], alone["energy"][0], rtol=1e-12)
        np.testing.assert_allclose(together["forces"][offset : offset + len(atoms)], alone["forces"], atol=1e-12)
        np.testing.assert_allclose(together["stress"][k], alone["stress"][0], atol=1e-12)
        offset += len(atoms)
    # d E_graph0 / d positions of graph 1 must be exactly zero.
    graphs = [atoms_to_graph(atoms, model.r_max, dtype=torch.float64) for atoms in structures]
    inputs = graph_to_inputs(Batch.from_data_list(graphs))
    positions = inputs["positions"].requires_grad_(True)
    out = model(inputs, compute_forces=False)
    (gradient,) = torch.autograd.grad(out["energy"][0], positions)
    assert gradient[len(structures[0]) :].abs().max() == 0.0
    assert gradient[: len(structures[0])].abs().max() > 0.0


def test_training_forward_supports_second_derivatives():
    model = small_model()
    graph = atoms_to_graph(ethanol(), model.r_max, dtype=torch.float64)
    out = model(graph_to_inputs(graph), training=True)
    loss = out["forces"].pow(2).sum()
    loss.backward()
    gradients = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(gradients) > 0 and all(torch.isfinite(g).all() for g in gradients)


def test_float32_matches_float64():
    model64 = small_model()
    model32 = small_model(dtype="float32")
    model32.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in model64.state_dict().items()})
    atoms = ethanol()
    r64, r32 = evaluate(model64, [atoms]), evaluate(model32, [atoms])
    np.testing.assert_allclose(r32["energy"], r64["energy"], rtol=1e-5)
    np.testing.assert_allclose(r32["forces"], r64["forces"], atol=1e-4)
    assert_model_symmetric(model32, atoms, atol=1e-4)


def test_torchscript_equals_eager():
    model = small_model(elements=["Cu", "Au"])
    scripted = torch.jit.script(model)
    atoms = periodic_cu_au()
    graph = atoms_to_graph(atoms, model.r_max, dtype=torch.float64)
    eager = model(graph_to_inputs(graph), True, True)
    script = scripted(graph_to_inputs(graph), True, True)
    for key in ("energy", "node_energy", "forces", "stress", "virial"):
        torch.testing.assert_close(script[key], eager[key], atol=1e-12, rtol=0)


def test_save_load_round_trip_is_exact(tmp_path):
    model = small_model(atomic_energies={"H": -13.6, "C": -1029.0, "O": -2041.0}, scale=1.3, shift=-0.1)
    path = tmp_path / "model.mlpot"
    mlpot.save_model(model, path, metadata={"training_data": "none"})
    loaded = mlpot.load_model(path)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    np.testing.assert_array_equal(evaluate(loaded, [ethanol()])["forces"], evaluate(model, [ethanol()])["forces"])
    assert loaded.metadata["training_data"] == "none"
    assert loaded.metadata["elements"] == ["H", "C", "O"]
    assert loaded.metadata["r_max"] == 4.0


def test_unknown_element_fails_loudly():
    model = small_model()
    with pytest.raises(RuntimeError, match=r"atomic numbers \[29\]"):
        evaluate(model, [Atoms("CuH", positions=[[0, 0, 0], [1, 0, 0]])])


def test_nonlinear_attention_messages_keep_the_physics():
    model = small_model(interaction=["attention", "mace"], attention={"heads": 2, "nonlinear": True, "value_channels": 4})
    assert_model_symmetric(model, ethanol())
    assert_forces_are_gradients(model, ethanol())
    r_max = model.r_max
    crossing = np.sqrt(r_max**2 - 0.09)
    inside, outside = (
        evaluate(model, [Atoms("OHH", positions=[[0, 0, 0], [0.96, 0, 0], [d, 0.3, 0.0]])]) for d in (crossing - 1e-7, crossing + 1e-7)
    )
    assert abs(inside["energy"][0] - outside["energy"][0]) < 1e-9
    np.testing.assert_allclose(inside["forces"], outside["forces"], atol=1e-7)


def test_attention_config_errors_name_the_key():
    SMALL.pop("attention", None)
    with pytest.raises(mlpot.MLPotError, match=r"'model.interaction' must be mace or attention"):
        small_model(interaction="transformer")
    with pytest.raises(mlpot.MLPotError, match=r"'model.interaction' lists 1 layers, but num_interactions is 2"):
        small_model(interaction=["attention"])
    with pytest.raises(mlpot.MLPotError, match=r"'model.attention.heads' \(3\) must divide the value channels \(8\)"):
        small_model(interaction="attention", attention={"heads": 3})
    with pytest.raises(mlpot.MLPotError, match=r"unknown key 'model.attention.head'"):
        small_model(interaction="attention", attention={"head": 2})
