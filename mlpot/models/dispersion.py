"""DFT-D3(BJ) dispersion as an additive energy term of a potential (``model.dispersion``).

    model:
      dispersion: {kind: d3bj, functional: pbe, cutoff: 21.17, cn_cutoff: 21.17}   # Å

The energy is Grimme's D3 with Becke-Johnson damping, evaluated by torch-dftd's ``edisp``
(the 'd3' extra), which works on an edge list with distances, so periodic cells, forces and
stress follow from the same autograd as the network's (torch-dftd was chosen over tad-dftd3,
whose 0.7.0 has no lattice: see benchmarks/dispersion/README.md). ``functional`` names
torch-dftd's BJ parameter sets (pbe, pbe0, b3-lyp, revpbe, r2scan is absent, ...).

D3's cutoff (default 40 bohr = 21.17 Å, mace-torch's ``mace_mp`` value) is far longer than
r_max, so the term has its own neighbour list (matscipy, without gradient), built from each
graph's positions, cell and pbc with a skin of SKIN Å and reused while the cells, pbc and atoms
are unchanged and no atom has moved more than SKIN / 2 since (a Verlet list, as the calculator
keeps for the network's edges): in MD it is rebuilt every few dozen steps, not every step. Edges
between cutoff and cutoff + SKIN add nothing (torch-dftd's smoothing is zero from the cutoff on,
and its coordination numbers keep only r <= cn_cutoff), so reuse is exact. The edge vectors are then formed from the
differentiable (strained) positions and cell, so ``MACEPotential.forward`` differentiates one
energy. It is therefore not part of ``node_energy`` (which sees only the r_max edges and is
what LAMMPS runs): the LAMMPS export refuses a model with dispersion and says to use LAMMPS's
``pair_style dispersion/d3`` beside it. Pair energies fade to zero over the last bohr before
the cutoff (torch-dftd's polynomial smoothing), so MD conserves energy; no three-body term.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import ase.units
import numpy as np
import torch
from torch import nn

from mlpot.data.neighbours import neighbour_pairs
from mlpot.errors import MLPotError
from mlpot.optional import require_extra

BOHR = 0.52917726  # Å, torch-dftd's conversion of distances (d3_autoang)
CUTOFF_BOHR = ase.units.Bohr  # Å, torch-dftd's conversion of cutoffs (differs in the 8th digit)
HARTREE = 27.21138505  # eV, torch-dftd's d3_autoev
DEFAULT_CUTOFF = 40.0 * BOHR  # Å
SKIN = 1.0  # Å, Verlet skin of the D3 neighbour list


class D3BJDispersion(nn.Module):
    """Positions [N, 3], atomic numbers [N], cells [B, 3, 3], pbc [B, 3], batch [N] -> D3(BJ)
    energy per atom [N] (eV; each pair's energy half to each atom)."""

    def __init__(self, functional: str = "pbe", cutoff: float = DEFAULT_CUTOFF, cn_cutoff: float = DEFAULT_CUTOFF) -> None:
        super().__init__()
        purpose = "DFT-D3 dispersion (model.dispersion)"
        xc_params = require_extra("torch_dftd.dftd3_xc_params", "d3", purpose)
        self._edisp = require_extra("torch_dftd.functions.dftd3", "d3", purpose).edisp
        try:
            self.params: Dict[str, float] = xc_params.get_dftd3_default_params("bj", functional)
        except ValueError:
            raise MLPotError(f"'model.dispersion.functional' {functional!r} has no D3(BJ) parameters in torch-dftd") from None
        self.functional = functional
        self.cutoff = float(cutoff)
        self.cn_cutoff = float(cn_cutoff)  # <= cutoff (model.dispersion's settings clamp it)
        tables = np.load(Path(require_extra("torch_dftd.nn", "d3", purpose).__file__).parent / "params" / "dftd3_params.npz")
        dtype = torch.get_default_dtype()
        # The reference tables come from the installed torch-dftd, not from the model file.
        self.register_buffer("c6ab", torch.tensor(tables["c6ab"], dtype=dtype), persistent=False)  # [95, 95, 5, 5, 3]
        self.register_buffer("r0ab", torch.tensor(tables["r0ab"], dtype=dtype), persistent=False)  # [95, 95]
        self.register_buffer("rcov", torch.tensor(tables["rcov"], dtype=dtype), persistent=False)  # [95]
        self.register_buffer("r2r4", torch.tensor(tables["r2r4"], dtype=dtype), persistent=False)  # [95]
        self._cache: Optional[_VerletList] = None

    def forward(
        self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor, batch: torch.Tensor
    ) -> torch.Tensor:
        num_nodes = positions.shape[0]
        edge_index, unit_shifts, edge_graph = self.neighbours(positions, cell, pbc, batch)
        if edge_index.shape[1] == 0:
            return positions.new_zeros(num_nodes)
        shifts = torch.bmm(unit_shifts.to(cell.dtype).unsqueeze(1), cell[edge_graph]).squeeze(1)  # [E, 3] Å
        vectors = positions[edge_index[0]] - positions[edge_index[1]] + shifts  # [E, 3]
        distances = torch.linalg.vector_norm(vectors, dim=1) / BOHR  # [E] bohr
        # Each atom is its own "graph" (batch_edge = receiver), so edisp returns per-atom energies;
        # edisp sizes its output by cell.size(0), hence the [N] placeholder.
        energy = self._edisp(
            atomic_numbers, distances, edge_index, c6ab=self.c6ab, r0ab=self.r0ab, rcov=self.rcov, r2r4=self.r2r4,
            params=self.params, cutoff=self.cutoff / CUTOFF_BOHR, cnthr=self.cn_cutoff / CUTOFF_BOHR,
            batch=atomic_numbers, batch_edge=edge_index[1], cell=positions.new_empty(num_nodes, 0),
            damping="bj", cutoff_smoothing="poly", bidirectional=True,
        )  # [N] Hartree, float64
        return (HARTREE * energy).to(positions.dtype)

    @torch.no_grad()
    def neighbours(
        self, positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor, batch: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Edges within the D3 cutoff (plus the skin) of every graph: edge_index [2, E] (row 0
        sender), integer image shifts [E, 3] and the graph of each edge [E]; the cached list while it
        is still valid."""
        positions_np = positions.detach().cpu().double().numpy()
        cells_np = cell.detach().cpu().double().numpy()
        pbc_np = pbc.detach().cpu().numpy().astype(bool)
        batch_np = batch.detach().cpu().numpy()
        cache = self._cache
        if cache is not None and cache.holds(positions_np, cells_np, pbc_np, batch_np):
            return tuple(t.to(positions.device) for t in cache.edges)
        edges = self._build(positions_np, cells_np, pbc_np, batch_np)
        self._cache = _VerletList(positions_np.copy(), cells_np.copy(), pbc_np.copy(), batch_np.copy(), edges)
        return tuple(t.to(positions.device) for t in edges)

    def _build(
        self, positions_np: np.ndarray, cells_np: np.ndarray, pbc_np: np.ndarray, batch_np: np.ndarray
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        counts = np.bincount(batch_np, minlength=cells_np.shape[0]).tolist()
        edges, images, graphs = [], [], []
        start = 0
        for graph, count in enumerate(counts):
            sender, receiver, unit_shifts = neighbour_pairs(
                positions_np[start:start + count], cells_np[graph], pbc_np[graph], self.cutoff + SKIN
            )
            edges.append(np.stack([sender, receiver]) + start)
            images.append(unit_shifts)
            graphs.append(np.full(len(sender), graph))
            start += count
        return (
            torch.from_numpy(np.concatenate(edges, axis=1).astype(np.int64)),
            torch.from_numpy(np.concatenate(images).astype(np.int64)),
            torch.from_numpy(np.concatenate(graphs).astype(np.int64)),
        )


@dataclass
class _VerletList:
    """A D3 neighbour list (cutoff + SKIN) and the structure it was built for."""

    positions: np.ndarray  # [N, 3] Å
    cells: np.ndarray  # [B, 3, 3]
    pbc: np.ndarray  # [B, 3]
    batch: np.ndarray  # [N]
    edges: Tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # edge_index [2, E], unit shifts [E, 3], graph [E]

    def holds(self, positions: np.ndarray, cells: np.ndarray, pbc: np.ndarray, batch: np.ndarray) -> bool:
        """Whether every pair within the cutoff now is still in the list: same atoms and cells, and
        no atom moved more than SKIN / 2 (two atoms approach by at most SKIN)."""
        if positions.shape != self.positions.shape or not np.array_equal(batch, self.batch):
            return False
        if not (np.array_equal(cells, self.cells) and np.array_equal(pbc, self.pbc)):
            return False
        moved = np.max(np.sum((positions - self.positions) ** 2, axis=1), initial=0.0)  # Å^2
        return bool(moved <= (0.5 * SKIN) ** 2)
