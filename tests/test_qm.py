"""PySCF side of the Hamiltonian task (the 'qm' extra): AO conventions checked by rotating
molecules through PySCF, the resumable generator, and a tiny train -> eval -> predict run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import torch
import yaml
from ase.build import molecule
from ase.io import write
from symmetry import random_o3

pytest.importorskip("pyscf", reason="PySCF (the 'qm' extra) is not installed")

import mlpot  # noqa: E402
from mlpot import MLPotError  # noqa: E402
from mlpot.qm.ao_order import ao_wigner_d  # noqa: E402
from mlpot.qm.dataset import frame_path, read_qm_dataset  # noqa: E402
from mlpot.qm.generate import generate  # noqa: E402
from mlpot.qm.layout import OrbitalLayout  # noqa: E402
from mlpot.qm.pyscf_runner import QMSettings, element_shells, run_frame  # noqa: E402
from mlpot.train.tasks.hamiltonian import evaluate_file  # noqa: E402


def mlpot_cli(*args, cwd=None):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "mlpot.cli.main", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env)


def distorted_waters(count, seed, sigma=0.05):
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        atoms = molecule("H2O")
        atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape)
        frames.append(atoms)
    return frames


@pytest.mark.parametrize("method,atol", [("hf", 1e-9), ("pbe", 2e-5)])
def test_pyscf_matrices_rotate_with_block_diagonal_wigner_matrices(method, atol):
    """H(R x) = D(R) H(x) D(R)^T and the same for S, D built from e3nn's Wigner matrices in
    the AO order of mlpot.qm.ao_order; def2-SVP has d shells. PBE's integration grid is not
    rotation invariant, hence its looser tolerance."""
    settings = QMSettings(method=method, basis="def2-svp")
    atoms = distorted_waters(1, seed=0)[0]
    layout = OrbitalLayout({z: tuple(element_shells(z, "def2-svp")) for z in (1, 8)})
    reference = run_frame(atoms.numbers, atoms.positions, settings)
    for seed, reflect in [(0, False), (1, True)]:
        rotation = random_o3(seed, reflect)
        moved = run_frame(atoms.numbers, atoms.positions @ rotation.numpy().T + np.array([0.5, -0.2, 1.0]), settings)
        d = torch.block_diag(*[ao_wigner_d(layout.shells[int(z)], rotation) for z in atoms.numbers]).numpy()
        np.testing.assert_allclose(moved["overlap"], d @ reference["overlap"] @ d.T, atol=1e-12, rtol=0)
        np.testing.assert_allclose(moved["hamiltonian"], d @ reference["hamiltonian"] @ d.T, atol=atol, rtol=0)
        assert np.abs(moved["hamiltonian"] - reference["hamiltonian"]).max() > 0.01  # the rotation did move something


@pytest.mark.filterwarnings("ignore:Basis may be available in basis-set-exchange")
def test_generator_writes_resumes_and_refuses_other_jobs(tmp_path):
    write(tmp_path / "water.xyz", distorted_waters(3, seed=1))
    output = tmp_path / "data"
    result = mlpot_cli("data", "qm", "--structures", tmp_path / "water.xyz", "--method", "hf", "--basis", "sto-3g", "-o", output, "--workers", "2")
    assert result.returncode == 0, result.stderr
    dataset = read_qm_dataset(output)
    assert dataset.metadata["shells"] == {"H": [0], "O": [0, 0, 1]} and dataset.metadata["pyscf_version"]
    for frame in dataset.frames:
        np.testing.assert_allclose(frame.orbital_energies, scipy.linalg.eigh(frame.hamiltonian, frame.overlap, eigvals_only=True), atol=1e-10)
        np.testing.assert_array_equal(frame.hamiltonian, frame.hamiltonian.T)
        assert frame.num_electrons == 10 and frame.energy < -74.0
    # An interrupted run: one frame missing and the dataset not marked complete.
    metadata = json.loads((output / "metadata.json").read_text())
    metadata["complete"] = False
    (output / "metadata.json").write_text(json.dumps(metadata))
    frame_path(output, 1).unlink()
    with pytest.raises(MLPotError, match=r"unfinished \(2 of 3 frames\); rerun"):
        read_qm_dataset(output)
    untouched = frame_path(output, 0).stat().st_mtime_ns
    generate(tmp_path / "water.xyz", output, QMSettings("hf", "sto-3g"), workers=1, progress=False)
    assert frame_path(output, 0).stat().st_mtime_ns == untouched
    resumed = read_qm_dataset(output)
    np.testing.assert_allclose(resumed.frames[1].hamiltonian, dataset.frames[1].hamiltonian, atol=1e-8)
    with pytest.raises(MLPotError, match=r"holds another dataset \('settings' was"):
        generate(tmp_path / "water.xyz", output, QMSettings("hf", "6-31g"), workers=1, progress=False)
    with pytest.raises(MLPotError, match=r"--basis 'def2-nonsense' is not a basis set PySCF knows"):
        generate(tmp_path / "water.xyz", tmp_path / "other", QMSettings("hf", "def2-nonsense"), progress=False)


def test_training_lowers_the_hamiltonian_error_by_orders_of_magnitude(tmp_path, write_config):
    """PBE/STO-3G water: a tiny model trained for ~400 steps (about 150x lower H error on
    held-out geometries than at initialisation), then mlpot eval and mlpot predict on them."""
    write(tmp_path / "train.xyz", distorted_waters(24, seed=2))
    write(tmp_path / "test.xyz", distorted_waters(4, seed=3))
    for name in ("train", "test"):
        generate(tmp_path / f"{name}.xyz", tmp_path / name, QMSettings("pbe", "sto-3g"), progress=False)
    config = {
        "data": {"train": str(tmp_path / "train"), "test": str(tmp_path / "test"), "valid_fraction": 0.2},
        "model": {"task": "hamiltonian", "hidden_irreps": "8x0e+8x1o", "max_ell": 1, "block_channels": 8, "radial_mlp": [16], "r_max": 3.0},
        "training": {"batch_size": 2, "max_epochs": 40, "lr": 0.02, "scheduler": "cosine", "seed": 1},
        "output": {"directory": str(tmp_path / "run")},
    }
    result = mlpot_cli("train", write_config(config))
    assert result.returncode == 0, result.stderr
    trained = mlpot.load_model(tmp_path / "run" / "best.model")
    resolved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["model"]
    untrained = mlpot.build_model(resolved).eval()

    def h_mae(model):
        table = evaluate_file(model, str(tmp_path / "test"), None, tmp_path / "plots")
        return float(next(line for line in table.splitlines() if line.startswith("H ")).split()[1]), table

    before, _ = h_mae(untrained)
    after, table = h_mae(trained)
    assert after < before / 100, table
    assert "occupied |cos psi|" in table and (tmp_path / "plots" / "parity_hamiltonian.png").is_file()
    evaluation = mlpot_cli("eval", "--model", tmp_path / "run" / "best.model", "--data", tmp_path / "test", "--plots", tmp_path / "plots")
    assert evaluation.returncode == 0, evaluation.stderr
    assert "occupied orbital energies" in evaluation.stdout
    # lindep 0.4 drops the smallest of STO-3G water's S eigen-directions (~0.35): the predicted
    # orbitals change, the H errors do not, and the table says which orbitals it compared.
    truncated = mlpot_cli("eval", "--model", tmp_path / "run" / "best.model", "--data", tmp_path / "test", "--plots", tmp_path / "plots", "--lindep", "0.4")
    assert truncated.returncode == 0, truncated.stderr
    assert "predicted orbitals with lindep 0.4" in truncated.stdout

    def row(run, name):
        return next(line for line in run.stdout.splitlines() if line.startswith(name))

    assert row(evaluation, "H ") == row(truncated, "H ")
    assert row(evaluation, "occupied orbital energies") != row(truncated, "occupied orbital energies")
    predicted = mlpot_cli("predict", "--model", tmp_path / "run" / "best.model", "--structures", tmp_path / "test.xyz", "--output", tmp_path / "p.npz")
    assert predicted.returncode == 0, predicted.stderr
    gaps = np.load(tmp_path / "p.npz")["gap"]
    reference = [frame.orbital_energies[5] - frame.orbital_energies[4] for frame in read_qm_dataset(tmp_path / "test").frames]
    np.testing.assert_allclose(gaps, reference, atol=0.01)  # Eh; the gap is ~0.2 Eh
    refused = mlpot_cli("predict", "--model", tmp_path / "run" / "best.model", "--structures", tmp_path / "test.xyz", "--lindep", "2")
    assert refused.returncode != 0 and "--lindep must be in [0, 1)" in refused.stderr
