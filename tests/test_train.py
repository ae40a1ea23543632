"""`mlpot train` and `mlpot eval`: config validation, end to end, resume after SIGKILL, DDP."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml
from ase.io import read
from ase.stress import voigt_6_to_full_3x3_stress
from conftest import tiny_config

import mlpot
from mlpot import MLPotError
from mlpot.calculators import MLPotCalculator
from mlpot.train.config import apply_overrides, parse_config
from mlpot.train.tasks import task_for
from mlpot.train.trainer import build_optimizer


def mlpot_cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "mlpot.cli.main", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env)


def final_weights(directory):
    return mlpot.load_model(directory / "final.model").state_dict()


# ----------------------------------------------------------------------------- config validation
@pytest.mark.parametrize(
    "change,message",
    [
        ({"training": {"learning_rate": 0.1}}, r"unknown key 'training.learning_rate'; did you mean 'lr'\?"),
        ({"training": {"batch_size": "four"}}, r"'training.batch_size' must be an integer, got 'four'"),
        ({"training": {"lr": -1.0}}, r"'training.lr' must be positive"),
        ({"training": {"scheduler": "step"}}, r"'training.scheduler' must be one of 'plateau', 'cosine', 'cosine_time', 'none'"),
        ({"training": {"scheduler": "cosine_time"}}, r"'training.scheduler: cosine_time' anneals over the time budget: set 'training.max_time_minutes'"),
        ({"training": {"betas": [0.9]}}, r"'training.betas' must be two numbers in \[0, 1\)"),
        ({"training": {"betas": [0.9, 1.0]}}, r"'training.betas' must be two numbers in \[0, 1\)"),
        ({"data": {"train": "missing.xyz"}}, r"'data.train': file .*missing.xyz does not exist"),
        ({"data": {"keys": {"enrgy": "E"}}}, r"unknown key 'data.keys.enrgy'; did you mean 'energy'\?"),
        ({"training": {"loss": {"kl": 1.0}}}, r"'training.loss' is not used by the potential task"),
        ({"trainig": {}}, r"unknown section 'trainig'; did you mean 'training'\?"),
        ({"output": {"dir": "x"}}, r"unknown key 'output.dir'; did you mean 'directory'\?"),
    ],
)
def test_config_errors_name_the_key(emt_files, tmp_path, change, message):
    raw = tiny_config(*emt_files, tmp_path / "run")
    for section, values in change.items():
        raw.setdefault(section, {}).update(values)
    with pytest.raises(MLPotError, match=message):
        task_for(parse_config(raw, base_dir=tmp_path))


def test_optimizer_takes_the_configured_betas(emt_files, tmp_path):
    raw = tiny_config(*emt_files, tmp_path / "run")
    raw["training"].update(betas=[0.8, 0.95], amsgrad=False)
    training = parse_config(raw, base_dir=tmp_path).training
    optimizer = build_optimizer(torch.nn.Linear(2, 1), training)
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.95)
    assert optimizer.param_groups[0]["amsgrad"] is False


def test_model_key_typo_is_caught_before_reading_data(emt_files, tmp_path, write_config):
    raw = tiny_config(*emt_files, tmp_path / "run")
    raw["model"]["max_l"] = 2
    result = mlpot_cli("train", write_config(raw))
    assert result.returncode == 2
    assert "unknown key 'model.max_l'; did you mean 'max_ell'?" in result.stderr
    assert not (tmp_path / "run").exists()


def test_set_overrides_parse_yaml_values():
    raw = apply_overrides({"training": {"lr": 0.1}}, ["training.lr=0.005", "model.radial_mlp=[8, 8]", "output.directory=x"])
    assert raw == {"training": {"lr": 0.005}, "model": {"radial_mlp": [8, 8]}, "output": {"directory": "x"}}
    with pytest.raises(MLPotError, match="--set takes section.key=value"):
        apply_overrides({}, ["lr=0.1"])


# ----------------------------------------------------------------------------- end to end
def test_train_then_eval_end_to_end(emt_files, tmp_path, write_config):
    output = tmp_path / "run"
    result = mlpot_cli("train", write_config(tiny_config(*emt_files, output)), "--set", "training.max_epochs=4")
    assert result.returncode == 0, result.stderr
    for name in ("best.model", "final.model", "checkpoint.pt", "config.yaml", "log.csv", "learning_curve.png", "test_metrics.json"):
        assert (output / name).is_file(), name
    assert "test errors of best.model" in result.stdout and "forces" in result.stdout
    resolved = yaml.safe_load((output / "config.yaml").read_text())
    model_config = resolved["model"]
    assert model_config["elements"] == ["Cu", "Au"]
    assert model_config["avg_num_neighbors"] > 0 and model_config["scale"] > 0
    # E0s came from the isolated-atom frames (EMT's isolated-atom energies).
    assert model_config["atomic_energies"]["Cu"] == pytest.approx(3.51, abs=1e-6)
    log = (output / "log.csv").read_text().splitlines()
    assert len(log) == 5 and log[0].startswith("epoch,stage,lr,train_loss,valid_loss")
    # The last checkpoint keeps the raw weights (best.model holds EMA weights): evaluating the
    # test set must not leave best.model's weights in it.
    checkpoint = torch.load(output / "checkpoint.pt", weights_only=False)
    best_weights = mlpot.load_model(output / "best.model").state_dict()
    assert any(not torch.equal(checkpoint["model"][name], best_weights[name]) for name in checkpoint["ema"]["shadow"])
    # Both models load and drive the calculator.
    atoms = read(emt_files[1], index=0)
    atoms.calc = MLPotCalculator(output / "best.model")
    assert np.isfinite(atoms.get_potential_energy()) and atoms.get_stress().shape == (6,)

    predictions = tmp_path / "eval" / "pred.xyz"
    evaluated = mlpot_cli("eval", "--model", output / "best.model", "--data", emt_files[1], "--output", predictions)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "energy/atom" in evaluated.stdout and "meV/Å" in evaluated.stdout
    assert (tmp_path / "eval" / "parity_energy.png").is_file() and (tmp_path / "eval" / "parity_forces.png").is_file()
    refused = mlpot_cli("eval", "--model", output / "best.model", "--data", emt_files[1], "--lindep", "0.01")
    assert refused.returncode != 0 and "--lindep applies to Hamiltonian models only" in refused.stderr
    frames = read(predictions, ":")
    assert len(frames) == 6
    reference = read(emt_files[1], ":")
    model = mlpot.load_model(output / "best.model")
    calculator = MLPotCalculator(model)
    for frame, original in zip(frames, reference):
        assert frame.get_potential_energy() == original.get_potential_energy()  # labels kept under their keys
        original.calc = calculator
        assert frame.info["mlpot_energy"] == pytest.approx(original.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(frame.arrays["mlpot_forces"], original.get_forces(), atol=1e-9)
        expected_stress = voigt_6_to_full_3x3_stress(original.get_stress())
        np.testing.assert_allclose(frame.info["mlpot_stress"].reshape(3, 3), expected_stress, atol=1e-9)


def test_output_directory_of_another_run_is_refused(emt_files, tmp_path, write_config):
    output = tmp_path / "run"
    assert mlpot_cli("train", write_config(tiny_config(*emt_files, output, max_epochs=1))).returncode == 0
    before = (output / "final.model").read_bytes()
    other = mlpot_cli("train", write_config(tiny_config(*emt_files, output, max_epochs=1, lr=0.002), "other.yaml"))
    assert other.returncode == 2
    assert "holds another run (training.lr was 0.01, now 0.002)" in other.stderr
    assert (output / "final.model").read_bytes() == before
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    junk = mlpot_cli("train", write_config(tiny_config(*emt_files, tmp_path / "junk"), "junk.yaml"))
    assert junk.returncode == 2 and "is not empty" in junk.stderr


@pytest.mark.parametrize(
    "content,message",
    [
        ("4\nenergy=1.0\nCu 0 0 0\n", "frame 0: cannot parse"),
        ("1\nfoo=1.0\nCu 0 0 0\n", "frame 0: no energy under key 'energy'"),
        ("1\nenergy=nan\nCu 0 0 0\n", "frame 0: 'energy' contains NaN"),
    ],
)
def test_bad_training_data_is_one_clear_error(emt_files, tmp_path, write_config, content, message):
    bad = tmp_path / "bad.xyz"
    bad.write_text(content)
    raw = tiny_config(bad, emt_files[1], tmp_path / "run")
    result = mlpot_cli("train", write_config(raw))
    assert result.returncode == 2
    assert message in result.stderr and str(bad) in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_diverging_run_stops_with_advice_and_keeps_finite_weights(emt_files, tmp_path, write_config):
    """An absurd learning rate sends the loss to inf/NaN: the run stops at that step with a
    one-line error instead of training on NaN weights, and saves none of them."""
    output = tmp_path / "run"
    raw = tiny_config(*emt_files, output, lr=1e30, warmup_epochs=0, max_epochs=5)
    raw["output"]["checkpoint_every_minutes"] = 0  # a checkpoint after every step before the bad one
    result = mlpot_cli("train", write_config(raw))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "the training loss became" in result.stderr and "lower training.lr (now 1e+30)" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "no epoch finished, so there is no best.model" in result.stderr
    weights = torch.load(output / "checkpoint.pt", weights_only=False)["model"]  # from the last good step
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())


def test_cosine_time_anneals_over_the_time_budget(emt_files, tmp_path, write_config):
    """scheduler cosine_time: the lr falls step by step with the clock and reaches ~0 when the
    time budget ends, however many epochs that was; a max_epochs that would end the run first is
    warned about after the first epoch."""
    raw = tiny_config(*emt_files, tmp_path / "timed", scheduler="cosine_time", max_time_minutes=0.1, max_epochs=100000)
    result = mlpot_cli("train", write_config(raw, "timed.yaml"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "time budget of 0.1 min reached" in result.stdout
    lrs = [float(row.split(",")[2]) for row in (tmp_path / "timed" / "log.csv").read_text().splitlines()[1:]]
    assert len(lrs) >= 3 and lrs[0] > 0.005
    assert all(later < earlier for earlier, later in zip(lrs, lrs[1:]))
    assert lrs[-1] < 1e-4  # cos near pi at the last step

    raw = tiny_config(*emt_files, tmp_path / "short", scheduler="cosine_time", max_time_minutes=30, max_epochs=2)
    result = mlpot_cli("train", write_config(raw, "short.yaml"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "warning: max_epochs 2 ends this run after about 0 min" in result.stdout


def test_unknown_elements_in_test_data_are_refused(emt_files, tmp_path, write_config):
    from ase.build import molecule

    from mlpot.data.extxyz import write_extxyz

    water = molecule("H2O")
    write_extxyz(tmp_path / "water.xyz", [(water, {"energy": -1.0}, {"forces": np.zeros((3, 3))})])
    result = mlpot_cli("train", write_config(tiny_config(emt_files[0], tmp_path / "water.xyz", tmp_path / "run")))
    assert result.returncode == 2
    assert "the test data contains H, O, which the model does not know (model elements: Cu, Au)" in result.stderr
    evaluated = mlpot_cli("eval", "--model", "nope.model", "--data", emt_files[1])
    assert evaluated.returncode == 2 and "model file nope.model does not exist" in evaluated.stderr


# ----------------------------------------------------------------------------- resume
@pytest.mark.parametrize("interaction", ["mace", "attention"])
def test_resume_after_sigkill_gives_the_uninterrupted_weights(emt_files, tmp_path, write_config, interaction):
    straight = tmp_path / "straight"
    config = tiny_config(*emt_files, straight, max_epochs=6)
    config["model"]["interaction"] = interaction
    config["output"]["checkpoint_every_minutes"] = 0.0  # checkpoint after every batch as well
    assert mlpot_cli("train", write_config(config, "straight.yaml")).returncode == 0

    killed = tmp_path / "killed"
    config["output"]["directory"] = str(killed)
    path = write_config(config, "killed.yaml")
    process = subprocess.Popen([sys.executable, "-m", "mlpot.cli.main", "train", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        log = killed / "log.csv"
        if log.is_file() and len(log.read_text().splitlines()) >= 3:  # two epochs done, third under way
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "final.model").exists()
    state = torch.load(killed / "checkpoint.pt", weights_only=True)
    assert not state["finished"] and 1 <= state["epoch"] < 6
    resumed = mlpot_cli("train", path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    for name, tensor in final_weights(straight).items():
        assert torch.equal(final_weights(killed)[name], tensor), name
    log = (killed / "log.csv").read_text().splitlines()
    assert [int(line.split(",")[0]) for line in log[1:]] == list(range(6))


# ----------------------------------------------------------------------------- data parallel
@pytest.mark.slow
def test_two_processes_learn_what_one_does(emt_files, tmp_path, write_config):
    """torchrun with 2 gloo processes and the same global batch gives one process's weights."""
    common = {"max_epochs": 2, "batch_size": 4, "ema_decay": None}
    single = tiny_config(*emt_files, tmp_path / "single", **common)
    single["model"]["dtype"] = "float64"
    assert mlpot_cli("train", write_config(single, "single.yaml")).returncode == 0
    double = dict(single, output={"directory": str(tmp_path / "double")})
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "mlpot.cli.main", "train", str(write_config(double, "double.yaml")),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = final_weights(tmp_path / "single"), final_weights(tmp_path / "double")
    for name, tensor in one.items():
        torch.testing.assert_close(two[name], tensor, atol=1e-9, rtol=1e-9, msg=name)
    log_one = (tmp_path / "single" / "log.csv").read_text().splitlines()[1:]
    log_two = (tmp_path / "double" / "log.csv").read_text().splitlines()[1:]
    for a, b in zip(log_one, log_two):
        np.testing.assert_allclose(float(a.split(",")[4]), float(b.split(",")[4]), rtol=1e-9)  # valid loss


def test_demo_config_is_valid_and_its_data_ships():
    from mlpot.cli.train import demo_config_path
    from mlpot.train.config import load_config

    config = load_config(demo_config_path())
    assert os.path.isfile(config.data.train) and os.path.isfile(config.data.test)
    assert config.training.max_time_minutes <= 4


# ----------------------------------------------------------------------------- command line
CLI_PROBE = """import sys
from mlpot.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("torch loaded:", "torch" in sys.modules)
"""


@pytest.mark.parametrize("argv,stream,expected", [(["--help"], "stdout", "phonons"), (["trian"], "stderr", "invalid choice: 'trian'")])
def test_help_and_mistyped_commands_answer_without_loading_torch(argv, stream, expected):
    """torch and torch-geometric take seconds to import; `mlpot --help` and a typo need neither."""
    result = subprocess.run([sys.executable, "-c", CLI_PROBE, *argv], capture_output=True, text=True)
    assert expected in getattr(result, stream)
    assert result.stdout.splitlines()[-1] == "torch loaded: False"


def test_a_commands_help_shows_its_arguments():
    result = mlpot_cli("train", "--help")
    assert result.returncode == 0 and "--set" in result.stdout
