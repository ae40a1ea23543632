"""Backmapping: mappings, metrics, blocks, the VAE's symmetry and exact beads, training end to end.

Tests that need OpenMM or MDAnalysisTests (the ``cg`` extra) skip, saying so, where those are
not installed.
"""

import contextlib
import io
import subprocess

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule as ase_molecule
from symmetry import assert_block_equivariant, random_o3

import mlpot
from mlpot import MLPotError
from mlpot.cg import metrics
from mlpot.cg.data import cg_inputs
from mlpot.cg.mapping import alpha_carbon_mapping, bead_positions, bead_weights, girvan_newman_mapping, read_mapping_file
from mlpot.cg.molecule import Molecule, backbone_dihedrals, consensus_bonds, read_trajectory
from mlpot.cli.main import main
from mlpot.config import default_dtype
from mlpot.data import keys
from mlpot.data.extxyz import write_extxyz
from mlpot.nn.irreps import FeatureIrreps
from mlpot.nn.norm import EquivariantLayerNorm
from mlpot.nn.pooling import MeanPooling
from mlpot.nn.vector import VectorReadout

TINY = {
    "hidden_irreps": "8x0e+8x1o",
    "max_ell": 1,
    "correlation": 2,
    "radial_mlp": [8],
    "latent_dim": 4,
    "readout_mlp": 16,
    "num_bessel": 4,
}


def mlpot_cli(*args) -> subprocess.CompletedProcess:
    """The mlpot command run in this process (no interpreter start-up per call)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(arg) for arg in args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def butane():
    """trans-butane (C4H10) and its bonds."""
    atoms = ase_molecule("trans-butane")
    return atoms, consensus_bonds(atoms.numbers, atoms.positions[None])


def butane_model(bead_position="centroid", dtype="float64", **changes):
    atoms, bonds = butane()
    bead_of_atom = girvan_newman_mapping(len(atoms), bonds, 3)
    config = {"task": "backmapping", "atomic_numbers": atoms.numbers.tolist(), "bead_of_atom": bead_of_atom, "bonds": bonds,
              "bead_position": bead_position, "dtype": dtype, "cg_r_max": 6.0, **TINY, **changes}
    torch.manual_seed(0)
    return mlpot.build_model(config), atoms


def cg_frames(model, atoms, count=3, seed=0):
    rng = np.random.default_rng(seed)
    trajectory = atoms.positions[None] + rng.normal(0.0, 0.1, (count, len(atoms), 3))
    return trajectory, model.map_to_beads(trajectory)


# ----------------------------------------------------------------------------- mappings
def test_girvan_newman_splits_butane_into_symmetric_halves():
    atoms, bonds = butane()
    assert len(bonds) == 13  # 3 C-C and 10 C-H
    beads = np.array(girvan_newman_mapping(len(atoms), bonds, 2))
    carbons = np.nonzero(atoms.numbers == 6)[0]
    for bead in (0, 1):
        members = np.nonzero(beads == bead)[0]
        assert len(members) == 7 and len(set(members) & set(carbons)) == 2
    bonded_carbons = {tuple(sorted(b)) for b in bonds if atoms.numbers[b[0]] == atoms.numbers[b[1]] == 6}
    crossing = [b for b in bonded_carbons if beads[b[0]] != beads[b[1]]]
    assert len(crossing) == 1  # only the central C-C bond is cut
    with pytest.raises(MLPotError, match="cannot split 14 atoms"):
        girvan_newman_mapping(len(atoms), bonds, 15)


def test_capped_alanine_mapping_and_centroid_baseline():
    pytest.importorskip("openmm", reason="OpenMM is in the cg extra")
    pytest.importorskip("MDAnalysisTests", reason="capped alanine comes from MDAnalysisTests (the cg extra)")
    from mlpot.cg.md_openmm import capped_alanine

    topology, positions = capped_alanine()
    names = [atom.name for atom in topology.atoms()]
    numbers = np.array([atom.element.atomic_number for atom in topology.atoms()])
    bonds = consensus_bonds(numbers, positions[None])
    assert sorted(tuple(b) for b in bonds) == sorted(tuple(sorted((a.index, b.index))) for a, b in topology.bonds())
    three = girvan_newman_mapping(len(numbers), bonds, 3)
    assert three == [0] * 8 + [1] * 6 + [2] * 8  # ACE + N-H | CA, HA, methyl | C=O + NME
    assert [names[i] for i in range(8, 14)] == ["CA", "HA", "CB", "HB1", "HB2", "HB3"]
    six = girvan_newman_mapping(len(numbers), bonds, 6)
    assert six == [0] * 4 + [1] * 4 + [2] * 2 + [3] * 4 + [4] * 4 + [5] * 4
    molecule = Molecule(numbers.tolist(), names, [a.residue.name for a in topology.atoms()], [int(a.residue.id) for a in topology.atoms()])
    assert backbone_dihedrals(molecule) == [("phi ALA2", [4, 6, 8, 14]), ("psi ALA2", [6, 8, 14, 16])]
    cg = bead_positions(positions[None], six, bead_weights(six, molecule, "centroid"))
    assert metrics.rmsd(metrics.centroid_baseline(cg, six), positions[None]) == pytest.approx(1.0, abs=0.15)


def test_alpha_carbon_mapping_groups_residues_and_caps():
    residues = [("ACE", ["CH3", "C", "O"]), ("ALA", ["N", "CA", "C", "O"]), ("GLY", ["N", "CA", "C", "O"]), ("NME", ["N", "CH3"])]
    names, resnames, resids, numbers = [], [], [], []
    for resid, (resname, atoms) in enumerate(residues, start=1):
        for name in atoms:
            names.append(name), resnames.append(resname), resids.append(resid), numbers.append({"C": 6, "N": 7, "O": 8}[name[0]])
    molecule = Molecule(numbers, names, resnames, resids)
    assert alpha_carbon_mapping(molecule) == [0] * 7 + [1] * 6
    weights = bead_weights(alpha_carbon_mapping(molecule), molecule, "alpha_carbon")
    assert weights.tolist() == [float(name == "CA") for name in names]
    with pytest.raises(MLPotError, match="needs atom and residue names"):
        alpha_carbon_mapping(Molecule(numbers))


def test_mapping_file(tmp_path):
    path = tmp_path / "map.txt"
    path.write_text("# bead of each atom\n5 5 7\n7 9  # last\n")
    assert read_mapping_file(str(path), 5) == [0, 0, 1, 1, 2]
    with pytest.raises(MLPotError, match="4 bead indices for a molecule of 5 atoms"):
        path.write_text("1 1 2 2")
        read_mapping_file(str(path), 5)


# ----------------------------------------------------------------------------- metrics
def test_metrics_on_known_cases():
    atoms, _ = butane()
    numbers = atoms.numbers
    frames = np.stack([atoms.positions, atoms.positions + 0.01])
    assert metrics.graph_edit_ratio(numbers, frames, frames) == 0.0
    assert metrics.valid_ratio(numbers, frames, frames) == 1.0
    moved = frames.copy()
    hydrogen = int(np.nonzero(numbers == 1)[0][0])
    moved[:, hydrogen] += 5.0  # one C-H bond lost out of 13
    assert metrics.graph_edit_ratio(numbers, moved, frames) == pytest.approx(1 / 13)
    assert metrics.valid_ratio(numbers, moved, frames) == 1.0  # heavy atoms untouched
    carbon = int(np.nonzero(numbers == 6)[0][0])
    moved[1, carbon] += 5.0
    assert metrics.valid_ratio(numbers, moved, frames) == 0.5
    samples = np.stack([frames, frames + np.array([0.0, 0.0, 0.3])], axis=1)  # [F, 2, n, 3]
    assert metrics.diversity(samples) == pytest.approx(0.3)
    assert metrics.rmsd(frames + np.array([0.3, 0.4, 0.0]), frames) == pytest.approx(0.5)
    stretched = frames.copy()
    stretched[:, 1] = frames[:, 0] + 1.1 * (frames[:, 1] - frames[:, 0])  # bond 0-1 10 % longer
    length = np.linalg.norm(frames[0, 1] - frames[0, 0])
    assert metrics.bond_length_error(stretched, frames, [[0, 1]]) == pytest.approx(0.1 * length)
    positions = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    assert metrics.dihedral_angles(positions, [[0, 1, 2, 3]])[0] == pytest.approx(-90.0)
    angles = np.random.default_rng(0).uniform(-180, 180, (500, 2))
    assert metrics.jensen_shannon_distance(angles, angles) == pytest.approx(0.0, abs=1e-12)
    assert metrics.jensen_shannon_distance(angles * 0.1, angles * 0.1 + 90.0) == pytest.approx(1.0)


def test_linear_projection_baseline_is_exact_on_linear_data():
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(7, 3))
    matrix /= matrix.sum(axis=1, keepdims=True)  # rows sum to 1: translation-equivariant
    cg = rng.normal(size=(40, 3, 3))
    atoms = np.einsum("ab,fbk->fak", matrix, cg)
    fitted = metrics.LinearProjection(cg, atoms)
    np.testing.assert_allclose(fitted(cg + 2.0), atoms + 2.0, atol=1e-10)


# ----------------------------------------------------------------------------- blocks
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pooling_and_layer_norm_are_equivariant(dtype):
    torch.manual_seed(0)
    x = torch.randn(10, 9, 4, dtype=dtype)
    group = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 3, 3])
    assert_block_equivariant(MeanPooling(), [x], [2], 2, extra=[group, 4])
    assert_block_equivariant(EquivariantLayerNorm(FeatureIrreps(4, 2)).to(dtype), [x], [2], 2)
    pooled = MeanPooling()(x, group, 4)
    torch.testing.assert_close(pooled[1], x[2:5].mean(dim=0))


@pytest.mark.parametrize("chiral", [False, True])
def test_vector_readout_rotates_and_chirality_breaks_reflections(chiral):
    with default_dtype("float64"):
        torch.manual_seed(0)
        readout = VectorReadout(channels=3, scalars=5, hidden=8, chiral=chiral)
        vectors = torch.randn(6, 3, 3)
        vectors[:, 1] = 0.0  # every vector in one plane, as for three beads
        scalars = torch.randn(6, 5)
        to_cartesian = readout.to_cartesian
        out = readout(vectors, scalars)
        for seed, reflect in [(0, False), (1, True)]:
            matrix = random_o3(seed, reflect)
            component_matrix = to_cartesian.T @ matrix @ to_cartesian  # the O(3) element on components
            moved = readout(torch.einsum("ij,mjc->mic", component_matrix, vectors), scalars)
            expected = out @ matrix.T
            if reflect and chiral:
                assert not torch.allclose(moved, expected, atol=1e-6)
            else:
                torch.testing.assert_close(moved, expected, atol=1e-10, rtol=0)
        plane_normal = to_cartesian[:, 1]  # the Cartesian direction of the zeroed component
        assert (out @ plane_normal).abs().max() > 1e-3 if chiral else (out @ plane_normal).abs().max() < 1e-12


# ----------------------------------------------------------------------------- the model
@pytest.mark.parametrize("interaction", ["mace", "attention"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_samples_and_reconstructions_rotate_and_translate_with_the_cg_input(dtype, interaction):
    model, atoms = butane_model(dtype=dtype, interaction=interaction, attention={"heads": 2})
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    atol = 1e-4 if dtype == "float32" else 1e-10
    trajectory, cg = cg_frames(model, atoms)
    inputs = cg_inputs(cg, model.cg_r_max, torch_dtype)
    torch.manual_seed(7)
    samples = model(inputs, mode="sample")[keys.BACKMAPPED_POSITIONS].detach()
    shift = torch.tensor([0.3, -1.7, 2.9], dtype=torch_dtype)
    for seed in (0, 1, 2):
        rotation = random_o3(seed, reflect=False).to(torch_dtype)
        moved = cg_inputs(cg @ rotation.numpy().T.astype(cg.dtype) + shift.numpy(), model.cg_r_max, torch_dtype)
        torch.manual_seed(7)
        moved_samples = model(moved, mode="sample")[keys.BACKMAPPED_POSITIONS].detach()
        torch.testing.assert_close(moved_samples, samples @ rotation.T + shift, atol=atol, rtol=0)
    from mlpot.cg.evaluation import reconstruct

    recon = reconstruct(model, trajectory)
    rotation = random_o3(3, reflect=False).numpy()
    moved = reconstruct(model, trajectory @ rotation.T + 1.5)
    np.testing.assert_allclose(moved, recon @ rotation.T + 1.5, atol=atol)


@pytest.mark.parametrize("bead_position", ["centroid", "mass"])
def test_bead_positions_are_reproduced_exactly(bead_position):
    model, atoms = butane_model(bead_position=bead_position)
    _, cg = cg_frames(model, atoms, count=4)
    torch.manual_seed(3)
    decoded = model(cg_inputs(cg, model.cg_r_max, torch.float64), mode="sample")[keys.BACKMAPPED_POSITIONS]
    decoded = decoded.detach().numpy().reshape(4, len(atoms), 3)
    assert np.abs(decoded - atoms.positions).max() > 0.05  # not trivially the input
    np.testing.assert_allclose(model.map_to_beads(decoded), cg, atol=1e-12, rtol=0)


def test_model_file_round_trip(tmp_path):
    model, atoms = butane_model()
    mlpot.save_model(model, tmp_path / "bm.model")
    loaded = mlpot.load_model(tmp_path / "bm.model")
    _, cg = cg_frames(model, atoms)
    inputs = cg_inputs(cg, model.cg_r_max, torch.float64)
    results = []
    for m in (model, loaded):
        torch.manual_seed(1)
        results.append(m(inputs, mode="sample")[keys.BACKMAPPED_POSITIONS].detach())
    torch.testing.assert_close(results[0], results[1], atol=0, rtol=0)
    assert loaded.bonds.tolist() == model.config.bonds and loaded.config.bead_of_atom == model.config.bead_of_atom


def test_torchscript_gives_the_eager_numbers():
    model, atoms = butane_model()
    scripted = torch.jit.script(model)
    _, cg = cg_frames(model, atoms)
    inputs = cg_inputs(cg, model.cg_r_max, torch.float64)
    results = []
    for m in (model, scripted):
        torch.manual_seed(2)
        results.append(m(inputs, "sample")[keys.BACKMAPPED_POSITIONS].detach())
    torch.testing.assert_close(results[0], results[1], atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"hidden_irreps": "8x0e"}, "needs l = 1 channels"),
        ({"bead_of_atom": [0, 2]}, "must use every bead index"),
        ({"bonds": [[0, 5]]}, r"entry \[0, 5\] must be 2 atom indices below 2"),
        ({"bead_position": "alpha_carbon"}, "exactly one atom named CA"),
    ],
)
def test_model_config_errors(change, message):
    config = {"task": "backmapping", "atomic_numbers": [6, 6], "bead_of_atom": [0, 1], **change}
    with pytest.raises(MLPotError, match=message):
        mlpot.build_model(config)


# ----------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def ala2_data(tmp_path_factory):
    """A short capped-alanine OpenMM trajectory split 70/10/20 by `mlpot data md-openmm`."""
    pytest.importorskip("openmm", reason="OpenMM is in the cg extra")
    pytest.importorskip("MDAnalysisTests", reason="capped alanine comes from MDAnalysisTests (the cg extra)")
    directory = tmp_path_factory.mktemp("ala2")
    result = mlpot_cli("data", "md-openmm", directory, "--ns", "0.04", "--frames", "200", "--equilibrate-ps", "4")
    assert result.returncode == 0, result.stderr
    return directory


def test_md_openmm_writes_contiguous_splits(ala2_data):
    counts = {}
    for name in ("train", "valid", "test"):
        molecule, trajectory = read_trajectory(ala2_data / f"{name}.pdb")
        assert len(molecule) == 22 and molecule.residue_names[0] == "ACE" and molecule.residue_names[-1] == "NME"
        counts[name] = len(trajectory)
    assert counts == {"train": 140, "valid": 20, "test": 40}
    result = mlpot_cli("data", "md-openmm", ala2_data, "--frames", "10")
    assert result.returncode == 2 and "already holds PDB files" in result.stderr


def backmapping_config(data, output, **model):
    return {
        "data": {"train": str(data / "train.pdb"), "valid": str(data / "valid.pdb"), "test": str(data / "test.pdb")},
        "model": {"task": "backmapping", "num_beads": 3, "dtype": "float32", **TINY, **model},
        "training": {"batch_size": 10, "max_epochs": 8, "lr": 0.01, "seed": 1, "scheduler_patience": 20, "loss": {"beta": 0.0001}},
        "output": {"directory": str(output)},
    }


def test_tiny_training_beats_the_centroid_baseline_then_eval_and_backmap(ala2_data, tmp_path, write_config):
    output = tmp_path / "run"
    result = mlpot_cli("train", write_config(backmapping_config(ala2_data, output)))
    assert result.returncode == 0, result.stderr
    assert "test errors of best.model" in result.stdout and "rmsd" in result.stdout
    model = mlpot.load_model(output / "best.model")
    assert model.num_beads == 3 and model.config.dihedral_names == ["phi ALA2", "psi ALA2"]

    result = mlpot_cli("eval", "--model", output / "best.model", "--data", ala2_data / "test.pdb", "--output", tmp_path / "recon.pdb")
    assert result.returncode == 0, result.stderr
    scores = {line.split()[0]: float(line.split()[1]) for line in result.stdout.splitlines()[1:] if line[:1].isalpha() and len(line.split()) >= 2 and _is_number(line.split()[1])}
    assert scores["recon_rmsd"] < 0.85 * scores["centroid_rmsd"], scores  # centroid: ~1.46 Å at N = 3
    assert scores["sample_rmsd"] < scores["centroid_rmsd"], scores
    assert 0.0 <= scores["js_phi_psi_ALA2"] <= 1.0
    _, recon = read_trajectory(tmp_path / "recon.pdb")
    assert recon.shape == (40, 22, 3)
    assert (tmp_path / "ramachandran_ALA2.png").is_file()

    _, reference = read_trajectory(ala2_data / "test.pdb")
    cg = model.map_to_beads(reference[:5])  # [5, 3, 3]: CG frames as a CG simulation would write them
    write_extxyz(tmp_path / "cg.xyz", [Atoms("C3", positions) for positions in cg])
    result = mlpot_cli("backmap", "--model", output / "best.model", "--cg", tmp_path / "cg.xyz", "--samples", 3, "-o", tmp_path / "out.xyz")
    assert result.returncode == 0, result.stderr
    _, samples = read_trajectory(tmp_path / "out.xyz")
    assert samples.shape == (15, 22, 3)
    np.testing.assert_allclose(model.map_to_beads(samples).reshape(5, 3, 3, 3), np.repeat(cg[:, None], 3, axis=1), atol=1e-5)


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def test_backmapping_config_errors(ala2_data, tmp_path):
    from mlpot.train.config import parse_config
    from mlpot.train.tasks import task_for

    raw = backmapping_config(ala2_data, tmp_path / "run")
    raw["model"].pop("num_beads")
    with pytest.raises(MLPotError, match="'model.num_beads' is required by the girvan_newman mapping"):
        task_for(parse_config(raw)).check_model_config()
    raw = backmapping_config(ala2_data, tmp_path / "run")
    raw["training"]["loss"] = {"betta": 0.1}
    with pytest.raises(MLPotError, match=r"unknown key 'training.loss.betta'; did you mean 'beta'\?"):
        task_for(parse_config(raw))
    result = mlpot_cli("backmap", "--model", tmp_path / "missing.model", "--cg", ala2_data / "test.pdb", "-o", tmp_path / "x.pdb")
    assert result.returncode == 2 and "does not exist" in result.stderr


@pytest.mark.slow
def test_adenylate_kinase_alpha_carbon_smoke(tmp_path, write_config):
    """A real protein trajectory (MDAnalysisTests' AdK, 3341 atoms, 214 residues) end to end."""
    mda = pytest.importorskip("MDAnalysis", reason="MDAnalysis is in the cg extra")
    datafiles = pytest.importorskip("MDAnalysisTests.datafiles", reason="MDAnalysisTests is in the cg extra")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        universe = mda.Universe(datafiles.PSF, datafiles.DCD)
        universe.guess_TopologyAttrs(to_guess=["elements"])
        for name, frames in (("train", slice(0, 8)), ("test", slice(90, 92))):
            with mda.Writer(str(tmp_path / f"{name}.pdb"), multiframe=True) as writer:
                for _ in universe.trajectory[frames]:
                    writer.write(universe.atoms)
    config = {
        "data": {"train": str(tmp_path / "train.pdb"), "valid": str(tmp_path / "test.pdb"), "test": str(tmp_path / "test.pdb")},
        "model": {"task": "backmapping", "mapping": "alpha_carbon", "bead_position": "alpha_carbon", "r_max": 2.0,
                  "cg_r_max": 8.0, "dtype": "float32", **TINY, "hidden_irreps": "4x0e+4x1o", "correlation": 1},
        "training": {"batch_size": 4, "max_epochs": 1, "lr": 0.01},
        "output": {"directory": str(tmp_path / "run")},
    }
    result = mlpot_cli("train", write_config(config))
    assert result.returncode == 0, result.stderr
    model = mlpot.load_model(tmp_path / "run" / "best.model")
    assert model.num_atoms == 3341 and model.num_beads == 214
    result = mlpot_cli("backmap", "--model", tmp_path / "run" / "best.model", "--cg", tmp_path / "test.pdb", "--samples", 2, "-o", tmp_path / "out.pdb")
    assert result.returncode == 0, result.stderr
    molecule, samples = read_trajectory(tmp_path / "out.pdb")
    assert samples.shape == (4, 3341, 3) and molecule.atom_names[:2] == ["N", "HT1"]
    _, reference = read_trajectory(tmp_path / "test.pdb")
    ca = np.array([name == "CA" for name in molecule.atom_names])
    np.testing.assert_allclose(samples[:, ca], np.repeat(reference[:, ca], 2, axis=0), atol=2e-3)  # PDB rounding
