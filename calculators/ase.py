"""ASE calculator for mlpot potentials.

    from mlpot.calculators import MLPotCalculator
    atoms.calc = MLPotCalculator("models/ethanol-rmd17", dtype="float64")

The neighbour list is built with a cutoff of r_max + skin and kept between steps; each step
only recomputes the edge vectors of the stored pairs and keeps those inside r_max, which gives
exactly the edges a fresh build would. It is rebuilt when an atom has moved more than skin / 2
since the last build, or when the cell, periodicity or atoms change.

It never returns a number that is not finite: non-finite coordinates and atoms closer than
:data:`mlpot.data.geometry.MIN_DISTANCE` (found among the edges, at no extra search) are refused
naming the atoms, and a non-finite model output is an :class:`MLPotError`, not a result.
"""

from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress
from ase.data import chemical_symbols
from torch import nn

from mlpot.allocator import keep_freed_memory
from mlpot.config import DTYPES
from mlpot.data import keys
from mlpot.data.geometry import MIN_DISTANCE, check_finite, overlap_message
from mlpot.data.neighbours import VerletList
from mlpot.devices import check_device
from mlpot.errors import MLPotError
from mlpot.kernels import set_kernels
from mlpot.models.committee import ENERGIES_STD, ENERGY_STD, FORCES_STD
from mlpot.models.io import load_model


class MLPotCalculator(Calculator):
    """Energy, free energy, per-atom energies, forces and (periodic cells) stress of an mlpot potential.

    ``model_or_path``: a model module, a model file, or a list of model files (a committee).
    With a committee the results are the members' means, and ``results`` also holds
    ``energy_std`` (eV), ``energy_std_per_atom`` (eV/atom), ``energies_std`` [N] and
    ``forces_std`` [N] (eV/Å, per atom) with ``max_force_std``. ``dtype``: "float64" (default, for MD
    and tests) or "float32". ``skin`` (Å): neighbour-list reuse margin; 0 rebuilds every step.
    ``kernel``: "auto" (fused kernels where the device has them), "fused" or "reference".
    ``partitions``: evaluate in k parts with exact halos (:mod:`mlpot.partition`), so that peak
    memory is that of the largest part; the parts are re-made whenever the neighbour list is
    (atoms moved past skin / 2), by ``partition_method`` "metis" (default), "grid" or "gnn". Under
    torchrun with a process group initialised, each rank evaluates its share of the parts.
    A committee then gives its mean only (no spread). ``memory_budget`` ("8GB", "512MiB" or
    bytes) instead of ``partitions``: at each neighbour-list build, the fewest parts whose largest
    part (with its halo) fits the budget by :func:`mlpot.partition.budget.bytes_per_atom`'s
    conservative estimate; ``partitions`` then holds the number chosen.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(
        self,
        model_or_path: Union[nn.Module, str, Path, Sequence[Union[str, Path]]],
        device: str = "cpu",
        dtype: str = "float64",
        skin: float = 0.5,
        kernel: str = "auto",
        partitions: int = 1,
        partition_method: str = "metis",
        memory_budget: Optional[Union[str, int, float]] = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if dtype not in DTYPES:
            raise MLPotError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if not skin >= 0:
            raise MLPotError(f"skin must be non-negative, got {skin}")
        check_device(device, "device")
        if str(device).startswith("cpu"):
            keep_freed_memory()
        if isinstance(model_or_path, nn.Module):
            model = model_or_path  # converted in place, as a user handing over a module expects
        else:
            model = load_model(model_or_path)
            model.requires_grad_(False)  # ours alone: no parameter gradients to track
        self.model = model.to(device=device, dtype=DTYPES[dtype]).eval()
        self.fused = set_kernels(self.model, kernel, device)
        self.device = torch.device(device)
        self.dtype = DTYPES[dtype]
        self.r_max = float(self.model.r_max)
        self.skin = float(skin)
        self.elements = [chemical_symbols[int(z)] for z in self.model.atomic_numbers]
        self._neighbours: Optional[VerletList] = None
        self.neighbour_list_builds = 0
        self.partitions = partitions
        self.partition_method = partition_method
        self._part_labels: Optional[np.ndarray] = None
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise MLPotError(f"partitions must be an integer of at least 1, got {partitions!r}")
        from mlpot.partition import METHODS

        if partition_method not in METHODS:
            raise MLPotError(f"partition_method must be one of {', '.join(METHODS)}, got {partition_method!r}")
        self.memory_budget: Optional[int] = None
        if memory_budget is not None:
            from mlpot.partition.budget import parse_memory_size

            if partitions != 1:
                raise MLPotError(f"give partitions or memory_budget, not both (got partitions={partitions!r} and memory_budget={memory_budget!r})")
            self.memory_budget = parse_memory_size(memory_budget, "memory_budget")
        if partitions > 1 or self.memory_budget is not None:
            from mlpot.partition.evaluate import check_partitionable

            check_partitionable(self.model)

    def calculate(self, atoms: Optional[Atoms] = None, properties=None, system_changes=all_changes) -> None:
        super().calculate(atoms, properties or ["energy"], system_changes)
        atoms = self.atoms
        if len(atoms) == 0:
            raise MLPotError("structure has no atoms")
        self._check_elements(atoms)
        check_finite(atoms, "structure")
        if self._neighbours is None or not self._neighbours.holds(atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc):
            self._neighbours = VerletList(atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc, self.r_max, self.skin)
            self.neighbour_list_builds += 1
            self._part_labels = self._partition(atoms) if self.partitions > 1 or self.memory_budget is not None else None
        edge_index, shifts, squared_lengths = self._neighbours.edges_within(atoms.positions, self.r_max)
        if len(squared_lengths) and squared_lengths.min() < MIN_DISTANCE**2:
            k = int(np.argmin(squared_lengths))
            i, j = sorted(int(atom) for atom in edge_index[:, k])
            raise MLPotError(f"structure: {overlap_message(atoms, i, j, float(np.sqrt(squared_lengths[k])))}")
        periodic = bool(atoms.pbc.all())
        inputs = self._inputs(atoms, edge_index, shifts)
        if self._part_labels is None:
            out = self.model(inputs, compute_forces=True, compute_stress=periodic)
        else:
            from mlpot.partition import evaluate_partitioned

            out = evaluate_partitioned(self.model, inputs[keys.POSITIONS], inputs[keys.ATOMIC_NUMBERS], inputs[keys.EDGE_INDEX],
                                       inputs[keys.SHIFTS], inputs[keys.CELL][0], self._part_labels, self.partitions, periodic)
        _check_finite_output(out, periodic)
        energy = float(out[keys.ENERGY].detach().sum().cpu())
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "energies": out[keys.NODE_ENERGY].detach().cpu().numpy().astype(np.float64),
            "forces": out[keys.FORCES].detach().cpu().numpy().astype(np.float64),
        }
        if periodic:
            stress = out[keys.STRESS].detach()[0].cpu().numpy().astype(np.float64)
            self.results["stress"] = full_3x3_to_voigt_6_stress(stress)
        if FORCES_STD in out:
            forces_std = out[FORCES_STD].detach().cpu().numpy().astype(np.float64)
            self.results["energy_std"] = float(out[ENERGY_STD].detach().sum().cpu())
            self.results["energy_std_per_atom"] = self.results["energy_std"] / max(len(atoms), 1)
            self.results["energies_std"] = out[ENERGIES_STD].detach().cpu().numpy().astype(np.float64)
            self.results["forces_std"] = forces_std
            self.results["max_force_std"] = float(forces_std.max()) if len(forces_std) else 0.0

    def _partition(self, atoms: Atoms) -> Optional[np.ndarray]:
        """Part labels [N] of the neighbour graph within r_max + skin (None: one part will do)."""
        from mlpot.partition import partition_atoms

        edge_index = np.stack([self._neighbours.sender, self._neighbours.receiver])
        if self.memory_budget is not None:
            from mlpot.partition.budget import parts_for_budget

            self.partitions, labels = parts_for_budget(self.model, self.dtype, self.memory_budget, edge_index, len(atoms),
                                                       self.partition_method, atoms.positions, atoms.cell.array, atoms.pbc)
            return labels if self.partitions > 1 else None
        return partition_atoms(len(atoms), edge_index, self.partitions, self.partition_method,
                               atoms.positions, atoms.cell.array, atoms.pbc)

    def _check_elements(self, atoms: Atoms) -> None:
        unknown = sorted(set(atoms.get_chemical_symbols()) - set(self.elements), key=chemical_symbols.index)
        if unknown:
            raise MLPotError(
                f"structure contains {', '.join(unknown)}, which the model was not trained on "
                f"(model elements: {', '.join(self.elements)})"
            )

    def _inputs(self, atoms: Atoms, edge_index: np.ndarray, shifts: np.ndarray) -> Dict[str, torch.Tensor]:
        as_tensor = lambda array: torch.tensor(array, dtype=self.dtype, device=self.device)  # noqa: E731
        return {
            keys.POSITIONS: as_tensor(atoms.positions),
            keys.ATOMIC_NUMBERS: torch.tensor(atoms.numbers, dtype=torch.long, device=self.device),
            keys.EDGE_INDEX: torch.tensor(edge_index, dtype=torch.long, device=self.device),
            keys.SHIFTS: as_tensor(shifts),
            keys.CELL: as_tensor(atoms.cell.array).unsqueeze(0),
            keys.PBC: torch.tensor(atoms.pbc, device=self.device).unsqueeze(0),
            keys.BATCH: torch.zeros(len(atoms), dtype=torch.long, device=self.device),
        }


def _check_finite_output(out: Dict[str, torch.Tensor], periodic: bool) -> None:
    """Refuse a non-finite energy, force or stress: a NaN handed to an MD engine only resurfaces
    steps later as non-finite coordinates, far from its cause."""
    names = [(keys.ENERGY, "energy"), (keys.NODE_ENERGY, "per-atom energies"), (keys.FORCES, "forces")]
    names += [(keys.STRESS, "stress")] if periodic else []
    bad = [name for key, name in names if not bool(torch.isfinite(out[key].detach()).all())]
    if bad:
        raise MLPotError(f"structure: the model returned non-finite {' and '.join(bad)}; the structure is far from anything it was trained on")
