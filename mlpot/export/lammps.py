"""TorchScript export for the LAMMPS pair style (``pair_style mlpot``).

LAMMPS hands over local and ghost atoms as explicit positions, so the exported module sees a
plain graph (no periodic shifts needed, though they are accepted) and a mask of local atoms.
It returns the energy of the local atoms and, from one gradient with respect to the edge
vectors r_ij = r_sender - r_receiver + shift,

    forces on every atom (local and ghost):  F_s -= dE/dr_ij,  F_r += dE/dr_ij
    virial  W = -sum_ij r_ij (x) dE/dr_ij    (LAMMPS's sum_i r_i F_i), per atom half to each end

With a ghost cutoff of num_interactions * r_max the energy of each rank's local atoms is exact;
LAMMPS reverse-communicates the ghost forces. The network itself is the potential's
``node_energy``: there is no second implementation. A committee's ``node_energy`` is its members'
mean, so a committee exports as its mean model; its spread is not exported.

The archive carries plain-text extra files the C++ side reads without a JSON parser:
``format`` (mlpot-lammps/1), ``elements`` (symbols in model order, space separated), ``r_max``,
``num_interactions``, ``dtype``, ``kernel`` (fused or reference), ``mlpot_version`` and ``dispersion``
(the ``pair_style dispersion/d3`` line a model's D3 term needs beside the export, or none).

With the fused path (the default where mlpot's CPU library is built) the scripted model calls
``mlpot::edge_tp`` and ``mlpot::symmetric``; the pair style registers those operators with the
same kernels (calculators/lammps/mlpot_ops.cpp), so a plugin built by this mlpot version is
needed. ``kernel="reference"`` exports plain torch operations only.

torch has deprecated TorchScript in favour of torch.export / AOTInductor: :mod:`mlpot.export.aoti`
compiles the same :class:`LAMMPSPotential` into an AOTInductor package (.pt2), which the pair
style loads beside TorchScript files.
"""

import copy
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch
from ase.data import chemical_symbols
from torch import nn

from mlpot.config import DTYPES
from mlpot.errors import MLPotError
from mlpot.files import atomic_output
from mlpot.kernels import set_kernels
from mlpot.models.dispersion import D3BJDispersion

FORMAT = "mlpot-lammps/1"


class LAMMPSPotential(nn.Module):
    """forward(positions [N, 3], atomic_numbers [N], edge_index [2, E], shifts [E, 3], local_mask [N])."""

    def __init__(self, potential: nn.Module) -> None:
        super().__init__()
        self.potential = potential

    def forward(
        self,
        positions: torch.Tensor,
        atomic_numbers: torch.Tensor,
        edge_index: torch.Tensor,
        shifts: torch.Tensor,
        local_mask: torch.Tensor,
    ) -> Dict[str, torch.Tensor]:
        sender, receiver = edge_index[0], edge_index[1]
        vectors = positions.index_select(0, sender) - positions.index_select(0, receiver) + shifts  # [E, 3]
        vectors = vectors.detach().requires_grad_(True)
        node_energy = self.potential.node_energy(vectors, atomic_numbers, edge_index) * local_mask.to(positions.dtype)
        energy = node_energy.sum()
        gradients = torch.autograd.grad([energy], [vectors], allow_unused=True)
        edge_gradient = gradients[0]
        if edge_gradient is None:  # no edges at all
            edge_gradient = torch.zeros_like(vectors)
        forces = torch.zeros_like(positions)
        forces = forces.index_add(0, receiver, edge_gradient).index_add(0, sender, -edge_gradient)
        edge_virial = -vectors.detach().unsqueeze(2) * edge_gradient.unsqueeze(1)  # [E, 3, 3]
        atom_virial = torch.zeros(positions.shape[0], 3, 3, dtype=positions.dtype, device=positions.device)
        atom_virial = 0.5 * (atom_virial.index_add(0, sender, edge_virial).index_add(0, receiver, edge_virial))
        return {
            "energy": energy.detach().reshape(1),
            "node_energy": node_energy.detach(),
            "forces": forces,
            "virial": edge_virial.sum(dim=0),
            "atom_virial": atom_virial,
        }


def dispersion_pair_style(model: nn.Module) -> Optional[str]:
    """The LAMMPS ``pair_style dispersion/d3`` line equal to the model's D3(BJ) term (None without one)."""
    config = model.config_dict()
    settings = [member.get("dispersion") for member in config.get("members", [config])]
    d3 = next((setting for setting in settings if setting), None)
    if d3 is None:
        return None
    if any(setting != d3 for setting in settings):
        raise MLPotError("committee members differ in model.dispersion; a LAMMPS export cannot say which D3 to add")
    return f"pair_style dispersion/d3 bj {d3['functional']} {d3['cutoff']:.6g} {d3['cn_cutoff']:.6g}"


def prepare_for_export(
    model: nn.Module, dtype: str = "float64", kernel: str = "auto", without_dispersion: bool = False
) -> Tuple[LAMMPSPotential, Dict[str, str]]:
    """A copy of ``model`` wrapped as :class:`LAMMPSPotential` in ``dtype`` on the ``kernel`` path,
    and the metadata records an export carries (see the module docstring); shared by the
    TorchScript export here and the AOTInductor one (:mod:`mlpot.export.aoti`).

    A model with D3 dispersion is refused unless ``without_dispersion``: pair_style mlpot's ghost
    atoms reach num_interactions x r_max, far short of D3's cutoff, so the export holds only
    ``node_energy`` and LAMMPS's own ``pair_style dispersion/d3`` must be overlaid beside it."""
    if dtype not in DTYPES:
        raise MLPotError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if model.config_dict().get("task", "potential") not in ("potential", "committee"):
        raise MLPotError("only potentials (or committees of them, exported as their mean) can be exported for LAMMPS")
    d3_line = dispersion_pair_style(model)
    if d3_line is not None and not without_dispersion:
        raise MLPotError(
            "the model has D3 dispersion (model.dispersion), which pair_style mlpot cannot evaluate (its ghost cutoff is "
            f"num_interactions x r_max): export with --without-dispersion and add LAMMPS's '{d3_line}' with pair_style hybrid/overlay"
        )
    import mlpot

    model = copy.deepcopy(model).to(DTYPES[dtype]).eval()  # leave the caller's model as it was
    model.requires_grad_(False)
    for module in list(model.modules()):
        if isinstance(getattr(module, "dispersion", None), D3BJDispersion):
            module.dispersion = None  # node_energy, which is what is exported, never calls it
    fused = set_kernels(model, kernel, "cpu")
    metadata = {
        "format": FORMAT,
        "elements": " ".join(chemical_symbols[int(z)] for z in model.atomic_numbers),
        "r_max": repr(float(model.r_max)),
        "num_interactions": str(int(model.num_interactions)),
        "dtype": dtype,
        "kernel": "fused" if fused else "reference",
        "mlpot_version": mlpot.__version__,
        "dispersion": d3_line or "none",  # left out of the export: LAMMPS must add it
    }
    return LAMMPSPotential(model), metadata


def export_lammps(
    model: nn.Module, path: Union[str, Path], dtype: str = "float64", kernel: str = "auto", without_dispersion: bool = False
) -> Path:
    """Script ``model`` for LAMMPS and save it with its metadata (atomically); ``kernel`` as in
    :func:`mlpot.kernels.set_kernels` (the CPU kernels, as LAMMPS runs on the CPU); dispersion
    as in :func:`prepare_for_export`."""
    potential, extra_files = prepare_for_export(model, dtype, kernel, without_dispersion)
    scripted = torch.jit.script(potential)
    path = Path(path)
    with atomic_output(path, "wb") as stream:
        torch.jit.save(scripted, stream, _extra_files=extra_files)
    return path


def read_metadata(path: Union[str, Path]) -> Dict[str, str]:
    """The extra files of an exported model (raises if it is not one)."""
    files = {"format": "", "elements": "", "r_max": "", "num_interactions": "", "dtype": "", "kernel": "", "mlpot_version": "", "dispersion": ""}
    try:
        torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    except (RuntimeError, ValueError) as error:
        raise MLPotError(f"{path} is not a TorchScript archive ({str(error).splitlines()[0]})") from None
    files = {key: value.decode() if isinstance(value, bytes) else value for key, value in files.items()}
    if files["format"] != FORMAT:
        raise MLPotError(f"{path} is not an exported mlpot model (format {files['format']!r})")
    return files
