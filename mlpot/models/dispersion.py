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

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import ase.units
import numpy as np
import torch
from torch import nn

from mlpot.data.neighbours import VerletList
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
        self._lists: Optional[List[VerletList]] = None  # one per graph of the last call
        self._edges: Tuple[torch.Tensor, ...] = ()  # their edges, as neighbours() returns them

    def forward(
        self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor, batch: torch.Tensor
    ) -> torch.Tensor:
        num_nodes = positions.shape[0]
        edge_index, unit_shifts, edge_graph = self.neighbours(positions, atomic_numbers, cell, pbc, batch)
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
        self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor, batch: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Edges within the D3 cutoff (plus the skin) of every graph: edge_index [2, E] (row 0
        sender), integer image shifts [E, 3] and the graph of each edge [E]; the kept lists while
        they hold."""
        numbers_np = atomic_numbers.detach().cpu().numpy()
        positions_np = positions.detach().cpu().double().numpy()
        cells_np = cell.detach().cpu().double().numpy()
        pbc_np = pbc.detach().cpu().numpy().astype(bool)
        bounds = np.cumsum(np.bincount(batch.detach().cpu().numpy(), minlength=len(cells_np)))  # [B] end of each graph
        starts = np.concatenate([[0], bounds[:-1]])
        structures = [(numbers_np[a:b], positions_np[a:b], cells_np[g], pbc_np[g]) for g, (a, b) in enumerate(zip(starts, bounds))]
        lists = self._lists
        if lists is None or len(lists) != len(structures) or not all(kept.holds(*s) for kept, s in zip(lists, structures)):
            self._lists = [VerletList(*structure, self.cutoff, SKIN) for structure in structures]
            self._edges = (
                torch.from_numpy(np.concatenate([np.stack([v.sender, v.receiver]) + a for v, a in zip(self._lists, starts)], axis=1)),
                torch.from_numpy(np.concatenate([v.unit_shifts for v in self._lists]).astype(np.int64)),
                torch.from_numpy(np.concatenate([np.full(len(v.sender), g) for g, v in enumerate(self._lists)])),
            )
        return tuple(edges.to(device=positions.device, dtype=torch.long) for edges in self._edges)
