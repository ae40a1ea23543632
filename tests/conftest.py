"""Shared fixtures: a tiny EMT-labelled dataset and a tiny training config."""

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from mlpot.data.extxyz import write_extxyz


def emt_frames(count: int, seed: int, with_isolated: bool = False):
    """Rattled and strained 4-atom Cu/Au cells with EMT energy, forces and stress."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True)
        atoms.symbols[rng.random(4) < 0.3] = "Au"
        strain = np.eye(3) + rng.uniform(-0.02, 0.02, (3, 3))
        atoms.set_cell(atoms.cell.array @ (0.5 * (strain + strain.T)), scale_atoms=True)
        atoms.positions += rng.normal(0.0, 0.08, atoms.positions.shape)
        atoms.calc = EMT()
        info = {"energy": atoms.get_potential_energy(), "stress": atoms.get_stress(voigt=False)}
        frames.append((Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True), info, {"forces": atoms.get_forces()}))
    if with_isolated:
        for symbol in ("Cu", "Au"):
            atom = Atoms(symbol)
            atom.calc = EMT()
            frames.append((Atoms(symbol), {"energy": atom.get_potential_energy()}, {"forces": np.zeros((1, 3))}))
    return frames


@pytest.fixture(scope="session")
def emt_files(tmp_path_factory):
    """(train.xyz, test.xyz) with 24 + 6 frames."""
    directory = tmp_path_factory.mktemp("emt")
    write_extxyz(directory / "train.xyz", emt_frames(24, seed=1, with_isolated=True))
    write_extxyz(directory / "test.xyz", emt_frames(6, seed=2))
    return directory / "train.xyz", directory / "test.xyz"


def tiny_config(train, test, output, **training):
    settings = {"batch_size": 4, "max_epochs": 3, "lr": 0.01, "seed": 5, "scheduler_patience": 2, **training}
    return {
        "data": {"train": str(train), "test": str(test), "valid_fraction": 0.25},
        "model": {
            "r_max": 4.0,
            "hidden_irreps": "4x0e+4x1o",
            "max_ell": 1,
            "correlation": 2,
            "radial_mlp": [8],
            "readout_mlp": 4,
            "num_bessel": 4,
        },
        "training": settings,
        "output": {"directory": str(output)},
    }


@pytest.fixture
def write_config(tmp_path):
    def write(config, name="config.yaml"):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config))
        return path

    return write


@pytest.fixture(params=["fused", "reference"])
def kernel(request, monkeypatch):
    """Run a test once on the fused kernels and once on the reference path (models built or
    loaded inside the test, and mlpot subprocesses through MLPOT_KERNEL, pick it up)."""
    from mlpot import kernels

    if request.param == "fused":
        assert kernels.fused_available("cpu"), "mlpot's CPU kernel library was not built by the install"
    monkeypatch.setattr(kernels, "_default", request.param)
    monkeypatch.setenv("MLPOT_KERNEL", request.param)
    return request.param
