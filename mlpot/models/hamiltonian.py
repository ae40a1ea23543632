"""Hamiltonian model: the electronic H (and optionally the overlap S) in an atomic-orbital basis.

The backbone's node features of all layers give each atom's diagonal block, together with the
sum of its pair features (the field of the neighbours, e.g. the anisotropy of a p shell); pair
features of every edge (all atom pairs within r_max) give the off-diagonal blocks (PhiSNet,
Unke et al. 2021; QHNet). Blocks come out of :class:`~mlpot.nn.orbital.OrbitalBlockReadout` in PySCF's AO
order, so the model is O(3)-equivariant: H(R x) = D(R) H(x) D(R)^T with D from
:func:`mlpot.qm.ao_order.ao_wigner_d`. Symmetry is exact by construction:

    H_ii = ref[z_i] + scale * (B_ii + B_ii^T) / 2,      H_ij = scale * (B_ij + B_ji^T) / 2

with B_ji from the reverse edge, so every edge block is the transpose of its reverse. ``ref`` is
the training mean of the rotation-invariant part of each element's diagonal block. Only
molecules (every edge has exactly one reverse) are supported.
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
from mlpot.models.backbone import Backbone, backbone_checks
from mlpot.models.elements import canonical_elements, species_of, species_table
from mlpot.nn.irreps import FeatureIrreps
from mlpot.nn.orbital import OrbitalBlockReadout
from mlpot.nn.pair import OnsiteFeatures, PairFeatures
from mlpot.nn.scatter import scatter_sum
from mlpot.nn.tensor_product import ParityLinear
from mlpot.qm.ao_order import pyscf_from_e3nn
from mlpot.qm.layout import OrbitalLayout


@dataclass
class HamiltonianConfig:
    """Hyper-parameters of :class:`HamiltonianModel`; backbone keys as in the potential."""

    elements: List[Union[str, int]]
    shells: Dict[str, List[int]]  # element -> l of each shell, in PySCF's AO order
    task: Literal["hamiltonian"] = "hamiltonian"
    basis: str = ""  # the basis set's name in PySCF (lets `mlpot predict` compute the exact S)
    r_max: float = 5.0  # cutoff of the message passing and of the off-diagonal blocks (Å)
    num_bessel: int = 8
    num_polynomial_cutoff: int = 5
    max_ell: int = 2
    hidden_irreps: str = "32x0e+32x1o+32x2e"
    correlation: int = 2
    num_interactions: int = 2
    radial_mlp: List[int] = field(default_factory=lambda: [64, 64])
    interaction: Union[str, List[str]] = "mace"  # or "attention"; or one per layer
    attention: Dict[str, Any] = field(default_factory=dict)  # heads, hidden, value_channels, nonlinear
    avg_num_neighbors: float = 10.0
    block_channels: int = 32  # channels of the onsite and pair features read out into blocks
    overlap: bool = False  # also predict S (diagonal blocks are the element's reference)
    onsite_reference: Optional[Dict[str, List[List[float]]]] = None  # element -> [shell, shell] (Eh)
    overlap_reference: Optional[Dict[str, List[List[float]]]] = None
    scale: float = 1.0  # Eh; blocks = reference + scale * network
    overlap_scale: float = 1.0
    dtype: Literal["float32", "float64"] = "float64"

    def validate(self, where: str) -> None:
        self.elements = canonical_elements(self.elements, f"{where}.elements")
        hidden = FeatureIrreps.parse(self.hidden_irreps)
        for symbol in self.shells:
            if symbol not in self.elements:
                raise MLPotError(f"'{where}.shells' names {symbol}, which is not in elements {self.elements}")
        for symbol in self.elements:
            shells = self.shells.get(symbol)
            if not shells or any(not 0 <= l <= 4 for l in shells):
                raise MLPotError(f"'{where}.shells.{symbol}' must list the l (0-4) of each shell, got {shells!r}")
        lmax_out = 2 * max(max(ls) for ls in self.shells.values())
        checks = backbone_checks(self, where) + [
            (hidden.lmax <= self.max_ell <= 6, "max_ell", f"must be between the hidden lmax ({hidden.lmax}) and 6"),
            (2 * hidden.lmax >= lmax_out, "hidden_irreps", f"needs lmax >= {lmax_out // 2} (the highest shell l)"),
            (self.block_channels >= 1, "block_channels", "must be positive"),
            (self.scale > 0, "scale", "must be positive"),
            (self.overlap_scale > 0, "overlap_scale", "must be positive"),
        ]
        require(checks, self, where)
        self.shells = {symbol: [int(l) for l in self.shells[symbol]] for symbol in self.elements}
        for name in ("onsite_reference", "overlap_reference"):
            reference = getattr(self, name)
            if reference is not None:
                setattr(self, name, self._checked_reference(reference, f"{where}.{name}"))

    def _checked_reference(self, reference: Dict[str, List[List[float]]], where: str) -> Dict[str, List[List[float]]]:
        """Per element a [shell, shell] matrix, zero between shells of different l (else not invariant)."""
        checked = {}
        for symbol in self.elements:
            shells = self.shells[symbol]
            values = reference.get(symbol, [[0.0] * len(shells) for _ in shells])
            if len(values) != len(shells) or any(len(row) != len(shells) for row in values):
                raise MLPotError(f"'{where}.{symbol}' must be a {len(shells)}x{len(shells)} matrix (one entry per shell pair)")
            for a, row in enumerate(values):
                for b, value in enumerate(row):
                    if shells[a] != shells[b] and value != 0.0:
                        raise MLPotError(f"'{where}.{symbol}' is not zero between shells {a} and {b} of different l")
            checked[symbol] = [[float(value) for value in row] for row in values]
        return checked


def reverse_edges(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Index of the edge i -> j for every edge j -> i, [E]; every pair must appear once each way."""
    key = edge_index[1] * num_nodes + edge_index[0]
    order = torch.argsort(key)
    ordered = key.index_select(0, order)
    target = edge_index[0] * num_nodes + edge_index[1]
    position = torch.searchsorted(ordered, target).clamp(max=max(key.shape[0] - 1, 0))
    duplicates = bool((ordered[1:] == ordered[:-1]).any())
    if duplicates or bool((ordered.index_select(0, position) != target).any()):
        raise RuntimeError("Hamiltonian models need each atom pair once in each direction (molecules, not periodic cells)")
    return order.index_select(0, position)


def reference_blocks(
    elements: List[str], shells: Dict[str, List[int]], reference: Optional[Dict[str, List[List[float]]]]
) -> torch.Tensor:
    """[n_elements, O, O] diagonal blocks: each shell pair's value times the identity over m."""
    layout = OrbitalLayout.from_symbols(shells)
    size = layout.max_orbitals
    blocks = torch.zeros(len(elements), size, size)
    for t, symbol in enumerate(elements):
        values = (reference or {}).get(symbol)
        if values is None:
            continue
        ls = shells[symbol]
        offsets = [sum(2 * l + 1 for l in ls[:a]) for a in range(len(ls))]
        for a, la in enumerate(ls):
            for b, lb in enumerate(ls):
                if la == lb:
                    block = torch.eye(2 * la + 1) * values[a][b]
                    blocks[t, offsets[a] : offsets[a] + 2 * la + 1, offsets[b] : offsets[b] + 2 * lb + 1] = block
    return blocks


class HamiltonianModel(nn.Module):
    """``forward(data)`` -> diagonal and edge blocks of H (and S) in Eh, PySCF's AO order."""

    def __init__(self, config: HamiltonianConfig) -> None:
        super().__init__()
        self.config = config
        hidden = FeatureIrreps.parse(config.hidden_irreps)
        numbers = [symbol_to_z[symbol] for symbol in config.elements]
        self.num_elements = len(numbers)
        self.r_max = config.r_max
        self.layout = OrbitalLayout.from_symbols(config.shells)
        size = self.layout.max_orbitals
        lmax_out = 2 * max(max(ls) for ls in config.shells.values())
        self.backbone = Backbone.from_config(config, len(numbers), last_lmax=hidden.lmax)
        features = FeatureIrreps(hidden.channels * config.num_interactions, hidden.lmax)  # all layers side by side
        channels = config.block_channels
        self.onsite = OnsiteFeatures(features, channels, lmax_out)
        self.pair = PairFeatures(
            features, channels, lmax_out, config.r_max, config.num_bessel, config.num_polynomial_cutoff, config.radial_mlp
        )
        self.neighbour_sum = ParityLinear(self.pair.irreps_out, channels)  # pair features summed onto atoms
        self.inv_avg_num_neighbors = 1.0 / config.avg_num_neighbors
        shells = [config.shells[symbol] for symbol in config.elements]
        node_types = [(s, s) for s in shells]
        edge_types = [(receiver, sender) for receiver in shells for sender in shells]  # type = z_i * n + z_j
        # Blocks come out in PySCF's AO order, the order of the reference matrices.
        self.node_readout = OrbitalBlockReadout(node_types, self.onsite.irreps_out, size, pyscf_from_e3nn)
        self.edge_readout = OrbitalBlockReadout(edge_types, self.pair.irreps_out, size, pyscf_from_e3nn)
        self.overlap_readout = (
            OrbitalBlockReadout(edge_types, self.pair.irreps_out, size, pyscf_from_e3nn) if config.overlap else None
        )
        self.register_buffer("species_index", species_table(numbers))
        self.register_buffer("atomic_numbers", torch.tensor(numbers, dtype=torch.long))
        self.register_buffer("orbital_mask", torch.tensor(self.layout.mask(numbers)))
        self.register_buffer("onsite_reference", reference_blocks(config.elements, config.shells, config.onsite_reference))
        self.register_buffer("overlap_reference", reference_blocks(config.elements, config.shells, config.overlap_reference))
        self.register_buffer("scale", torch.tensor(config.scale))
        self.register_buffer("overlap_scale", torch.tensor(config.overlap_scale))

    def species(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        """Atomic numbers [N] -> model element indices [N]; unknown elements fail loudly."""
        return species_of(self.species_index, atomic_numbers)

    def forward(self, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        positions = data[keys.POSITIONS]
        edge_index = data[keys.EDGE_INDEX]
        sender, receiver = edge_index[0], edge_index[1]
        species = self.species(data[keys.ATOMIC_NUMBERS])
        vectors = positions.index_select(0, sender) - positions.index_select(0, receiver) + data[keys.SHIFTS]
        features = torch.cat(self.backbone(vectors, species, edge_index), dim=2)  # [N, D, layers * C]
        reverse = reverse_edges(edge_index, positions.shape[0])
        pair = self.pair(features, vectors, edge_index)  # [E, 2 D_out, C]
        summed = scatter_sum(pair, receiver, positions.shape[0]) * self.inv_avg_num_neighbors
        onsite = self.onsite(features) + self.neighbour_sum(summed)  # [N, 2 D_out, C]
        edge_types = species.index_select(0, receiver) * self.num_elements + species.index_select(0, sender)
        node = self.node_readout(onsite, species)  # [N, O, O]
        edge = self.edge_readout(pair, edge_types)  # [E, O, O]
        out: Dict[str, torch.Tensor] = {
            keys.ORBITAL_MASK: self.orbital_mask.index_select(0, species),
            keys.HAMILTONIAN_NODE_BLOCKS: self.onsite_reference.index_select(0, species)
            + self.scale * 0.5 * (node + node.transpose(1, 2)),
            keys.HAMILTONIAN_EDGE_BLOCKS: self.scale * 0.5 * (edge + edge.index_select(0, reverse).transpose(1, 2)),
        }
        overlap_readout = self.overlap_readout
        if overlap_readout is not None:
            overlap = overlap_readout(pair, edge_types)
            out[keys.OVERLAP_NODE_BLOCKS] = self.overlap_reference.index_select(0, species)
            out[keys.OVERLAP_EDGE_BLOCKS] = self.overlap_scale * 0.5 * (overlap + overlap.index_select(0, reverse).transpose(1, 2))
        return out

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "HamiltonianModel":
        parsed = parse_section(HamiltonianConfig, config, "model")
        with default_dtype(parsed.dtype):
            return cls(parsed)

    def config_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self.config)
