"""The backmapping task: a VAE from coarse-grained beads back to all atoms of one molecule.

Data files (``data.train``/``valid``/``test``) are trajectories of one molecule in any
ASE-readable format; multi-model PDB keeps atom names (needed by the alpha-carbon mapping and the
phi/psi metrics). Without ``data.valid`` the last ``valid_fraction`` of the training frames is
held out as one contiguous block, so validation frames are not time neighbours of training ones.

The mapping is made from the training data and stored in the model config (``bead_of_atom``,
``bonds``, names), so a saved model can backmap new CG frames. Loss, each term a mean over the
global batch (``training.loss`` sets beta and gamma):

    L = <|x_a - x_a^ref|^2>_atoms + beta <KL(q(z_b | atoms) || p(z_b | CG))>_beads
        + gamma <(|x_i - x_j| - |x_i^ref - x_j^ref|)^2>_bonds
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch

from mlpot.cg.data import average_neighbours, batch_inputs, frame_graphs
from mlpot.cg.evaluation import format_scores, score
from mlpot.cg.mapping import alpha_carbon_mapping, bead_positions, bead_weights, girvan_newman_mapping, read_mapping_file
from mlpot.cg.molecule import Molecule, backbone_dihedrals, consensus_bonds, read_trajectory
from mlpot.config import parse_section
from mlpot.data import keys
from mlpot.errors import MLPotError
from mlpot.models.backmapping import BackmappingConfig
from mlpot.train.config import TrainConfig
from mlpot.train.metrics import ErrorStats, Reducer, format_table
from mlpot.train.tasks.potential import PreparedData

RMSD, KL, BOND = "rmsd", "kl", "bond"
DISPLAY_UNITS = {RMSD: "Å", KL: "nats/bead", BOND: "Å"}


@dataclass
class BackmappingLoss:
    """``training.loss`` of the backmapping task."""

    beta: float = 1e-4  # weight of the KL divergence per bead (larger values trade reconstruction for samples)
    gamma: float = 1.0  # weight of the squared bond-length error

    def validate(self, where: str) -> None:
        for key in ("beta", "gamma"):
            if getattr(self, key) < 0:
                raise MLPotError(f"'{where}.{key}' must not be negative, got {getattr(self, key)!r}")


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor, prior_mean: torch.Tensor, prior_logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, e^logvar) || N(prior_mean, e^prior_logvar)) per row, summed over the latent, [M]."""
    ratio = torch.exp(logvar - prior_logvar)
    return 0.5 * (ratio + (mean - prior_mean).square() / torch.exp(prior_logvar) - 1.0 - (logvar - prior_logvar)).sum(dim=1)


class BackmappingTask:
    """Reads trajectories, makes the mapping, and defines loss and metrics."""

    name = "backmapping"

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        if config.data.keys:
            raise MLPotError("'data.keys' is not used by the backmapping task (trajectories carry no labels)")
        self.settings = parse_section(BackmappingLoss, config.training.loss, "training.loss")
        self.bonds = torch.zeros(0, 2, dtype=torch.long)

    def check_model_config(self) -> None:
        """Fail on a bad model key before any data is read (the molecule comes from the data)."""
        trial = dict(self.config.model)
        if "bead_of_atom" not in trial:  # a stand-in molecule: two residues of one CA each
            placeholder = {"atomic_numbers": [6, 6], "bead_of_atom": [0, 1], "atom_names": ["CA", "CA"], "residue_names": ["ALA", "ALA"], "residue_ids": [1, 2]}
            trial.update(placeholder)
        parsed = parse_section(BackmappingConfig, trial, "model")
        if "bead_of_atom" in self.config.model:
            return
        if parsed.mapping == "girvan_newman" and parsed.num_beads is None:
            raise MLPotError("'model.num_beads' is required by the girvan_newman mapping")
        if parsed.mapping == "file" and (parsed.mapping_file is None or not Path(parsed.mapping_file).is_file()):
            raise MLPotError(f"'model.mapping_file' must name an existing file for the file mapping, got {parsed.mapping_file!r}")

    # ----------------------------------------------------------------------------- data
    def prepare(self, dtype: torch.dtype) -> PreparedData:
        data = self.config.data
        molecule, train = read_trajectory(data.train)
        if data.valid is not None:
            valid = self._same_molecule(molecule, data.valid)
        else:
            held = max(1, int(round(data.valid_fraction * len(train))))
            if held >= len(train):
                raise MLPotError(f"{data.train}: cannot hold out {held} of {len(train)} frames for validation")
            train, valid = train[:-held], train[-held:]
        test = self._same_molecule(molecule, data.test) if data.test is not None else None
        model = self._complete_model_config(molecule, train)
        self.bonds = torch.tensor(model["bonds"], dtype=torch.long).reshape(-1, 2)
        weights = bead_weights(model["bead_of_atom"], molecule, model.get("bead_position", "centroid"))
        r_max = float(model.get("r_max", BackmappingConfig.r_max))
        cg_r_max = float(model.get("cg_r_max", BackmappingConfig.cg_r_max))

        def graphs(trajectory: Optional[np.ndarray]):
            if trajectory is None:
                return []
            return frame_graphs(trajectory, bead_positions(trajectory, model["bead_of_atom"], weights), r_max, cg_r_max, dtype)

        train_graphs = graphs(train)
        for key, value in average_neighbours(train_graphs).items():
            model.setdefault(key, value)
        summary = {
            "train": {"file": str(data.train), "frames": len(train)},
            "valid": {"file": str(data.valid or data.train), "frames": len(valid)},
            "test": {"file": str(data.test), "frames": len(test) if test is not None else 0},
            "atoms": len(molecule),
            "beads": max(model["bead_of_atom"]) + 1,
        }
        return PreparedData(train=train_graphs, valid=graphs(valid), test=graphs(test), model_config=model, summary=summary)

    @staticmethod
    def _same_molecule(molecule: Molecule, path: str) -> np.ndarray:
        other, trajectory = read_trajectory(path)
        if other.numbers != molecule.numbers:
            raise MLPotError(f"{path}: its atoms differ from the training file's (one molecule per model)")
        return trajectory

    def _complete_model_config(self, molecule: Molecule, train: np.ndarray) -> Dict[str, Any]:
        """Molecule, bonds, mapping and dihedrals from the training data unless given."""
        model = dict(self.config.model)
        model["task"] = "backmapping"
        model.setdefault("atomic_numbers", list(molecule.numbers))
        if list(model["atomic_numbers"]) != list(molecule.numbers):
            raise MLPotError(f"{self.config.data.train}: its atoms differ from 'model.atomic_numbers'")
        model.setdefault("atom_names", molecule.atom_names)
        model.setdefault("residue_names", molecule.residue_names)
        model.setdefault("residue_ids", molecule.residue_ids)
        model.setdefault("bonds", consensus_bonds(np.asarray(molecule.numbers), train))
        if "bead_of_atom" not in model:
            mapping = model.get("mapping", "girvan_newman")
            if mapping == "girvan_newman":
                model["bead_of_atom"] = girvan_newman_mapping(len(molecule), model["bonds"], int(model["num_beads"]))
            elif mapping == "alpha_carbon":
                model["bead_of_atom"] = alpha_carbon_mapping(molecule)
            else:
                model["bead_of_atom"] = read_mapping_file(model["mapping_file"], len(molecule))
        model["num_beads"] = max(model["bead_of_atom"]) + 1
        if "dihedrals" not in model:
            found = backbone_dihedrals(molecule)
            model["dihedrals"] = [quad for _, quad in found]
            model["dihedral_names"] = [name for name, _ in found]
        return model

    # ----------------------------------------------------------------------------- loss
    def loss_weights(self, stage_two: bool) -> BackmappingLoss:
        return self.settings  # one stage: the same weights throughout

    @staticmethod
    def forward(model: torch.nn.Module, batch, training: bool) -> Dict[str, torch.Tensor]:
        """Posterior samples while training, the posterior mean otherwise."""
        return model(batch_inputs(batch), mode="train" if training else "reconstruct")

    def _bond_errors(self, out: Dict[str, torch.Tensor], batch) -> torch.Tensor:
        """Bond-length errors (Å) of every bond of every frame, [F * bonds]."""
        num_frames = batch.num_graphs
        atoms_per_frame = batch[keys.POSITIONS].shape[0] // num_frames
        offsets = torch.arange(num_frames, device=self.bonds.device).view(-1, 1, 1) * atoms_per_frame
        pairs = (self.bonds.unsqueeze(0) + offsets).reshape(-1, 2).to(batch[keys.POSITIONS].device)  # [F B, 2]

        def lengths(positions: torch.Tensor) -> torch.Tensor:
            return torch.linalg.vector_norm(positions[pairs[:, 0]] - positions[pairs[:, 1]], dim=1)

        return lengths(out[keys.BACKMAPPED_POSITIONS]) - lengths(batch[keys.POSITIONS])

    def loss_terms(self, out: Dict[str, torch.Tensor], batch) -> torch.Tensor:
        """[[coordinate, KL, bond] sums, [atoms, beads, bonds]], shape [2, 3]."""
        squared = (out[keys.BACKMAPPED_POSITIONS] - batch[keys.POSITIONS]).square().sum()
        kl = kl_divergence(out[keys.LATENT_MEAN], out[keys.LATENT_LOGVAR], out[keys.PRIOR_MEAN], out[keys.PRIOR_LOGVAR])
        bond = self._bond_errors(out, batch)
        counts = torch.tensor([batch[keys.POSITIONS].shape[0], kl.shape[0], bond.shape[0]], dtype=squared.dtype, device=squared.device)
        return torch.stack([torch.stack([squared, kl.sum(), bond.square().sum()]), counts])

    @staticmethod
    def combine(terms: torch.Tensor, counts: torch.Tensor, weights: BackmappingLoss) -> torch.Tensor:
        factors = torch.tensor([1.0, weights.beta, weights.gamma], dtype=terms.dtype, device=terms.device)
        return (factors * terms / counts.clamp(min=1.0)).sum()

    def loss(self, out: Dict[str, torch.Tensor], batch, weights: BackmappingLoss, reducer: Reducer, world_size: int) -> torch.Tensor:
        """This process's share of the global batch loss, times world_size (DDP averages gradients)."""
        terms = self.loss_terms(out, batch)
        return self.combine(terms[0], reducer(terms[1].clone()), weights) * world_size

    # ----------------------------------------------------------------------------- metrics
    def new_metrics(self) -> ErrorStats:
        return ErrorStats([RMSD, KL, BOND])

    def update_metrics(self, stats: ErrorStats, out: Dict[str, torch.Tensor], batch) -> None:
        """rmsd: atom displacements (its RMSE is the RMSD); kl: per bead; bond: length errors."""
        stats.add(RMSD, torch.linalg.vector_norm(out[keys.BACKMAPPED_POSITIONS] - batch[keys.POSITIONS], dim=1))
        stats.add(KL, kl_divergence(out[keys.LATENT_MEAN], out[keys.LATENT_LOGVAR], out[keys.PRIOR_MEAN], out[keys.PRIOR_LOGVAR]))
        stats.add(BOND, self._bond_errors(out, batch))

    @staticmethod
    def table(results: Dict[str, Dict[str, float]], title: str) -> str:
        return format_table(results, DISPLAY_UNITS, {}, title)

    @staticmethod
    def epoch_summary(results: Dict[str, Dict[str, float]]) -> str:
        parts = []
        if RMSD in results:
            parts.append(f"RMSD {results[RMSD]['rmse']:.3f} Å")
        if KL in results:
            parts.append(f"KL {results[KL]['mae']:.3f}")
        if BOND in results:
            parts.append(f"bond RMSE {results[BOND]['rmse']:.3f} Å")
        return ", ".join(parts)

    @staticmethod
    def evaluate_file(model, path, output, plots_dir, batch_size=10, keys=None) -> str:
        """All backmapping metrics of ``model`` on trajectory ``path`` (16 prior samples per
        frame); ``output`` (.xyz/.extxyz/.pdb) receives the reconstructions."""
        from mlpot.cg.output import write_structures

        if output is not None and not str(output).endswith((".xyz", ".extxyz", ".pdb")):
            raise MLPotError(f"--output {output} must end in .xyz, .extxyz or .pdb")
        molecule, trajectory = read_trajectory(path)
        if molecule.numbers != list(model.config.atomic_numbers):
            raise MLPotError(f"{path}: its atoms differ from the molecule the model was trained on")
        results, recon, samples = score(model, trajectory, samples=16, batch_size=max(batch_size, 1))
        if output is not None:
            write_structures(output, model.config.molecule(), recon, [{"frame": k} for k in range(len(recon))])
        _ramachandran_plots(model.config, trajectory, samples, Path(plots_dir))
        return format_scores(results, f"backmapping metrics of the model on {path} ({len(trajectory)} frames, 16 samples each)")


def _ramachandran_plots(config: BackmappingConfig, reference: np.ndarray, samples: np.ndarray, directory: Path) -> None:
    """ramachandran_<residue>.png for each residue with both phi and psi."""
    from mlpot.cg.metrics import dihedral_angles
    from mlpot.cg.plots import ramachandran

    names = config.dihedral_names
    for k, name in enumerate(names):
        if not name.startswith("phi ") or f"psi {name[4:]}" not in names:
            continue
        pair = [config.dihedrals[k], config.dihedrals[names.index(f"psi {name[4:]}")]]
        directory.mkdir(parents=True, exist_ok=True)
        ramachandran(
            dihedral_angles(reference, pair), dihedral_angles(samples, pair).reshape(-1, 2), name[4:], directory / f"ramachandran_{name[4:]}.png"
        )
