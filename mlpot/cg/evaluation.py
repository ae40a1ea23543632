"""Reconstruct and sample a trajectory with a backmapping model, and score both.

Reconstruction decodes the encoder's posterior mean (the model sees the atoms); samples draw
the latent from the prior p(z | CG) (the model sees only the beads), ``samples`` per frame.
"""

from typing import Dict, Tuple

import numpy as np
import torch

from mlpot.cg import metrics
from mlpot.cg.data import batch_inputs, cg_inputs, frame_graphs
from mlpot.data import keys
from mlpot.data.dataset import make_loader


@torch.no_grad()
def reconstruct(model: torch.nn.Module, trajectory: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Posterior-mean reconstructions [F, n, 3] of atomistic frames [F, n, 3]."""
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    cg = model.map_to_beads(trajectory)
    graphs = frame_graphs(trajectory, cg, model.r_max, model.cg_r_max, dtype)
    decoded = []
    for batch in make_loader(graphs, batch_size, shuffle=False):
        inputs = {key: value.to(device) for key, value in batch_inputs(batch).items()}
        decoded.append(model(inputs, mode="reconstruct")[keys.BACKMAPPED_POSITIONS].cpu().double().numpy())
    return np.concatenate(decoded).reshape(trajectory.shape)


@torch.no_grad()
def sample(model: torch.nn.Module, cg: np.ndarray, samples: int, batch_size: int = 64) -> np.ndarray:
    """Prior samples [F, K, n, 3] for CG frames [F, N, 3] (``batch_size`` CG frames at a time)."""
    dtype = next(model.parameters()).dtype
    device = str(next(model.parameters()).device)
    out = []
    for start in range(0, len(cg), batch_size):
        chunk = np.repeat(cg[start : start + batch_size], samples, axis=0)  # [B K, N, 3]
        decoded = model(cg_inputs(chunk, model.cg_r_max, dtype, device), mode="sample")[keys.BACKMAPPED_POSITIONS]
        out.append(decoded.cpu().double().numpy().reshape(-1, samples, model.num_atoms, 3))
    return np.concatenate(out)


def score(
    model: torch.nn.Module, trajectory: np.ndarray, samples: int = 16, batch_size: int = 64
) -> Tuple[Dict[str, float], np.ndarray, np.ndarray]:
    """(metrics, reconstructions [F, n, 3], samples [F, K, n, 3]) on atomistic frames [F, n, 3]."""
    numbers = model.atomic_numbers.cpu().numpy()
    heavy = numbers != 1
    cg = model.map_to_beads(trajectory)
    recon = reconstruct(model, trajectory, batch_size)
    drawn = sample(model, cg, samples, batch_size)  # [F, K, n, 3]
    reference = np.repeat(trajectory[:, None], samples, axis=1)  # [F, K, n, 3]
    flat_samples = drawn.reshape(-1, *trajectory.shape[1:])
    flat_reference = reference.reshape(-1, *trajectory.shape[1:])
    centroid = metrics.centroid_baseline(cg, model.config.bead_of_atom)
    results = {
        "frames": float(len(trajectory)),
        "recon_rmsd": metrics.rmsd(recon, trajectory),
        "recon_heavy_rmsd": metrics.rmsd(recon[:, heavy], trajectory[:, heavy]),
        "recon_graph_edit_ratio": metrics.graph_edit_ratio(numbers, recon, trajectory),
        "recon_valid_ratio": metrics.valid_ratio(numbers, recon, trajectory),
        "recon_bond_length_mae": metrics.bond_length_error(recon, trajectory, model.config.bonds),
        "sample_rmsd": metrics.rmsd(drawn, reference),
        "sample_heavy_rmsd": metrics.rmsd(drawn[:, :, heavy], reference[:, :, heavy]),
        "sample_graph_edit_ratio": metrics.graph_edit_ratio(numbers, flat_samples, flat_reference),
        "sample_valid_ratio": metrics.valid_ratio(numbers, flat_samples, flat_reference),
        "sample_bond_length_mae": metrics.bond_length_error(drawn, reference, model.config.bonds),
        "diversity": metrics.diversity(drawn),
        "centroid_rmsd": metrics.rmsd(centroid, trajectory),
        "centroid_heavy_rmsd": metrics.rmsd(centroid[:, heavy], trajectory[:, heavy]),
    }
    dihedrals = model.config.dihedrals
    if dihedrals:
        js = metrics.ramachandran_js(drawn, trajectory, dihedrals, model.config.dihedral_names)
        for residue, value in js.items():
            results[f"js_phi_psi_{residue}"] = value
    return results, recon, drawn


UNITS = {"rmsd": "Å", "ratio": "", "bond_length": "Å", "diversity": "Å", "js": "", "frames": ""}


def format_scores(results: Dict[str, float], title: str) -> str:
    lines = [title]
    for name, value in results.items():
        unit = next((u for part, u in UNITS.items() if part in name), "")
        lines.append(f"{name:<28}{value:>12.4f}  {unit}".rstrip())
    return "\n".join(lines)
