"""Backmapping VAE: all-atom coordinates from coarse-grained (CG) beads, with uncertainty.

A CGVAE-style model (Wang et al. 2022) built from mlpot's own blocks, for one molecule whose
atom -> bead mapping is part of the config:

- encoder q(z | atoms): a :class:`Backbone` over the atom graph; the layer-normalised scalar
  features of all layers are mean-pooled onto each bead and give an invariant latent (mean,
  log-variance);
- prior p(z | CG): a Backbone over the bead graph, scalars -> (mean, log-variance);
- decoder: a Backbone over the bead graph whose embedding is shifted by the latent; each atom
  reads an offset vector from its bead's l = 1 channels (:class:`VectorReadout`, coefficients
  from the bead's scalars, its latent and the atom's own embedding). Offsets are re-centred with
  the bead weights, so every bead position (centroid, centre of mass or CA) is reproduced
  exactly.

The decoded structure rotates and translates with the CG input. With ``chiral`` (default) the
readout adds cross products, so it is SO(3)- but not reflection-equivariant: three beads
always have a mirror plane and a reflection-equivariant decoder could not put an atom out of it.

Inputs are the dict keys of :mod:`mlpot.data.keys`: ``cg_positions`` [F N, 3] and
``cg_edge_index`` for F frames of N beads, and for the encoder ``positions`` [F n, 3] with the
atom graph ``edge_index``. Frames are consecutive blocks of N beads and n atoms.
"""

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from mlpot.cg.mapping import bead_positions, bead_weights
from mlpot.cg.molecule import Molecule
from mlpot.config import default_dtype, parse_section, require
from mlpot.data import keys
from mlpot.errors import MLPotError
from mlpot.models.backbone import Backbone, attention_settings, backbone_checks
from mlpot.nn.irreps import FeatureIrreps
from mlpot.nn.linear import ScaledLinear
from mlpot.nn.norm import EquivariantLayerNorm
from mlpot.nn.pooling import MeanPooling
from mlpot.nn.scatter import scatter_sum
from mlpot.nn.vector import VectorReadout, l1_channels

POSTERIOR_LOGVAR_SHIFT = -6.0  # posterior standard deviation starts near exp(-3) = 0.05


@dataclass
class BackmappingConfig:
    """The molecule (atoms, mapping, bonds, names) and the network's hyper-parameters.

    ``mlpot train`` fills in the molecule from the data and the mapping keys (``mapping``,
    ``num_beads``, ``mapping_file``); they stay in the config as a record of how it was made.
    """

    atomic_numbers: List[int]
    bead_of_atom: List[int]
    task: Literal["backmapping"] = "backmapping"
    mapping: Literal["girvan_newman", "alpha_carbon", "file"] = "girvan_newman"
    num_beads: Optional[int] = None
    mapping_file: Optional[str] = None
    bead_position: Literal["centroid", "mass", "alpha_carbon"] = "centroid"
    bead_types: List[int] = field(default_factory=list)  # per bead; default: each bead its own type
    bonds: List[List[int]] = field(default_factory=list)  # [i, j] pairs of the bond graph
    dihedrals: List[List[int]] = field(default_factory=list)  # [a, b, c, d] for phi/psi metrics
    dihedral_names: List[str] = field(default_factory=list)  # "phi ALA2", ...
    atom_names: List[str] = field(default_factory=list)
    residue_names: List[str] = field(default_factory=list)
    residue_ids: List[int] = field(default_factory=list)
    r_max: float = 4.0  # atom graph of the encoder (Å)
    cg_r_max: float = 12.0  # bead graph of the prior and decoder (Å)
    num_bessel: int = 8
    num_polynomial_cutoff: int = 5
    max_ell: int = 2
    hidden_irreps: str = "32x0e+32x1o"
    correlation: int = 2
    num_interactions: int = 2
    radial_mlp: List[int] = field(default_factory=lambda: [32, 32])
    interaction: Union[str, List[str]] = "mace"  # or "attention"; or one per layer
    attention: Dict[str, Any] = field(default_factory=dict)  # heads, hidden, value_channels, nonlinear
    latent_dim: int = 16
    readout_mlp: int = 64
    chiral: bool = True
    avg_num_neighbors: float = 10.0  # atom graph (training sets it from the data)
    cg_avg_num_neighbors: float = 5.0  # bead graph
    dtype: Literal["float32", "float64"] = "float64"

    def validate(self, where: str) -> None:
        n = len(self.atomic_numbers)
        hidden = FeatureIrreps.parse(self.hidden_irreps)
        if hidden.lmax < 1:
            raise MLPotError(f"'{where}.hidden_irreps' needs l = 1 channels for the offset vectors, got {self.hidden_irreps!r}")
        if n == 0 or len(self.bead_of_atom) != n:
            raise MLPotError(f"'{where}.bead_of_atom' must give one bead per atom ({n} atoms), got {len(self.bead_of_atom)}")
        beads = sorted(set(self.bead_of_atom))
        if beads != list(range(len(beads))):
            raise MLPotError(f"'{where}.bead_of_atom' must use every bead index 0..N-1, got {beads}")
        if self.bead_types and len(self.bead_types) != len(beads):
            raise MLPotError(f"'{where}.bead_types' must give one type per bead ({len(beads)}), got {len(self.bead_types)}")
        for key, width in (("bonds", 2), ("dihedrals", 4)):
            for item in getattr(self, key):
                if len(item) != width or not all(0 <= i < n for i in item):
                    raise MLPotError(f"'{where}.{key}' entry {item} must be {width} atom indices below {n}")
        if len(self.dihedral_names) != len(self.dihedrals):
            raise MLPotError(f"'{where}.dihedral_names' must name each of the {len(self.dihedrals)} dihedrals")
        for key in ("atom_names", "residue_names", "residue_ids"):
            if getattr(self, key) and len(getattr(self, key)) != n:
                raise MLPotError(f"'{where}.{key}' must be empty or give one entry per atom ({n})")
        checks = backbone_checks(self, where) + [
            (self.cg_r_max > 0, "cg_r_max", "must be positive"),
            (0 <= self.max_ell <= 6, "max_ell", "must be between 0 and 6"),
            (self.latent_dim >= 1, "latent_dim", "must be at least 1"),
            (self.readout_mlp >= 1, "readout_mlp", "must be positive"),
            (self.cg_avg_num_neighbors > 0, "cg_avg_num_neighbors", "must be positive"),
        ]
        require(checks, self, where)
        bead_weights(self.bead_of_atom, self.molecule(), self.bead_position)  # raises for a bad CA bead

    def molecule(self) -> Molecule:
        return Molecule(list(self.atomic_numbers), list(self.atom_names), list(self.residue_names), list(self.residue_ids))


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(ScaledLinear(inputs, hidden), nn.SiLU(), ScaledLinear(hidden, outputs, gain=1.0 / math.sqrt(0.3550)))


class LayerNorms(nn.ModuleList):
    """One :class:`EquivariantLayerNorm` per trunk layer, applied to its l <= lmax features."""

    def forward(self, features: List[torch.Tensor]) -> List[torch.Tensor]:  # [n, D_t, C] -> [n, (lmax+1)^2, C]
        out: List[torch.Tensor] = []
        for t, norm in enumerate(self):
            out.append(norm(features[t][:, : (norm.lmax + 1) * (norm.lmax + 1), :]))
        return out


def _scalars(features: List[torch.Tensor]) -> torch.Tensor:
    """l = 0 channels of every layer, [n, D_t, C] each -> [n, T C]."""
    return torch.cat([f[:, 0, :] for f in features], dim=1)


class BackmappingVAE(nn.Module):
    """``forward(data, mode)``: ``train`` samples the posterior, ``reconstruct`` decodes its mean,
    ``sample`` draws from the prior (no atom positions needed)."""

    def __init__(self, config: BackmappingConfig) -> None:
        super().__init__()
        self.config = config
        hidden = FeatureIrreps.parse(config.hidden_irreps)
        channels, layers = hidden.channels, config.num_interactions
        numbers = list(config.atomic_numbers)
        elements = sorted(set(numbers))
        bead_types = list(config.bead_types) or sorted(set(config.bead_of_atom))
        self.num_atoms = len(numbers)
        self.num_beads = max(config.bead_of_atom) + 1
        self.latent_dim = config.latent_dim
        self.posterior_logvar_shift = POSTERIOR_LOGVAR_SHIFT
        self.r_max = config.r_max
        self.cg_r_max = config.cg_r_max
        self.register_buffer("atomic_numbers", torch.tensor(numbers, dtype=torch.long))
        self.register_buffer("atom_species", torch.tensor([elements.index(z) for z in numbers], dtype=torch.long))
        self.register_buffer("bead_of_atom", torch.tensor(config.bead_of_atom, dtype=torch.long))
        self.register_buffer("bead_types", torch.tensor(bead_types, dtype=torch.long))
        weights = bead_weights(config.bead_of_atom, config.molecule(), config.bead_position)
        self.register_buffer("bead_weights", torch.tensor(weights, dtype=torch.get_default_dtype()))
        self.register_buffer("bonds", torch.tensor(config.bonds, dtype=torch.long).reshape(-1, 2))  # [B, 2], for users

        def trunk(num_elements: int, r_max: float, avg_num_neighbors: float, last_lmax: int) -> Backbone:
            return Backbone(
                num_elements=num_elements,
                r_max=r_max,
                num_bessel=config.num_bessel,
                num_polynomial_cutoff=config.num_polynomial_cutoff,
                max_ell=config.max_ell,
                hidden=hidden,
                correlation=config.correlation,
                num_interactions=layers,
                radial_mlp=config.radial_mlp,
                avg_num_neighbors=avg_num_neighbors,
                last_lmax=last_lmax,
                interaction=config.interaction,
                attention=attention_settings(config, hidden, "model"),
            )

        num_types = max(bead_types) + 1
        scalar_irreps, vector_irreps = FeatureIrreps(channels, 0), FeatureIrreps(channels, 1)
        self.encoder = trunk(len(elements), config.r_max, config.avg_num_neighbors, 0)
        self.encoder_norms = LayerNorms([EquivariantLayerNorm(scalar_irreps) for _ in range(layers)])
        self.encoder_atom_embedding = nn.Parameter(torch.randn(self.num_atoms, channels))
        self.pooling = MeanPooling()
        self.posterior_head = _mlp(layers * channels, config.readout_mlp, 2 * config.latent_dim)
        self.prior = trunk(num_types, config.cg_r_max, config.cg_avg_num_neighbors, 0)
        self.prior_norms = LayerNorms([EquivariantLayerNorm(scalar_irreps) for _ in range(layers)])
        self.prior_head = _mlp(layers * channels, config.readout_mlp, 2 * config.latent_dim)
        self.decoder = trunk(num_types, config.cg_r_max, config.cg_avg_num_neighbors, 1)
        self.decoder_norms = LayerNorms([EquivariantLayerNorm(vector_irreps) for _ in range(layers)])
        self.latent_in = ScaledLinear(config.latent_dim, channels)
        self.decoder_atom_embedding = nn.Parameter(torch.randn(self.num_atoms, channels))
        scalars = layers * channels + config.latent_dim + channels
        self.readout = VectorReadout(layers * channels, scalars, config.readout_mlp, chiral=config.chiral)

    # ----------------------------------------------------------------------------- pieces
    def frame_indices(self, num_frames: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(bead of each atom [F n], atom index within the molecule [F n], bead type [F N])."""
        device = self.bead_of_atom.device
        offsets = torch.arange(num_frames, device=device).unsqueeze(1) * self.num_beads  # [F, 1]
        bead_of_atom = (self.bead_of_atom.unsqueeze(0) + offsets).reshape(-1)
        atom_index = torch.arange(self.num_atoms, device=device).repeat(num_frames)
        return bead_of_atom, atom_index, self.bead_types.repeat(num_frames)

    @staticmethod
    def _gaussian(raw: torch.Tensor, latent_dim: int, logvar_shift: float) -> Tuple[torch.Tensor, torch.Tensor]:
        """[M, 2L] -> (mean, log-variance); ``logvar_shift`` sets the starting variance."""
        return raw[:, :latent_dim], (raw[:, latent_dim:] + logvar_shift).clamp(-12.0, 8.0)

    def posterior(
        self, positions: torch.Tensor, edge_index: torch.Tensor, atom_index: torch.Tensor, bead_of_atom: torch.Tensor, num_beads: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """q(z | atoms): (mean, log-variance) [M, L] from atom positions [F n, 3]."""
        vectors = positions.index_select(0, edge_index[0]) - positions.index_select(0, edge_index[1])  # [E, 3]
        species = self.atom_species.index_select(0, atom_index)
        features = self.encoder(vectors, species, edge_index, self.encoder_atom_embedding.index_select(0, atom_index))
        features = self.encoder_norms(features)
        pooled = self.pooling(_scalars(features), bead_of_atom, num_beads)  # [M, T C]
        # A narrow starting posterior keeps the latent informative from the first step; with
        # unit noise the decoder learns to ignore it (posterior collapse).
        return self._gaussian(self.posterior_head(pooled), self.latent_dim, self.posterior_logvar_shift)

    def prior_distribution(self, cg_vectors: torch.Tensor, bead_types: torch.Tensor, cg_edge_index: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """p(z | CG): (mean, log-variance) [M, L]."""
        features = self.prior_norms(self.prior(cg_vectors, bead_types, cg_edge_index))
        return self._gaussian(self.prior_head(_scalars(features)), self.latent_dim, 0.0)

    def decode(
        self,
        cg: torch.Tensor,
        cg_vectors: torch.Tensor,
        cg_edge_index: torch.Tensor,
        bead_types: torch.Tensor,
        latent: torch.Tensor,
        bead_of_atom: torch.Tensor,
        atom_index: torch.Tensor,
    ) -> torch.Tensor:
        """Atom positions [F n, 3]; each bead's weighted mean equals its CG position exactly."""
        features = self.decoder_norms(self.decoder(cg_vectors, bead_types, cg_edge_index, self.latent_in(latent)))
        vectors = torch.cat([l1_channels(f) for f in features], dim=2)  # [M, 3, T C]
        scalars = torch.cat(
            [_scalars(features).index_select(0, bead_of_atom), latent.index_select(0, bead_of_atom),
             self.decoder_atom_embedding.index_select(0, atom_index)],
            dim=1,
        )  # [F n, T C + L + C]
        offsets = self.readout(vectors.index_select(0, bead_of_atom), scalars)  # [F n, 3]
        weights = self.bead_weights.index_select(0, atom_index).unsqueeze(1)  # [F n, 1]
        centre = scatter_sum(weights * offsets, bead_of_atom, cg.shape[0])  # [M, 3]
        return cg.index_select(0, bead_of_atom) + offsets - centre.index_select(0, bead_of_atom)

    # ----------------------------------------------------------------------------- forward
    def forward(self, data: Dict[str, torch.Tensor], mode: str = "reconstruct") -> Dict[str, torch.Tensor]:
        if mode != "train" and mode != "reconstruct" and mode != "sample":
            raise ValueError("mode must be 'train', 'reconstruct' or 'sample'")
        cg = data[keys.CG_POSITIONS]
        cg_edge_index = data[keys.CG_EDGE_INDEX]
        num_frames = cg.shape[0] // self.num_beads
        bead_of_atom, atom_index, bead_types = self.frame_indices(num_frames)
        cg_vectors = cg.index_select(0, cg_edge_index[0]) - cg.index_select(0, cg_edge_index[1])  # [E_cg, 3]
        prior_mean, prior_logvar = self.prior_distribution(cg_vectors, bead_types, cg_edge_index)
        out: Dict[str, torch.Tensor] = {keys.PRIOR_MEAN: prior_mean, keys.PRIOR_LOGVAR: prior_logvar}
        if mode == "sample":
            latent = prior_mean + torch.exp(0.5 * prior_logvar) * torch.randn_like(prior_mean)
        else:
            mean, logvar = self.posterior(data[keys.POSITIONS], data[keys.EDGE_INDEX], atom_index, bead_of_atom, cg.shape[0])
            out[keys.LATENT_MEAN] = mean
            out[keys.LATENT_LOGVAR] = logvar
            latent = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if mode == "train" else mean
        out[keys.LATENT] = latent
        out[keys.BACKMAPPED_POSITIONS] = self.decode(cg, cg_vectors, cg_edge_index, bead_types, latent, bead_of_atom, atom_index)
        return out

    def map_to_beads(self, trajectory: np.ndarray) -> np.ndarray:
        """CG coordinates [F, N, 3] of atomistic ones [F, n, 3] with this model's mapping."""
        return bead_positions(trajectory, self.config.bead_of_atom, self.bead_weights.detach().cpu().double().numpy())

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "BackmappingVAE":
        parsed = parse_section(BackmappingConfig, config, "model")
        with default_dtype(parsed.dtype):
            return cls(parsed)

    def config_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self.config)
