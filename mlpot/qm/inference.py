"""Dense H (and S) matrices from a trained Hamiltonian model, frame by frame."""

from typing import Dict, List, Optional

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols

from mlpot.data import keys
from mlpot.data.dataset import make_loader
from mlpot.data.graph import atoms_to_graph, graph_to_inputs
from mlpot.errors import MLPotError

MATRICES = {
    "hamiltonian": (keys.HAMILTONIAN_NODE_BLOCKS, keys.HAMILTONIAN_EDGE_BLOCKS),
    "overlap": (keys.OVERLAP_NODE_BLOCKS, keys.OVERLAP_EDGE_BLOCKS),
}


def check_structures(model: torch.nn.Module, structures: List[Atoms], source: str) -> None:
    """Molecules of the model's elements only; errors name the frame."""
    known = {int(z) for z in model.atomic_numbers}
    for frame, atoms in enumerate(structures):
        unknown = sorted({int(z) for z in atoms.numbers} - known)
        if unknown:
            symbols = ", ".join(chemical_symbols[z] for z in unknown)
            raise MLPotError(f"{source}, frame {frame}: {symbols} not among the model's elements ({', '.join(model.config.elements)})")
        if atoms.pbc.any():
            raise MLPotError(f"{source}, frame {frame}: periodic structure; Hamiltonian models take molecules")


def predict_matrices(
    model: torch.nn.Module, structures: List[Atoms], source: str, batch_size: int = 10
) -> List[Dict[str, Optional[np.ndarray]]]:
    """[{"hamiltonian": [n_ao, n_ao], "overlap": [n_ao, n_ao] or None}] in Eh, PySCF's AO order.

    Atom pairs farther apart than the model's r_max get zero blocks.
    """
    check_structures(model, structures, source)
    parameter = next(model.parameters())
    graphs = [atoms_to_graph(atoms, model.r_max, dtype=parameter.dtype) for atoms in structures]
    results: List[Dict[str, Optional[np.ndarray]]] = []
    for batch in make_loader(graphs, batch_size, shuffle=False):
        batch = batch.to(parameter.device)
        with torch.no_grad():
            out = {key: value.cpu().numpy() for key, value in model(graph_to_inputs(batch)).items()}
        ptr = batch[keys.PTR].cpu().numpy()
        edge_index = batch[keys.EDGE_INDEX].cpu().numpy()
        numbers = batch[keys.ATOMIC_NUMBERS].cpu().numpy()
        for k in range(batch.num_graphs):
            nodes = slice(ptr[k], ptr[k + 1])
            edges = (edge_index[1] >= ptr[k]) & (edge_index[1] < ptr[k + 1])
            local_edges = edge_index[:, edges] - ptr[k]
            frame: Dict[str, Optional[np.ndarray]] = {}
            for name, (node_key, edge_key) in MATRICES.items():
                frame[name] = (
                    model.layout.to_matrix(out[node_key][nodes], out[edge_key][edges], numbers[nodes], local_edges)
                    if node_key in out
                    else None
                )
            results.append(frame)
    return results
