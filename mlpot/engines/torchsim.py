"""An mlpot potential or committee as a TorchSim model, for batched MD and relaxations.

    import torch_sim as ts
    from mlpot.engines.torchsim import MLPotModel
    model = MLPotModel("models/cuau-emt-demo")          # float64 on the CPU
    state = ts.io.atoms_to_state(list_of_atoms, model.device, model.dtype)
    final = ts.optimize(system=state, model=model, optimizer=ts.frechet_cell_fire)

One forward evaluates every system of a :class:`torch_sim.SimState` in one call of the mlpot
model: the systems' neighbour graphs (built per system with mlpot's own neighbour list, so the
edges are exactly those :class:`~mlpot.calculators.MLPotCalculator` uses) are joined into one
batch. Energy [B] (eV), forces [N, 3] (eV/Å) and stress [B, 3, 3] (eV/Å^3, ASE's sign, which is
TorchSim's) equal the calculator's per system; a committee gives its members' mean. Stress is
returned only for states periodic in all three directions, as with the calculator.

Needs the 'torchsim' extra (torch-sim-atomistic); without it, importing this module is one
:class:`~mlpot.errors.MLPotError` line naming the extra.
"""

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols
from torch import nn

from mlpot.config import DTYPES
from mlpot.data import keys
from mlpot.data.geometry import MIN_DISTANCE, check_finite, overlap_message
from mlpot.data.neighbours import VerletList
from mlpot.devices import check_device
from mlpot.errors import MLPotError
from mlpot.kernels import set_kernels
from mlpot.models.io import load_model
from mlpot.optional import require_extra

ts = require_extra("torch_sim", "torchsim", "mlpot TorchSim model")
from torch_sim.models.interface import ModelInterface  # noqa: E402  (after the extra check)

_WHERE = "TorchSim state"


class MLPotModel(ModelInterface):
    """TorchSim's model interface around an mlpot potential or committee.

    ``model_or_path``: a model module, a model file, or a list of model files (a committee).
    ``dtype``: torch.float64 (default, as the calculator) or torch.float32, the precision of
    the evaluation and of the outputs. ``kernel`` and ``skin`` (Å, neighbour-list reuse margin;
    0 rebuilds every call): as for :class:`MLPotCalculator`. Each system keeps its own list, so
    an integrate or optimize loop rebuilds a system's list only when one of its atoms has moved
    more than skin / 2, or its cell changed.
    """

    def __init__(
        self,
        model_or_path: Union[nn.Module, str, Path, Sequence[Union[str, Path]]],
        device: Union[str, torch.device] = "cpu",
        dtype: torch.dtype = torch.float64,
        compute_forces: bool = True,
        compute_stress: bool = True,
        kernel: str = "auto",
        skin: float = 0.5,
    ) -> None:
        super().__init__()
        if dtype not in DTYPES.values():
            raise MLPotError(f"dtype must be one of {', '.join(map(str, DTYPES.values()))}, got {dtype}")
        check_device(str(device), "device")
        if not skin >= 0:
            raise MLPotError(f"skin must be non-negative, got {skin}")
        if isinstance(model_or_path, nn.Module):
            model = model_or_path
        else:
            model = load_model(model_or_path)
            model.requires_grad_(False)  # ours alone: no parameter gradients to track
        self.model = model.to(device=device, dtype=dtype).eval()
        set_kernels(self.model, kernel, device)
        self._device = torch.device(device)
        self._dtype = dtype
        self._compute_forces = compute_forces
        self._compute_stress = compute_stress
        self._memory_scales_with = "n_atoms_x_density"  # radial cutoff: edges grow with density
        self.r_max = float(self.model.r_max)
        self.skin = float(skin)
        self._lists: List[Optional[VerletList]] = []  # one per system of the last state
        self.elements = [chemical_symbols[int(z)] for z in self.model.atomic_numbers]

    def forward(self, state: "ts.SimState", **kwargs) -> Dict[str, torch.Tensor]:
        """Energy [B], forces [N, 3] (if compute_forces) and stress [B, 3, 3] (if compute_stress
        and the state is periodic in all directions) of every system in ``state``."""
        numbers = state.atomic_numbers.detach().cpu().numpy()  # [N]
        system_of_atom = state.system_idx.detach().cpu().numpy()  # [N]
        num_systems = int(state.n_systems)
        self._check_elements(numbers, system_of_atom)
        positions = state.positions.detach().to(device=self.device, dtype=self.dtype)  # [N, 3]
        cells = state.row_vector_cell.detach().to(device=self.device, dtype=self.dtype)  # [B, 3, 3], rows are vectors
        pbc = np.broadcast_to(np.asarray(torch.as_tensor(state.pbc).cpu(), dtype=bool), (3,))
        positions_np = positions.cpu().numpy().astype(np.float64)
        cells_np = cells.cpu().numpy().astype(np.float64)
        if not np.isfinite(positions_np).all() or not np.isfinite(cells_np).all():
            self._refuse_non_finite(positions_np, cells_np, numbers, system_of_atom, pbc)
        edge_index, shifts = self._edges(positions_np, cells_np, numbers, system_of_atom, pbc, num_systems)
        periodic = bool(pbc.all())
        compute_stress = self.compute_stress and periodic
        inputs = {
            keys.POSITIONS: positions,
            keys.ATOMIC_NUMBERS: state.atomic_numbers.detach().to(device=self.device, dtype=torch.long),
            keys.EDGE_INDEX: torch.from_numpy(edge_index).to(self.device),
            keys.SHIFTS: torch.from_numpy(shifts).to(device=self.device, dtype=self.dtype),
            keys.CELL: cells,
            keys.PBC: torch.from_numpy(np.tile(pbc, (num_systems, 1))).to(self.device),
            keys.BATCH: state.system_idx.detach().to(device=self.device, dtype=torch.long),
        }
        out = self.model(inputs, compute_forces=self.compute_forces, compute_stress=compute_stress)
        results = {"energy": out[keys.ENERGY].detach()}  # [B]
        if self.compute_forces:
            results["forces"] = out[keys.FORCES].detach()  # [N, 3]
        if compute_stress:
            results["stress"] = out[keys.STRESS].detach()  # [B, 3, 3]
        for name, value in results.items():
            finite = torch.isfinite(value.reshape(value.shape[0], -1)).all(dim=1)
            if not bool(finite.all()):
                first = int(torch.nonzero(~finite)[0, 0])
                system = first if name != "forces" else int(system_of_atom[first])
                raise MLPotError(
                    f"{_WHERE}: system {system}: the model returned non-finite {name}; "
                    "the structure is far from anything it was trained on"
                )
        return results

    def _edges(self, positions: np.ndarray, cells: np.ndarray, numbers: np.ndarray, system_of_atom: np.ndarray,
               pbc: np.ndarray, num_systems: int):
        """Edge index [2, E] (global atom indices) and Cartesian shifts [E, 3] of all systems, each
        system's neighbour list kept on its own with a skin, as the calculator keeps it."""
        edge_blocks: List[np.ndarray] = []
        shift_blocks: List[np.ndarray] = []
        if len(self._lists) != num_systems:
            self._lists = [None] * num_systems
        for system in range(num_systems):
            atom_ids = np.flatnonzero(system_of_atom == system)  # [N_b], global index of each local atom
            local_positions = positions[atom_ids]  # [N_b, 3]
            structure = (numbers[atom_ids], local_positions, cells[system], pbc)
            kept = self._lists[system]
            if kept is None or not kept.holds(*structure):
                try:
                    kept = self._lists[system] = VerletList(*structure, self.r_max, self.skin)
                except MLPotError as error:  # a periodic cell without volume
                    raise MLPotError(f"{_WHERE}: system {system}: {error}") from None
            (sender, receiver), shifts, squared = kept.edges_within(local_positions, self.r_max)  # [2, E_b], [E_b, 3], [E_b]
            if len(squared) and squared.min() < MIN_DISTANCE**2:
                k = int(np.argmin(squared))
                i, j = sorted((int(receiver[k]), int(sender[k])))
                atoms = _atoms_of(system, positions, cells, numbers, system_of_atom, pbc)
                raise MLPotError(f"{_WHERE}: system {system}: {overlap_message(atoms, i, j, float(np.sqrt(squared[k])))}")
            edge_blocks.append(np.stack([atom_ids[sender], atom_ids[receiver]]))
            shift_blocks.append(shifts)
        edge_index = np.concatenate(edge_blocks, axis=1).astype(np.int64) if edge_blocks else np.zeros((2, 0), np.int64)
        shifts = np.concatenate(shift_blocks) if shift_blocks else np.zeros((0, 3))
        return edge_index, shifts

    def _check_elements(self, numbers: np.ndarray, system_of_atom: np.ndarray) -> None:
        known = np.isin(numbers, self.model.atomic_numbers.cpu().numpy())
        if known.all():
            return
        system = int(system_of_atom[np.flatnonzero(~known)[0]])
        in_system = numbers[(system_of_atom == system) & ~known]
        unknown = ", ".join(chemical_symbols[int(z)] for z in np.unique(in_system))
        raise MLPotError(
            f"{_WHERE}: system {system} contains {unknown}, which the model was not trained on "
            f"(model elements: {', '.join(self.elements)})"
        )

    @staticmethod
    def _refuse_non_finite(positions: np.ndarray, cells: np.ndarray, numbers: np.ndarray,
                           system_of_atom: np.ndarray, pbc: np.ndarray) -> None:
        """One line naming the first system and atom with a non-finite coordinate or cell."""
        bad_atoms = np.flatnonzero(~np.isfinite(positions).all(axis=1))
        bad_cells = np.flatnonzero(~np.isfinite(cells.reshape(len(cells), -1)).all(axis=1))
        candidates = [int(system_of_atom[bad_atoms[0]])] if len(bad_atoms) else []
        candidates += [int(bad_cells[0])] if len(bad_cells) else []
        system = min(candidates)
        check_finite(_atoms_of(system, positions, cells, numbers, system_of_atom, pbc), f"{_WHERE}: system {system}")
        raise AssertionError("a non-finite entry was found but check_finite passed")


def _atoms_of(system: int, positions: np.ndarray, cells: np.ndarray, numbers: np.ndarray,
              system_of_atom: np.ndarray, pbc: np.ndarray) -> Atoms:
    """One system as ASE Atoms, for the shared error messages; atom indices are the system's own."""
    in_system = system_of_atom == system
    return Atoms(numbers=numbers[in_system], positions=positions[in_system], cell=cells[system], pbc=pbc)
