"""Every user mistake in md, phonons and analyze is one line; the calculator never returns NaN.

Each case runs ``mlpot.cli.main.main(argv)`` in-process and checks the README's promise: exit
status 2, stderr exactly one line ``mlpot: error: ...`` naming the file, frame, option, pair or
extra, and nothing written: the listing of the working directory (where the outputs go) and of
the inputs is the same before and after. A missing optional dependency is simulated by hiding
its module (``sys.modules[name] = None`` makes its import fail).
"""

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.io import read, write

from mlpot.calculators import MLPotCalculator
from mlpot.cli.main import main
from mlpot.errors import MLPotError
from mlpot.models.io import load_model

ROOT = Path(__file__).resolve().parents[1]
MODEL = str(ROOT / "models" / "cuau-emt-demo")  # Cu, Au


def trajectory_frames(count: int, seed: int = 0):
    """A rattled 32-atom Cu crystal with velocities (ASE units) and times, as mlpot md writes them."""
    rng = np.random.default_rng(seed)
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
    frames = []
    for k in range(count):
        frame = crystal.copy()
        frame.positions += rng.normal(0.0, 0.05, frame.positions.shape)
        frame.info["time_ps"] = 0.01 * k
        frame.arrays["velocities"] = rng.normal(0.0, 0.01, frame.positions.shape)
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Read-only inputs: good structures and trajectories, and broken ones of each kind."""
    directory = tmp_path_factory.mktemp("inputs")
    crystal = trajectory_frames(1)[0]
    nan = crystal.copy()
    nan.positions[3, 1] = np.nan
    moving_nan = crystal.copy()
    moving_nan.set_velocities(np.where(np.arange(len(crystal))[:, None] == 7, np.nan, 0.01) * np.ones((len(crystal), 3)))
    overlap = crystal.copy()
    overlap.positions[5] = overlap.positions[2] + [0.05, 0.0, 0.0]
    frames = trajectory_frames(20)
    overlapping_frames = [frame.copy() for frame in frames]
    overlapping_frames[3].positions[5] = overlapping_frames[3].positions[2] + [0.05, 0.0, 0.0]
    nan_frames = [frame.copy() for frame in frames]
    nan_frames[2].positions[4, 0] = np.nan
    still = [frame.copy() for frame in frames]
    for frame in still:
        frame.arrays["velocities"] = np.zeros((len(frame), 3))
    files = {
        "crystal": [crystal], "primitive": [bulk("Cu", "fcc", a=3.6)], "nan": [nan], "velocity_nan": [moving_nan], "overlap": [overlap],
        "molecule": [Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]])],
        "flat": [Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]], cell=[[5, 0, 0], [0, 5, 0], [0, 0, 0]], pbc=True)], "ethanol": [read(ROOT / "examples" / "structures" / "ethanol.xyz")],
        "traj": frames, "traj_overlap": overlapping_frames, "traj_nan": nan_frames, "traj_still": still, "traj_one": frames[:1],
    }
    for name, content in files.items():
        write(directory / f"{name}.xyz", content, format="extxyz")
    (directory / "empty.xyz").write_text("")
    (directory / "a_directory").mkdir()
    return SimpleNamespace(directory=directory, folder=str(directory / "a_directory"), empty=str(directory / "empty.xyz"),
                           **{name: str(directory / f"{name}.xyz") for name in files})


@pytest.fixture
def paths(inputs, tmp_path, monkeypatch):
    """``inputs`` plus a working directory (the current one) with a file to write under."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("a file, not a directory")
    return SimpleNamespace(**vars(inputs), work=tmp_path)


def md(p, *options):
    """A good md command with outputs; later options override earlier ones."""
    return ["md", "--model", MODEL, "--structure", p.crystal, "--steps", "2", "--output", "traj.xyz", "--log", "md.csv", *options]


def phonons(p, *options):
    return ["phonons", "--model", MODEL, "--structure", p.primitive, "-o", "phonons", "--supercell", "2", "2", "2", *options]


def analyze(trajectory, *options):
    return ["analyze", trajectory, "-o", "analysis", *options]


def case(name, argv, expected, hide=()):
    """(id, argv from the paths, substring of the message, modules to hide)."""
    return pytest.param(argv, expected, hide, id=name)


CASES = [
    # md: outputs that cannot be written, or that would overwrite an input or each other
    case("md-output-under-a-file", lambda p: md(p, "--output", "file.txt/traj.xyz"), "--output file.txt/traj.xyz:"),
    case("md-log-under-a-file", lambda p: md(p, "--log", "file.txt/md.csv"), "file.txt is a file, not a directory"),
    case("md-dump-under-a-file", lambda p: md(p, "--uncertainty-dump", "file.txt/d.xyz", "--dump-threshold", "0.1"), "--uncertainty-dump file.txt/d.xyz:"),
    case("md-output-is-a-directory", lambda p: md(p, "--output", p.folder), "is a directory; give a file name"),
    case("md-output-is-the-structure", lambda p: md(p, "--output", p.crystal), "--structure and --output both name"),
    case("md-output-and-log-the-same", lambda p: md(p, "--log", "traj.xyz"), "--output and --log both name traj.xyz"),
    # md: values no run can use
    case("md-steps-0", lambda p: md(p, "--steps", "0"), "--steps must be at least 1, got 0"),
    case("md-timestep-0", lambda p: md(p, "--timestep", "0"), "--timestep must be a positive number of fs, got 0"),
    case("md-timestep-nan", lambda p: md(p, "--timestep", "nan"), "--timestep must be a positive number of fs, got nan"),
    case("md-interval-0", lambda p: md(p, "--interval", "0"), "--interval must be at least 1 step, got 0"),
    case("md-temperature-negative", lambda p: md(p, "--temperature", "-5"), "--temperature must be a non-negative number of K, got -5"),
    case("md-temperature-inf", lambda p: md(p, "--temperature", "inf"), "--temperature must be a non-negative number of K, got inf"),
    case("md-nvt-at-0-K", lambda p: md(p, "--ensemble", "nvt", "--temperature", "0"), "--ensemble nvt at --temperature 0: the thermostat would drain"),
    case("md-npt-at-0-K", lambda p: md(p, "--ensemble", "npt", "--temperature", "0"), "--ensemble npt at --temperature 0"),
    case("md-friction-negative", lambda p: md(p, "--ensemble", "nvt", "--friction", "-5"), "--friction must be positive (1/fs), got -5"),
    case("md-compressibility-0", lambda p: md(p, "--ensemble", "npt", "--compressibility", "0"), "--compressibility must be positive (1/bar), got 0"),
    case("md-pressure-nan", lambda p: md(p, "--ensemble", "npt", "--pressure", "nan"), "--pressure must be a number of bar, got nan"),
    case("md-seed-negative", lambda p: md(p, "--seed", "-1"), "--seed must be non-negative, got -1"),
    case("md-uncertainty-stop-negative", lambda p: md(p, "--uncertainty-stop", "-1"), "--uncertainty-stop must be positive (eV/Å), got -1"),
    case("md-skin-negative", lambda p: md(p, "--skin", "-1"), "skin must be non-negative, got -1"),
    case("md-device-unknown", lambda p: md(p, "--device", "gpu0"), "--device 'gpu0' is not a device name"),
    case("md-dump-threshold-without-a-dump-file", lambda p: md(p, "--dump-threshold", "0.1"), "--dump-threshold needs --uncertainty-dump"),
    case("md-uncertainty-stop-without-a-committee", lambda p: md(p, "--uncertainty-stop", "0.1"), "need a committee"),
    # md: structures no run can start from
    case("md-structure-missing", lambda p: md(p, "--structure", "none.xyz"), "--structure none.xyz does not exist"),
    case("md-structure-is-a-directory", lambda p: md(p, "--structure", p.folder), "is a directory, not a file"),
    case("md-structure-empty", lambda p: md(p, "--structure", p.empty), "the file is empty"),
    case("md-index-past-the-end", lambda p: md(p, "--index", "3"), "no frames found at index 3"),
    case("md-structure-nan", lambda p: md(p, "--structure", p.nan), "nan.xyz, frame 0: atom 3 (Cu) has a non-finite coordinate"),
    case("md-structure-overlapping", lambda p: md(p, "--structure", p.overlap), "overlap.xyz, frame 0: atoms 2 (Cu) and 5 (Cu) are 0.05 Å apart"),
    case("md-velocity-nan", lambda p: md(p, "--structure", p.velocity_nan), "structure: atom 7 has a non-finite velocity"),
    case("md-cell-without-volume", lambda p: md(p, "--structure", p.flat), "flat.xyz, frame 0: structure is periodic in all directions but its cell has zero"),
    case("md-npt-not-periodic", lambda p: md(p, "--structure", p.molecule, "--ensemble", "npt"), "--ensemble npt needs a structure periodic"),
    case("md-element-not-in-the-model", lambda p: md(p, "--structure", p.ethanol), "structure contains H, C, O, which the model was not trained on"),
    # phonons
    case("phonons-output-under-a-file", lambda p: phonons(p, "-o", "file.txt/phonons"), "-o file.txt/phonons: "),
    case("phonons-output-is-a-file", lambda p: phonons(p, "-o", "file.txt"), "-o file.txt is a file, not a directory"),
    case("phonons-structure-nan", lambda p: phonons(p, "--structure", p.nan), "nan.xyz, frame 0: atom 3 (Cu) has a non-finite coordinate"),
    case("phonons-structure-overlapping", lambda p: phonons(p, "--structure", p.overlap), "atoms 2 (Cu) and 5 (Cu) are 0.05 Å apart"),
    case("phonons-not-periodic", lambda p: phonons(p, "--structure", p.molecule), "molecule.xyz, frame 0: not periodic in all three directions"),
    case("phonons-cell-without-volume", lambda p: phonons(p, "--structure", p.flat), "flat.xyz, frame 0: structure is periodic in all directions"),
    case("phonons-min-length-negative", lambda p: phonons(p, "--min-length", "-10"), "--min-length must be a positive number (Å), got -10"),
    case("phonons-min-length-nan", lambda p: phonons(p, "--min-length", "nan"), "--min-length must be a positive number (Å), got nan"),
    case("phonons-supercell-0", lambda p: phonons(p, "--supercell", "0", "2", "2"), "--supercell must be three positive integers, got 0 2 2"),
    case("phonons-displacement-0", lambda p: phonons(p, "--displacement", "0"), "--displacement must be a positive number (Å), got 0"),
    case("phonons-mesh-0", lambda p: phonons(p, "--mesh", "0"), "--mesh must be a positive number (Å), got 0"),
    case("phonons-t-max-negative", lambda p: phonons(p, "--t-max", "-5"), "--t-max must be a positive number (K), got -5"),
    case("phonons-t-step-0", lambda p: phonons(p, "--t-step", "0"), "--t-step must be a positive number (K), got 0"),
    case("phonons-t-step-above-t-max", lambda p: phonons(p, "--t-max", "100", "--t-step", "200"), "--t-step 200 K is larger than --t-max 100 K"),
    case("phonons-fmax-0", lambda p: phonons(p, "--relax", "--fmax", "0"), "--fmax must be a positive number (eV/Å), got 0"),
    case("phonons-device-unknown", lambda p: phonons(p, "--device", "gpu0"), "--device 'gpu0' is not a device name"),
    case("phonons-without-phonopy", lambda p: phonons(p), "mlpot phonons: phonopy is not installed; install the 'analysis' extra", hide=("phonopy",)),
    case("phonons-without-seekpath", lambda p: phonons(p), "mlpot phonons: seekpath is not installed", hide=("seekpath",)),
    case("phonons-without-periodictable", lambda p: phonons(p), "mlpot phonons: periodictable is not installed", hide=("periodictable",)),
    # analyze
    case("analyze-output-under-a-file", lambda p: analyze(p.traj, "-o", "file.txt/analysis"), "-o file.txt/analysis: "),
    case("analyze-output-is-a-file", lambda p: analyze(p.traj, "-o", "file.txt"), "-o file.txt is a file, not a directory"),
    case("analyze-overlapping-atoms", lambda p: analyze(p.traj_overlap), "traj_overlap.xyz, frame 3: atoms 2 (Cu) and 5 (Cu) are 0.05 Å apart"),
    case("analyze-nan-coordinate", lambda p: analyze(p.traj_nan), "traj_nan.xyz, frame 2: atom 4 (Cu) has a non-finite coordinate"),
    case("analyze-one-frame-for-msd", lambda p: analyze(p.traj_one, "--observables", "msd"), "1 frame(s); VDOS, MSD and S(Q, w) need at least 4"),
    case("analyze-one-frame-for-vdos", lambda p: analyze(p.traj_one, "--observables", "vdos"), "1 frame(s); VDOS, MSD and S(Q, w) need at least 4"),
    case("analyze-vdos-of-still-atoms", lambda p: analyze(p.traj_still, "--observables", "vdos", "--window", "8"), "every velocity is zero"),
    case("analyze-trajectory-is-a-directory", lambda p: analyze(p.folder), "trajectory {folder} is a directory, not a file"),
    case("analyze-trajectory-empty", lambda p: analyze(p.empty), "empty.xyz is empty"),
    case("analyze-skip-past-the-end", lambda p: analyze(p.traj, "--skip", "100"), "holds no frames after --skip 100"),
    case("analyze-format-unknown", lambda p: analyze(p.traj, "--format", "xyzz"), "--format xyzz: not a format ASE reads"),
    case("analyze-timestep-inf", lambda p: analyze(p.traj, "--timestep", "inf"), "--timestep must be positive (fs), got inf"),
    case("analyze-q-max-inf", lambda p: analyze(p.traj, "--q-max", "inf"), "--q-max must be positive and at most 100 1/Å"),
    case("analyze-q-max-huge", lambda p: analyze(p.traj, "--q-max", "1e5"), "--q-max must be positive and at most 100 1/Å"),
    case("analyze-dq-inf", lambda p: analyze(p.traj, "--dq", "inf"), "--dq must be a positive number, got inf"),
    case("analyze-r-max-inf", lambda p: analyze(p.traj, "--r-max", "inf"), "--r-max must be a positive number (Å), got inf"),
    case("analyze-sqw-q-negative", lambda p: analyze(p.traj, "--sqw-q", "-1"), "--sqw-q -1: each |Q| must be positive"),
    case("analyze-sqw-q-above-q-max", lambda p: analyze(p.traj, "--sqw-q", "1000"), "--sqw-q 1000: each |Q| must be positive and at most --q-max 10"),
    case("analyze-msd-fit-reversed", lambda p: analyze(p.traj, "--msd-fit", "5", "1"), "--msd-fit 5 1: the start (ps) must be non-negative and before the end"),
    case("analyze-window-3", lambda p: analyze(p.traj, "--observables", "msd", "--window", "3"), "--window must be at least 4 frames, got 3"),
    case("analyze-compare-is-a-directory", lambda p: analyze(p.traj, "--compare", p.folder), "--compare file {folder} is a directory"),
    case("analyze-without-periodictable", lambda p: analyze(p.traj), "periodictable is not installed; install the 'analysis' extra", hide=("periodictable",)),
    case("analyze-without-dynasor", lambda p: analyze(p.traj), "dynasor is not installed; install the 'analysis' extra",
         hide=("dynasor", "dynasor.post_processing")),
]


def listing(*directories: Path):
    return sorted((str(path), path.stat().st_size, path.stat().st_mtime_ns) for d in directories for path in d.rglob("*"))


@pytest.mark.parametrize("argv,expected,hide", CASES)
def test_a_mistake_is_one_line_exit_2_and_writes_nothing(paths, capsys, monkeypatch, argv, expected, hide):
    for module in hide:
        monkeypatch.setitem(sys.modules, module, None)
    before = listing(paths.work, paths.directory)
    code = main(argv(paths))
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("mlpot: error: "), stderr
    assert expected.format(folder=paths.folder) in stderr, stderr
    assert listing(paths.work, paths.directory) == before


def test_a_step_that_fails_ends_md_with_one_line_and_only_good_frames(paths, capsys):
    """100 fs steps at 5000 K drive two atoms together: the calculator refuses the pair, the
    run ends naming the step, and the trajectory and log end at the last good frame."""
    code = main(md(paths, "--timestep", "100", "--temperature", "5000", "--steps", "200", "--interval", "2"))
    stderr = capsys.readouterr().err
    assert code == 2 and stderr.count("\n") == 1, stderr
    assert stderr.startswith("mlpot: error: step ") and "traj.xyz and md.csv end at step " in stderr, stderr
    failed = int(stderr.split("step ")[1].split(":")[0])
    last = int(stderr.rsplit("end at step ", 1)[1])
    frames = read("traj.xyz", ":")
    assert frames[-1].info["step"] == last < failed
    assert all(np.isfinite(frame.positions).all() and np.isfinite(frame.get_forces()).all() for frame in frames)
    assert all(np.isfinite(frame.get_potential_energy()) for frame in frames)
    rows = Path("md.csv").read_text().splitlines()[1:]
    assert int(rows[-1].split(",")[0]) == last and "nan" not in "".join(rows)


@pytest.mark.parametrize("shift", [[0.0, 0.0, 0.0], [0.05, 0.0, 0.0], [3.55, 0.0, 0.0]], ids=["on-top", "0.05-A", "through-the-boundary"])
def test_calculator_refuses_overlapping_atoms_naming_the_pair(shift):
    atoms = Atoms("CuAu", positions=[[0.0, 0.0, 0.0], shift], cell=[3.6, 6.0, 6.0], pbc=True)
    atoms.calc = MLPotCalculator(MODEL)
    distance = min(np.linalg.norm(shift), abs(3.6 - shift[0]))
    for quantity in (atoms.get_potential_energy, atoms.get_forces, atoms.get_stress):
        with pytest.raises(MLPotError, match=rf"^structure: atoms 0 \(Cu\) and 1 \(Au\) are {distance:.3g} Å apart \(overlapping"):
            quantity()


def test_calculator_refuses_a_non_finite_model_output():
    import torch

    model = load_model(MODEL)
    with torch.no_grad():
        model.element_offsets.fill_(float("nan"))  # the per-element energy offsets
    atoms = bulk("Cu", "fcc", a=3.6)
    atoms.calc = MLPotCalculator(model)
    with pytest.raises(MLPotError, match="the model returned non-finite energy and per-atom energies"):
        atoms.get_potential_energy()
    with pytest.raises(MLPotError, match="non-finite"):  # asked again, it refuses again: no NaN result is kept
        atoms.get_potential_energy()
