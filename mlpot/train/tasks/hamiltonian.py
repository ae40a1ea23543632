"""The Hamiltonian task: H (and optionally S) in an AO basis from datasets of ``mlpot data qm``.

Loss, each term a mean over the real (unpadded) entries of the diagonal and edge blocks of the
global batch, i.e. over the matrix entries of atom pairs within r_max, errors in mEh:

    L = w_H e(H_pred - H) + w_S e(S_pred - S),   e(x) = <x^2> (mse), <|x|> (mae) or <x^2> + <|x|>

with ``training.loss: {hamiltonian_weight: 1.0, overlap_weight: 0.0, kind: mse}``; the overlap
term needs ``model.overlap: true``. ``mse+mae`` is QHNet's loss: below 0.5 mEh the absolute term
has the larger gradient, so it trains the MAE that the benchmarks report. The potential's
energy/forces/stress weights are not used.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional

import numpy as np
import torch
from ase.data import chemical_symbols

from mlpot.config import parse_section
from mlpot.data import keys
from mlpot.data.dataset import split
from mlpot.data.graph import AtomicGraph, atoms_to_graph, graph_to_inputs
from mlpot.data.statistics import average_num_neighbors
from mlpot.errors import MLPotError
from mlpot.models.elements import canonical_elements
from mlpot.models.hamiltonian import HamiltonianConfig, reference_blocks
from mlpot.qm.dataset import QMDataset, QMFrame, read_qm_dataset
from mlpot.qm.inference import predict_matrices
from mlpot.qm.layout import OrbitalLayout
from mlpot.qm.orbitals import compare_occupied
from mlpot.qm.statistics import onsite_reference
from mlpot.train.config import TrainConfig
from mlpot.train.metrics import ErrorStats, Reducer, format_table
from mlpot.train.tasks.potential import PreparedData

HAMILTONIAN, OVERLAP = "H", "S"
LOSS_UNIT = 1e3  # squared errors in mEh^2
MICRO = 1e6  # Eh -> µEh for display
BLOCKS = {
    HAMILTONIAN: (keys.HAMILTONIAN_NODE_BLOCKS, keys.HAMILTONIAN_EDGE_BLOCKS),
    OVERLAP: (keys.OVERLAP_NODE_BLOCKS, keys.OVERLAP_EDGE_BLOCKS),
}


@dataclass
class HamiltonianLoss:
    """``training.loss`` of the Hamiltonian task."""

    hamiltonian_weight: float = 1.0
    overlap_weight: float = 0.0
    kind: Literal["mse", "mae", "mse+mae"] = "mse"  # mean squared (mEh^2) and/or absolute (mEh) entry errors

    def validate(self, where: str) -> None:
        for key in ("hamiltonian_weight", "overlap_weight"):
            if getattr(self, key) < 0:
                raise MLPotError(f"'{where}.{key}' must not be negative, got {getattr(self, key)!r}")
        if self.hamiltonian_weight == 0 and self.overlap_weight == 0:
            raise MLPotError(f"'{where}' needs a positive hamiltonian_weight or overlap_weight")


class HamiltonianTask:
    """Reads QM datasets, completes the model config from them, and defines loss and metrics."""

    name = "hamiltonian"

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        if config.data.keys:
            raise MLPotError("'data.keys' is not used by the hamiltonian task (QM datasets have fixed keys)")
        self.weights = parse_section(HamiltonianLoss, config.training.loss, "training.loss")
        if self.weights.overlap_weight > 0 and not config.model.get("overlap", False):
            raise MLPotError("'training.loss.overlap_weight' needs 'model.overlap: true'")

    def check_model_config(self) -> None:
        """Fail on a bad model key before any data is read (elements and shells come from the data)."""
        trial = dict(self.config.model)
        elements = canonical_elements(trial.get("elements") or ["H"], "model.elements")
        trial.setdefault("elements", elements)
        trial.setdefault("shells", {symbol: [0] for symbol in elements})
        parse_section(HamiltonianConfig, trial, "model")

    def prepare(self, dtype: torch.dtype) -> PreparedData:
        data = self.config.data
        train_set = read_qm_dataset(data.train)
        train = train_set.frames
        if data.valid is not None:
            valid_set = read_qm_dataset(data.valid)
            _check_same_source(train_set, valid_set)
            valid = valid_set.frames
        else:
            train, valid = split(train, data.valid_fraction, self.config.training.seed)
        test_set = read_qm_dataset(data.test) if data.test is not None else None
        if test_set is not None:
            _check_same_source(train_set, test_set)
        model_config = self._complete_model_config(train_set, train, valid)
        elements = model_config["elements"]
        test = test_set.frames if test_set is not None else []
        _check_elements(valid, elements, "validation", data.valid or data.train)
        _check_elements(test, elements, "test", data.test)
        layout = OrbitalLayout.from_symbols(model_config["shells"])
        r_max = float(model_config.get("r_max", HamiltonianConfig.r_max))
        graphs = {
            name: [frame_graph(frame, layout, r_max, dtype) for frame in frames]
            for name, frames in (("train", train), ("valid", valid), ("test", test))
        }
        if "scale" not in model_config:
            model_config["scale"] = _residual_rms(graphs["train"], model_config, HAMILTONIAN)
        if model_config.get("overlap") and "overlap_scale" not in model_config:
            model_config["overlap_scale"] = _residual_rms(graphs["train"], model_config, OVERLAP)
        settings = train_set.metadata["settings"]
        summary = {
            "train": {"path": str(data.train), "frames": len(train)},
            "valid": {"path": str(data.valid or data.train), "frames": len(valid)},
            "test": {"path": str(data.test), "frames": len(graphs["test"])},
            "method": settings["method"],
            "basis": settings["basis"],
            "units": {"hamiltonian": "Hartree", "length": "Angstrom"},
        }
        return PreparedData(graphs["train"], graphs["valid"], graphs["test"], model_config, summary)

    def _complete_model_config(self, dataset: QMDataset, train: List[QMFrame], valid: List[QMFrame]) -> Dict[str, Any]:
        """Elements, shells, basis, neighbours and reference blocks from the training data unless given."""
        model = dict(self.config.model)
        found = sorted({int(z) for frame in train + valid for z in frame.numbers})
        if "elements" in model:
            model["elements"] = canonical_elements(model["elements"], "model.elements")
            _check_elements(train, model["elements"], "training", self.config.data.train)
        else:
            model["elements"] = [chemical_symbols[z] for z in found]
        shells = dataset.metadata["shells"]
        missing = [symbol for symbol in model["elements"] if symbol not in shells]
        if missing:
            raise MLPotError(f"{dataset.path}: no basis for {', '.join(missing)} (model elements: {', '.join(model['elements'])})")
        data_shells = {symbol: shells[symbol] for symbol in model["elements"]}
        if "shells" in model and model["shells"] != data_shells:
            raise MLPotError(f"'model.shells' {model['shells']} disagree with the dataset's basis {data_shells}")
        model["shells"] = data_shells
        model.setdefault("basis", dataset.metadata["settings"]["basis"])
        layout = OrbitalLayout.from_symbols(data_shells)
        r_max = float(model.get("r_max", HamiltonianConfig.r_max))
        if "avg_num_neighbors" not in model:
            model["avg_num_neighbors"] = average_num_neighbors([frame.atoms() for frame in train], r_max)
        if model.get("onsite_reference") is None:
            model["onsite_reference"] = onsite_reference(train, layout, "hamiltonian")
        if model.get("overlap") and model.get("overlap_reference") is None:
            model["overlap_reference"] = onsite_reference(train, layout, "overlap")
        return model

    def loss_weights(self, stage_two: bool) -> HamiltonianLoss:
        return self.weights  # no second-stage re-weighting; the trainer still lowers the lr

    @staticmethod
    def forward(model: torch.nn.Module, batch, training: bool) -> Dict[str, torch.Tensor]:
        return model(graph_to_inputs(batch))

    @staticmethod
    def loss_terms(out: Dict[str, torch.Tensor], batch) -> torch.Tensor:
        """[[H, S] squared-error sums (mEh^2), [H, S] absolute-error sums (mEh)] and [their entry
        counts], shape [2, 4]."""
        node_mask, edge_mask = _block_masks(batch)
        squares, absolutes, counts = [], [], []
        for name in (HAMILTONIAN, OVERLAP):
            node_key, edge_key = BLOCKS[name]
            if node_key in out:
                node = (out[node_key] - batch[node_key]) * LOSS_UNIT * node_mask  # [N, O, O] mEh
                edge = (out[edge_key] - batch[edge_key]) * LOSS_UNIT * edge_mask  # [E, O, O] mEh
                squares.append(node.square().sum() + edge.square().sum())
                absolutes.append(node.abs().sum() + edge.abs().sum())
                counts.append(node_mask.sum() + edge_mask.sum())
            else:
                zero = torch.zeros((), dtype=node_mask.dtype, device=node_mask.device)
                squares.append(zero)
                absolutes.append(zero)
                counts.append(zero)
        counts = torch.stack(counts).detach()
        return torch.stack([torch.stack(squares + absolutes), torch.cat([counts, counts])])

    @staticmethod
    def combine(terms: torch.Tensor, counts: torch.Tensor, weights: HamiltonianLoss) -> torch.Tensor:
        squared = 1.0 if weights.kind in ("mse", "mse+mae") else 0.0
        absolute = 1.0 if weights.kind in ("mae", "mse+mae") else 0.0
        factors = torch.tensor([weights.hamiltonian_weight, weights.overlap_weight], dtype=terms.dtype, device=terms.device)
        factors = torch.cat([squared * factors, absolute * factors])  # [H^2, S^2, |H|, |S|]
        return (factors * terms / counts.clamp(min=1.0)).sum()

    def loss(self, out: Dict[str, torch.Tensor], batch, weights: HamiltonianLoss, reducer: Reducer, world_size: int) -> torch.Tensor:
        """This process's share of the global batch loss, times world_size (DDP averages gradients)."""
        terms = self.loss_terms(out, batch)
        global_counts = reducer(terms[1].clone())
        return self.combine(terms[0], global_counts, weights) * world_size

    def new_metrics(self) -> ErrorStats:
        return ErrorStats([HAMILTONIAN, OVERLAP])

    @staticmethod
    def update_metrics(stats: ErrorStats, out: Dict[str, torch.Tensor], batch) -> None:
        node_mask, edge_mask = _block_masks(batch)
        for name, (node_key, edge_key) in BLOCKS.items():
            if node_key in out:
                stats.add(name, out[node_key] - batch[node_key], node_mask)
                stats.add(name, out[edge_key] - batch[edge_key], edge_mask)

    @staticmethod
    def table(results: Dict[str, Dict[str, float]], title: str) -> str:
        return format_table(results, {name: "µEh" for name in BLOCKS}, {name: MICRO for name in BLOCKS}, title)

    @staticmethod
    def epoch_summary(results: Dict[str, Dict[str, float]]) -> str:
        return ", ".join(
            f"{name} MAE {values['mae'] * MICRO:.2f} RMSE {values['rmse'] * MICRO:.2f} µEh" for name, values in results.items()
        )

    @staticmethod
    def evaluate_file(model, path, output, plots_dir, batch_size=10, keys=None, lindep=0.0) -> str:
        return evaluate_file(model, path, output, plots_dir, batch_size, lindep)


def frame_graph(frame: QMFrame, layout: OrbitalLayout, r_max: float, dtype: torch.dtype) -> AtomicGraph:
    """The neighbour graph of a frame with its H and S cut into diagonal and edge blocks."""
    graph = atoms_to_graph(frame.atoms(), r_max, dtype=dtype)
    edge_index = graph[keys.EDGE_INDEX].numpy()
    for name, matrix in ((HAMILTONIAN, frame.hamiltonian), (OVERLAP, frame.overlap)):
        node, edge = layout.to_blocks(matrix, frame.numbers, edge_index)
        node_key, edge_key = BLOCKS[name]
        graph[node_key] = torch.tensor(node, dtype=dtype)
        graph[edge_key] = torch.tensor(edge, dtype=dtype)
    graph[keys.ORBITAL_MASK] = torch.tensor(layout.mask(frame.numbers), dtype=dtype)
    return graph


def _block_masks(batch):
    """([N, O, O], [E, O, O]) 1.0 on real entries of the diagonal and edge blocks."""
    mask = batch[keys.ORBITAL_MASK]
    edge_index = batch[keys.EDGE_INDEX]
    node = mask.unsqueeze(2) * mask.unsqueeze(1)
    edge = mask.index_select(0, edge_index[1]).unsqueeze(2) * mask.index_select(0, edge_index[0]).unsqueeze(1)
    return node, edge


def _residual_rms(graphs: List[AtomicGraph], model_config: Dict[str, Any], name: str) -> float:
    """RMS over the training entries of what the network must add to the reference blocks (Eh)."""
    reference_key = "onsite_reference" if name == HAMILTONIAN else "overlap_reference"
    elements = model_config["elements"]
    reference = reference_blocks(elements, model_config["shells"], model_config.get(reference_key)).to(torch.float64)
    index = {chemical_symbols.index(symbol): t for t, symbol in enumerate(elements)}
    node_key, edge_key = BLOCKS[name]
    squares, count = 0.0, 0.0
    for graph in graphs:
        node_mask, edge_mask = _block_masks(graph)
        species = torch.tensor([index[int(z)] for z in graph[keys.ATOMIC_NUMBERS]], dtype=torch.long)
        node = graph[node_key].to(torch.float64) - reference[species]
        squares += float((node.square() * node_mask).sum() + (graph[edge_key].square() * edge_mask).sum())
        count += float(node_mask.sum() + edge_mask.sum())
    return max(float(np.sqrt(squares / max(count, 1.0))), 1e-6)


def _check_same_source(first: QMDataset, second: QMDataset) -> None:
    """Datasets of one training run must share the method, basis and shells of common elements."""
    if first.metadata["settings"] != second.metadata["settings"]:
        raise MLPotError(
            f"{second.path} was computed with other settings than {first.path} "
            f"({second.metadata['settings']} vs {first.metadata['settings']})"
        )
    for symbol, shells in second.metadata["shells"].items():
        if symbol in first.metadata["shells"] and first.metadata["shells"][symbol] != shells:
            raise MLPotError(f"{second.path}: shells of {symbol} differ from those in {first.path}")


def _check_elements(frames: List[QMFrame], elements: List[str], which: str, path: Optional[str]) -> None:
    found = sorted({chemical_symbols[int(z)] for frame in frames for z in frame.numbers} - set(elements))
    if found:
        raise MLPotError(f"{path}: the {which} data contains {', '.join(found)}, which the model does not know (model elements: {', '.join(elements)})")


def evaluate_file(
    model: torch.nn.Module, path: str, output: Optional[str], plots_dir: Path, batch_size: int = 10, lindep: float = 0.0
) -> str:
    """Errors of a model on a QM dataset (``mlpot eval``): H entries over whole matrices (pairs
    beyond r_max predicted as zero), occupied orbital energies and coefficients from the
    generalised eigenproblem with the predicted H and the reference S (the predicted side solved
    without S's eigen-directions below ``lindep``, the reference always exactly); with ``output``
    (.npz), the predicted matrices and orbital energies per frame."""
    from mlpot.train import plots

    if output is not None and not str(output).endswith(".npz"):
        raise MLPotError(f"--output {output} must end in .npz for a Hamiltonian model")
    dataset = read_qm_dataset(path)
    _check_model_fits(model, dataset)
    frames = dataset.frames
    predictions = predict_matrices(model, [frame.atoms() for frame in frames], str(path), batch_size)
    h_errors, s_errors, energy_errors, gap_errors, similarity, saved = [], [], [], [], [], {}
    h_sample = ([], [])
    rng = np.random.default_rng(0)
    for k, (frame, predicted) in enumerate(zip(frames, predictions)):
        hamiltonian = predicted["hamiltonian"]
        h_errors.append((hamiltonian - frame.hamiltonian).ravel())
        if predicted["overlap"] is not None:
            s_errors.append((predicted["overlap"] - frame.overlap).ravel())
        orbitals = compare_occupied(hamiltonian, frame.hamiltonian, frame.overlap, frame.num_occupied, lindep=lindep)
        energy_errors.append(orbitals.energies_predicted - orbitals.energies_reference)
        gap_errors.append(orbitals.gap_predicted - orbitals.gap_reference)
        similarity.append(orbitals.similarity)
        picked = rng.choice(hamiltonian.size, size=min(hamiltonian.size, 2000), replace=False)
        h_sample[0].append(frame.hamiltonian.ravel()[picked])
        h_sample[1].append(hamiltonian.ravel()[picked])
        saved[f"hamiltonian_{k}"] = hamiltonian
        saved[f"occupied_energies_{k}"] = orbitals.energies_predicted
    rows = {
        "H": _mae_rmse(h_errors),
        "occupied orbital energies": _mae_rmse(energy_errors),
        "HOMO-LUMO gap": _mae_rmse([np.array(gap_errors)]),
    }
    if s_errors:
        rows["S"] = _mae_rmse(s_errors)
    cosines = np.concatenate(similarity)
    plots_dir.mkdir(parents=True, exist_ok=True)
    plots.parity(np.concatenate(h_sample[0]), np.concatenate(h_sample[1]), "H entries", "Eh", plots_dir / "parity_hamiltonian.png")
    reference_energies = np.concatenate([f.orbital_energies[: f.num_occupied] for f in frames])
    plots.parity(reference_energies, reference_energies + np.concatenate(energy_errors), "occupied orbital energies", "Eh", plots_dir / "parity_orbital_energies.png")
    if output is not None:
        from mlpot.files import atomic_output

        with atomic_output(output, "wb") as stream:
            np.savez(stream, **saved)
    title = f"errors of the model on {path} ({len(frames)} frames" + (f"; predicted orbitals with lindep {lindep:g})" if lindep else ")")
    table = format_table(rows, {name: "µEh" for name in rows}, {name: MICRO for name in rows}, title)
    return table + f"\n{'occupied |cos psi|':<22}{100 * cosines.mean():>12.4f}{100 * cosines.min():>12.4f}  % (mean, min)"


def _mae_rmse(errors: List[np.ndarray]) -> Dict[str, float]:
    values = np.concatenate([np.ravel(e) for e in errors])
    return {"mae": float(np.abs(values).mean()), "rmse": float(np.sqrt(np.square(values).mean())), "count": float(values.size)}


def _check_model_fits(model: torch.nn.Module, dataset: QMDataset) -> None:
    """The data's basis must be the model's: same shells for every element it contains."""
    basis = dataset.metadata["settings"]["basis"]
    if model.config.basis and model.config.basis.lower() != basis.lower():
        raise MLPotError(f"{dataset.path} uses basis {basis}, the model was trained on {model.config.basis}")
    for z in dataset.elements():
        symbol = chemical_symbols[z]
        if symbol in model.config.shells and list(dataset.metadata["shells"].get(symbol, [])) != list(model.config.shells[symbol]):
            raise MLPotError(f"{dataset.path}: shells of {symbol} {dataset.metadata['shells'].get(symbol)} differ from the model's {model.config.shells[symbol]}")
