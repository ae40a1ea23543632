"""ZBL and D3 in a model trained by `mlpot train`: config keys, training, and the LAMMPS export
carrying ZBL (it is inside node_energy) but not D3 (it is not)."""

import numpy as np
import pytest
import torch
from ase import Atoms
from test_export import domain_with_ghosts, run_exported
from test_train import tiny_config

import mlpot
from mlpot.calculators import MLPotCalculator
from mlpot.cli.main import main
from mlpot.export.lammps import export_lammps

pytest.importorskip("torch_dftd", reason="the 'd3' extra (torch-dftd) is not installed")


def close_pair_cell():
    """A Cu-Au pair at 1.3 Å, where ZBL is large, in a periodic cell with more neighbours."""
    atoms = Atoms("CuAuCuCu", positions=[[0, 0, 0], [1.3, 0, 0], [0, 2.5, 0], [1.2, 1.3, 2.4]], cell=[5.0, 5.2, 5.4], pbc=True)
    atoms.rattle(0.02, seed=1)
    return atoms


def test_train_with_zbl_and_dispersion_then_export(emt_files, tmp_path, write_config):
    output = tmp_path / "run"
    config = tiny_config(*emt_files, output, max_epochs=2)
    config["model"].update({"pair_repulsion": "zbl", "dispersion": {"kind": "d3bj", "cutoff": 6.0}})
    assert main(["train", str(write_config(config))]) == 0
    trained = mlpot.load_model(output / "best.model")
    assert trained.config.pair_repulsion == "zbl" and trained.config.dispersion["cutoff"] == 6.0
    assert trained.pair_repulsion is not None and trained.dispersion is not None

    # The same weights without dispersion: what pair_style mlpot computes (ZBL included).
    plain = mlpot.build_model({**trained.config_dict(), "dispersion": None})
    plain.load_state_dict(trained.state_dict())
    atoms = close_pair_cell()
    atoms.calc = MLPotCalculator(plain, dtype="float64")
    energy = atoms.get_potential_energy()
    exported = export_lammps(trained, tmp_path / "trained.pt", without_dispersion=True)
    positions, numbers, _, local = domain_with_ghosts(atoms, list(range(len(atoms))), plain.num_interactions * plain.r_max)
    out = run_exported(torch.jit.load(str(exported)), positions, numbers, local, plain.r_max)
    assert float(out["energy"]) == pytest.approx(energy, abs=1e-8)

    # ZBL is a large part of that energy, so an export without it would fail the check above.
    without_zbl = mlpot.build_model({**plain.config_dict(), "pair_repulsion": None})
    without_zbl.load_state_dict({k: v for k, v in plain.state_dict().items() if not k.startswith("pair_repulsion.")})
    atoms.calc = MLPotCalculator(without_zbl, dtype="float64")
    assert energy - atoms.get_potential_energy() > 0.5  # 0.73 eV here

    # With dispersion the calculator's energy is lower by torch-dftd's D3 term.
    atoms.calc = MLPotCalculator(trained, dtype="float64")
    assert atoms.get_potential_energy() < energy - 0.01


def test_dispersion_of_a_batch_is_that_of_each_structure():
    """Training evaluates batches: each graph gets its own D3 neighbour list and cell."""
    from torch_geometric.data import Batch

    from mlpot.data.graph import atoms_to_graph, graph_to_inputs

    model = mlpot.build_model({"elements": ["Cu", "Au"], "r_max": 3.0, "hidden_irreps": "4x0e", "max_ell": 1, "radial_mlp": [4],
                               "num_interactions": 1, "dispersion": {"kind": "d3bj", "cutoff": 8.0}})
    first = close_pair_cell()
    second = Atoms("Cu3Au", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0], [1.2, 1.2, 2.0]])  # no cell
    singles = [model(graph_to_inputs(atoms_to_graph(atoms, 3.0, torch.float64)), compute_stress=True) for atoms in (first, second)]
    batch = Batch.from_data_list([atoms_to_graph(atoms, 3.0, torch.float64) for atoms in (first, second)])
    both = model(graph_to_inputs(batch), compute_stress=True)
    np.testing.assert_allclose(both["energy"].detach().numpy(), [float(single["energy"].detach()) for single in singles], atol=1e-12)
    np.testing.assert_allclose(both["forces"].detach().numpy(), torch.cat([single["forces"] for single in singles]).detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(both["stress"][0].detach().numpy(), singles[0]["stress"][0].detach().numpy(), atol=1e-12)
