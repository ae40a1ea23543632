"""A committee of potentials: the mean is the model, the spread says where it is unsure.

    committee = build_model({"task": "committee", "members": [config_1, config_2, ...]})
    committee = load_model(["a.model", "b.model"])          # or one committee file

All members see the same graph (one neighbour list, one input dict) and must share elements and
cutoff. The committee returns the members' mean energy, per-atom energies, forces and stress, so
MD with it is conservative (the mean of conservative forces is the gradient of the mean energy),
and the spread:

    energy_std [B]        standard deviation of the members' total energies
    energies_std [N]      of each atom's energy
    forces_std [N]        per atom: sqrt(mean over members of |F_k - F_mean|^2)

(population standard deviations: zero for identical members, defined for one member). The
members run one after another on the shared inputs; exported for LAMMPS, the committee is its
mean model (``node_energy`` averages the members').
"""

from typing import Any, Dict, List

import torch
from torch import nn

from mlpot.data import keys
from mlpot.errors import MLPotError

ENERGY_STD = "energy_std"
ENERGIES_STD = "energies_std"
FORCES_STD = "forces_std"


def check_members(configs: List[Dict[str, Any]]) -> None:
    """One line for members that cannot form a committee: other tasks, elements or cutoffs."""
    if len(configs) < 1:
        raise MLPotError("a committee needs at least one member")
    first = configs[0]
    for index, config in enumerate(configs):
        if config.get("task", "potential") != "potential":
            raise MLPotError(f"committee member {index} is a {config.get('task')!r} model; members must be potentials")
        if list(config["elements"]) != list(first["elements"]):
            raise MLPotError(
                f"committee member {index} has elements {', '.join(map(str, config['elements']))}, "
                f"member 0 has {', '.join(map(str, first['elements']))}; members must share elements"
            )
        if float(config["r_max"]) != float(first["r_max"]):
            raise MLPotError(f"committee member {index} has r_max {config['r_max']}, member 0 has {first['r_max']}; members must share the cutoff")


class Committee(nn.Module):
    """K potentials of the same elements and cutoff: mean predictions and their spread."""

    # ``config`` is for Python callers; TorchScript (the LAMMPS export) compiles properties
    # unless listed here, and a PotentialConfig has no TorchScript type.
    __jit_unused_properties__ = ["config"]

    def __init__(self, members: List[nn.Module]) -> None:
        super().__init__()
        check_members([member.config_dict() for member in members])
        self.members = nn.ModuleList(members)
        self.r_max = members[0].r_max
        self.num_interactions = max(member.num_interactions for member in members)
        self.register_buffer("atomic_numbers", members[0].atomic_numbers.clone())

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Committee":
        from mlpot.models import build_model

        configs = config.get("members")
        if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
            raise MLPotError("'model.members' of a committee must be a list of potential configs")
        check_members(configs)
        return cls([build_model(member) for member in configs])

    def config_dict(self) -> Dict[str, Any]:
        return {"task": "committee", "members": [member.config_dict() for member in self.members]}

    @property
    def config(self):
        """The first member's config (elements, r_max, dtype are shared)."""
        return self.members[0].config

    def node_energy(self, vectors: torch.Tensor, atomic_numbers: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """The members' mean energy of each atom [N]: what an exported committee computes."""
        total = torch.zeros(atomic_numbers.shape[0], dtype=vectors.dtype, device=vectors.device)
        for member in self.members:
            total = total + member.node_energy(vectors, atomic_numbers, edge_index)
        return total / len(self.members)

    @torch.jit.unused  # Python only (the spread); the LAMMPS export scripts node_energy
    def forward(
        self,
        data: Dict[str, torch.Tensor],
        compute_forces: bool = True,
        compute_stress: bool = False,
        training: bool = False,
    ) -> Dict[str, torch.Tensor]:
        outputs = [member(dict(data), compute_forces, compute_stress, training) for member in self.members]
        out: Dict[str, torch.Tensor] = {}
        for key in outputs[0]:
            stacked = torch.stack([o[key] for o in outputs])  # [K, ...]
            out[key] = stacked.mean(dim=0)
        energies = torch.stack([o[keys.ENERGY] for o in outputs])  # [K, B]
        node_energies = torch.stack([o[keys.NODE_ENERGY] for o in outputs])  # [K, N]
        out[ENERGY_STD] = energies.std(dim=0, unbiased=False)
        out[ENERGIES_STD] = node_energies.std(dim=0, unbiased=False)
        if keys.FORCES in out:
            deviation = torch.stack([o[keys.FORCES] for o in outputs]) - out[keys.FORCES]  # [K, N, 3]
            out[FORCES_STD] = deviation.pow(2).sum(dim=2).mean(dim=0).sqrt()  # [N]
        return out
