"""Dataset reading, labels, statistics, the rMD17 converter and `mlpot data`."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from mlpot import MLPotError
from mlpot.data import keys
from mlpot.data.dataset import LabelKeys, Labels, make_loader, read_labelled, split
from mlpot.data.extxyz import write_extxyz
from mlpot.data.rmd17 import KCAL_PER_MOL, convert_npz
from mlpot.data.statistics import average_num_neighbors, estimate_e0s, force_rms

RMD17 = Path(__file__).resolve().parents[2] / "shared" / "data" / "rmd17"
needs_rmd17 = pytest.mark.skipif(not RMD17.is_dir(), reason=f"reference data not found at {RMD17}")


def _labelled_cu(seed=0, stress=True):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=seed)
    atoms.calc = EMT()
    results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
    if stress:
        results["stress"] = atoms.get_stress()
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def test_labels_from_calc_and_info_and_missing_stress_is_masked(tmp_path):
    path = tmp_path / "mixed.xyz"
    with_stress, without_stress = _labelled_cu(0), _labelled_cu(1, stress=False)
    write(path, [with_stress, without_stress], format="extxyz")
    data = read_labelled(path)
    assert data.labels[0].stress is not None and data.labels[1].stress is None
    graphs = data.graphs(r_max=4.0)
    assert graphs[0][keys.STRESS_MASK].item() == 1.0 and graphs[1][keys.STRESS_MASK].item() == 0.0
    np.testing.assert_allclose(graphs[0][keys.FORCES].numpy(), with_stress.get_forces(), atol=1e-12)
    # Voigt stress from ASE becomes the full symmetric 3x3 tensor.
    voigt = with_stress.get_stress()
    np.testing.assert_allclose(graphs[0][keys.STRESS][0].numpy().diagonal(), voigt[:3], atol=1e-12)
    np.testing.assert_allclose(graphs[0][keys.STRESS][0, 1, 2].item(), voigt[3], atol=1e-12)
    batch = next(iter(make_loader(graphs, batch_size=2, shuffle=False)))
    assert batch[keys.STRESS].shape == (2, 3, 3) and batch[keys.STRESS_MASK].tolist() == [1.0, 0.0]


def test_custom_label_keys_and_virials(tmp_path):
    atoms = _labelled_cu()
    stress = atoms.get_stress(voigt=False)
    plain = atoms.copy()
    plain.info = {"REF_energy": atoms.get_potential_energy(), "REF_virials": -stress * atoms.get_volume(), "config_type": "bulk"}
    plain.arrays["REF_forces"] = atoms.get_forces()
    path = tmp_path / "ref.xyz"
    write_extxyz(path, [plain])
    data = read_labelled(path, LabelKeys(energy="REF_energy", forces="REF_forces", virials="REF_virials"))
    label = data.labels[0]
    assert label.energy == atoms.get_potential_energy() and label.config_type == "bulk"
    np.testing.assert_allclose(label.stress, stress, atol=1e-12)


@pytest.mark.parametrize(
    "content,message",
    [
        ("2\nProperties=species:S:1:pos:R:3 energy=1.0\nH 0 0 0\n", r"frame 0: cannot parse"),
        ("1\nenergy=1.0\nH 0 0 0\n2\nenergy=2.0\nH 0 0 0\nH 0 0\n", r"frame 1: cannot parse"),
        ("1\nenergy=1.0\nQq 0 0 0\n", r"frame 0: unknown element symbol"),
        ("1\nfoo=1.0\nH 0 0 0\n", r"frame 0: no energy under key 'energy' \(found: foo\)"),
        ("1\nenergy=nan\nH 0 0 0\n", r"frame 0: 'energy' contains NaN"),
        ("1\nenergy=1.0\nH 0 nan 0\n", r"frame 0: atom 0 \(H\) has a non-finite coordinate"),
        ("2\nenergy=1.0\nH 0 0 0\nO 0.05 0 0\n", r"frame 0: atoms 0 \(H\) and 1 \(O\) are 0.05 Å apart"),
    ],
)
def test_bad_files_name_file_frame_and_key(tmp_path, content, message):
    path = tmp_path / "bad.xyz"
    path.write_text(content)
    with pytest.raises(MLPotError, match=message) as error:
        read_labelled(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(MLPotError, match="does not exist"):
        read_labelled(tmp_path / "nope.xyz")


def test_lossless_writer_round_trips_exactly(tmp_path):
    atoms = _labelled_cu()
    info = {"energy": np.pi * 1e3, "stress": np.random.default_rng(0).normal(size=(3, 3)), "config_type": "two words"}
    arrays = {"forces": np.random.default_rng(1).normal(size=(len(atoms), 3)) / 7}
    write_extxyz(tmp_path / "x.xyz", [(atoms, info, arrays)])
    back = read(tmp_path / "x.xyz")
    assert back.get_potential_energy() == info["energy"]
    np.testing.assert_array_equal(back.get_forces(), arrays["forces"])
    np.testing.assert_array_equal(back.positions, atoms.positions)
    np.testing.assert_array_equal(back.cell.array, atoms.cell.array)
    assert back.info["config_type"] == "two words"


def test_e0s_from_isolated_atoms_and_least_squares():
    e0 = {1: -13.6, 8: -432.0, 6: -1029.0}
    structures, labels = [], []
    for formula in ["H2O", "CH4", "CO2", "H2", "CH3OH"]:
        atoms = molecule(formula)
        structures.append(atoms)
        labels.append(Labels(energy=sum(e0[z] for z in atoms.numbers) + 0.01 * len(atoms)))
    estimated = estimate_e0s(structures, labels, [1, 6, 8])
    np.testing.assert_allclose([estimated["H"], estimated["C"], estimated["O"]], [-13.59, -1028.99, -431.99], atol=1e-9)
    # An isolated-atom frame fixes its element exactly.
    structures.append(Atoms("O"))
    labels.append(Labels(energy=-432.5))
    assert estimate_e0s(structures, labels, [1, 6, 8])["O"] == -432.5


def test_neighbour_and_force_statistics():
    atoms = bulk("Cu", "fcc", a=3.6)
    assert average_num_neighbors([atoms], 3.0) == pytest.approx(12.0)
    assert force_rms([Labels(forces=np.full((2, 3), 2.0)), Labels()]) == pytest.approx(2.0)


def test_split_is_seeded_and_disjoint():
    items = list(range(100))
    train, valid = split(items, 0.1, seed=7)
    assert len(valid) == 10 and set(train).isdisjoint(valid) and sorted(train + valid) == items
    assert split(items, 0.1, seed=7) == (train, valid)
    assert split(items, 0.1, seed=8)[1] != valid


@needs_rmd17
def test_rmd17_conversion_is_exact_in_ev(tmp_path):
    source = RMD17 / "rmd17_ethanol_test_01.npz"
    target = tmp_path / "ethanol.xyz"
    assert convert_npz(source, target) == 1000
    raw = np.load(source)
    frames = read(target, ":")
    np.testing.assert_array_equal([a.get_potential_energy() for a in frames], raw["energies"] * KCAL_PER_MOL)
    np.testing.assert_array_equal(np.array([a.get_forces() for a in frames]), raw["forces"] * KCAL_PER_MOL)
    np.testing.assert_array_equal(np.array([a.positions for a in frames]), raw["coords"])
    assert KCAL_PER_MOL == 0.0433641


def _mlpot(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mlpot.cli.main", *args], capture_output=True, text=True, cwd=cwd)


@needs_rmd17
def test_cli_data_convert_and_info(tmp_path):
    target = tmp_path / "ethanol.xyz"
    result = _mlpot("data", "convert", str(RMD17 / "rmd17_ethanol_train_01.npz"), str(target))
    assert result.returncode == 0, result.stderr
    assert "wrote 1000 frames" in result.stdout
    info = _mlpot("data", "info", str(target), "--r-max", "5")
    assert info.returncode == 0, info.stderr
    assert "frames          1000" in info.stdout
    assert "elements        H C O" in info.stdout
    assert "energy 1000/1000, forces 1000/1000, stress 0/1000" in info.stdout
    assert "8.000 mean within 5 Å" in info.stdout
    raw = np.load(RMD17 / "rmd17_ethanol_train_01.npz")
    energies = raw["energies"] * KCAL_PER_MOL
    assert f"min {energies.min():.6f}  max {energies.max():.6f}" in info.stdout


def test_cli_errors_are_one_line_and_debug_shows_traceback(tmp_path):
    bad = tmp_path / "bad.xyz"
    bad.write_text("1\nenergy=1.0\nH 0 0\n")
    result = _mlpot("data", "info", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("mlpot: error:") and "frame 0" in result.stderr
    debug = _mlpot("--debug", "data", "info", str(bad))
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    assert not (tmp_path / "out.xyz").exists()
    missing = _mlpot("data", "convert", str(tmp_path / "missing.npz"), str(tmp_path / "out.xyz"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert not (tmp_path / "out.xyz").exists()


def test_graphs_carry_labels_in_requested_dtype(tmp_path):
    write(tmp_path / "cu.xyz", [_labelled_cu()], format="extxyz")
    graph = read_labelled(tmp_path / "cu.xyz").graphs(4.0, dtype=torch.float32)[0]
    assert graph[keys.ENERGY].dtype == torch.float32 and graph[keys.FORCES].shape == (4, 3)
    assert graph[keys.WEIGHT].item() == 1.0 and graph[keys.CONFIG_TYPE] == "Default"


def test_every_package_directory_is_installed():
    """pyproject lists packages explicitly (calculators/ is mapped to mlpot.calculators)."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "mlpot").rglob("__init__.py")}
    found.add("mlpot.calculators")
    assert listed == found
    assert config["package-dir"] == {"mlpot.calculators": "calculators"}


def test_calculators_import_from_the_checkout_root():
    """`python -m mlpot...` run from the repository root imports the checkout, where
    calculators/ sits beside mlpot/ rather than inside it; it must still resolve."""
    root = Path(__file__).resolve().parents[1]
    process = subprocess.run([sys.executable, "-c", "import mlpot.calculators, mlpot; print(mlpot.__file__)"],
                             capture_output=True, text=True, cwd=root)
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == str(root / "mlpot" / "__init__.py")
