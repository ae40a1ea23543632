"""Reading mace-torch model files (mlpot.importers.mace_file) and `mlpot import mace`'s handling of bad input.

The fixtures in tests/fixtures/mace/ were written by mace-torch itself (make_fixtures.py, run in its own
virtual environment); NAME.reference.json holds what mace read from each model: its
extract_config_mace_model output and a digest of every state-dict entry. The numerical match of the
converted models is tested in test_mace_numerics.py.
"""

import hashlib
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ase.build import molecule

import mlpot
from mlpot.calculators import MLPotCalculator
from mlpot.cli.main import main
from mlpot.errors import MLPotError
from mlpot.importers.mace_file import _plain, _RecordUnpickler, read_mace_file

FIXTURES = Path(__file__).parent / "fixtures" / "mace"
REFERENCES = sorted(FIXTURES.glob("*.reference.json"))


def fixture_name(reference: Path) -> str:
    return reference.name.split(".")[0]


def digest(tensor: torch.Tensor) -> dict:
    return {
        "shape": list(tensor.shape),
        "dtype": str(tensor.dtype).removeprefix("torch."),
        "sha256": hashlib.sha256(tensor.contiguous().numpy().tobytes()).hexdigest(),
    }


def test_every_fixture_has_a_reference():
    models = {path.stem for path in FIXTURES.glob("*.model") if not path.stem.startswith("bad_")}
    assert len(REFERENCES) >= 8 and models == {fixture_name(reference) for reference in REFERENCES}


@pytest.mark.parametrize("reference", REFERENCES, ids=fixture_name)
def test_reader_gives_mace_state_dict_and_config(reference):
    expected = json.loads(reference.read_text())
    mace = read_mace_file(FIXTURES / f"{fixture_name(reference)}.model")
    assert mace.model_class == expected["model_class"]
    assert list(mace.state_dict) == list(expected["state_dict"])  # same keys, same order
    assert {key: digest(tensor) for key, tensor in mace.state_dict.items()} == expected["state_dict"]
    config = {key: value for key, value in mace.config.items() if key != "interaction_blocks"}
    mace_config = dict(expected["config"])
    mace_config["gate"] = "None" if mace_config["gate"] is None else mace_config["gate"]  # gate_dict's key
    assert config == mace_config
    assert mace.heads == expected["heads"]
    assert len(mace.interaction_blocks) == mace.config["num_interactions"]


def archive_with_pickle(path: Path, payload: bytes) -> Path:
    """A torch-style zip archive whose data.pkl is ``payload``."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", "little")
    return path


class RunsCode:
    """Unpickling this with pickle.load would create ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_reader_runs_no_code_from_the_file(tmp_path):
    marker = tmp_path / "marker"
    source = archive_with_pickle(tmp_path / "evil.model", pickle.dumps(RunsCode(marker), protocol=2))
    with pytest.raises(MLPotError, match="evil.model is not a mace-torch model file"):
        read_mace_file(source)
    assert not marker.exists()


def test_reader_never_imports_the_classes_it_names(tmp_path):
    """A pickle naming a module that would run code on import: it stays a name."""
    payload = b"\x80\x02cthis_module_does_not_exist\nSomething\n)\x81}b."  # GLOBAL, NEWOBJ, BUILD {}
    source = archive_with_pickle(tmp_path / "named.model", payload)
    with pytest.raises(MLPotError, match="named.model is not a mace-torch model file .*this_module_does_not_exist"):
        read_mace_file(source)


def test_a_mace_class_without_a_mace_model_inside_is_one_line(tmp_path):
    state = pickle.dumps({"_parameters": {}, "_buffers": {}, "_modules": {}}, protocol=2)[2:-1]
    payload = b"\x80\x02cmace.modules.models\nScaleShiftMACE\n)\x81" + state + b"b."  # NEWOBJ, BUILD
    source = archive_with_pickle(tmp_path / "hollow.model", payload)
    with pytest.raises(MLPotError, match="hollow.model is not a complete mace-torch model .* missing or malformed"):
        read_mace_file(source)


@pytest.mark.parametrize("value", [np.float64(7.3), np.int64(5), np.arange(6.0).reshape(2, 3),
                                   np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))],
                         ids=["float64", "int64", "array", "fortran float32 array"])
def test_numpy_values_are_read_as_plain_values(value):
    """mace's attributes can be numpy values (avg_num_neighbors, E0s): read without numpy's unpickling."""
    record = _RecordUnpickler(pickle.dumps({"x": value}, protocol=2), None, "").load()["x"]
    assert _plain(record) == value.tolist()


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """ss_l1_corr2 imported with the CLI: (its path, what it printed)."""
    output = tmp_path_factory.mktemp("imported") / "ss_l1_corr2.model"
    return output, main(["import", "mace", str(FIXTURES / "ss_l1_corr2.model"), "-o", str(output)])


def test_import_writes_a_loadable_model(imported):
    output, status = imported
    assert status == 0
    model = mlpot.load_model(output)
    assert model.metadata["source_file"] == "ss_l1_corr2.model"
    assert next(model.parameters()).dtype == torch.float64


def test_an_element_the_imported_model_lacks_is_one_line(imported):
    atoms = molecule("NH3")  # the model knows H, C, O
    atoms.calc = MLPotCalculator(mlpot.load_model(imported[0]))
    with pytest.raises(MLPotError, match=r"\bN\b"):
        atoms.get_potential_energy()


def test_import_summary_names_elements_cutoff_blocks_and_e0s(tmp_path, capsys):
    output = tmp_path / "out.model"
    assert main(["import", "mace", str(FIXTURES / "ss_3heads_corr3.model"), "-o", str(output), "--head", "pbe",
                 "--dtype", "float32"]) == 0
    printed = capsys.readouterr().out
    for part in ("elements H C O", "r_max 4 Å", "RealAgnosticResidualInteractionBlock", "kept pbe",
                 "E0s from the mace file", "float32"):
        assert part in printed
    assert next(mlpot.load_model(output).parameters()).dtype == torch.float32


def bad_inputs(tmp_path: Path, imported_model: Path):
    """(arguments after `mlpot import mace`, text the one error line must contain)."""
    text = tmp_path / "notes.model"
    text.write_text("this is not a model\n")
    whole = (FIXTURES / "ss_l1_corr2.model").read_bytes()
    truncated = tmp_path / "truncated.model"
    truncated.write_bytes(whole[: len(whole) // 2])
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    return {
        "text file": ([str(text)], "notes.model is not a mace-torch model file"),
        "mlpot model": ([str(imported_model)], "is not a mace-torch model file (it holds a dict"),
        "truncated": ([str(truncated)], "truncated.model is truncated or damaged"),
        "unsupported block": ([str(FIXTURES / "bad_att_block.model")], "RealAgnosticAttResidualInteractionBlock"),
        "charge/spin embedding": ([str(FIXTURES / "bad_charge_spin_embedding.model")], "charge/spin embeddings"),
        "missing head": ([str(FIXTURES / "ss_3heads_corr3.model"), "--head", "nope"], "nope"),
        "missing file": ([str(tmp_path / "absent.model")], "absent.model does not exist"),
        "unwritable output": ([str(FIXTURES / "ss_l1_corr2.model"), "-o", str(blocker / "out.model")], "a_file is a file"),
    }


CASES = ["text file", "mlpot model", "truncated", "unsupported block", "charge/spin embedding", "missing head",
         "missing file", "unwritable output"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, imported, capsys):
    arguments, message = bad_inputs(tmp_path, imported[0])[case]
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    if "-o" not in arguments:
        arguments = arguments + ["-o", str(output_dir / "out.model")]
    before = sorted(path.name for path in tmp_path.rglob("*"))
    assert main(["import", "mace", *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("mlpot: error: ") and error.count("\n") == 1, error
    assert message in error
    assert sorted(path.name for path in tmp_path.rglob("*")) == before  # nothing written, no temporary left
