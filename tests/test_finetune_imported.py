"""Fine-tuning imported mace-torch models (issue 30, point 5): the architecture options the import
sets are kept, every element-dependent tensor grows for a new element, freezing covers the blocks
the import added."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from ase.build import bulk, molecule
from ase.data import atomic_numbers, covalent_radii
from conftest import tiny_config
from symmetry import evaluate

import mlpot
from mlpot.cli.main import main
from mlpot.errors import MLPotError
from mlpot.importers.mace_convert import convert_mace
from mlpot.importers.mace_file import read_mace_file
from mlpot.models.io import save_model
from mlpot.models.potential import MACEPotential
from mlpot.train import finetune

FIXTURES = Path(__file__).parent / "fixtures" / "mace"
#: H/C/O fixtures, one per block the import adds: element messages (plain), density, gated
#: (element embeddings in the radial MLP), residual; and ZBL + Agnesi (Cu/Au).
BLOCKS = ["mace_plain_l0", "ss_density", "ss_nonlinear_2heads", "ss_l1_corr2", "ss_zbl_agnesi_cuau"]


def imported(name: str, directory: Path) -> Path:
    path = directory / f"{name}.mlpot.model"
    if not path.is_file():
        mace = read_mace_file(FIXTURES / f"{name}.model")
        save_model(convert_mace(mace, head=(mace.config.get("heads") or [None])[0]), path)
    return path


def child_of(parent_path: Path, new_elements):
    """The fine-tuned model mlpot train builds (before any step), E0s kept."""
    parent = finetune.parent_config(str(parent_path))
    config = finetune.merge_model_config({"init_from": str(parent_path)}, parent, new_elements)
    config["atomic_energies"] = dict(parent["atomic_energies"])
    child = MACEPotential.from_config(config)
    finetune.transfer_weights(child, str(parent_path))
    return child


def old_structure(elements):
    if "C" in elements:
        atoms = molecule("CH3CH2OH")
    else:
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.symbols[1] = "Au"
    atoms.rattle(0.05, seed=3)
    return atoms


@pytest.mark.parametrize("name", BLOCKS)
def test_a_new_element_extends_every_element_dependent_tensor(name, tmp_path):
    parent_path = imported(name, tmp_path)
    parent = mlpot.load_model(parent_path)
    new = "N" if "C" in parent.config.elements else "Ag"
    child = child_of(parent_path, [new])
    assert new in child.config.elements
    rows = [child.config.elements.index(symbol) for symbol in parent.config.elements]
    parent_state, child_state = parent.state_dict(), child.state_dict()
    grown = {name for name in parent_state if parent_state[name].shape != child_state[name].shape}
    element_rows = {name for name in parent_state if finetune.has_element_rows(name)}
    assert grown - {"species_index", "atomic_numbers"} == element_rows  # rebuilt, not transferred
    for tensor in element_rows - {"atomic_energies"}:  # the E0s are refitted, not transferred
        torch.testing.assert_close(child_state[tensor][rows], parent_state[tensor], rtol=0, atol=0, msg=tensor)
    if "backbone.distance_transform.element_radii" in child_state:
        new_radius = child_state["backbone.distance_transform.element_radii"][child.config.elements.index(new)]
        assert float(new_radius) == pytest.approx(covalent_radii[atomic_numbers[new]])
    atoms = old_structure(parent.config.elements)
    before, after = evaluate(parent, [atoms]), evaluate(child, [atoms])
    np.testing.assert_allclose(after["energy"], before["energy"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(after["forces"], before["forces"], rtol=0, atol=1e-10)


def fine_tune_config(emt_files, directory, parent_path, **training):
    config = tiny_config(*emt_files, directory, max_epochs=1, **training)
    del config["training"]["lr"]  # fine-tuning has its own default
    config["model"] = {"init_from": str(parent_path)}
    return config


def run_train(config, tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    code = main(["train", str(path)])
    return code, capsys.readouterr().err


def test_fine_tuning_an_imported_model_trains_and_freezes_what_it_says(emt_files, tmp_path, capsys):
    parent_path = imported("ss_trained_emt_cuau", tmp_path)
    config = fine_tune_config(emt_files, tmp_path / "ft", parent_path, freeze_layers=1)
    code, err = run_train(config, tmp_path, capsys)
    assert code == 0, err
    parent, child = mlpot.load_model(parent_path), mlpot.load_model(tmp_path / "ft" / "final.model")
    for key in finetune.ARCHITECTURE_KEYS:
        assert getattr(child.config, key) == getattr(parent.config, key), key
    before, after = parent.state_dict(), child.state_dict()
    frozen = [name for name, _ in parent.named_parameters() if name.startswith(("backbone.embedding", "backbone.layers.0."))]
    trained = [name for name, _ in parent.named_parameters() if name not in frozen and name != "element_offsets"]
    assert any(".self_connection." in name for name in trained) and any(".product." in name for name in frozen)
    assert all(torch.equal(before[name], after[name]) for name in frozen)
    assert all(not torch.equal(before[name], after[name]) for name in trained)


@pytest.mark.parametrize("name", ["ss_nonlinear_2heads", "ss_density", "mace_plain_l0"])
def test_freezing_covers_every_block_of_the_first_layers(name, tmp_path):
    child = child_of(imported(name, tmp_path), [])
    finetune.freeze_first_layers(child, 1)
    frozen = {name for name, parameter in child.named_parameters() if not parameter.requires_grad}
    first = {name for name, _ in child.named_parameters() if name.startswith(("backbone.embedding", "backbone.layers.0."))}
    assert frozen == first
    assert any("edge_embedding" in name or "density" in name or "message_linear" in name for name in frozen)


def test_freezing_with_a_new_element_is_refused(tmp_path):
    child = child_of(imported("ss_l1_corr2", tmp_path), ["N"])
    with pytest.raises(MLPotError, match=r"'training.freeze_layers' would keep the embedding and layer weights of N \(not in"):
        finetune.freeze_first_layers(child, 1)


@pytest.mark.parametrize(
    "model,training,message",
    [
        ({"self_connection": [True, True]}, {}, r"'model.self_connection' is \[True, True\] but the model in model.init_from has \[False, True\]"),
        ({"pair_repulsion": "zbl"}, {}, r"'model.pair_repulsion' is 'zbl' but the model in model.init_from has None"),
        ({}, {"freeze_layers": 3}, r"'training.freeze_layers' is 3, but the model has 2 layers"),
        ({}, {"freeze_layers": -1}, r"'training.freeze_layers' must not be negative"),
    ],
)
def test_fine_tuning_mistakes_are_one_line(emt_files, tmp_path, capsys, model, training, message):
    parent_path = imported("ss_trained_emt_cuau", tmp_path)
    config = fine_tune_config(emt_files, tmp_path / "ft", parent_path, **training)
    config["model"].update(model)
    code, err = run_train(config, tmp_path, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and re.search(message, lines[0]), lines


def test_freezing_without_a_parent_is_one_line(emt_files, tmp_path, capsys):
    config = tiny_config(*emt_files, tmp_path / "run", freeze_layers=1)
    code, err = run_train(config, tmp_path, capsys)
    assert code == 2 and "'training.freeze_layers' keeps layers of a trained model fixed: it needs model.init_from" in err


def test_a_parent_older_than_an_option_has_its_default():
    architecture = finetune.parent_architecture({"elements": ["H"], "r_max": 4.0})
    assert architecture["r_max"] == 4.0 and architecture["self_connection"] is None and architecture["neighbour_normalization"] == "average"
    with pytest.raises(MLPotError, match=r"'model.element_messages' is \[True\] but the model in model.init_from has None"):
        finetune.merge_model_config({"init_from": "p.model", "element_messages": [True]}, {"elements": ["H"]}, ["H"])
