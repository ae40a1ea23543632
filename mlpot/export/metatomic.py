"""Export for metatomic (``metatomic-torch``): one file that ASE, i-PI, TorchSim, LAMMPS and GROMACS load.

    mlpot export --model M.model --format metatomic -o M-metatomic.pt
    calculator = metatomic_ase.MetatomicCalculator("M-metatomic.pt")

A metatomic model is a TorchScript :class:`metatomic.torch.AtomisticModel` around a module with
``forward(systems, outputs, selected_atoms)``. The module requests one full neighbour list with the
potential's cutoff r_max (strict: no pair beyond it); the engine computes it and stores it in each
:class:`~metatomic.torch.System` as pairs (first, second, cell shift a, b, c). Each pair becomes an
mlpot edge, sender = second atom, receiver = first, whose vector

    r_ij = positions[second] - positions[first] + cell_shift @ cell

is formed from the system's positions and cell (not copied from the list's stored vectors), so the
engine's autograd over positions gives the forces and over its strain of positions and cell the
stress. The network is the potential's ``node_energy``, the one the calculator and the LAMMPS export
evaluate: no second implementation.

Outputs (eV):

    energy            [systems, 1], or per atom [selected atoms, 1]: a committee's members' mean
    energy_ensemble   committees only: [systems, K] (or per atom), one column per member, so an engine
                      (i-PI's committee tools) derives each member's forces by the same autograd

``selected_atoms`` (domain decomposition: the atoms whose energy an engine wants) is honoured: the
energy of a system is the sum over its selected atoms; all atoms still act as neighbours. The
``interaction_range`` is num_interactions x r_max, the ghost-atom depth LAMMPS needs.

Kernels: the export always uses mlpot's reference (plain torch) path. The fused kernels are mlpot's
own operators (``torch.ops.mlpot.*``, from mlpot's compiled library); a metatomic engine loads only
metatomic's and metatensor's libraries plus extensions a model ships, so a fused export would run
only where mlpot itself is installed, which is what the export is meant to avoid.

D3 dispersion (``model.dispersion``) lives outside ``node_energy`` (torch-dftd with its own
neighbour list, not TorchScript), so a model with it is refused unless ``without_dispersion``; the
engine then has to add D3 itself (metatomic ships a ``DFTD3`` wrapper for AtomisticModels).

Needs the 'metatomic' extra; without it, importing this module is one :class:`MLPotError` line.
"""

import contextlib
import copy
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Union

import torch
from ase.data import chemical_symbols
from torch import nn

from mlpot.config import DTYPES
from mlpot.errors import MLPotError
from mlpot.files import atomic_output
from mlpot.kernels import set_kernels
from mlpot.models.committee import Committee
from mlpot.optional import require_extra



@contextlib.contextmanager
def _torch_index_select() -> Iterator[None]:
    """torch's own ``torch.index_select`` for a while.

    torch_geometric (imported by mlpot.data) replaces ``torch.index_select`` with a Python
    wrapper (torch_geometric/hash_tensor.py, 2.8.1) that TorchScript cannot compile, and
    metatensor-operations scripts functions that call ``torch.index_select`` when it is imported:
    with the wrapper in place ``import metatomic.torch`` fails with "Arguments for call are not
    valid" (index_select's dim). Compiled once, those functions keep torch's operator."""
    current = torch.index_select
    torch.index_select = torch._C._VariableFunctions.index_select
    try:
        yield
    finally:
        torch.index_select = current


with _torch_index_select():
    require_extra("metatomic.torch", "metatomic", "mlpot export --format metatomic")
from metatensor.torch import Labels, TensorBlock, TensorMap  # noqa: E402  (after the extra check)
from metatomic.torch import (  # noqa: E402
    AtomisticModel,
    ModelCapabilities,
    ModelMetadata,
    ModelOutput,
    NeighborListOptions,
    System,
    load_atomistic_model,
)

ENERGY = "energy"
ENERGY_ENSEMBLE = "energy_ensemble"


class MetatomicPotential(nn.Module):
    """metatomic's model interface around K potentials (K = 1, or a committee's members)."""

    def __init__(self, members: List[nn.Module], r_max: float) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.neighbor_options = NeighborListOptions(cutoff=float(r_max), full_list=True, strict=True, requestor="mlpot")

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [self.neighbor_options]

    def member_node_energies(self, system: System) -> torch.Tensor:
        """Each member's energy of every atom [N, K], from the system's neighbour list."""
        pairs = system.get_neighbor_list(self.neighbor_options).samples.values  # [E, 5] int32
        first = pairs[:, 0].to(torch.long)
        second = pairs[:, 1].to(torch.long)
        cell_shifts = pairs[:, 2:5].to(system.positions.dtype)  # [E, 3]
        positions = system.positions  # [N, 3]
        vectors = positions.index_select(0, second) - positions.index_select(0, first) + cell_shifts @ system.cell  # [E, 3]
        edge_index = torch.stack([second, first])  # [2, E]: sender, receiver
        atomic_numbers = system.types.to(torch.long)  # [N]
        energies: List[torch.Tensor] = []
        for member in self.members:
            energies.append(member.node_energy(vectors, atomic_numbers, edge_index))
        return torch.stack(energies, dim=1)

    def forward(
        self, systems: List[System], outputs: Dict[str, ModelOutput], selected_atoms: Optional[Labels] = None
    ) -> Dict[str, TensorMap]:
        system_energies: List[torch.Tensor] = []  # each [K]
        atom_energies: List[torch.Tensor] = []  # each [n_i, K]
        atom_samples: List[torch.Tensor] = []  # each [n_i, 2]: system, atom
        for index, system in enumerate(systems):
            atoms = torch.arange(len(system), device=system.positions.device)  # [n_i]
            if selected_atoms is not None:
                chosen = selected_atoms.values  # [M, 2]: system, atom
                atoms = chosen[chosen[:, 0] == index, 1].to(torch.long)
            energies = self.member_node_energies(system).index_select(0, atoms)  # [n_i, K]
            system_energies.append(energies.sum(dim=0))
            atom_energies.append(energies)
            atom_samples.append(torch.stack([torch.full_like(atoms, index), atoms], dim=1))
        device = systems[0].positions.device
        results: Dict[str, TensorMap] = {}
        for name, request in outputs.items():
            if name != "energy" and name != "energy_ensemble":  # TorchScript compiles no global strings
                continue
            if request.sample_kind == "atom":
                values = torch.cat(atom_energies, dim=0)  # [sum n_i, K]
                samples = Labels(["system", "atom"], torch.cat(atom_samples, dim=0).to(torch.int32))
            else:
                values = torch.stack(system_energies, dim=0)  # [systems, K]
                samples = Labels(["system"], torch.arange(len(systems), device=device, dtype=torch.int32).reshape(-1, 1))
            if name == "energy":
                values = values.mean(dim=1, keepdim=True)  # [samples, 1]
            properties = Labels(["energy"], torch.arange(values.shape[1], device=device, dtype=torch.int32).reshape(-1, 1))
            block = TensorBlock(values=values, samples=samples, components=[], properties=properties)
            results[name] = TensorMap(Labels(["_"], torch.zeros(1, 1, dtype=torch.int32, device=device)), [block])
        return results


def _has_dispersion(model: nn.Module) -> bool:
    config = model.config_dict()
    return any(member.get("dispersion") for member in config.get("members", [config]))


def export_metatomic(
    model: nn.Module,
    path: Union[str, Path],
    dtype: str = "float64",
    kernel: str = "reference",
    without_dispersion: bool = False,
    name: str = "",
) -> Path:
    """Write ``model`` (a potential or a committee) as a metatomic model file (atomically).

    ``kernel``: "reference" or "auto" (both give plain torch: see the module docstring); "fused"
    is refused. ``name`` goes into the model's metadata."""
    if dtype not in DTYPES:
        raise MLPotError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if kernel == "fused":
        raise MLPotError(
            "--kernel fused cannot be exported for metatomic: the fused kernels are mlpot's own operators, "
            "which metatomic engines do not load; use --kernel reference (plain torch, the default here)"
        )
    if model.config_dict().get("task", "potential") not in ("potential", "committee"):
        raise MLPotError("only potentials (or committees of them) can be exported for metatomic")
    if _has_dispersion(model) and not without_dispersion:
        raise MLPotError(
            "the model has D3 dispersion (model.dispersion), which a metatomic export cannot evaluate (torch-dftd is "
            "not TorchScript): export with --without-dispersion and add D3 in the engine (e.g. metatomic's DFTD3 wrapper)"
        )
    model = copy.deepcopy(model).to(DTYPES[dtype]).eval()  # leave the caller's model as it was
    model.requires_grad_(False)
    set_kernels(model, "reference", "cpu")
    members = list(model.members) if isinstance(model, Committee) else [model]
    for member in members:
        member.dispersion = None  # node_energy, which is what is exported, never calls it
    outputs = {ENERGY: ModelOutput(unit="eV", sample_kind="atom", description="mlpot potential energy")}
    if isinstance(model, Committee):
        outputs[ENERGY_ENSEMBLE] = ModelOutput(
            unit="eV", sample_kind="atom", description=f"energies of the committee's {len(members)} members"
        )
    capabilities = ModelCapabilities(
        outputs=outputs,
        atomic_types=[int(z) for z in model.atomic_numbers],
        interaction_range=float(model.r_max) * int(model.num_interactions),
        length_unit="angstrom",
        supported_devices=["cpu", "cuda"],
        dtype=dtype,
    )
    elements = " ".join(chemical_symbols[int(z)] for z in model.atomic_numbers)
    description = f"mlpot {'committee of ' + str(len(members)) + ' potentials' if len(members) > 1 else 'potential'}: {elements}"
    metadata = ModelMetadata(name=name, description=description)
    atomistic = AtomisticModel(MetatomicPotential(members, float(model.r_max)).eval(), metadata, capabilities)
    path = Path(path)
    with tempfile.TemporaryDirectory() as directory, atomic_output(path, "wb") as stream, _no_extensions():
        saved = Path(directory) / path.name  # metatomic saves to a path; the rename makes it atomic
        atomistic.save(str(saved))
        with saved.open("rb") as source:
            shutil.copyfileobj(source, stream)
    return path


@contextlib.contextmanager
def _no_extensions() -> Iterator[None]:
    """``AtomisticModel.save`` records every TorchScript library loaded in the process (say
    vesin's, once metatomic_ase is imported) as an extension the model needs, and engines then
    refuse the file where that library is missing. The exported module calls torch, metatensor and
    metatomic operators only, so it is saved with none recorded."""
    loaded = torch.ops.loaded_libraries
    torch.ops.loaded_libraries = set()
    try:
        yield
    finally:
        torch.ops.loaded_libraries = loaded


def summary(path: Union[str, Path]) -> str:
    """One line about an exported file, read back through metatomic's own loader."""
    loaded = load_atomistic_model(str(path))
    capabilities = loaded.capabilities()
    elements = " ".join(chemical_symbols[z] for z in capabilities.atomic_types)
    line = (
        f"wrote {path}: metatomic model, elements {elements}, interaction range {capabilities.interaction_range:g} Å, "
        f"{capabilities.dtype}, outputs {', '.join(capabilities.outputs.keys())}"
    )
    if ENERGY_ENSEMBLE in capabilities.outputs:
        line += " (energy is the committee's mean, energy_ensemble its members' energies)"
    return line
