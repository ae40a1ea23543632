"""MACE-style interatomic potential: energies, forces and stress from one forward.

    E_i = E0[z_i] + b[z_i] + scale * sum_t readout_t(h_i^t) + shift [+ ZBL_i],   E = sum_i E_i
    F = -dE/dpositions,   virial = -dE/d(strain),   stress = -virial / volume

Forces and stress are autograd derivatives of the same energy, so forces are exactly
conservative. Strain is applied as a symmetric displacement of positions, cell and shifts.

E0, scale and shift are fixed from the data; b is a learnable per-element offset, zero at the
start. D3(BJ) dispersion, with ``dispersion``, is added to E_i in ``forward`` (not in ``node_energy``:
it needs its own neighbour list, see :mod:`mlpot.models.dispersion`). ZBL_i, with ``pair_repulsion: zbl``, is the screened nuclear repulsion of
:mod:`mlpot.nn.repulsion` (inside the scaled sum with ``pair_repulsion_scaled``, as mace-torch's
ScaleShiftMACE has it). Without it a constant error in the per-atom energy can only be removed through the
network, whose readouts carry no bias: fitting forces then leaves the energy offset by tenths of
an eV per atom for many epochs (rMD17 ethanol: 127 vs 2.2 meV/atom after three epochs).
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Union

import torch
from ase.data import atomic_numbers as symbol_to_z
from torch import nn

from mlpot.config import default_dtype, parse_section, require
from mlpot.data import keys
from mlpot.errors import MLPotError
from mlpot.models.backbone import Backbone, backbone_checks, interaction_kinds, layer_flags
from mlpot.models.elements import canonical_elements, species_of, species_table
from mlpot.models.dispersion import DEFAULT_CUTOFF as DEFAULT_D3_CUTOFF
from mlpot.models.dispersion import D3BJDispersion
from mlpot.nn.irreps import FeatureIrreps
from mlpot.nn.readout import LinearReadout, MLPReadout
from mlpot.nn.repulsion import ZBLRepulsion
from mlpot.nn.scatter import scatter_sum


@dataclass
class PotentialConfig:
    """Hyper-parameters of :class:`MACEPotential`; names match mace-torch's where they exist."""

    elements: List[Union[str, int]]
    task: Literal["potential"] = "potential"
    r_max: float = 5.0
    num_bessel: int = 8
    num_polynomial_cutoff: int = 5
    max_ell: int = 3
    hidden_irreps: str = "128x0e+128x1o"
    correlation: int = 3
    num_interactions: int = 2
    radial_mlp: List[int] = field(default_factory=lambda: [64, 64, 64])
    interaction: Union[str, List[str]] = "mace"  # or "attention"; or one per layer
    attention: Dict[str, Any] = field(default_factory=dict)  # heads, hidden, value_channels, nonlinear
    readout_mlp: int = 16
    last_readout: Literal["mlp", "linear"] = "mlp"  # linear: as mace-torch's one-layer models have it
    readout_activation: Literal["silu", "tanh", "none"] = "silu"  # of the last readout's MLP
    avg_num_neighbors: float = 10.0
    atomic_energies: Optional[Dict[str, float]] = None
    scale: float = 1.0
    shift: float = 0.0
    dtype: Literal["float32", "float64"] = "float64"
    init_from: Optional[str] = None  # the model this one was fine-tuned from (mlpot train reads it)
    # Per layer: an element-dependent linear of the layer's input added to its output (default:
    # every layer but the first), and one on the messages before the product (default: none;
    # mace-torch's RealAgnosticInteractionBlock). Imported mace-torch models set both.
    self_connection: Optional[List[bool]] = None
    element_messages: Optional[List[bool]] = None
    distance_transform: Optional[Literal["agnesi"]] = None  # of the lengths the radial basis reads
    neighbour_normalization: Literal["average", "density"] = "average"  # messages / avg_num_neighbors or a learnt density
    pair_repulsion: Optional[Literal["zbl"]] = None  # short-range ZBL repulsion (mlpot.nn.repulsion)
    pair_repulsion_scaled: bool = False  # multiply the repulsion by scale (mace-torch's ScaleShiftMACE)
    # DFT-D3(BJ) added to the energy: {kind: d3bj, functional: pbe, cutoff: Å, cn_cutoff: Å} (mlpot.models.dispersion)
    dispersion: Optional[Dict[str, Any]] = None

    def validate(self, where: str) -> None:
        self.elements = canonical_elements(self.elements, f"{where}.elements")
        FeatureIrreps.parse(self.hidden_irreps)
        checks = backbone_checks(self, where) + [
            (0 <= self.max_ell <= 6, "max_ell", "must be between 0 and 6"),
            (self.readout_mlp >= 1, "readout_mlp", "must be positive"),
        ]
        require(checks, self, where)
        for key in ("self_connection", "element_messages"):
            layer_flags(getattr(self, key), [False] * self.num_interactions, key, where)
        kinds = interaction_kinds(self.interaction, self.num_interactions, where)
        if self.neighbour_normalization == "density" and any(kind != "mace" for kind in kinds):
            raise MLPotError(f"'{where}.neighbour_normalization' density needs interaction mace in every layer, got {self.interaction!r}")
        energies = {str(k): float(v) for k, v in (self.atomic_energies or {}).items()}
        for symbol in energies:
            if symbol not in self.elements:
                raise MLPotError(f"'{where}.atomic_energies' names {symbol}, which is not in elements {self.elements}")
        self.atomic_energies = {symbol: energies.get(symbol, 0.0) for symbol in self.elements}
        if self.dispersion is not None:
            self.dispersion = dispersion_settings(self.dispersion, f"{where}.dispersion")


def dispersion_settings(raw: Any, where: str) -> Dict[str, Any]:
    """``model.dispersion`` with its defaults filled in, or one line naming what is wrong."""
    defaults: Dict[str, Any] = {"kind": "d3bj", "functional": "pbe", "cutoff": DEFAULT_D3_CUTOFF, "cn_cutoff": DEFAULT_D3_CUTOFF}
    if not isinstance(raw, dict):
        raise MLPotError(f"'{where}' must be a mapping such as {{kind: d3bj, functional: pbe}}, got {raw!r}")
    unknown = sorted(set(raw) - set(defaults))
    if unknown:
        raise MLPotError(f"'{where}' has unknown key {unknown[0]!r}; keys: {', '.join(defaults)}")
    settings = {**defaults, **raw}
    if settings["kind"] != "d3bj":
        raise MLPotError(f"'{where}.kind' must be d3bj, got {settings['kind']!r}")
    if not isinstance(settings["functional"], str):
        raise MLPotError(f"'{where}.functional' must be a functional's name such as pbe, got {settings['functional']!r}")
    for key in ("cutoff", "cn_cutoff"):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
            raise MLPotError(f"'{where}.{key}' must be a positive distance in Å, got {value!r}")
        settings[key] = float(value)
    settings["cn_cutoff"] = min(settings["cn_cutoff"], settings["cutoff"])  # coordination pairs come from the same list
    return settings


class MACEPotential(nn.Module):
    """E(3)-equivariant potential; ``forward(data)`` returns energies, forces and stress."""

    def __init__(self, config: PotentialConfig) -> None:
        super().__init__()
        self.config = config
        hidden = FeatureIrreps.parse(config.hidden_irreps)
        numbers = [symbol_to_z[symbol] for symbol in config.elements]
        self.num_elements = len(numbers)
        self.r_max = config.r_max
        self.num_interactions = config.num_interactions
        self.backbone = Backbone.from_config(config, len(numbers), last_lmax=0)
        readouts: List[nn.Module] = [LinearReadout(hidden.channels) for _ in range(config.num_interactions - 1)]
        if config.last_readout == "mlp":
            readouts.append(MLPReadout(hidden.channels, config.readout_mlp, config.readout_activation))
        else:
            readouts.append(LinearReadout(hidden.channels))
        self.readouts = nn.ModuleList(readouts)
        self.register_buffer("species_index", species_table(numbers))
        self.register_buffer("atomic_numbers", torch.tensor(numbers, dtype=torch.long))
        energies = config.atomic_energies or {}
        self.register_buffer("atomic_energies", torch.tensor([energies.get(s, 0.0) for s in config.elements]))
        self.element_offsets = nn.Parameter(torch.zeros(len(numbers)))
        self.register_buffer("scale", torch.tensor(config.scale))
        self.register_buffer("shift", torch.tensor(config.shift))
        self.pair_repulsion = ZBLRepulsion(config.num_polynomial_cutoff) if config.pair_repulsion == "zbl" else None
        self.pair_repulsion_scaled = config.pair_repulsion_scaled
        d3 = config.dispersion
        self.dispersion = None if d3 is None else D3BJDispersion(d3["functional"], d3["cutoff"], d3["cn_cutoff"])

    def species(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        """Atomic numbers [N] -> model element indices [N]; unknown elements fail loudly."""
        return species_of(self.species_index, atomic_numbers)

    def node_energy(self, vectors: torch.Tensor, atomic_numbers: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """Energy of each atom [N] (eV) from the edge vectors [E, 3]; the one place the network
        is evaluated (the ASE path and the LAMMPS export both call it)."""
        species = self.species(atomic_numbers)
        features = self.backbone(vectors, species, edge_index)
        interaction_energy = torch.zeros(atomic_numbers.shape[0], dtype=vectors.dtype, device=vectors.device)
        for t, readout in enumerate(self.readouts):
            interaction_energy = interaction_energy + readout(features[t])
        offsets = (self.atomic_energies + self.element_offsets)[species]
        pair_repulsion = self.pair_repulsion
        if pair_repulsion is not None:
            lengths = torch.linalg.vector_norm(vectors, dim=1, keepdim=True)  # [E, 1]
            repulsion = pair_repulsion(
                lengths, atomic_numbers[edge_index[0]], atomic_numbers[edge_index[1]], edge_index[1], atomic_numbers.shape[0]
            )  # [N]
            if self.pair_repulsion_scaled:
                return offsets + self.scale * (interaction_energy + repulsion) + self.shift
            return offsets + self.scale * interaction_energy + self.shift + repulsion
        return offsets + self.scale * interaction_energy + self.shift

    def forward(
        self,
        data: Dict[str, torch.Tensor],
        compute_forces: bool = True,
        compute_stress: bool = False,
        training: bool = False,
    ) -> Dict[str, torch.Tensor]:
        """Energies [B], node energies [N], forces [N, 3] and, with compute_stress, virial and
        stress [B, 3, 3]. ``training`` keeps the graph of the derivatives for force losses."""
        positions = data[keys.POSITIONS]
        shifts = data[keys.SHIFTS]
        edge_index = data[keys.EDGE_INDEX]
        batch = data[keys.BATCH]
        cell = data[keys.CELL]
        num_graphs = cell.shape[0]
        inputs: List[torch.Tensor] = []
        if compute_forces or compute_stress:
            if not positions.requires_grad:
                positions.requires_grad_(True)
            inputs.append(positions)
        if compute_stress:
            displacement = torch.zeros(num_graphs, 3, 3, dtype=positions.dtype, device=positions.device)
            displacement.requires_grad_(True)
            inputs.append(displacement)
            strain = 0.5 * (displacement + displacement.transpose(1, 2))  # [B, 3, 3]
            positions = positions + torch.bmm(positions.unsqueeze(1), strain[batch]).squeeze(1)
            edge_strain = strain[batch[edge_index[1]]]  # [E, 3, 3]
            shifts = shifts + torch.bmm(shifts.unsqueeze(1), edge_strain).squeeze(1)
            cell = cell + torch.bmm(cell, strain)
        vectors = positions.index_select(0, edge_index[0]) - positions.index_select(0, edge_index[1]) + shifts
        node_energy = self.node_energy(vectors, data[keys.ATOMIC_NUMBERS], edge_index)
        dispersion = self.dispersion
        if dispersion is not None:  # its own long-range neighbour list, from the same (strained) geometry
            node_energy = node_energy + dispersion(positions, data[keys.ATOMIC_NUMBERS], cell, data[keys.PBC], batch)
        energy = scatter_sum(node_energy, batch, num_graphs)
        out: Dict[str, torch.Tensor] = {keys.ENERGY: energy, keys.NODE_ENERGY: node_energy}
        if len(inputs) > 0:
            grads = torch.autograd.grad(
                [energy.sum()], inputs, create_graph=training, retain_graph=training, allow_unused=True
            )
            force_grad = grads[0]
            out[keys.FORCES] = -force_grad if force_grad is not None else torch.zeros_like(inputs[0])
            if compute_stress:
                strain_grad = grads[1]
                virial = -strain_grad if strain_grad is not None else torch.zeros_like(cell)
                volume = torch.linalg.det(cell).abs().view(-1, 1, 1)
                out[keys.VIRIAL] = virial
                out[keys.STRESS] = torch.where(volume > 0, -virial / volume.clamp(min=1e-12), torch.zeros_like(virial))
        return out

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "MACEPotential":
        parsed = parse_section(PotentialConfig, config, "model")
        with default_dtype(parsed.dtype):
            return cls(parsed)

    def config_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self.config)
