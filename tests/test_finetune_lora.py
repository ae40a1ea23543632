"""LoRA adapters for fine-tuning (``training.lora``): equivariance kept, saved models merged and
plain, only the adapters train."""

import re

import numpy as np
import pytest
import torch
import yaml
from ase.build import molecule
from symmetry import assert_model_symmetric, evaluate
from test_finetune_imported import child_of, fine_tune_config, imported

import mlpot
from mlpot.cli.main import main
from mlpot.train import lora


def adapted(name, tmp_path, rank=2):
    """An imported model with adapters whose updates are random (not the zero they start at)."""
    model = child_of(imported(name, tmp_path), [])
    lora.add_adapters(model, lora.LoRASettings(rank=rank, alpha=1.0))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter_name, parameter in model.named_parameters():
            if parameter_name.endswith(".up"):
                parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    return model


def ethanol():
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=1)
    return atoms


@pytest.mark.parametrize("name", ["ss_l1_corr2", "ss_nonlinear_2heads"])
def test_adapted_models_stay_equivariant_and_merge_to_the_same_function(name, tmp_path):
    model = adapted(name, tmp_path)
    assert_model_symmetric(model, ethanol())
    plain = lora.merged(model)
    assert not lora.has_adapters(plain) and lora.has_adapters(model)
    assert set(plain.state_dict()) == set(child_of(imported(name, tmp_path), []).state_dict())
    before, after = evaluate(model, [ethanol()]), evaluate(plain, [ethanol()])
    np.testing.assert_allclose(after["energy"], before["energy"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(after["forces"], before["forces"], rtol=0, atol=1e-12)
    parent = evaluate(child_of(imported(name, tmp_path), []), [ethanol()])
    assert abs(float(parent["energy"][0] - before["energy"][0])) > 1e-6  # the updates changed the function


def test_adapters_start_at_the_parent_and_are_all_that_trains(tmp_path):
    child = child_of(imported("ss_l1_corr2", tmp_path), [])
    reference = evaluate(child, [ethanol()])
    count = lora.add_adapters(child, lora.LoRASettings(rank=3))
    trainable = [name for name, parameter in child.named_parameters() if parameter.requires_grad]
    assert trainable and all(name.endswith((".down", ".up")) for name in trainable)
    assert count == sum(parameter.numel() for parameter in child.parameters() if parameter.requires_grad)
    assert any(".product." in name for name, p in child.named_parameters() if not p.requires_grad)
    np.testing.assert_allclose(evaluate(child, [ethanol()])["energy"], reference["energy"], rtol=0, atol=1e-12)


def test_training_with_lora_saves_a_plain_model_that_differs_only_in_adapted_weights(emt_files, tmp_path, capsys):
    parent_path = imported("ss_trained_emt_cuau", tmp_path)
    config = fine_tune_config(emt_files, tmp_path / "ft", parent_path, lora={"rank": 2})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "config.yaml")]) == 0, capsys.readouterr().err
    parent, child = mlpot.load_model(parent_path), mlpot.load_model(tmp_path / "ft" / "best.model")
    before, after = parent.state_dict(), child.state_dict()
    assert set(after) == set(before)
    adapted = {f"{name}.weight" for name, module in parent.named_modules() if isinstance(module, (*lora.ADAPTED, torch.nn.Linear))}
    parameters = {name for name, _ in parent.named_parameters()}
    assert adapted <= parameters
    assert all(torch.equal(before[name], after[name]) for name in parameters - adapted)
    assert any(not torch.equal(before[name], after[name]) for name in adapted)
    assert (tmp_path / "ft" / "test_metrics.json").is_file()


@pytest.mark.parametrize(
    "model,training,message",
    [
        (None, {"lora": {"rank": 2}}, r"'training.lora' adapts the weights of a trained model: it needs model.init_from"),
        ({}, {"lora": {"rank": 2}, "freeze_layers": 1}, r"'training.lora' keeps every base weight fixed already"),
        ({}, {"lora": {"rank": 0}}, r"'training.lora.rank' must be at least 1, got 0"),
        ({}, {"lora": {"rank": 2, "alfa": 1}}, r"training.lora"),
    ],
)
def test_lora_mistakes_are_one_line(emt_files, tmp_path, capsys, model, training, message):
    config = fine_tune_config(emt_files, tmp_path / "ft", imported("ss_trained_emt_cuau", tmp_path), **training)
    if model is None:
        config["model"] = {"r_max": 4.0}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    code = main(["train", str(tmp_path / "config.yaml")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and re.search(message, lines[0]), lines
