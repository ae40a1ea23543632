"""mlpot dynamics fit / predict: the round trip, and every bad input as one line, exit 2, nothing written.

Trajectories are made here, as mlpot md writes them (extxyz with velocities and time_ps): a water
molecule vibrating in two of its directions at two frequencies, drifting with a constant
centre-of-mass velocity. Training runs for a second or two: these tests check the command, not
how well the networks learn (tests/test_dynamics_*.py of the models do that).
"""

import os
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms, units

from mlpot.cli.main import main
from mlpot.data.extxyz import format_frame
from mlpot.dynamics.molecule import load_propagator

ROOT = Path(__file__).resolve().parents[1]
ETHANOL_MODEL = str(ROOT / "models" / "ethanol-rmd17")
SECONDS = str(1.5 / 60.0)  # --minutes of training


def water_frames(count: int, frame_fs: float = 1.0):
    """(atoms, info, arrays) of ``count`` frames ``frame_fs`` apart."""
    base = np.array([[0.0, 0.0, 0.119], [0.0, 0.763, -0.477], [0.0, -0.763, -0.477]])
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(2, 3, 3)) * 0.02  # Å
    masses = Atoms("OH2").get_masses()
    directions -= np.einsum("i,mic->mc", masses, directions)[:, None, :] / masses.sum()  # the centre moves by drift alone
    omegas = np.array([0.3, 0.7])  # rad/fs
    drift = np.array([1e-4, 0.0, 0.0])  # Å/fs
    frames = []
    for k in range(count):
        t = k * frame_fs
        positions = base + np.einsum("m,mic->ic", np.sin(omegas * t), directions) + drift * t
        velocities = np.einsum("m,mic->ic", omegas * np.cos(omegas * t), directions) + drift  # Å/fs
        atoms = Atoms("OH2", positions=positions)
        frames.append((atoms, {"step": 2 * k, "time_ps": t / 1000.0}, {"velocities": velocities / units.fs}))
    return frames


def write(path: Path, frames) -> Path:
    path.write_text("".join(format_frame(*frame) for frame in frames))
    return path


def listing(*folders: Path):
    return sorted(str(p) for folder in folders for p in folder.rglob("*"))


def test_fit_predict_round_trip(tmp_path, capsys):
    trajectory = write(tmp_path / "md.extxyz", water_frames(60))
    propagator = tmp_path / "water.pt"
    assert main(["dynamics", "fit", str(trajectory), "-o", str(propagator), "--coordinates", "cartesian",
                 "--jumps", "1:5", "--minutes", SECONDS, "--hidden", "16", "--layers", "2"]) == 0
    assert "learned frequencies (cm^-1)" in capsys.readouterr().out
    model, coordinates, details = load_propagator(propagator)
    assert coordinates.kind == "cartesian" and coordinates.num_dof == 9
    assert details["frame_time_fs"] == pytest.approx(1.0) and details["jumps"] == [1, 5]
    assert len(details["learned_wavenumbers_cm-1"]) == 9

    predicted, plot = tmp_path / "pred.extxyz", tmp_path / "error.png"
    assert main(["dynamics", "predict", str(propagator), "--from", f"{trajectory}:10", "--times", "0", "0.005:0.02:0.005",
                 "0.5", "-o", str(predicted), "--plot", str(plot)]) == 0
    assert "at the 5 times the trajectory has" in capsys.readouterr().out  # 0.5 ps lies past its end
    from ase.io import read

    frames = read(predicted, ":")
    assert [f.info["time_ps"] for f in frames] == pytest.approx([0.010, 0.015, 0.020, 0.025, 0.030, 0.510])
    assert all(f.info["predicted_from_frame"] == 10 for f in frames)
    assert ["position_rmse_A" in f.info for f in frames] == [True] * 5 + [False]
    # t = 0 is decode(encode(x)): the start frame itself, velocities included.
    start = water_frames(11)[10]
    assert np.allclose(frames[0].positions, start[0].positions, atol=1e-9)
    assert np.allclose(frames[0].arrays["velocities"], start[2]["velocities"], atol=1e-9)
    assert frames[0].info["position_rmse_A"] < 1e-9
    # The centre of mass moves on with its velocity, whatever the network does.
    masses = frames[-1].get_masses()
    centre = masses @ frames[-1].positions / masses.sum()
    assert np.allclose(centre, masses @ start[0].positions / masses.sum() + [0.5e-1, 0.0, 0.0], atol=1e-9)
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_ase_trajectory_with_momenta_and_frame_time(tmp_path):
    """An ASE .traj keeps momenta but no times: --frame-time gives them; without it, one line."""
    from ase.io.trajectory import Trajectory

    path = tmp_path / "md.traj"
    with Trajectory(str(path), "w") as writer:
        for atoms, _, arrays in water_frames(15):
            atoms.set_velocities(arrays["velocities"])
            writer.write(atoms)
    propagator = tmp_path / "water.pt"
    assert main(["dynamics", "fit", str(path), "-o", str(propagator), "--coordinates", "cartesian", "--jumps", "1:3",
                 "--frame-time", "1", "--minutes", "0.005", "--hidden", "8", "--layers", "1"]) == 0
    assert load_propagator(propagator)[2]["frame_time_fs"] == pytest.approx(1.0)
    assert main(["dynamics", "fit", str(path), "-o", str(tmp_path / "other.pt"), "--coordinates", "cartesian"]) == 2
    assert not (tmp_path / "other.pt").exists()


@pytest.mark.parametrize("method", ["euler", "ode"])
def test_baselines_fit_and_predict(tmp_path, method):
    trajectory = write(tmp_path / "md.extxyz", water_frames(30))
    propagator = tmp_path / f"{method}.pt"
    assert main(["dynamics", "fit", str(trajectory), "-o", str(propagator), "--coordinates", "cartesian", "--method", method,
                 "--jumps", "1:3", "--minutes", SECONDS, "--hidden", "16", "--layers", "2"]) == 0
    model, _, details = load_propagator(propagator)
    assert type(model).__name__ == {"euler": "EulerUpdateNetwork", "ode": "NeuralODE"}[method] and details["method"] == method
    assert main(["dynamics", "predict", str(propagator), "--from", str(trajectory), "--times", "0.002",
                 "-o", str(tmp_path / "p.extxyz")]) == 0


def test_normal_modes_of_the_shipped_ethanol_model(tmp_path):
    """--model gives the 21 normal modes of ethanol's Hessian; predict keeps the molecule's atoms."""
    from ase.io import read

    minimum = read(ROOT / "examples" / "structures" / "ethanol.xyz")
    direction = np.random.default_rng(1).normal(size=(9, 3)) * 0.002  # Å
    frames = []
    for k in range(12):
        atoms = minimum.copy()
        atoms.positions += np.sin(0.3 * k) * direction
        frames.append((atoms, {"time_ps": k * 0.001}, {"velocities": 0.3 * np.cos(0.3 * k) * direction / units.fs}))
    trajectory = write(tmp_path / "md.extxyz", frames)
    propagator = tmp_path / "ethanol.pt"
    assert main(["dynamics", "fit", str(trajectory), "-o", str(propagator), "--model", ETHANOL_MODEL, "--jumps", "1:2",
                 "--minutes", SECONDS, "--hidden", "8", "--layers", "1"]) == 0
    _, coordinates, details = load_propagator(propagator)
    assert coordinates.kind == "normal-modes" and coordinates.num_dof == 21
    assert 3500 < coordinates.wavenumbers[-1] < 3900  # the O-H stretch
    assert details["potential"].endswith("ethanol-rmd17.model")
    assert main(["dynamics", "predict", str(propagator), "--from", f"{trajectory}:-1", "--times", "0.001",
                 "-o", str(tmp_path / "p.extxyz")]) == 0
    assert read(tmp_path / "p.extxyz").get_chemical_formula() == minimum.get_chemical_formula()


# ---------------------------------------------------------------- bad input


def change_frame(frames, index: int, atoms=None, info=None, arrays=None):
    frames = list(frames)
    old = frames[index]
    frames[index] = (atoms if atoms is not None else old[0], info if info is not None else old[1],
                     arrays if arrays is not None else old[2])
    return frames


def bad_trajectories():
    """name -> (frames, words the error names)."""
    frames = water_frames(20)
    periodic = [(Atoms(f[0].symbols, f[0].positions, cell=[10, 10, 10], pbc=True), f[1], f[2]) for f in frames]
    with_cell = Atoms(frames[4][0].symbols, frames[4][0].positions, cell=[10, 10, 10])
    return {
        "too few frames": (frames[:8], ["8 frames are too few for jumps up to 10 frames", "need at least 11"]),
        "other atoms": (change_frame(frames, 3, atoms=Atoms("OHF", positions=frames[3][0].positions)), ["frame 3", "atoms differ"]),
        "other order": (change_frame(frames, 5, atoms=Atoms("H2O", positions=frames[5][0].positions)), ["frame 5", "atoms differ"]),
        "other cell": (change_frame(frames, 4, atoms=with_cell), ["frame 4", "cell differs"]),
        "periodic": (periodic, ["periodic cell"]),
        "no velocities": (change_frame(frames, 6, arrays={}), ["frame 6", "no momenta or velocities"]),
        "non-uniform step": (change_frame(frames, 7, info={"time_ps": 0.0075}), ["frame 7", "non-uniform time step"]),
        "time backwards": (change_frame(frames, 1, info={"time_ps": 0.0}), ["frame 1", "does not come after"]),
        "no time": (change_frame(frames, 2, info={"step": 4}), ["frame 2", "no time_ps"]),
    }


@pytest.mark.parametrize("case", list(bad_trajectories()))
def test_bad_trajectory_is_one_line_and_writes_nothing(tmp_path, capsys, case):
    frames, words = bad_trajectories()[case]
    trajectory = write(tmp_path / "md.extxyz", frames)
    before = listing(tmp_path)
    code = main(["dynamics", "fit", str(trajectory), "-o", str(tmp_path / "out.pt"), "--coordinates", "cartesian",
                 "--minutes", SECONDS])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and error.startswith("mlpot: error: "), error
    assert str(trajectory) in error and all(word in error for word in words), error
    assert listing(tmp_path) == before


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fitted")
    trajectory = write(folder / "md.extxyz", water_frames(20))
    propagator = folder / "water.pt"
    assert main(["dynamics", "fit", str(trajectory), "-o", str(propagator), "--coordinates", "cartesian", "--jumps", "1:3",
                 "--minutes", "0.005", "--hidden", "8", "--layers", "1"]) == 0
    return trajectory, propagator


def bad_commands(tmp: Path, trajectory: Path, propagator: Path):
    """name -> (argv, words the error names)."""
    out = str(tmp / "out")
    other = write(tmp / "ethanol.extxyz", [(Atoms("C2H6O", positions=np.random.default_rng(0).normal(size=(9, 3)) * 2),
                                            {"time_ps": 0.0}, {"velocities": np.zeros((9, 3))})])
    text = tmp / "notes.pt"
    text.write_text("not a propagator\n")
    fit = ["dynamics", "fit", str(trajectory), "--minutes", SECONDS]
    predict = ["dynamics", "predict", str(propagator), "--times", "0.001"]
    return {
        "normal modes without model": (fit + ["-o", out], ["--coordinates normal-modes needs --model"]),
        "jumps not a range": (fit + ["-o", out, "--coordinates", "cartesian", "--jumps", "a:b"], ["--jumps", "'a:b'"]),
        "jumps reversed": (fit + ["-o", out, "--coordinates", "cartesian", "--jumps", "5:2"], ["--jumps 5:2"]),
        "minutes zero": (fit + ["-o", out, "--coordinates", "cartesian", "--minutes", "0"], ["--minutes"]),
        "no hidden units": (fit + ["-o", out, "--coordinates", "cartesian", "--hidden", "0"], ["--hidden must be positive"]),
        "missing trajectory": (["dynamics", "fit", str(tmp / "none.extxyz"), "-o", out, "--coordinates", "cartesian"],
                               ["none.extxyz", "does not exist"]),
        "output is a directory": (fit + ["-o", str(tmp), "--coordinates", "cartesian"], ["-o", "is a directory"]),
        "missing model": (fit + ["-o", out, "--model", str(tmp / "none.model")], ["none.model"]),
        "not a propagator": (["dynamics", "predict", str(text), "--from", str(trajectory), "--times", "0.001", "-o", out],
                             ["notes.pt", "not a saved dynamics propagator"]),
        "frame out of range": (predict + ["--from", f"{trajectory}:40", "-o", out], ["no frame 40", "20 frame(s)"]),
        "other molecule": (predict + ["--from", str(other), "-o", out], ["ethanol.extxyz", "not those the propagator was fitted on"]),
        "bad times": (predict[:-1] + ["0.1:0.05:0.01", "--from", str(trajectory), "-o", out], ["--times", "0.1:0.05:0.01"]),
        "plot with nothing to compare": (predict[:-1] + ["1.0", "--from", str(trajectory), "-o", out, "--plot", str(tmp / "e.png")],
                                         ["--plot", "no frames at the --times"]),
    }


BAD_COMMANDS = ["normal modes without model", "jumps not a range", "jumps reversed", "minutes zero", "no hidden units", "missing trajectory",
                "output is a directory", "missing model", "not a propagator", "frame out of range", "other molecule",
                "bad times", "plot with nothing to compare"]


@pytest.mark.parametrize("case", BAD_COMMANDS)
def test_bad_command_is_one_line_and_writes_nothing(tmp_path, capsys, fitted, case):
    trajectory, propagator = fitted
    commands = bad_commands(tmp_path, trajectory, propagator)
    assert sorted(commands) == sorted(BAD_COMMANDS)
    argv, words = commands[case]
    before = listing(tmp_path, trajectory.parent)
    code = main(argv)
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and error.startswith("mlpot: error: "), error
    assert all(word in error for word in words), error
    assert listing(tmp_path, trajectory.parent) == before
