"""The shared equivariant trunk: species embedding and MACE-style interaction layers.

Every model (potential, Hamiltonian, backmapping) runs this trunk on a graph and reads its node
features. Internally the nodes are sorted by element so that element-dependent weights act on
contiguous slices; features are returned in the caller's order.
"""

from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from ase.data import atomic_numbers as symbol_to_z
from ase.data import covalent_radii
from e3nn import o3
from torch import nn

from mlpot.config import parse_section
from mlpot.errors import MLPotError
from mlpot.nn.attention import AttentionInteraction, AttentionSettings
from mlpot.nn.convolution import Interaction
from mlpot.nn.gated import EdgeElementEmbedding, GatedInteraction
from mlpot.nn.irreps import FeatureIrreps
from mlpot.nn.linear import ElementLinear, EquivariantLinear
from mlpot.nn.product import SymmetricContraction
from mlpot.nn.radial import AgnesiTransform, RadialEmbedding


#: The interactions a layer can use (``model.interaction``), each with the forward
#: (h, sh, radial, envelope, sender, receiver) -> messages. "gated" is mace-torch's
#: RealAgnosticResidualNonLinearInteractionBlock (:mod:`mlpot.nn.gated`): its radial MLP also
#: reads embeddings of both elements, and its layer's self-connection is element-independent.
INTERACTIONS = ("mace", "attention", "gated")


def build_interaction(
    kind: str,
    irreps_in: FeatureIrreps,
    irreps_out: FeatureIrreps,
    lmax_sh: int,
    radial_dim: int,
    radial_mlp: List[int],
    avg_num_neighbors: float,
    attention: AttentionSettings,
) -> nn.Module:
    if kind == "mace":
        return Interaction(irreps_in, irreps_out, lmax_sh, radial_dim, radial_mlp, avg_num_neighbors)
    if kind == "attention":
        return AttentionInteraction(irreps_in, irreps_out, lmax_sh, radial_dim, radial_mlp, avg_num_neighbors, attention)
    raise ValueError(f"unknown interaction {kind!r}")


class InteractionLayer(nn.Module):
    """One message-passing layer: messages -> symmetric contraction -> linear (+ self-connection).

    ``irreps_in`` -> ``irreps_out``; messages carry every l <= max_ell and come from the
    ``interaction`` named (see :data:`INTERACTIONS`). The self-connection is an
    element-dependent linear of the layer's input (MACE's residual) on the degrees both sides
    share; mlpot skips it for the first layer, whose input is just the species embedding
    (mace-torch's RealAgnosticResidualInteractionBlock has it there too). With
    ``element_messages`` the messages pass through an element-dependent linear before the
    product, as in mace-torch's RealAgnosticInteractionBlock (its "skip_tp").
    """

    def __init__(
        self,
        irreps_in: FeatureIrreps,
        irreps_out: FeatureIrreps,
        max_ell: int,
        correlation: int,
        num_elements: int,
        radial_dim: int,
        radial_mlp: List[int],
        avg_num_neighbors: float,
        self_connection: bool,
        interaction: str = "mace",
        attention: Optional[AttentionSettings] = None,
        element_messages: bool = False,
        density_normalization: bool = False,
    ) -> None:
        super().__init__()
        self.irreps_in = irreps_in
        self.irreps_out = irreps_out
        messages = FeatureIrreps(irreps_in.channels, max_ell)
        if density_normalization and interaction != "mace":
            raise ValueError("density normalisation is an option of the mace interaction")
        gated = interaction == "gated"
        self.edge_embedding = EdgeElementEmbedding(num_elements, irreps_in.channels) if gated else None
        if gated:
            self.interaction = GatedInteraction(irreps_in, messages, max_ell, radial_dim + 2 * irreps_in.channels, radial_mlp)
        elif density_normalization:
            self.interaction = Interaction(irreps_in, messages, max_ell, radial_dim, radial_mlp, avg_num_neighbors, density_normalization=True)
        else:
            self.interaction = build_interaction(
                interaction, irreps_in, messages, max_ell, radial_dim, radial_mlp, avg_num_neighbors, attention or AttentionSettings()
            )
        self.message_linear = ElementLinear(messages, messages, num_elements) if element_messages else None
        self.product = SymmetricContraction(messages, FeatureIrreps(irreps_in.channels, irreps_out.lmax), correlation, num_elements)
        self.linear = EquivariantLinear(FeatureIrreps(irreps_in.channels, irreps_out.lmax), irreps_out)
        # The residual covers the degrees present on both sides; higher output degrees start from zero.
        shared = FeatureIrreps(irreps_out.channels, min(irreps_in.lmax, irreps_out.lmax))
        self.self_connection = ElementLinear(irreps_in, shared, num_elements) if self_connection and not gated else None
        self.linear_self_connection = EquivariantLinear(irreps_in, shared) if self_connection and gated else None
        self.shared_dim = shared.dim

    def forward(
        self,
        h: torch.Tensor,
        sh: torch.Tensor,
        radial: torch.Tensor,
        envelope: torch.Tensor,
        sender: torch.Tensor,
        receiver: torch.Tensor,
        element_counts: List[int],
    ) -> torch.Tensor:
        edge_embedding = self.edge_embedding
        if edge_embedding is not None:
            radial = edge_embedding(radial, element_counts, sender, receiver)  # [E, num_bessel + 2 C]
        messages = self.interaction(h, sh, radial, envelope, sender, receiver)  # [N, (max_ell+1)^2, C]
        message_linear = self.message_linear
        if message_linear is not None:
            messages = message_linear(messages, element_counts)
        out = self.linear(self.product(messages, element_counts))  # [N, D_out, C_out]
        self_connection = self.self_connection
        linear_self_connection = self.linear_self_connection
        residual: Optional[torch.Tensor] = None
        if self_connection is not None:
            residual = self_connection(h, element_counts)  # [N, shared_dim, C_out]
        elif linear_self_connection is not None:
            residual = linear_self_connection(h)
        if residual is not None:
            if self.shared_dim == out.shape[1]:
                out = out + residual
            else:
                out = torch.cat([out[:, : self.shared_dim] + residual, out[:, self.shared_dim :]], dim=1)
        return out


def interaction_kinds(interaction: Union[str, List[str]], num_interactions: int, where: str) -> List[str]:
    """``model.interaction`` (one name, or one per layer) -> the name of each layer's interaction."""
    kinds = [interaction] * num_interactions if isinstance(interaction, str) else list(interaction)
    for kind in kinds:
        if kind not in INTERACTIONS:
            raise MLPotError(f"'{where}.interaction' must be {' or '.join(INTERACTIONS)} (or a list of them, one per layer), got {kind!r}")
    if len(kinds) != num_interactions:
        raise MLPotError(f"'{where}.interaction' lists {len(kinds)} layers, but num_interactions is {num_interactions}")
    return kinds


def attention_settings(config: Any, hidden: FeatureIrreps, where: str) -> AttentionSettings:
    """``model.attention`` -> :class:`AttentionSettings`, checked against the channels where a
    layer of ``model.interaction`` uses attention (unknown keys are refused either way)."""
    section = config.attention
    settings = parse_section(AttentionSettings, section or {}, f"{where}.attention")
    if "attention" not in interaction_kinds(config.interaction, config.num_interactions, where):
        return settings
    values = settings.value_channels or hidden.channels
    if settings.heads < 1 or settings.hidden < 1 or values < 1:
        raise MLPotError(f"'{where}.attention' heads, hidden and value_channels must be positive, got {section!r}")
    if values % settings.heads:
        raise MLPotError(f"'{where}.attention.heads' ({settings.heads}) must divide the value channels ({values})")
    return settings


def element_radii(config: Any) -> torch.Tensor:
    """Covalent radii (Å) of a config's ``elements``, in element-index order."""
    return torch.tensor([covalent_radii[symbol_to_z[symbol]] for symbol in config.elements], dtype=torch.float64)


def layer_flags(flags: Optional[List[bool]], default: List[bool], key: str, where: str) -> List[bool]:
    """A per-layer list of switches (``model.self_connection``, ``model.element_messages``):
    ``default`` where not given, else exactly one per layer."""
    if flags is None:
        return default
    if len(flags) != len(default):
        raise MLPotError(f"'{where}.{key}' lists {len(flags)} layers, but num_interactions is {len(default)}")
    return list(flags)


def backbone_checks(config: Any, where: str = "model") -> List[Tuple[bool, str, str]]:
    """(ok, key, message) for the keys :meth:`Backbone.from_config` reads, except max_ell, whose
    bounds depend on the head. ``interaction`` and ``attention`` are checked (raising) here too."""
    attention_settings(config, FeatureIrreps.parse(config.hidden_irreps), where)
    return [
        (config.r_max > 0, "r_max", "must be positive"),
        (config.num_bessel >= 1, "num_bessel", "must be at least 1"),
        (config.num_polynomial_cutoff >= 2, "num_polynomial_cutoff", "must be at least 2"),
        (1 <= config.correlation <= 3, "correlation", "must be 1, 2 or 3"),
        (config.num_interactions >= 1, "num_interactions", "must be at least 1"),
        (all(width >= 1 for width in config.radial_mlp), "radial_mlp", "widths must be positive"),
        (config.avg_num_neighbors > 0, "avg_num_neighbors", "must be positive"),
    ]


class Backbone(nn.Module):
    """Embedding plus ``num_interactions`` layers; returns each layer's node features.

    Layer t maps ``hidden`` to ``hidden`` except the first (input: embedding scalars) and the
    last (output: ``FeatureIrreps(channels, last_lmax)``; a potential needs only scalars there).
    """

    def __init__(
        self,
        num_elements: int,
        r_max: float,
        num_bessel: int,
        num_polynomial_cutoff: int,
        max_ell: int,
        hidden: FeatureIrreps,
        correlation: int,
        num_interactions: int,
        radial_mlp: List[int],
        avg_num_neighbors: float,
        last_lmax: int,
        interaction: Union[str, List[str]] = "mace",
        attention: Optional[AttentionSettings] = None,
        self_connection: Optional[List[bool]] = None,
        element_messages: Optional[List[bool]] = None,
        element_radii: Optional[torch.Tensor] = None,
        density_normalization: bool = False,
    ) -> None:
        """``element_radii`` [num_elements] (covalent radii, Å) turns on the Agnesi transform of
        the lengths the radial basis reads (:class:`AgnesiTransform`); ``density_normalization``
        divides messages by 1 + a learnt neighbour density instead of avg_num_neighbors
        (:class:`~mlpot.nn.convolution.Interaction`)."""
        super().__init__()
        if num_interactions < 1:
            raise ValueError("num_interactions must be at least 1")
        kinds = interaction_kinds(interaction, num_interactions, "model")
        residual = layer_flags(self_connection, [t > 0 for t in range(num_interactions)], "self_connection", "model")
        selector = layer_flags(element_messages, [False] * num_interactions, "element_messages", "model")
        self.num_elements = num_elements
        self.radial_embedding = RadialEmbedding(r_max, num_bessel, num_polynomial_cutoff)
        self.distance_transform = AgnesiTransform(element_radii) if element_radii is not None else None
        self.spherical_harmonics = o3.SphericalHarmonics(list(range(max_ell + 1)), True, "component")
        self.embedding = nn.Parameter(torch.randn(num_elements, hidden.channels))
        layers = []
        for t in range(num_interactions):
            irreps_in = FeatureIrreps(hidden.channels, 0) if t == 0 else hidden
            irreps_out = hidden if t < num_interactions - 1 else FeatureIrreps(hidden.channels, last_lmax)
            layers.append(
                InteractionLayer(
                    irreps_in,
                    irreps_out,
                    max_ell,
                    correlation,
                    num_elements,
                    num_bessel,
                    radial_mlp,
                    avg_num_neighbors,
                    self_connection=residual[t],
                    interaction=kinds[t],
                    attention=attention,
                    element_messages=selector[t],
                    density_normalization=density_normalization,
                )
            )
        self.layers = nn.ModuleList(layers)
        self.irreps_out = [layer.irreps_out for layer in layers]

    @classmethod
    def from_config(cls, config: Any, num_elements: int, last_lmax: int) -> "Backbone":
        """The trunk from a model config's shared keys (r_max, num_bessel, num_polynomial_cutoff,
        max_ell, hidden_irreps, correlation, num_interactions, radial_mlp, avg_num_neighbors,
        interaction, attention; self_connection and element_messages where the config has them)."""
        hidden = FeatureIrreps.parse(config.hidden_irreps)
        return cls(
            num_elements=num_elements,
            r_max=config.r_max,
            num_bessel=config.num_bessel,
            num_polynomial_cutoff=config.num_polynomial_cutoff,
            max_ell=config.max_ell,
            hidden=hidden,
            correlation=config.correlation,
            num_interactions=config.num_interactions,
            radial_mlp=config.radial_mlp,
            avg_num_neighbors=config.avg_num_neighbors,
            last_lmax=last_lmax,
            interaction=config.interaction,
            attention=attention_settings(config, hidden, "model"),
            self_connection=getattr(config, "self_connection", None),
            element_messages=getattr(config, "element_messages", None),
            element_radii=element_radii(config) if getattr(config, "distance_transform", None) == "agnesi" else None,
            density_normalization=getattr(config, "neighbour_normalization", "average") == "density",
        )

    def forward(
        self,
        vectors: torch.Tensor,
        species: torch.Tensor,
        edge_index: torch.Tensor,
        node_features: Optional[torch.Tensor] = None,
    ) -> List[torch.Tensor]:
        """vectors [E, 3] (r_ij = r_sender - r_receiver + shift), species [N] (0..num_elements-1),
        edge_index [2, E]; every geometric derivative flows through ``vectors``. Optional
        invariant ``node_features`` [N, C] are added to the species embedding (the backmapping
        model feeds per-atom embeddings and its latent in this way)."""
        order = torch.argsort(species, stable=True)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.shape[0], device=order.device)
        # [num_elements] whatever the species (bincount's length would depend on the data)
        element_counts: List[int] = torch.zeros(self.num_elements, dtype=torch.long, device=species.device).index_add(
            0, species, torch.ones_like(species)).tolist()
        if torch.compiler.is_compiling():  # torch.export: the counts are sizes that add up to the nodes
            for count in element_counts:
                torch._check(count >= 0)
            torch._check(sum(element_counts) == species.shape[0])
        sender = inverse[edge_index[0]]
        receiver = inverse[edge_index[1]]
        lengths = torch.linalg.vector_norm(vectors, dim=1, keepdim=True)  # [E, 1]
        sh = self.spherical_harmonics(vectors)  # [E, (max_ell+1)^2]
        envelope = self.radial_embedding.cutoff(lengths)  # [E, 1]
        basis_lengths = lengths
        distance_transform = self.distance_transform
        if distance_transform is not None:
            basis_lengths = distance_transform(lengths, species.index_select(0, edge_index[0]), species.index_select(0, edge_index[1]))
        radial = self.radial_embedding.basis(basis_lengths) * envelope  # [E, num_bessel]
        h = self.embedding.index_select(0, species.index_select(0, order)).unsqueeze(1)  # [N, 1, C]
        if node_features is not None:
            h = h + node_features.index_select(0, order).unsqueeze(1)
        features: List[torch.Tensor] = []
        for layer in self.layers:
            h = layer(h, sh, radial, envelope, sender, receiver, element_counts)
            features.append(h.index_select(0, inverse))
        return features
