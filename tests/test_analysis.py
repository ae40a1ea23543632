"""mlpot analyze and mlpot phonons: observables against independent references, and bad input."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write
from ase.neighborlist import neighbor_list

pytest.importorskip("dynasor")
pytest.importorskip("phonopy")

from mlpot.analysis.dynasor_bridge import FrameStream  # noqa: E402
from mlpot.analysis.phonons import PhononSettings, force_constants, frequencies_at  # noqa: E402
from mlpot.analysis.structure import PairDistributionAccumulator, reciprocal_sample  # noqa: E402
from mlpot.analysis.trajectory import Frame, TrajectorySource  # noqa: E402
from mlpot.analysis.weights import XRayWeights, neutron_weights  # noqa: E402
from mlpot.cli.main import main  # noqa: E402
from mlpot.data.geometry import closest_pair  # noqa: E402
from mlpot.md.driver import MDSettings, run_md  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
A_CU3AU = 3.70  # Å, close to EMT's Cu3Au lattice constant


def read_csv(path: Path):
    with open(path) as stream:
        rows = list(csv.reader(stream))
    return {name: np.array([float(row[k]) for row in rows[1:]]) for k, name in enumerate(rows[0])}


def gas_frames(count: int, atoms: int, length: float, seed: int):
    """Ideal-gas frames: uniform positions, an atom re-drawn where two come closer than 0.1 Å
    (mlpot analyze refuses overlapping atoms; the hard core changes S(Q) by ~1e-4)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        frame = Atoms(["Cu"] * (atoms // 2) + ["Au"] * (atoms - atoms // 2), positions=rng.uniform(0, length, (atoms, 3)),
                      cell=[length] * 3, pbc=True)
        while (pair := closest_pair(frame)) is not None:
            frame.positions[pair[1]] = rng.uniform(0, length, 3)
        frames.append(frame)
    return frames


def hard_sphere_frames(count: int, atoms: int, length: float, diameter: float, seed: int):
    """Random sequential addition of hard spheres: a liquid-like structure with a g(r) that decays to 1."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        positions = np.empty((0, 3))
        while len(positions) < atoms:
            trial = rng.uniform(0, length, 3)
            delta = positions - trial
            delta -= length * np.round(delta / length)
            if len(positions) == 0 or (delta**2).sum(axis=1).min() > diameter**2:
                positions = np.vstack([positions, trial])
        frames.append(Atoms(["Cu"] * (atoms - atoms // 4) + ["Au"] * (atoms // 4), positions=positions, cell=[length] * 3, pbc=True))
    return frames


@pytest.fixture(scope="module")
def cold_crystal(tmp_path_factory):
    """NVE MD of L1_2 Cu3Au (3x3x3 cubic cells, 108 atoms) with EMT at ~30 K, written by mlpot md's driver."""
    path = tmp_path_factory.mktemp("md") / "cold.xyz"
    atoms = bulk("Cu", "fcc", a=A_CU3AU, cubic=True).repeat(3)
    atoms.symbols[::4] = "Au"
    atoms.calc = EMT()
    run_md(atoms, MDSettings(ensemble="nve", temperature=60.0, timestep=5.0, steps=800, interval=2, seed=3), path, progress=False)
    return path


@pytest.fixture(scope="module")
def cold_analysis(cold_crystal, tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis")
    assert main(["analyze", str(cold_crystal), "-o", str(out), "--window", "400", "--sqw-q", "2.0", "3.4"]) == 0
    return out


def test_rdf_matches_an_independent_count_with_ases_neighbour_list():
    frames = gas_frames(3, 60, 9.0, seed=1)
    accumulator = PairDistributionAccumulator(frames[0].numbers, ["Cu", "Au"], r_max=4.5, dr=0.1)
    for k, atoms in enumerate(frames):
        accumulator.add(_frame(atoms, k))
    rdf = accumulator.result()
    symbols = np.array(frames[0].get_chemical_symbols())
    for a, b in [("Cu", "Cu"), ("Cu", "Au"), ("Au", "Cu"), ("Au", "Au")]:
        counts = np.zeros(45)
        for atoms in frames:
            i, j, d = neighbor_list("ijd", atoms, 4.5)  # ASE's own implementation, not matscipy's
            keep = (symbols[i] == a) & (symbols[j] == b)
            counts += np.histogram(d[keep], bins=np.linspace(0, 4.5, 46))[0]
        expected = np.cumsum(counts) / (np.sum(symbols == a) * len(frames))
        np.testing.assert_allclose(rdf.coordination[(a, b)], expected, rtol=1e-12, atol=1e-12)
        if (a, b) in rdf.g:
            shells = 4 / 3 * np.pi * (np.linspace(0.1, 4.5, 45) ** 3 - np.linspace(0, 4.4, 45) ** 3)
            n_a, n_b = np.sum(symbols == a), np.sum(symbols == b) - (a == b)
            np.testing.assert_allclose(rdf.g[(a, b)], counts * 9.0**3 / (n_a * n_b * shells * len(frames)), rtol=1e-10)


def _frame(atoms, index):
    return Frame(index, atoms.numbers.copy(), atoms.positions.copy(), atoms.cell.array.copy(), atoms.pbc.copy(), None, None)


def test_ideal_gas_has_s_of_q_one_and_dynasor_gives_the_same_through_mlpots_stream(tmp_path):
    path = tmp_path / "gas.xyz"
    write(path, gas_frames(20, 400, 18.0, seed=2), format="extxyz")
    out = tmp_path / "out"
    assert main(["analyze", str(path), "-o", str(out), "--observables", "rdf", "sq", "--q-max", "8", "--dq", "0.1"]) == 0
    sq = read_csv(out / "sq.csv")
    assert abs(np.mean(sq["S_number"]) - 1.0) < 0.03
    assert np.max(np.abs(sq["S_number"][sq["Q_1/A"] > 1.0] - 1.0)) < 0.45  # single bins: ~20 q-points x 20 frames
    assert abs(np.mean(sq["S_neutron"]) - 1.0) < 0.03 and abs(np.mean(sq["S_xray"]) - 1.0) < 0.03
    rdf = read_csv(out / "rdf.csv")
    assert abs(np.mean(rdf["g_total"][rdf["r_A"] > 2.0]) - 1.0) < 0.02

    # dynasor's own Trajectory on the same file gives the same S(Q)
    import dynasor

    source = TrajectorySource(path)
    first = source.first_frame()
    stream = FrameStream(source.frames(), first, ["Cu", "Au"])
    q_points = dynasor.get_spherical_qpoints(first.cell, q_max=3.0, q_min=0.1)
    ours = dynasor.compute_static_structure_factors(stream, q_points, logging_interval=0)
    theirs = dynasor.compute_static_structure_factors(
        dynasor.Trajectory(str(path), trajectory_format="ase", atomic_indices="read_from_trajectory"), q_points, logging_interval=0)
    np.testing.assert_allclose(ours.Sq, theirs.Sq, rtol=1e-10)
    np.testing.assert_allclose(ours.Sq_Au_Cu, theirs.Sq_Au_Cu, rtol=1e-10, atol=1e-12)


def test_direct_sum_and_g_of_r_transform_agree_for_a_disordered_structure(tmp_path):
    path = tmp_path / "spheres.xyz"
    write(path, hard_sphere_frames(12, 300, 20.0, 2.4, seed=3), format="extxyz")
    out = tmp_path / "out"
    # every one of the box's ~35,000 vectors up to 8 1/Å: the box's exact S(Q), without the noise of a subset
    assert main(["analyze", str(path), "-o", str(out), "--observables", "rdf", "sq", "--q-max", "8", "--dq", "0.1", "--q-points", "40000"]) == 0
    direct, transform = read_csv(out / "sq.csv"), read_csv(out / "sq_from_gr.csv")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sq"]["q_points"] == summary["sq"]["lattice_vectors_up_to_q_max"] // 2  # one of each +q, -q
    valid = direct["Q_1/A"] > summary["sq"]["from_gr_reliable_above_1/A"]
    for column in ("S_number", "S_neutron", "S_xray", "S_Cu-Au"):
        interpolated = np.interp(direct["Q_1/A"][valid], transform["Q_1/A"], transform[column])
        assert np.mean(np.abs(interpolated - direct[column][valid])) < 0.04, column
    peak = direct["Q_1/A"][np.argmax(direct["S_number"])]
    assert abs(peak - transform["Q_1/A"][np.argmax(transform["S_number"])]) < 0.2


def test_crystal_s_of_q_peaks_at_its_bragg_reflections(cold_analysis):
    sq = read_csv(cold_analysis / "sq.csv")
    summary = json.loads((cold_analysis / "summary.json").read_text())
    a = (summary["rdf"]["number_density_1/A3"] / 4) ** (-1 / 3)  # fcc: 4 atoms per cubic cell
    allowed = [2 * np.pi / a * np.sqrt(h * h + k * k + l * l) for h in range(6) for k in range(6) for l in range(6)
               if (h % 2 == k % 2 == l % 2) and (h, k, l) != (0, 0, 0)]
    strong = sq["Q_1/A"][sq["S_number"] > 3.0]
    assert len(strong) >= 4
    for q in strong:  # every strong bin is an fcc reflection ...
        assert min(abs(q - g) for g in allowed) < 0.06, q
    for g in sorted(set(np.round(allowed, 8)))[:2]:  # ... and (111), (200) are strong
        assert np.max(sq["S_number"][np.abs(sq["Q_1/A"] - g) < 0.06]) > 3.0, g
    assert summary["sq"]["box_smallest_q_1/A"] == pytest.approx(2 * np.pi / (3 * A_CU3AU), rel=1e-6)


def rattled_fcc(frames: int, sigma: float, seed: int):
    """256-atom fcc copper (4x4x4 cubic cells, a = 3.6 Å), every atom displaced by N(0, sigma^2) per component."""
    rng = np.random.default_rng(seed)
    base = bulk("Cu", "fcc", a=3.6, cubic=True) * (4, 4, 4)
    result = []
    for _ in range(frames):
        frame = base.copy()
        frame.positions += rng.normal(0.0, sigma, frame.positions.shape)
        result.append(frame)
    return result


def test_crystal_s_of_q_keeps_every_bragg_shell_at_the_full_lattice_average(tmp_path):
    """Default settings on a 256-atom fcc cell: every fcc reflection up to the reported q_max is a
    peak, and the six lowest have the height of the average over every lattice vector of their
    bin (computed here by brute force), the same when frames and atoms come in another order."""
    frames = rattled_fcc(3, 0.05, seed=7)
    runs = []
    for name, ordered in (("forward", frames), ("shuffled", [f[np.random.default_rng(8).permutation(len(f))] for f in frames[::-1]])):
        path = tmp_path / f"{name}.xyz"
        write(path, ordered, format="extxyz")
        assert main(["analyze", str(path), "-o", str(tmp_path / name), "--observables", "sq"]) == 0
        runs.append(read_csv(tmp_path / name / "sq.csv"))
    sq, other = runs
    np.testing.assert_allclose(other["S_number"], sq["S_number"], rtol=1e-9)
    summary = json.loads((tmp_path / "forward" / "summary.json").read_text())["sq"]
    q_max, dq, length = summary["direct_sum_q_range_1/A"][1], 0.05, 14.4
    shells = sorted({h * h + k * k + l * l for h in range(8) for k in range(8) for l in range(8) if h % 2 == k % 2 == l % 2} - {0})
    bragg = [2 * np.pi / 3.6 * np.sqrt(n) for n in shells if 2 * np.pi / 3.6 * np.sqrt(n) <= q_max]
    assert len(bragg) == 11  # (111) ... (440) at 9.87 1/Å
    for g in bragg:  # (111), (200), (220), (311), (222), (400), (331), ...: each a peak
        row = np.argmin(np.abs(sq["Q_1/A"] - g))
        assert abs(sq["Q_1/A"][row] - g) < dq and sq["S_number"][row] > 2.0, (g, sq["S_number"][row])
    # brute force: |rho(q)|^2 / N over every vector of the box in the bin that holds each of the six lowest reflections
    m = np.arange(-24, 25)
    indices = np.stack(np.meshgrid(m, m, m, indexing="ij"), axis=-1).reshape(-1, 3)
    norms = 2 * np.pi / length * np.linalg.norm(indices, axis=1)
    for g in bragg[:6]:
        in_bin = indices[np.floor(norms / dq) == np.floor(g / dq)] * 2 * np.pi / length  # [n, 3]
        full = np.mean([np.abs(np.exp(1j * f.positions @ in_bin.T).sum(axis=0)) ** 2 / len(f) for f in frames])
        row = np.argmin(np.abs(sq["Q_1/A"] - g))
        assert sq["S_number"][row] == pytest.approx(full, rel=0.02), (g, len(in_bin))
    assert summary["every_shell_kept"] and summary["q_points"] <= 4000


def test_reciprocal_sample_stays_within_its_budget_in_a_large_box():
    """A 40 Å cubic box has ~3,000 |q| shells up to 8 1/Å: with 500 q-points they merge into slices,
    every bin keeps vectors and the weights of each bin add up to its number of lattice vectors."""
    cell = np.diag([40.0, 40.0, 40.0])
    sample = reciprocal_sample(cell, q_max=8.0, dq=0.1, max_points=500)
    assert len(sample.q_points) <= 500 and not sample.every_shell_kept and 0 < sample.stratum_width < 0.1
    m = np.arange(-51, 52)
    indices = np.stack(np.meshgrid(m, m, m, indexing="ij"), axis=-1).reshape(-1, 3)
    norms = 2 * np.pi / 40.0 * np.linalg.norm(indices, axis=1)
    inside = norms[(norms > 0) & (norms <= 8.0)]
    counts = np.bincount(np.floor(inside / 0.1).astype(int)) / 2  # one of each +q, -q
    weights = np.bincount(sample.bin, weights=sample.weight, minlength=len(counts))
    np.testing.assert_allclose(weights, counts, rtol=1e-9)
    full = reciprocal_sample(cell, q_max=8.0, dq=0.1, max_points=10**6)
    assert full.every_shell_kept and len(full.q_points) == full.lattice_vectors == len(inside) // 2


@pytest.mark.parametrize("options, expected", [(["--q-points", "20"], "--q-points 20 is fewer than the"),
                                               (["--q-max", "0.3"], "--q-max 0.3 1/Å is below the shortest reciprocal-lattice vector")])
def test_s_of_q_settings_the_box_cannot_meet_are_one_line(tmp_path, capsys, options, expected):
    path = tmp_path / "gas.xyz"
    write(path, gas_frames(2, 20, 10.0, seed=9), format="extxyz")
    assert main(["analyze", str(path), "-o", str(tmp_path / "out"), "--observables", "sq", *options]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and expected in error, error


def test_g_of_r_transform_does_not_ring_below_the_first_peak(tmp_path):
    """A strongly rattled fcc cell: g(r) has not decayed to 1 at R = 7.2 Å, so the unwindowed
    transform rings between 2 pi / R and the first peak; the Lorch-windowed one follows the
    direct sum there."""
    path = tmp_path / "rattled.xyz"
    write(path, rattled_fcc(4, 0.25, seed=1), format="extxyz")
    out = tmp_path / "out"
    assert main(["analyze", str(path), "-o", str(out), "--observables", "rdf", "sq", "--q-max", "8", "--dq", "0.1"]) == 0
    direct, transform, rdf = read_csv(out / "sq.csv"), read_csv(out / "sq_from_gr.csv"), read_csv(out / "rdf.csv")
    summary = json.loads((out / "summary.json").read_text())
    r_max, density = summary["rdf"]["r_max_A"], summary["rdf"]["number_density_1/A3"]
    assert summary["sq"]["from_gr_reliable_above_1/A"] == pytest.approx(2 * np.pi / r_max)
    q_111 = 2 * np.pi / 3.6 * np.sqrt(3)
    low = (direct["Q_1/A"] >= 2 * np.pi / r_max) & (direct["Q_1/A"] <= 0.6 * q_111)
    assert low.sum() >= 5
    r, dr = rdf["r_A"], rdf["r_A"][1] - rdf["r_A"][0]
    unwindowed = 1 + 4 * np.pi * density * dr * np.sinc(np.outer(direct["Q_1/A"][low], r) / np.pi) @ (r**2 * (rdf["g_total"] - 1))
    windowed = np.interp(direct["Q_1/A"][low], transform["Q_1/A"], transform["S_number"])
    error_windowed = np.max(np.abs(windowed - direct["S_number"][low]))
    error_unwindowed = np.max(np.abs(unwindowed - direct["S_number"][low]))
    assert error_windowed < 0.1 and error_windowed < error_unwindowed / 4, (error_windowed, error_unwindowed)


def test_weights_match_tabulated_values():
    neutron = neutron_weights(["H", "O", "Cu", "Ni"])
    # NIST neutron scattering lengths (Sears 1992), fm, and total bound cross sections, barn
    for symbol, b, sigma in (("H", -3.7390, 82.02), ("O", 5.803, 4.232), ("Cu", 7.718, 8.03), ("Ni", 10.3, 18.5)):
        assert neutron.coherent[symbol] == pytest.approx(b, rel=2e-3)
        assert neutron.cross_section[symbol] == pytest.approx(sigma, rel=2e-3)
    xray = XRayWeights(["H", "O", "Cu", "Au"])
    for symbol, z in (("H", 1), ("O", 8), ("Cu", 29), ("Au", 79)):
        assert xray(symbol, np.array(0.0)) == pytest.approx(z, rel=2e-3)  # f0(0) = number of electrons
    from periodictable import cromermann

    q = np.array([2.0, 2 * np.pi, 10.0])
    for symbol in ("O", "Cu", "Au"):
        np.testing.assert_allclose(xray(symbol, q), cromermann.fxrayatq(symbol, q), rtol=5e-3)


def test_vdos_of_a_cold_crystal_matches_its_phonons(cold_analysis):
    """The MD box samples the phonons at q = (i, j, k) / 3; with every mode holding k_B T the mass-
    weighted VACF is sum_k cos(2 pi f_k t), processed here exactly as mlpot processes the MD one."""
    from dynasor.tools.acfs import psd_from_acf

    vdos = read_csv(cold_analysis / "vdos.csv")
    unit = bulk("Cu", "fcc", a=A_CU3AU, cubic=True)
    unit.symbols[0] = "Au"
    phonon = force_constants(unit, EMT(), PhononSettings(supercell=(3, 3, 3)))
    q = np.array([(i, j, k) for i in range(3) for j in range(3) for k in range(3)]) / 3.0
    modes = frequencies_at(phonon, q).reshape(-1)  # [324] THz
    lags, dt_fs = 400, 10.0
    t_ps = np.arange(lags) * dt_fs / 1000
    acf = np.cos(2 * np.pi * np.outer(t_ps, modes)).sum(axis=1) * np.cos(0.5 * np.pi * np.arange(lags) / lags) ** 2
    omega, reference = psd_from_acf(acf, dt=dt_fs)
    frequency = omega / (2 * np.pi) * 1000
    np.testing.assert_allclose(frequency, vdos["frequency_THz"], rtol=1e-6)
    reference = np.clip(reference, 0, None)
    # each mode's energy is one random draw in a single NVE run, so intensities scatter; positions do not
    peaks_md, peaks_phonon = local_maxima(frequency, vdos["g_total_1/THz"]), local_maxima(frequency, reference)
    assert len(peaks_md) >= 3
    for peak in peaks_md:
        assert min(abs(peak - p) / p for p in peaks_phonon) < 0.04, (peak, peaks_phonon)
    step = frequency[1] - frequency[0]
    assert np.sum(vdos["g_total_1/THz"]) * step == pytest.approx(3.0, rel=1e-6)
    summary = json.loads((cold_analysis / "summary.json").read_text())
    # one band (a metal's phonons, 0-8 THz) holding every mode; its weighted mean is the mean mode frequency
    assert summary["vdos"]["main_band_fraction_of_modes"] == pytest.approx(1.0, abs=0.01)
    assert summary["vdos"]["main_band_centre_THz"] == pytest.approx(modes.mean(), rel=0.05)
    assert set(summary["observables"]) == {"rdf", "sq", "vdos", "msd", "sqw"}
    assert all(abs(d) < 1e-3 for d in summary["msd"]["diffusion_A2/ps"].values())  # a crystal does not diffuse
    sqw = read_csv(cold_analysis / "sqw.csv")
    assert set(sqw["Q_1/A"]) == {2.0, 3.4} and np.all(np.isfinite(sqw["S_coh_1/meV"]))


def local_maxima(x: np.ndarray, y: np.ndarray, fraction: float = 0.2) -> np.ndarray:
    """x of the local maxima of y above ``fraction`` of its highest value."""
    inner = (y[1:-1] > y[:-2]) & (y[1:-1] >= y[2:]) & (y[1:-1] > fraction * y.max())
    return x[1:-1][inner]


def test_vdos_main_band_is_the_heaviest_not_the_tallest_line(tmp_path):
    """A small cell's spectrum: 8 of 32 atoms vibrate at one frequency, 2 THz (a tall line with a
    quarter of the modes), the other 24 at 72 frequencies spread over 5-7 THz (a band with three
    quarters of the modes, each line lower). summary.json names the band, not the line."""
    rng = np.random.default_rng(6)
    frequency = np.concatenate([np.full(24, 2.0), np.linspace(5.0, 7.0, 72)]).reshape(32, 3)  # THz per atom and component
    phase = rng.uniform(0.0, 2 * np.pi, (32, 3))
    lattice = np.array([(i, j, k) for i in range(4) for j in range(4) for k in range(2)], dtype=float) * 4.0
    frames = []
    for step in range(800):
        frame = Atoms(["Ar"] * 32, positions=lattice, cell=[16.0, 16.0, 8.0], pbc=True)
        frame.info["time_ps"] = step * 0.01
        frame.arrays["velocities"] = 0.01 * np.cos(2 * np.pi * frequency * step * 0.01 + phase)
        frames.append(frame)
    path = tmp_path / "lines.xyz"
    write(path, frames, format="extxyz")
    out = tmp_path / "out"
    assert main(["analyze", str(path), "-o", str(out), "--observables", "vdos", "--window", "800"]) == 0
    vdos = read_csv(out / "vdos.csv")
    assert vdos["frequency_THz"][np.argmax(vdos["g_total_1/THz"])] == pytest.approx(2.0, abs=0.1)  # the tallest line
    summary = json.loads((out / "summary.json").read_text())["vdos"]
    assert summary["main_band_centre_THz"] == pytest.approx(6.0, abs=0.1)
    assert summary["main_band_fraction_of_modes"] == pytest.approx(0.75, abs=0.02)
    low, high = summary["main_band_THz"]
    assert 4.0 < low < 5.0 and 7.0 < high < 8.0
    assert [band["centre_THz"] for band in summary["bands"]] == pytest.approx([6.0, 2.0], abs=0.1)


def test_phonopy_frequencies_match_ases_finite_difference_phonons(tmp_path):
    from ase.phonons import Phonons

    atoms = bulk("Cu", "fcc", a=3.6)
    phonon = force_constants(atoms, EMT(), PhononSettings(supercell=(4, 4, 4)))
    reference = Phonons(atoms, EMT(), supercell=(4, 4, 4), delta=0.01, name=str(tmp_path / "phonon"))
    reference.run()
    reference.read(acoustic=True)
    q = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.5], [0.3, 0.1, 0.2], [0.25, 0.0, 0.0]])
    ase_thz = np.sort(reference.band_structure(q), axis=1) / 4.135667696e-3  # eV -> THz
    np.testing.assert_allclose(np.sort(frequencies_at(phonon, q), axis=1), ase_thz, rtol=5e-3, atol=2e-2)


def test_diffusion_coefficient_of_a_random_walk(tmp_path):
    """Brownian steps with D = 0.5 Å^2/ps, wrapped into the box: the MSD slope gives D back."""
    rng = np.random.default_rng(4)
    d, dt_ps, length = 0.5, 0.01, 12.0
    positions = rng.uniform(0, length, (200, 3))
    previous = positions
    frames = []
    for step in range(600):
        frame = Atoms(["Ar"] * 100 + ["Kr"] * 100, positions=positions % length, cell=[length] * 3, pbc=True)
        while (pair := closest_pair(frame)) is not None:  # re-draw a step onto another atom: analyze refuses overlaps
            positions[pair[1]] = previous[pair[1]] + rng.normal(0.0, np.sqrt(2 * d * dt_ps), 3)
            frame.positions[pair[1]] = positions[pair[1]] % length
        frame.info["time_ps"] = step * dt_ps
        frames.append(frame)
        previous = positions
        positions = positions + rng.normal(0.0, np.sqrt(2 * d * dt_ps), positions.shape)
    path = tmp_path / "walk.xyz"
    write(path, frames, format="extxyz")
    out = tmp_path / "out"
    assert main(["analyze", str(path), "-o", str(out), "--observables", "msd", "--window", "100"]) == 0
    summary = json.loads((out / "summary.json").read_text())["msd"]
    for symbol in ("Ar", "Kr"):
        estimate, error = summary["diffusion_A2/ps"][symbol], summary["error_A2/ps"][symbol]
        assert 0 < error < 0.1 * d and abs(estimate - d) < 4 * error + 0.02, (estimate, error)
    assert "6 blocks" in summary["error_method"]


def test_lammps_dump_with_types(tmp_path):
    lines = []
    for step in (0, 100):
        lines += ["ITEM: TIMESTEP", str(step), "ITEM: NUMBER OF ATOMS", "4", "ITEM: BOX BOUNDS pp pp pp",
                  "0 3.7", "0 3.7", "0 3.7", "ITEM: ATOMS id type x y z vx vy vz"]
        lines += [f"{i + 1} {1 if i else 2} {x} {y} {z} 0.01 0 0" for i, (x, y, z) in
                  enumerate([(0, 0, 0), (0, 1.85, 1.85), (1.85, 0, 1.85), (1.85, 1.85, 0)])]
    path = tmp_path / "dump.lammpstrj"
    path.write_text("\n".join(lines) + "\n")
    frames = list(TrajectorySource(path, format="lammps-dump-text", timestep_fs=2.0, types=["Cu", "Au"]).frames())
    assert [f.time_fs for f in frames] == [0.0, 200.0]
    assert list(frames[0].numbers) == [79, 29, 29, 29]
    np.testing.assert_allclose(frames[0].velocities[:, 0], 0.01 / 1000, rtol=1e-9)  # metal units, Å/ps -> Å/fs
    assert main(["analyze", str(path), "--format", "lammps-dump-text", "-o", str(tmp_path / "out")]) == 2


def test_phonons_command_with_the_demo_potential(tmp_path):
    import phonopy

    structure = tmp_path / "cu.xyz"
    write(structure, bulk("Cu", "fcc", a=3.6))
    out = tmp_path / "out"
    assert main(["phonons", "--model", str(ROOT / "models" / "cuau-emt-demo"), "--structure", str(structure), "-o", str(out),
                 "--relax", "--supercell", "4", "4", "4", "--mesh", "20"]) == 0
    for name in ("phonopy_params.yaml", "band.yaml", "total_dos.dat", "projected_dos.dat", "thermal_properties.yaml",
                 "phonon_dos.csv", "thermal.csv", "band_structure.png", "phonon_dos.png", "thermal.png", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["band_path"][0] == "Γ" and 6.0 < summary["highest_band_frequency_THz"] < 10.0
    assert abs(summary["lowest_band_frequency_THz"]) < 0.05
    loaded = phonopy.load(out / "phonopy_params.yaml")
    q, frequencies = band_point(out, 50)  # phonopy's own files describe the same phonons
    np.testing.assert_allclose(frequencies_at(loaded, np.array([q]))[0], frequencies, rtol=1e-5, atol=1e-5)
    dos = read_csv(out / "phonon_dos.csv")
    assert np.trapezoid(dos["dos_total_1/THz"], dos["frequency_THz"]) == pytest.approx(3.0, rel=0.02)


def band_point(out, index):
    import yaml

    point = yaml.safe_load((out / "band.yaml").read_text())["phonon"][index]
    return point["q-position"], [band["frequency"] for band in point["band"]]


@pytest.fixture()
def frames_text():
    frames = gas_frames(6, 8, 6.0, seed=5)
    for k, frame in enumerate(frames):
        frame.info["time_ps"] = 0.01 * k
        frame.arrays["velocities"] = np.zeros((8, 3))
    return frames


@pytest.mark.parametrize("case", ["no-velocities", "unequal-steps", "non-periodic", "unknown-element", "no-symbol", "empty", "truncated"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, frames_text, case):
    path = tmp_path / "traj.xyz"
    options = []
    if case == "no-velocities":
        for frame in frames_text:
            del frame.arrays["velocities"]
        options = ["--observables", "vdos"]
        expected = "frame 0: no velocities"
    elif case == "unequal-steps":
        frames_text[4].info["time_ps"] = 0.05
        expected = "frame 4: unequal time steps"
    elif case == "non-periodic":
        frames_text[3].pbc = False
        expected = "frame 3: not periodic"
    elif case == "unknown-element":
        for frame in frames_text:
            frame.symbols[0] = "Og"
        expected = "element Og"
    if case in ("no-velocities", "unequal-steps", "non-periodic", "unknown-element"):
        write(path, frames_text, format="extxyz")
    else:
        write(path, frames_text, format="extxyz")
        text = path.read_text()
        if case == "no-symbol":
            path.write_text(text.replace("\nCu ", "\nXx ", 1))
            expected = "unknown element symbol 'Xx'"
        elif case == "empty":
            path.write_text("")
            expected = "is empty"
        else:
            path.write_text(text[: len(text) - 30])
            expected = "cannot read frame"
    out = tmp_path / "out"
    status = main(["analyze", str(path), "-o", str(out), *options])
    error = capsys.readouterr().err.strip()
    assert status == 2
    assert len(error.splitlines()) == 1 and error.startswith("mlpot: error:") and expected in error, error
    assert str(path) in error or "element Og" in error
    assert not out.exists() or not any(out.iterdir())
