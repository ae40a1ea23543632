"""Memory budget (issue 31): sizes parsed, the number of parts chosen so that the largest part
fits, the per-atom estimate above a measured peak, and one-line errors for bad requests."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from ase.build import bulk

import mlpot
from mlpot import MLPotError
from mlpot.calculators import MLPotCalculator
from mlpot.cli.main import main
from mlpot.data.extxyz import write_extxyz
from mlpot.data.neighbours import neighbour_pairs
from mlpot.models.io import save_model
from mlpot.partition import part_halos
from mlpot.partition.budget import bytes_per_atom, parse_memory_size, parts_for_budget

pytest.importorskip("pymetis")  # the budget's parts are METIS parts

TINY = {"elements": ["Cu", "Au"], "r_max": 4.0, "num_interactions": 2, "hidden_irreps": "4x0e+4x1o", "max_ell": 1,
        "correlation": 2, "radial_mlp": [8], "readout_mlp": 4, "num_bessel": 4}


def potential():
    torch.manual_seed(0)
    model = mlpot.build_model(TINY)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def cuau(repeat=(16, 2, 2)):
    """Cu3Au-like fcc rod, 59 Å long: parts along it have halos (2 x 4 Å) well inside the cell."""
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True) * repeat
    atoms.symbols[::3] = "Au"
    atoms.rattle(0.1, seed=1)
    return atoms


def graph(atoms, cutoff=4.0):
    sender, receiver, _ = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
    return np.stack([sender, receiver])


@pytest.mark.parametrize("text, size", [("8GB", 8 * 10**9), ("8 GiB", 8 * 2**30), ("512MB", 512 * 10**6), ("1.5G", int(1.5 * 2**30)),
                                        ("100kB", 10**5), (4096, 4096), ("2e9", 2 * 10**9)])
def test_sizes_parse(text, size):
    assert parse_memory_size(text) == size


@pytest.mark.parametrize("text, message", [("eight GB", "must be a size such as 8GB"), ("8 parsecs", "must be a size such as 8GB"),
                                           ("0GB", "must be positive"), (-5, "must be positive"), (True, "must be a size")])
def test_bad_sizes_are_one_line(text, message):
    with pytest.raises(MLPotError, match=message):
        parse_memory_size(text)


def test_chosen_parts_fit_and_fewer_do_not():
    model, atoms = potential(), cuau()
    edge_index = graph(atoms)
    per_atom = bytes_per_atom(model, torch.float64, edge_index.shape[1] / len(atoms))
    budget = int(0.6 * per_atom * len(atoms))
    k, labels = parts_for_budget(model, torch.float64, budget, edge_index, len(atoms))
    largest = lambda k, labels: max(len(h.nodes) for h in part_halos(edge_index, labels, k, 2))  # noqa: E731
    assert k > 1 and largest(k, labels) * per_atom <= budget
    from mlpot.partition import partition_atoms

    fewer = partition_atoms(len(atoms), edge_index, k - 1)
    assert largest(k - 1, fewer) * per_atom > budget
    assert parts_for_budget(model, torch.float64, int(2 * per_atom * len(atoms)), edge_index, len(atoms))[0] == 1


def test_calculator_with_a_budget_is_exact():
    atoms = cuau()
    plain, budgeted = atoms.copy(), atoms.copy()
    plain.calc = MLPotCalculator(potential())
    neighbours = graph(atoms, 4.0 + 0.5).shape[1] / len(atoms)  # the calculator partitions the graph within r_max + skin
    calculator = MLPotCalculator(potential(), memory_budget=int(0.6 * bytes_per_atom(potential(), torch.float64, neighbours) * len(atoms)))
    budgeted.calc = calculator
    assert np.isclose(budgeted.get_potential_energy(), plain.get_potential_energy(), rtol=1e-10, atol=0)
    assert np.abs(budgeted.get_forces() - plain.get_forces()).max() <= 1e-10 * np.abs(plain.get_forces()).max()
    assert calculator.partitions > 1


@pytest.mark.parametrize("options, message", [
    ({"memory_budget": "8GB", "partitions": 2}, "give partitions or memory_budget, not both"),
    ({"memory_budget": "lots"}, "memory_budget must be a size such as 8GB"),
])
def test_calculator_refuses_bad_budgets(options, message):
    with pytest.raises(MLPotError, match=message):
        MLPotCalculator(potential(), **options)


def test_budget_below_one_atom_is_one_line():
    atoms = cuau()
    atoms.calc = MLPotCalculator(potential(), memory_budget="10kB")
    with pytest.raises(MLPotError, match="memory budget 10 kB cannot be met even by one atom per part: an atom with its"):
        atoms.get_potential_energy()


def test_cli_budget_errors(tmp_path, capsys):
    model_path = tmp_path / "cuau.model"
    save_model(potential(), model_path)
    write_extxyz(tmp_path / "frames.xyz", [(cuau((2, 2, 2)), {}, {})])
    common = ["eval", "--model", str(model_path), "--data", str(tmp_path / "frames.xyz"), "--plots", str(tmp_path / "p")]
    assert main([*common, "--memory-budget", "8GB", "--partitions", "2"]) == 2
    assert "give --partitions or --memory-budget, not both" in capsys.readouterr().err
    assert main([*common, "--memory-budget", "8 furlongs"]) == 2
    assert "--memory-budget must be a size such as 8GB" in capsys.readouterr().err
    assert main([*common, "--memory-budget", "1kB"]) == 2
    assert "frames.xyz: frame 0: memory budget 1 kB cannot be met even by one atom per part" in capsys.readouterr().err
    md = ["md", "--model", str(model_path), "--structure", str(tmp_path / "frames.xyz"), "--steps", "2"]
    assert main([*md, "--memory-budget=-3GB"]) == 2
    assert "--memory-budget must be positive" in capsys.readouterr().err


def test_eval_with_a_budget_matches(tmp_path):
    from ase.io import read

    model_path = tmp_path / "cuau.model"
    save_model(potential(), model_path)
    write_extxyz(tmp_path / "frames.xyz", [(cuau((2, 2, 3)), {}, {})])
    for name, extra in (("plain", []), ("budget", ["--memory-budget", "3MB"])):
        assert main(["eval", "--model", str(model_path), "--data", str(tmp_path / "frames.xyz"), "--output",
                     str(tmp_path / f"{name}.xyz"), "--plots", str(tmp_path / name), *extra]) == 0
    plain, budget = read(tmp_path / "plain.xyz"), read(tmp_path / "budget.xyz")
    assert abs(plain.info["mlpot_energy"] - budget.info["mlpot_energy"]) <= 1e-10 * abs(plain.info["mlpot_energy"])


MEASURE = textwrap.dedent("""
    import json, numpy as np, torch
    from pathlib import Path
    from ase.build import molecule
    from mlpot.allocator import keep_freed_memory
    from mlpot.data.neighbours import neighbour_pairs
    from mlpot.models import build_model
    from mlpot.partition.budget import bytes_per_atom
    from mlpot.partition.evaluate import evaluate_partitioned

    def rss(field):
        return next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(field + ":"))

    torch.set_num_threads(1)
    keep_freed_memory()
    model = build_model({"elements": ["H", "O"], "r_max": 5.0, "hidden_irreps": "32x0e+32x1o", "max_ell": 2,
                         "correlation": 2, "num_interactions": 2}).double().eval()
    model.requires_grad_(False)
    rng = np.random.default_rng(0)
    water = molecule("H2O").positions
    sites = np.stack(np.meshgrid(*[np.arange(5)] * 3, indexing="ij"), -1).reshape(-1, 3) * 3.104
    positions = (sites[:, None] + water[None] + rng.normal(scale=0.05, size=(len(sites), 1, 3))).reshape(-1, 3)
    cell = np.eye(3) * 5 * 3.104
    sender, receiver, shifts = neighbour_pairs(positions, cell, np.ones(3, bool), 5.0)
    numbers = torch.tensor(np.tile([8, 1, 1], len(sites)))
    Path("/proc/self/clear_refs").write_text("5")
    before = rss("VmRSS")
    evaluate_partitioned(model, torch.tensor(positions), numbers, torch.tensor(np.stack([sender, receiver])),
                         torch.tensor(shifts @ cell), torch.tensor(cell), np.zeros(len(positions), np.int64), 1, True)
    peak = (rss("VmHWM") - before) * 1024 / len(positions)
    print(json.dumps({"measured": peak, "estimated": bytes_per_atom(model, torch.float64, len(sender) / len(positions))}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS from /proc")
def test_estimate_is_above_a_measured_peak():
    out = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    numbers = json.loads(out.stdout.strip().splitlines()[-1])
    assert numbers["measured"] > 10_000  # the measurement saw the evaluation
    assert numbers["measured"] <= numbers["estimated"] <= 2.0 * numbers["measured"]
