"""The potential task: energies, forces and stress from labelled extxyz files.

Loss (MACE's weighted loss, each term a mean over the labelled entries of the global batch):

    L = w_E <w_k (dE_k / N_k)^2> + w_F <w_k |dF_ik|^2 / 3> + w_S <w_k |dS_k|^2 / 9>

with per-frame weights w_k (``config_weight`` in the file). Under torchrun the counts are summed
over processes, so the gradient equals that of one process holding the whole global batch.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from ase.data import chemical_symbols

from mlpot.data import keys
from mlpot.data.dataset import LabelKeys, LabelledStructures, make_loader, read_labelled, split
from mlpot.data.extxyz import as_frame, write_extxyz
from mlpot.data.graph import AtomicGraph, graph_to_inputs
from mlpot.data.statistics import average_num_neighbors, estimate_e0s, force_rms, mean_interaction_energy
from mlpot.errors import MLPotError
from mlpot.models.committee import ENERGY_STD, FORCES_STD
from mlpot.models.elements import canonical_elements
from mlpot.models.potential import PotentialConfig
from mlpot.config import parse_section
from mlpot.train import finetune
from mlpot.train.config import TrainConfig
from mlpot.train.metrics import ErrorStats, Reducer, format_table

ENERGY, ENERGY_PER_ATOM, FORCES, STRESS = "energy", "energy/atom", "forces", "stress"
DISPLAY_UNITS = {ENERGY: "meV", ENERGY_PER_ATOM: "meV/atom", FORCES: "meV/Å", STRESS: "meV/Å^3"}
DISPLAY_SCALE = {ENERGY: 1000.0, ENERGY_PER_ATOM: 1000.0, FORCES: 1000.0, STRESS: 1000.0}


@dataclass
class LossWeights:
    energy: float
    forces: float
    stress: float


@dataclass
class PreparedData:
    train: List[AtomicGraph]
    valid: List[AtomicGraph]
    test: List[AtomicGraph]
    model_config: Dict[str, Any]
    summary: Dict[str, Any]


class PotentialTask:
    """Reads data, completes the model config from it, and defines loss and metrics."""

    name = "potential"

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.label_keys = parse_section(LabelKeys, config.data.keys, "data.keys")
        if config.training.loss:
            raise MLPotError("'training.loss' is not used by the potential task; use training.energy_weight etc.")

    def check_model_config(self) -> None:
        """Fail on a bad model key before any data is read (elements may come from the data)."""
        trial = dict(self.config.model)
        trial.setdefault("elements", ["H"])
        parse_section(PotentialConfig, trial, "model")

    def prepare(self, dtype: torch.dtype) -> PreparedData:
        data = self.config.data
        # Isolated atoms fix the E0s and are not fitted: the network's output for an atom
        # without neighbours is exactly zero, so its energy is E0 + shift by construction.
        train_set, isolated = _split_off_isolated_atoms(read_labelled(data.train, self.label_keys))
        if data.valid is not None:
            valid_set, isolated_valid = _split_off_isolated_atoms(read_labelled(data.valid, self.label_keys))
            isolated = _concatenate(isolated, isolated_valid)
        else:
            kept, held = split(list(range(len(train_set.structures))), data.valid_fraction, self.config.training.seed)
            valid_set = _subset(train_set, held)
            train_set = _subset(train_set, kept)
        test_set = read_labelled(data.test, self.label_keys) if data.test is not None else None
        model_config = self._complete_model_config(train_set, valid_set, isolated)
        replayed = self._replay(model_config)
        if replayed is not None:
            train_set = _concatenate(train_set, replayed)
        self._check_elements(test_set, model_config["elements"], "test")
        self._check_elements(valid_set, model_config["elements"], "validation")
        r_max = float(model_config.get("r_max", PotentialConfig.r_max))
        summary = {
            "train": {"file": str(data.train), "frames": len(train_set.structures)},
            "valid": {"file": str(data.valid or data.train), "frames": len(valid_set.structures)},
            "test": {"file": str(data.test), "frames": len(test_set.structures) if test_set else 0},
            "isolated_atoms_for_e0s": len(isolated.structures),
        }
        if model_config.get("init_from"):
            summary["fine_tuned_from"] = model_config["init_from"]
            summary["replayed_frames"] = len(replayed.structures) if replayed is not None else 0
        return PreparedData(
            train=train_set.graphs(r_max, dtype),
            valid=valid_set.graphs(r_max, dtype),
            test=test_set.graphs(r_max, dtype) if test_set else [],
            model_config=model_config,
            summary=summary,
        )

    def _complete_model_config(
        self, train_set: LabelledStructures, valid_set: LabelledStructures, isolated: LabelledStructures
    ) -> Dict[str, Any]:
        """Elements, E0s, average neighbours, scale and shift from the training data unless given
        (fine-tuning: the parent's architecture and normalisation, E0s fitted to its residuals; see finetune.py)."""
        model = dict(self.config.model)
        found = sorted(set(train_set.elements()) | set(valid_set.elements()) | set(isolated.elements()))
        if model.get("init_from"):
            parent = finetune.parent_config(model["init_from"])
            model = finetune.merge_model_config(model, parent, [chemical_symbols[z] for z in found])
            if model.get("atomic_energies") is None:
                combined = _concatenate(train_set, isolated)
                model["atomic_energies"] = finetune.estimate_e0s_from_parent(model, combined.structures, combined.labels)
            self._parent_e0s = dict(parent.get("atomic_energies") or {})
            return model
        if "elements" in model:
            elements = canonical_elements(model["elements"], "model.elements")
            self._check_elements(train_set, elements, "training")
        else:
            elements = [chemical_symbols[z] for z in found]
            model["elements"] = elements
        numbers = [chemical_symbols.index(symbol) for symbol in elements]
        if model.get("atomic_energies") is None:
            combined = _concatenate(train_set, isolated)
            model["atomic_energies"] = estimate_e0s(combined.structures, combined.labels, numbers)
        r_max = float(model.get("r_max", PotentialConfig.r_max))
        if "avg_num_neighbors" not in model:
            model["avg_num_neighbors"] = average_num_neighbors(train_set.structures, r_max)
        if "scale" not in model:
            model["scale"] = force_rms(train_set.labels)
        if "shift" not in model:
            model["shift"] = mean_interaction_energy(train_set.structures, train_set.labels, model["atomic_energies"])
        return model

    def _replay(self, model_config: Dict[str, Any]) -> Optional[LabelledStructures]:
        """data.replay: a seeded sample of the parent's training data, energies moved to the new E0s."""
        section = self.config.data.replay
        if not section:
            return None
        if not model_config.get("init_from"):
            raise MLPotError("'data.replay' rehearses the parent's data: it needs model.init_from")
        settings = parse_section(finetune.ReplaySettings, section, "data.replay")
        parent_data = read_labelled(settings.file, self.label_keys)
        self._check_elements(parent_data, model_config["elements"], "replay")
        chosen = _subset(parent_data, finetune.draw_replay(settings.count, len(parent_data.structures), settings.seed))
        for atoms, label in zip(chosen.structures, chosen.labels):
            if label.energy is not None:
                label.energy += finetune.replay_energy_shift(atoms.numbers, self._parent_e0s, model_config["atomic_energies"])
        return chosen

    def initialize(self, model: torch.nn.Module) -> None:
        """Before training: the parent's weights (fine-tuning) and frozen layers."""
        if self.config.model.get("init_from"):
            finetune.transfer_weights(model, model.config.init_from)
        finetune.freeze_first_layers(model, self.config.training.freeze_layers)

    @staticmethod
    def _check_elements(data: Optional[LabelledStructures], elements: List[str], which: str) -> None:
        if data is None:
            return
        unknown = [chemical_symbols[z] for z in data.elements() if chemical_symbols[z] not in elements]
        if unknown:
            raise MLPotError(
                f"{data.path}: the {which} data contains {', '.join(unknown)}, which the model does not know "
                f"(model elements: {', '.join(elements)})"
            )

    def loss_weights(self, stage_two: bool) -> LossWeights:
        t = self.config.training
        if stage_two:
            return LossWeights(t.stage_two_energy_weight, t.stage_two_forces_weight, t.stage_two_stress_weight)
        return LossWeights(t.energy_weight, t.forces_weight, t.stress_weight)

    @staticmethod
    def forward(model: torch.nn.Module, batch, training: bool, stress: Optional[bool] = None) -> Dict[str, torch.Tensor]:
        """Energies and forces, and stress where ``stress`` (default: where the batch has stress labels)."""
        compute_stress = bool(batch[keys.STRESS_MASK].any()) if stress is None else stress
        return model(graph_to_inputs(batch), compute_forces=True, compute_stress=compute_stress, training=training)

    @staticmethod
    def loss_terms(out: Dict[str, torch.Tensor], batch) -> torch.Tensor:
        """[[energy, forces, stress] weighted squared-error sums, [their label counts]], shape [2, 3]."""
        num_atoms = torch.bincount(batch[keys.BATCH], minlength=batch.num_graphs).to(out[keys.ENERGY].dtype)
        frame_weight = batch[keys.WEIGHT]
        forces_mask = batch[keys.FORCES_MASK][batch[keys.BATCH]]
        energy_error = (out[keys.ENERGY] - batch[keys.ENERGY]) / num_atoms
        energy_sum = (frame_weight * batch[keys.ENERGY_MASK] * energy_error.square()).sum()
        forces_error = (out[keys.FORCES] - batch[keys.FORCES]).square().sum(dim=1) / 3.0
        forces_sum = (frame_weight[batch[keys.BATCH]] * forces_mask * forces_error).sum()
        stress_sum = torch.zeros_like(energy_sum)
        if keys.STRESS in out:
            stress_error = (out[keys.STRESS] - batch[keys.STRESS]).square().sum(dim=(1, 2)) / 9.0
            stress_sum = (frame_weight * batch[keys.STRESS_MASK] * stress_error).sum()
        counts = torch.stack([batch[keys.ENERGY_MASK].sum(), forces_mask.sum(), batch[keys.STRESS_MASK].sum()])
        return torch.stack([torch.stack([energy_sum, forces_sum, stress_sum]), counts.to(energy_sum.dtype).detach()])

    @staticmethod
    def combine(terms: torch.Tensor, counts: torch.Tensor, weights: LossWeights) -> torch.Tensor:
        """The loss from squared-error sums [3] and the (global) label counts [3]."""
        factors = torch.tensor([weights.energy, weights.forces, weights.stress], dtype=terms.dtype, device=terms.device)
        return (factors * terms / counts.clamp(min=1.0)).sum()

    def loss(self, out: Dict[str, torch.Tensor], batch, weights: LossWeights, reducer: Reducer, world_size: int) -> torch.Tensor:
        """This process's share of the global batch loss, times world_size (DDP averages gradients)."""
        terms = self.loss_terms(out, batch)
        global_counts = reducer(terms[1].clone())
        return self.combine(terms[0], global_counts, weights) * world_size

    @staticmethod
    def evaluate_file(model, path, output, plots_dir, batch_size=10, keys=None) -> str:
        return evaluate_file(model, path, output, plots_dir, batch_size, keys)

    def new_metrics(self) -> ErrorStats:
        return ErrorStats([ENERGY, ENERGY_PER_ATOM, FORCES, STRESS])

    @staticmethod
    def update_metrics(stats: ErrorStats, out: Dict[str, torch.Tensor], batch) -> None:
        num_atoms = torch.bincount(batch[keys.BATCH], minlength=batch.num_graphs).to(out[keys.ENERGY].dtype)
        stats.add(ENERGY, out[keys.ENERGY] - batch[keys.ENERGY], batch[keys.ENERGY_MASK])
        stats.add(ENERGY_PER_ATOM, (out[keys.ENERGY] - batch[keys.ENERGY]) / num_atoms, batch[keys.ENERGY_MASK])
        forces_mask = batch[keys.FORCES_MASK][batch[keys.BATCH]][:, None].expand(-1, 3)
        stats.add(FORCES, out[keys.FORCES] - batch[keys.FORCES], forces_mask)
        if keys.STRESS in out:
            stress_mask = batch[keys.STRESS_MASK][:, None, None].expand(-1, 3, 3)
            stats.add(STRESS, out[keys.STRESS] - batch[keys.STRESS], stress_mask)

    @staticmethod
    def table(results: Dict[str, Dict[str, float]], title: str) -> str:
        return format_table(results, DISPLAY_UNITS, DISPLAY_SCALE, title)

    @staticmethod
    def epoch_summary(results: Dict[str, Dict[str, float]]) -> str:
        parts = []
        for name, values in results.items():
            if name == ENERGY:
                continue  # per atom is the comparable figure across sizes
            unit = DISPLAY_UNITS[name]
            parts.append(f"{name} MAE {values['mae'] * 1000:.2f} RMSE {values['rmse'] * 1000:.2f} {unit}")
        return ", ".join(parts)


def _split_off_isolated_atoms(data: LabelledStructures):
    """(frames with more than one atom, single-atom frames)."""
    sizes = [len(atoms) for atoms in data.structures]
    many = [i for i, size in enumerate(sizes) if size > 1]
    return _subset(data, many), _subset(data, [i for i, size in enumerate(sizes) if size == 1])


def _concatenate(first: LabelledStructures, second: LabelledStructures) -> LabelledStructures:
    return LabelledStructures(first.path, first.structures + second.structures, first.labels + second.labels)


def _subset(data: LabelledStructures, indices: List[int]) -> LabelledStructures:
    return LabelledStructures(data.path, [data.structures[i] for i in indices], [data.labels[i] for i in indices])


def evaluate_file(
    model: torch.nn.Module,
    path: str,
    output: Optional[str],
    plots_dir: Path,
    batch_size: int = 10,
    label_keys: Optional[Dict[str, str]] = None,
) -> str:
    """Predict every frame of ``path``: a metrics table (returned), parity plots and
    (optionally) an extxyz with the predictions under mlpot_energy, mlpot_forces, mlpot_stress.
    For a committee, also the calibration of its force spread against the actual errors."""
    if output is not None and not str(output).endswith((".xyz", ".extxyz")):
        raise MLPotError(f"--output {output} must end in .xyz or .extxyz")
    data = read_labelled(path, LabelKeys(**(label_keys or {})), require_energy=False)
    results, predictions = evaluate_structures(model, data, batch_size)
    plots_dir.mkdir(parents=True, exist_ok=True)
    _parity_plots(data, predictions, plots_dir)
    if output is not None:
        write_extxyz(output, (_with_predictions(atoms, frame) for atoms, frame in zip(data.structures, predictions)))
    if not results:
        return f"{path} has no labels to compare with; predictions only"
    table = PotentialTask.table(results, f"errors of the model on {path}")
    calibration = force_calibration(data, predictions, plots_dir / "calibration_forces.png")
    return table if calibration is None else f"{table}\n{describe_calibration(calibration)}"


def evaluate_structures(model: torch.nn.Module, data: LabelledStructures, batch_size: int = 10):
    """(error statistics, per-frame predictions) of ``model`` on labelled structures."""
    elements = [chemical_symbols[int(z)] for z in model.atomic_numbers]
    PotentialTask._check_elements(data, elements, "evaluation")
    dtype = next(model.parameters()).dtype
    graphs = data.graphs(model.r_max, dtype)
    stats = ErrorStats([ENERGY, ENERGY_PER_ATOM, FORCES, STRESS])
    predictions: List[Dict[str, Any]] = []
    for batch in make_loader(graphs, batch_size, shuffle=False):
        periodic = bool(batch[keys.PBC].all(dim=1).any())
        out = {key: value.detach() for key, value in PotentialTask.forward(model, batch, False, stress=periodic).items()}
        PotentialTask.update_metrics(stats, out, batch)
        for k in range(batch.num_graphs):
            atoms_of_k = batch[keys.BATCH] == k
            frame = {"energy": float(out[keys.ENERGY][k]), "forces": out[keys.FORCES][atoms_of_k].cpu().numpy()}
            if keys.STRESS in out and bool(batch[keys.PBC][k].all()):
                frame["stress"] = out[keys.STRESS][k].cpu().numpy()
            if FORCES_STD in out:
                frame["forces_std"] = out[FORCES_STD][atoms_of_k].cpu().numpy()
                frame["energy_std"] = float(out[ENERGY_STD][k])
            predictions.append(frame)
    return stats.result(), predictions


def force_calibration(data: LabelledStructures, predictions: List[Dict[str, Any]], plot: Path) -> Optional[Dict[str, Any]]:
    """Spearman rank correlation of a committee's per-atom force spread with the actual per-atom
    force error |F_pred - F_ref| (``spearman``, over ``atoms``), and a log-log plot of the two;
    None without a spread or labels."""
    from mlpot.train import plots

    pairs = [
        (frame["forces_std"], np.linalg.norm(frame["forces"] - label.forces, axis=1))
        for label, frame in zip(data.labels, predictions)
        if "forces_std" in frame and label.forces is not None
    ]
    if not pairs:
        return None
    spread = np.concatenate([p[0] for p in pairs])
    error = np.concatenate([p[1] for p in pairs])
    rho = spearman(spread, error)
    plot.parent.mkdir(parents=True, exist_ok=True)
    plots.calibration(spread, error, rho, plot)
    return {"spearman": rho, "atoms": len(spread), "plot": str(plot)}


def describe_calibration(calibration: Dict[str, Any]) -> str:
    return (
        f"committee calibration: Spearman rank correlation of the per-atom force spread with the per-atom "
        f"force error {calibration['spearman']:.3f} over {calibration['atoms']} atoms (plot {calibration['plot']})"
    )


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _parity_plots(data: LabelledStructures, predictions: List[Dict[str, Any]], directory: Path) -> None:
    from mlpot.train import plots

    labelled = [(atoms, label, frame) for atoms, label, frame in zip(data.structures, data.labels, predictions)]
    energies = [(label.energy / len(atoms), frame["energy"] / len(atoms)) for atoms, label, frame in labelled if label.energy is not None]
    if energies:
        reference, predicted = zip(*energies)
        plots.parity(reference, predicted, "energy per atom", "eV/atom", directory / "parity_energy.png")
    forces = [(label.forces.ravel(), frame["forces"].ravel()) for _, label, frame in labelled if label.forces is not None]
    if forces:
        reference = np.concatenate([f[0] for f in forces])
        predicted = np.concatenate([f[1] for f in forces])
        plots.parity(reference, predicted, "force components", "eV/Å", directory / "parity_forces.png")


def _with_predictions(atoms, frame: Dict[str, Any]):
    atoms, info, arrays = as_frame(atoms)
    info["mlpot_energy"] = frame["energy"]
    arrays["mlpot_forces"] = frame["forces"]
    if "stress" in frame:
        info["mlpot_stress"] = frame["stress"]
    return atoms, info, arrays
