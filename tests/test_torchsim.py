"""mlpot models in TorchSim (mlpot.engines.torchsim): one batched forward equals MLPotCalculator
per system, TorchSim's integrators and optimizers run on it, and users' mistakes are one line."""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from mlpot.calculators import MLPotCalculator
from mlpot.errors import MLPotError

MODELS = Path(__file__).resolve().parent.parent / "models"
CUAU = str(MODELS / "cuau-emt-demo")  # Cu, Au; r_max 4.5 Å
ETHANOL = str(MODELS / "ethanol-rmd17")  # H, C, O; a committee of two


@pytest.fixture(scope="module")
def ts():
    return pytest.importorskip("torch_sim", reason="TorchSim is in the torchsim extra")


def cuau_cell(repeat, seed: int) -> Atoms:
    """A rattled, strained fcc Cu-Au cell of 4 * prod(repeat) atoms."""
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(repeat)
    atoms.symbols[rng.random(len(atoms)) < 0.3] = "Au"
    strain = np.eye(3) + rng.uniform(-0.02, 0.02, (3, 3))
    atoms.set_cell(atoms.cell.array @ (0.5 * (strain + strain.T)), scale_atoms=True)
    atoms.rattle(0.05, seed=seed)
    return atoms


def periodic_systems():
    """108 atoms, 1 atom in a primitive cell far smaller than the cutoff (self-images), 8 atoms."""
    return [cuau_cell((3, 3, 3), seed=1), bulk("Au", "fcc", a=4.1), cuau_cell((2, 1, 1), seed=2)]


def molecules():
    """Ethanol, methanol and two ethanols side by side: 9, 6 and 18 atoms, no cell."""
    first, second = molecule("CH3CH2OH"), molecule("CH3CH2OH")
    second.positions += [3.5, 0.5, 0.2]
    systems = [molecule("CH3CH2OH"), molecule("CH3OH"), first + second]
    for seed, atoms in enumerate(systems):
        atoms.rattle(0.03, seed=seed)
    return systems


def per_system(values, sizes):
    """Split an [N, ...] array into the systems' blocks."""
    return np.split(values, np.cumsum(sizes)[:-1])


def assert_equals_calculator(out, systems, calculator):
    """TorchSim's batched energy, forces (and stress, where returned) equal the calculator's per system."""
    forces = per_system(out["forces"].numpy(), [len(atoms) for atoms in systems])
    for index, atoms in enumerate(systems):
        atoms.calc = calculator
        assert abs(out["energy"][index].item() - atoms.get_potential_energy()) < 1e-10
        np.testing.assert_allclose(forces[index], atoms.get_forces(), rtol=0, atol=1e-10)
        if "stress" in out:
            np.testing.assert_allclose(out["stress"][index].numpy(), atoms.get_stress(voigt=False), rtol=0, atol=1e-10)


def test_periodic_batch_equals_calculator(ts):
    from mlpot.engines.torchsim import MLPotModel

    systems = periodic_systems()
    model = MLPotModel(CUAU)
    out = model(ts.io.atoms_to_state(systems, model.device, model.dtype))
    assert out["energy"].shape == (3,) and out["forces"].shape == (117, 3) and out["stress"].shape == (3, 3, 3)
    assert_equals_calculator(out, systems, MLPotCalculator(CUAU, dtype="float64"))
    assert np.abs(out["stress"].numpy()).max() > 1e-3  # strained cells: the comparison is not of zeros


def test_molecule_batch_equals_committee_calculator(ts):
    from mlpot.engines.torchsim import MLPotModel

    systems = molecules()
    model = MLPotModel(ETHANOL)
    out = model(ts.io.atoms_to_state(systems, model.device, model.dtype))
    assert "stress" not in out  # no cell: as the calculator, no stress
    assert_equals_calculator(out, systems, MLPotCalculator(ETHANOL, dtype="float64"))


def test_kept_neighbour_lists_give_a_fresh_builds_results(ts):
    """Moves within skin / 2 reuse each system's list, a larger move rebuilds only that system's,
    and the results equal a model that builds every list anew (skin 0)."""
    from mlpot.engines.torchsim import MLPotModel

    systems = periodic_systems()
    kept, fresh = MLPotModel(CUAU, skin=0.5), MLPotModel(CUAU, skin=0.0)
    kept(ts.io.atoms_to_state(systems, kept.device, kept.dtype))
    first_lists = list(kept._lists)
    for moved_system, move in [(0, 0.2), (2, 0.3)]:  # the second: 0.3 Å in system 2 only
        systems[moved_system].positions[0] += [move, 0.0, 0.0]
        state = ts.io.atoms_to_state(systems, kept.device, kept.dtype)
        out, reference = kept(state), fresh(state)
        for name in ("energy", "forces", "stress"):
            np.testing.assert_allclose(out[name].numpy(), reference[name].numpy(), rtol=0, atol=1e-12)
    assert [a is b for a, b in zip(kept._lists, first_lists)] == [True, True, False]


def test_integrate_and_optimize_batches(ts):
    from mlpot.engines.torchsim import MLPotModel

    model = MLPotModel(CUAU)
    state = ts.io.atoms_to_state(periodic_systems(), model.device, model.dtype)
    initial_energy = model(state)["energy"]  # [3]
    moved = ts.integrate(system=state, model=model, integrator=ts.nvt_langevin, n_steps=3, temperature=600.0, timestep=0.002)
    assert moved.n_systems == 3 and not np.allclose(moved.positions.numpy(), state.positions.numpy())
    np.testing.assert_allclose(moved.energy.numpy(), model(moved)["energy"].numpy(), rtol=0, atol=1e-10)
    with pytest.warns(UserWarning, match="max steps"):
        relaxed = ts.optimize(system=state, model=model, optimizer=ts.frechet_cell_fire, max_steps=4)
    assert (relaxed.energy < initial_energy).all()
    assert not np.allclose(relaxed.cell.numpy(), state.cell.numpy())  # the cells relaxed too

    committee = MLPotModel(ETHANOL)
    state = ts.io.atoms_to_state(molecules(), committee.device, committee.dtype)
    with pytest.warns(UserWarning, match="max steps"):
        relaxed = ts.optimize(system=state, model=committee, optimizer=ts.optimizers.fire, max_steps=4)
    assert (relaxed.energy < committee(state)["energy"]).all()
    moved = ts.integrate(system=state, model=committee, integrator=ts.nve, n_steps=3, temperature=300.0, timestep=0.0005)
    assert np.isfinite(moved.positions.numpy()).all()


def test_element_the_model_lacks_is_one_line(ts):
    from mlpot.engines.torchsim import MLPotModel

    model = MLPotModel(CUAU)
    systems = [bulk("Cu", "fcc", a=3.6), bulk("Fe", "bcc", a=2.87, cubic=True)]
    with pytest.raises(MLPotError) as error:
        model(ts.io.atoms_to_state(systems, model.device, model.dtype))
    message = str(error.value)
    assert message == "TorchSim state: system 1 contains Fe, which the model was not trained on (model elements: Cu, Au)"


def test_overlapping_atoms_name_system_and_pair(ts):
    from mlpot.engines.torchsim import MLPotModel

    model = MLPotModel(CUAU)
    crowded = bulk("Cu", "fcc", a=3.7, cubic=True)
    crowded.positions[2] = crowded.positions[1] + [0.03, 0.0, 0.0]
    with pytest.raises(MLPotError, match=r"^TorchSim state: system 1: atoms 1 \(Cu\) and 2 \(Cu\) are 0.03 Å apart"):
        model(ts.io.atoms_to_state([bulk("Cu", "fcc", a=3.6), crowded], model.device, model.dtype))


def test_non_finite_coordinate_names_system_and_atom(ts):
    from mlpot.engines.torchsim import MLPotModel

    model = MLPotModel(CUAU)
    state = ts.io.atoms_to_state([bulk("Cu", "fcc", a=3.6), bulk("Au", "fcc", a=4.1, cubic=True)], model.device, model.dtype)
    state.positions[3, 1] = float("nan")  # system 1, its atom 2
    with pytest.raises(MLPotError) as error:
        model(state)
    assert str(error.value) == "TorchSim state: system 1: atom 2 (Au) has a non-finite coordinate"

def test_without_torch_sim_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_sim", None)  # import torch_sim raises ImportError
    monkeypatch.delitem(sys.modules, "mlpot.engines.torchsim", raising=False)
    with pytest.raises(MLPotError) as error:
        importlib.import_module("mlpot.engines.torchsim")
    assert str(error.value) == (
        "mlpot TorchSim model: torch_sim is not installed; install the 'torchsim' extra: pip install 'mlpot[torchsim]'"
    )
