"""Every user mistake in train, eval, select, export, predict, backmap and data is one line.

Each case runs ``mlpot.cli.main.main(argv)`` in-process and checks the promise of the README:
exit status 2, stderr exactly one line ``mlpot: error: ...`` naming the file, frame, key, option
or element, and nothing written: the listing of the working directory (outputs, and the current
directory for outputs written there by default) and of the inputs is the same before and after.
"""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from ase import Atoms

from conftest import emt_frames, tiny_config
from mlpot.cli.main import main
from mlpot.data.extxyz import write_extxyz

MODELS = Path(__file__).resolve().parents[1] / "models"
POTENTIAL = str(MODELS / "cuau-emt-demo")  # Cu, Au
COMMITTEE = str(MODELS / "ethanol-rmd17")  # a committee of 2 on H, C, O
needs_openmm = pytest.mark.skipif(importlib.util.find_spec("openmm") is None, reason="needs the cg extra (OpenMM)")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, emt_files):
    """Read-only inputs: good data, a config, and files of the wrong kind."""
    directory = tmp_path_factory.mktemp("inputs")
    train, test = emt_files
    write_extxyz(directory / "pool21.xyz", [frame[0] for frame in emt_frames(21, seed=3)])
    silver = Atoms("AgCu", positions=[[0, 0, 0], [2.5, 0, 0]], cell=[6, 6, 6], pbc=True)
    write_extxyz(directory / "pool_ag.xyz", [frame[0] for frame in emt_frames(2, seed=4)] + [silver])
    overlapping = Atoms("CuAu", positions=[[0, 0, 0], [0.05, 0, 0]], cell=[5, 5, 5], pbc=True)
    write_extxyz(directory / "overlap.xyz", [(overlapping, {"energy": 1.0}, {})])
    (directory / "text.txt").write_text("not a model\njust some text\n")
    (directory / "random.bin").write_bytes(np.random.default_rng(0).bytes(2000))
    (directory / "empty.xyz").write_text("")
    (directory / "word_energy.xyz").write_text("1\nenergy=abc\nCu 0 0 0\n")
    (directory / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (directory / "a_directory").mkdir()
    good = {"nuclear_charges": np.array([1, 1]), "coords": np.array([[[0, 0, 0], [0.74, 0, 0]]] * 2, dtype=float),
            "energies": np.zeros(2), "forces": np.zeros((2, 2, 3))}
    np.savez(directory / "good.npz", **good)
    np.savez(directory / "nan.npz", **{**good, "coords": np.full((2, 2, 3), np.nan)})
    (directory / "truncated.npz").write_bytes((directory / "good.npz").read_bytes()[:300])
    return SimpleNamespace(directory=directory, train=str(train), test=str(test), **{
        name: str(directory / file) for name, file in [
            ("pool21", "pool21.xyz"), ("pool_ag", "pool_ag.xyz"), ("overlap", "overlap.xyz"), ("text", "text.txt"),
            ("random", "random.bin"), ("empty", "empty.xyz"), ("binary", "binary.yaml"), ("folder", "a_directory"),
            ("npz", "good.npz"), ("nan_npz", "nan.npz"), ("truncated_npz", "truncated.npz"),
        ]
    })


@pytest.fixture
def paths(inputs, tmp_path, monkeypatch):
    """``inputs`` plus a working directory (the current one) with a file and a directory to misuse."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("a file, not a directory")
    (tmp_path / "dir.xyz").mkdir()
    (tmp_path / "dir.pt").mkdir()
    (tmp_path / "pool.xyz").write_bytes(Path(inputs.pool21).read_bytes())
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "requested_config.yaml").write_bytes(b"\x00\xff binary")
    config = tiny_config(inputs.train, inputs.test, tmp_path / "run", max_epochs=1)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return SimpleNamespace(**vars(inputs), work=tmp_path, config=str(tmp_path / "config.yaml"),
                           under_file=str(tmp_path / "file.txt" / "out"), file=str(tmp_path / "file.txt"))


def train(p, *overrides):
    return ["train", p.config] + [word for item in overrides for word in ("--set", item)]


# (id, argv from the paths, substring of the message)
CASES = [
    # model files: text, random bytes, empty, a directory, a committee where one potential is meant
    ("eval-model-is-text", lambda p: ["eval", "--model", p.text, "--data", p.test], "is not an mlpot model file (a text file"),
    ("eval-model-is-random-bytes", lambda p: ["eval", "--model", p.random, "--data", p.test], "is not an mlpot model file (binary data"),
    ("eval-model-is-empty", lambda p: ["eval", "--model", p.empty, "--data", p.test], "is not an mlpot model file (the file is empty)"),
    ("eval-model-is-a-directory", lambda p: ["eval", "--model", p.folder, "--data", p.test], "must hold exactly one .model file (found none)"),
    ("eval-model-missing", lambda p: ["eval", "--model", "nope.model", "--data", p.test], "model file nope.model does not exist"),
    ("export-model-is-text", lambda p: ["export", "--model", p.text, "-o", "out.pt"], "is not an mlpot model file"),
    ("predict-model-is-text", lambda p: ["predict", "--model", p.text, "--structures", p.test], "is not an mlpot model file"),
    ("backmap-model-is-text", lambda p: ["backmap", "--model", p.text, "--cg", p.test, "-o", "out.xyz"], "is not an mlpot model file"),
    ("select-model-is-random-bytes", lambda p: ["select", "--model", p.random, "--pool", p.pool21, "-n", "1", "-o", "out.xyz"], "is not an mlpot model file"),
    ("train-init-from-text", lambda p: ["train", p.config, "--init-from", p.text], "is not an mlpot model file (a text file"),
    ("train-init-from-random-bytes", lambda p: ["train", p.config, "--init-from", p.random], "is not an mlpot model file"),
    ("train-init-from-committee", lambda p: ["train", p.config, "--init-from", COMMITTEE], "a committee model cannot be fine-tuned as one potential"),
    ("train-committee-parent-of-another-size", lambda p: train(p, "training.committee=3") + ["--init-from", COMMITTEE], "is a committee of 2, but training.committee is 3"),
    # outputs that cannot be written: under a file, or a directory given as a file
    ("train-output-under-a-file", lambda p: train(p, f"output.directory={p.under_file}"), "file.txt is a file, not a directory"),
    ("train-output-is-a-file", lambda p: train(p, f"output.directory={p.file}"), "output.directory"),
    ("eval-output-under-a-file", lambda p: ["eval", "--model", POTENTIAL, "--data", p.test, "--output", p.under_file + ".xyz"], "--output"),
    ("eval-output-is-a-directory", lambda p: ["eval", "--model", POTENTIAL, "--data", p.test, "--output", "dir.xyz"], "--output dir.xyz is a directory"),
    ("eval-plots-is-a-file", lambda p: ["eval", "--model", POTENTIAL, "--data", p.test, "--plots", p.file], "--plots"),
    ("select-output-under-a-file", lambda p: ["select", "--model", COMMITTEE, "--pool", p.pool21, "-n", "1", "-o", p.under_file + ".xyz"], "-o"),
    ("select-output-is-a-directory", lambda p: ["select", "--model", COMMITTEE, "--pool", p.pool21, "-n", "1", "-o", "dir.xyz"], "-o dir.xyz is a directory"),
    ("select-scores-under-a-file", lambda p: ["select", "--model", POTENTIAL, POTENTIAL, "--pool", p.pool21, "-n", "1", "-o", "out.xyz", "--scores", p.under_file + ".csv"], "--scores"),
    ("export-output-under-a-file", lambda p: ["export", "--model", POTENTIAL, "-o", p.under_file + ".pt"], "file.txt is a file"),
    ("export-output-is-a-directory", lambda p: ["export", "--model", POTENTIAL, "-o", "dir.pt"], "-o dir.pt is a directory"),
    ("predict-output-under-a-file", lambda p: ["predict", "--model", POTENTIAL, "--structures", p.test, "--output", p.under_file + ".npz"], "--output"),
    ("backmap-output-under-a-file", lambda p: ["backmap", "--model", POTENTIAL, "--cg", p.test, "-o", p.under_file + ".xyz"], "-o"),
    ("data-convert-target-under-a-file", lambda p: ["data", "convert", p.npz, p.under_file + ".xyz"], "target"),
    ("data-convert-target-is-a-directory", lambda p: ["data", "convert", p.npz, "dir.xyz"], "target dir.xyz is a directory"),
    ("data-qm-output-is-a-file", lambda p: ["data", "qm", "--structures", p.test, "-o", p.file], "-o"),
    ("eval-output-is-the-data", lambda p: ["eval", "--model", POTENTIAL, "--data", "pool.xyz", "--output", "pool.xyz"], "is the --data file"),
    ("select-output-is-the-pool", lambda p: ["select", "--model", POTENTIAL, POTENTIAL, "--pool", "pool.xyz", "-n", "1", "-o", "pool.xyz"], "is the --pool file"),
    ("select-scores-is-the-output", lambda p: ["select", "--model", COMMITTEE, "--pool", p.pool21, "-n", "1", "-o", "out.xyz", "--scores", "out.xyz"], "is the -o file"),
    ("backmap-output-is-the-input", lambda p: ["backmap", "--model", POTENTIAL, "--cg", "pool.xyz", "-o", "pool.xyz"], "is the --cg file"),
    ("train-output-holds-a-damaged-run", lambda p: train(p, "output.directory=damaged"), "requested_config.yaml is damaged"),
    ("data-md-openmm-output-is-a-file", lambda p: ["data", "md-openmm", p.file], "is a file, not a directory"),
    # configs
    ("train-config-is-binary", lambda p: ["train", p.binary], "not a YAML config (binary data"),
    ("train-config-is-a-directory", lambda p: ["train", p.folder], "is a directory, not a file"),
    ("train-config-and-demo", lambda p: ["train", p.config, "--demo"], "give a config file or --demo"),
    ("train-lr-nan", lambda p: train(p, "training.lr=.nan"), "'training.lr' must be a finite number, got nan"),
    ("train-clip-grad-infinite", lambda p: train(p, "training.clip_grad=.inf"), "'training.clip_grad' must be a finite number"),
    ("train-batch-size-0", lambda p: train(p, "training.batch_size=0"), "'training.batch_size' must be positive, got 0"),
    ("train-batch-size-negative", lambda p: train(p, "training.batch_size=-2"), "'training.batch_size' must be positive, got -2"),
    ("train-set-without-section", lambda p: train(p, "lr=3"), "--set takes section.key=value, got 'lr=3'"),
    ("train-set-empty-key", lambda p: train(p, "training..lr=3"), "--set takes section.key=value"),
    ("train-set-unparsable-value", lambda p: train(p, "training.lr=["), "--set training.lr: cannot parse value"),
    ("train-set-unknown-key", lambda p: train(p, "training.learning_rate=0.1"), "did you mean 'lr'?"),
    ("train-device-absent", lambda p: train(p, "training.device=cuda:7"), "'training.device' cuda:7"),
    ("train-device-misspelt", lambda p: train(p, "training.device=banana"), "'banana' is not a device name"),
    ("train-checkpoint-interval-negative", lambda p: train(p, "output.checkpoint_every_minutes=-1"), "must not be negative"),
    ("train-validation-takes-every-frame", lambda p: train(p, "data.valid_fraction=0.99"), "'data.valid_fraction' 0.99 holds out"),
    ("train-overlapping-atoms", lambda p: train(p, f"data.train={p.overlap}"), "frame 0: atoms 0 (Cu) and 1 (Au) are 0.05 Å apart"),
    ("train-empty-data", lambda p: train(p, f"data.train={p.empty}"), "the file is empty"),
    ("train-diverges-in-its-first-step", lambda p: train(p, "training.lr=1e30", "training.warmup_epochs=0"), "the training loss became"),
    # eval
    ("eval-batch-size-0", lambda p: ["eval", "--model", POTENTIAL, "--data", p.test, "--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    ("eval-batch-size-negative", lambda p: ["eval", "--model", POTENTIAL, "--data", p.test, "--batch-size", "-3"], "--batch-size must be at least 1, got -3"),
    ("eval-data-missing", lambda p: ["eval", "--model", POTENTIAL, "--data", "nope.xyz"], "--data nope.xyz does not exist"),
    ("eval-data-empty", lambda p: ["eval", "--model", POTENTIAL, "--data", p.empty], "the file is empty"),
    ("eval-data-is-a-directory", lambda p: ["eval", "--model", POTENTIAL, "--data", p.folder], "a_directory is a directory, not a file"),
    ("eval-data-is-random-bytes", lambda p: ["eval", "--model", POTENTIAL, "--data", p.random], "frame 0: cannot parse"),
    ("eval-element-the-model-lacks", lambda p: ["eval", "--model", POTENTIAL, "--data", p.pool_ag], "contains Ag, which the model does not know"),
    ("eval-overlapping-atoms", lambda p: ["eval", "--model", POTENTIAL, "--data", p.overlap], "are 0.05 Å apart"),
    ("eval-device-misspelt", lambda p: ["eval", "--model", POTENTIAL, "--data", p.test, "--device", "gpu"], "--device 'gpu' is not a device name"),
    # select
    ("select-element-the-committee-lacks", lambda p: ["select", "--model", POTENTIAL, POTENTIAL, "--pool", p.pool_ag, "-n", "1", "-o", "out.xyz"], "pool_ag.xyz, frame 2 contains Ag"),
    ("select-pool-of-other-elements", lambda p: ["select", "--model", COMMITTEE, "--pool", p.pool21, "-n", "1", "-o", "out.xyz"], "frame 0 contains Cu, Au, which the committee was not trained on"),
    ("select-overlapping-atoms", lambda p: ["select", "--model", POTENTIAL, POTENTIAL, "--pool", p.overlap, "-n", "1", "-o", "out.xyz"], "frame 0: atoms 0 (Cu) and 1 (Au)"),
    ("select-n-0", lambda p: ["select", "--model", COMMITTEE, "--pool", p.pool21, "-n", "0", "-o", "out.xyz"], "-n must be at least 1"),
    ("select-batch-size-0", lambda p: ["select", "--model", COMMITTEE, "--pool", p.pool21, "-n", "1", "-o", "out.xyz", "--batch-size", "0"], "--batch-size must be at least 1"),
    ("select-pool-empty", lambda p: ["select", "--model", COMMITTEE, "--pool", p.empty, "-n", "1", "-o", "out.xyz"], "the file is empty"),
    ("select-one-potential", lambda p: ["select", "--model", POTENTIAL, "--pool", p.pool21, "-n", "1", "-o", "out.xyz"], "needs a committee"),
    # export, predict, backmap
    ("export-dtype-unknown", lambda p: ["export", "--model", POTENTIAL, "-o", "out.pt", "--dtype", "float16"], "float16"),
    ("predict-potential-model", lambda p: ["predict", "--model", POTENTIAL, "--structures", p.test], "is not a Hamiltonian model"),
    ("predict-batch-size-negative", lambda p: ["predict", "--model", POTENTIAL, "--structures", p.test, "--batch-size", "-1"], "--batch-size must be at least 1"),
    ("predict-structures-missing", lambda p: ["predict", "--model", POTENTIAL, "--structures", "nope.xyz"], "--structures nope.xyz does not exist"),
    ("backmap-potential-model", lambda p: ["backmap", "--model", POTENTIAL, "--cg", p.test, "-o", "out.xyz"], "is not a backmapping model"),
    ("backmap-samples-0", lambda p: ["backmap", "--model", POTENTIAL, "--cg", p.test, "-o", "out.xyz", "--samples", "0"], "--samples must be at least 1"),
    ("backmap-batch-size-0", lambda p: ["backmap", "--model", POTENTIAL, "--cg", p.test, "-o", "out.xyz", "--batch-size", "0"], "--batch-size must be at least 1"),
    # data
    ("data-info-r-max-negative", lambda p: ["data", "info", p.train, "--r-max", "-1"], "--r-max must be a positive distance"),
    ("data-info-r-max-0", lambda p: ["data", "info", p.train, "--r-max", "0"], "--r-max must be a positive distance"),
    ("data-info-overlapping-atoms", lambda p: ["data", "info", p.overlap], "overlap.xyz, frame 0: atoms 0 (Cu) and 1 (Au) are 0.05 Å apart"),
    ("data-info-forces-key-names-a-scalar", lambda p: ["data", "info", p.train, "--forces-key", "energy"], "frame 0: 'energy' must have 3 components per atom (12), got 1"),
    ("data-info-energy-key-names-an-array", lambda p: ["data", "info", p.train, "--energy-key", "forces"], "frame 0: 'forces' must be one number per frame"),
    ("data-info-energy-is-a-word", lambda p: ["data", "info", str(p.directory / "word_energy.xyz")], "frame 0: 'energy' must be numbers, got 'abc'"),
    ("data-info-empty", lambda p: ["data", "info", p.empty], "empty.xyz: the file is empty"),
    ("data-convert-empty", lambda p: ["data", "convert", p.empty, "out.xyz"], "the file is empty"),
    ("data-convert-text", lambda p: ["data", "convert", p.text, "out.xyz"], "not an .npz archive"),
    ("data-convert-truncated", lambda p: ["data", "convert", p.truncated_npz, "out.xyz"], "not an .npz archive"),
    ("data-convert-non-finite", lambda p: ["data", "convert", p.nan_npz, "out.xyz"], "'coords' holds values that are not finite"),
    ("data-qm-workers-0", lambda p: ["data", "qm", "--structures", p.test, "-o", "qm", "--workers", "0"], "--workers must be at least 1"),
    ("data-qm-max-cycles-0", lambda p: ["data", "qm", "--structures", p.test, "-o", "qm", "--max-cycles", "0"], "--max-cycles must be at least 1"),
    ("data-qm-grid-level", lambda p: ["data", "qm", "--structures", p.test, "-o", "qm", "--grid-level", "12"], "--grid-level"),
    ("data-qm-structures-missing", lambda p: ["data", "qm", "--structures", "nope.xyz", "-o", "qm"], "--structures nope.xyz does not exist"),
    ("data-md-openmm-ns-negative", lambda p: ["data", "md-openmm", "md", "--ns", "-1"], "--ns must be positive"),
    ("data-md-openmm-threads-0", lambda p: ["data", "md-openmm", "md", "--threads", "0"], "--threads must be at least 1"),
    pytest.param("data-md-openmm-structure-is-text", lambda p: ["data", "md-openmm", "md", "--structure", p.text, "--ns", "0.0001", "--frames", "3"],
                 "not a PDB file OpenMM can read", marks=needs_openmm, id="data-md-openmm-structure-is-text"),
]


def listing(*directories: Path):
    return sorted((str(path), path.stat().st_size, path.stat().st_mtime_ns) for d in directories for path in d.rglob("*"))


@pytest.mark.parametrize("case,argv,expected", [case if hasattr(case, "values") else pytest.param(*case, id=case[0]) for case in CASES])
def test_a_mistake_is_one_line_exit_2_and_writes_nothing(paths, capsys, case, argv, expected):
    before = listing(paths.work, paths.directory)
    code = main(argv(paths))
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("mlpot: error: "), stderr
    assert expected in stderr, stderr
    assert "Please file an issue" not in stderr and "Traceback" not in stderr
    assert listing(paths.work, paths.directory) == before


def test_more_frames_asked_than_the_pool_holds_is_said_and_all_are_selected(paths, capsys):
    from ase.io import read

    code = main(["select", "--model", POTENTIAL, POTENTIAL, "--pool", paths.pool21, "-n", "100", "-o", "chosen.xyz"])
    stderr = capsys.readouterr().err
    assert code == 0
    assert stderr == f"mlpot: warning: -n 100 but {paths.pool21} holds 21 frames; selecting all 21\n"
    assert len(read("chosen.xyz", ":")) == 21


def test_a_run_that_failed_before_training_leaves_its_directory_to_the_corrected_config(paths, capsys):
    """Neither a failed setup nor a first step that diverged claims the output directory: the
    corrected config then runs there instead of being refused as another run."""
    output = paths.work / "run"
    assert main(train(paths, "training.committee=3") + ["--init-from", COMMITTEE]) == 2
    assert main(train(paths, "training.lr=1e30", "training.warmup_epochs=0")) == 2
    assert not output.exists()
    assert main(train(paths, "training.max_epochs=0")) == 0, capsys.readouterr().err
    assert (output / "final.model").is_file()


def test_a_cuda_device_the_machine_lacks_names_those_it_has(monkeypatch):
    import torch

    from mlpot.devices import check_device
    from mlpot.errors import MLPotError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert check_device("cuda:1", "--device") == torch.device("cuda:1")
    with pytest.raises(MLPotError, match=r"^--device cuda:2: this machine has 2 CUDA devices \(cuda:0 to cuda:1\)$"):
        check_device("cuda:2", "--device")
