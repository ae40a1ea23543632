"""A mace-torch model as an ordinary mlpot potential with the same energies, forces and stress.

:func:`convert_mace` takes what :func:`mlpot.importers.mace_file.read_mace_file` read (config,
model class, state dict) and returns a :class:`~mlpot.models.potential.MACEPotential` whose
config describes the architecture and whose weights are mace's, re-expressed in mlpot's layout.
Every difference between the two implementations is absorbed by the weights, except three that
are options of mlpot's blocks (``self_connection`` on the first layer for
RealAgnosticResidualInteractionBlock, ``element_messages`` for RealAgnosticInteractionBlock's
element-dependent linear on the messages, ``pair_repulsion: zbl``). The rest:

- edge vectors: mace uses r_receiver - r_sender, mlpot r_sender - r_receiver; Y_l changes sign
  with (-1)^l, so each tensor-product path's radial weights take (-1)^l2;
- e3nn normalisations: linears and tensor products scale by 1/sqrt(fan_in) like mlpot's
  blocks; element-dependent linears (e3nn tensor products with the one-hot) by 1/sqrt(C Z) where
  mlpot has 1/sqrt(C), so they take 1/sqrt(Z); e3nn multiplies SiLU by the constant that makes
  its second moment one (:func:`e3nn.math.normalize2mom`), mlpot the next layer's weights by
  1/sqrt(0.355), so those weights take the ratio;
- path order: e3nn orders the convolution's paths (and the radial MLP's outputs) by l1, l2, l3
  and then sorts them by l3; mlpot by l1, l3, l2;
- product basis: mace stores its coupling tensors ("U_matrix_*", full or cuEquivariance's
  reduced basis, built with e3nn 0.4.4's signs); they span the same space of equivariant
  polynomials as mlpot's independent basis, so mace's weights map onto mlpot's paths by a least
  squares solve per degree and output l, checked to be exact;
- multi-head models: the readouts, E0s, scale and shift of the chosen head are kept;
- constants stored in the file (the Bessel prefactor, e3nn's Wigner 3j buffers) are used as
  stored, so a model saved in float32 and evaluated in float64 keeps their float32 rounding as
  mace does: the prefactor's ratio to mlpot's goes into the first weights that read the radial
  basis, the Wigner 3j into the convolution's ``cg`` buffer.

Natural-parity Clebsch-Gordan coefficients of e3nn 0.4.4 and 0.6 agree (they differ in sign
only on odd-parity paths, which neither model uses), and so do their spherical harmonics.
"""

import itertools
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from ase.data import chemical_symbols
from e3nn import o3

from mlpot.config import default_dtype
from mlpot.errors import MLPotError
from mlpot.models.potential import MACEPotential
from mlpot.nn.convolution import tensor_product_paths
from mlpot.nn.gated import unit_moment_gain
from mlpot.nn.irreps import FeatureIrreps, l_slice
from mlpot.nn.product import independent_basis, polynomial_coefficients
from mlpot.nn.readout import READOUT_ACTIVATIONS

#: The interaction blocks mlpot imports -> (residual self-connection, element-dependent linear on
#: the messages, density normalisation, mlpot interaction).
INTERACTIONS = {
    "RealAgnosticInteractionBlock": (False, True, False, "mace"),
    "RealAgnosticResidualInteractionBlock": (True, False, False, "mace"),
    "RealAgnosticDensityInteractionBlock": (False, True, True, "mace"),
    "RealAgnosticDensityResidualInteractionBlock": (True, False, True, "mace"),
    "RealAgnosticResidualNonLinearInteractionBlock": (True, False, False, "gated"),
}

#: mace-torch model classes and blocks mlpot has no counterpart for, and what they add.
UNSUPPORTED_CLASSES = {
    "MACELES": "long-range LES electrostatics",
    "PolarMACE": "PolarMACE's polarisable charges and fields",
    "AtomicDipolesMACE": "dipole outputs",
    "AtomicDielectricMACE": "dipole and polarisability outputs",
    "EnergyDipolesMACE": "dipole outputs",
    "BOTNet": "the BOTNet architecture",
}

#: e3nn's SiLU gain (normalize2mom) over mlpot's (1 / sqrt(0.355), see mlpot.nn.radial).
SILU_RATIO = unit_moment_gain("silu") * math.sqrt(0.3550)

#: mace's readout gate (its name) -> mlpot's readout activation and e3nn's gain for it.
GATES = {"silu": ("silu", unit_moment_gain("silu")), "tanh": ("tanh", unit_moment_gain("tanh")), "None": ("none", 1.0)}

#: A product-basis re-expression worse than this (relative) means the bases do not match.
BASIS_TOLERANCE = 1e-11


def convert_mace(mace: Any, head: Optional[str] = None, dtype: str = "float64") -> MACEPotential:
    """The mlpot potential computing what the mace-torch model ``mace`` (a MaceFile: ``config``,
    ``model_class``, ``state_dict``, ``path``) computes for ``head``; unsupported models and unknown
    heads are an :class:`MLPotError` naming the file and what is missing."""
    try:
        return _convert(mace, head, dtype)
    except MLPotError as error:
        path = getattr(mace, "path", None)
        if path is None:
            raise
        raise MLPotError(f"{path}: {error}") from None


def _convert(mace: Any, head: Optional[str], dtype: str) -> MACEPotential:
    config = mace.config
    state = {name: tensor.detach().to(torch.float64) if tensor.is_floating_point() else tensor
             for name, tensor in mace.state_dict.items()}
    check_supported(mace.model_class, config, state)
    heads = [str(name) for name in (config.get("heads") or ["Default"])]
    head_index = choose_head(heads, head)
    numbers = [int(z) for z in config["atomic_numbers"]]
    order = sorted(range(len(numbers)), key=numbers.__getitem__)  # mlpot element index -> mace's
    hidden = FeatureIrreps.parse(str(config["hidden_irreps"]))
    mlp_width = int(str(config["MLP_irreps"]).split("x")[0]) if "x" in str(config["MLP_irreps"]) else 1
    num_interactions = int(config["num_interactions"])
    first, later = str(config["interaction_cls_first"]), str(config["interaction_cls"])
    kinds = [str(kind) for kind in config.get("interaction_blocks") or [first] + [later] * (num_interactions - 1)]
    e0 = torch.atleast_2d(state["atomic_energies_fn.atomic_energies"])[head_index if len(heads) > 1 else 0]
    scale, shift = head_scale_shift(state, head_index)
    potential = {
        "elements": [chemical_symbols[numbers[e]] for e in order],
        "r_max": float(state["r_max"]),
        "num_bessel": int(config["num_bessel"]),
        "num_polynomial_cutoff": int(config["num_polynomial_cutoff"]),
        "max_ell": int(config["max_ell"]),
        "hidden_irreps": str(hidden),
        "correlation": single_correlation(config["correlation"]),
        "num_interactions": num_interactions,
        "radial_mlp": [int(width) for width in (config["radial_MLP"] if config.get("radial_MLP") is not None else [64, 64, 64])],
        "readout_mlp": mlp_width,
        "last_readout": "mlp" if num_interactions > 1 else "linear",  # mace: one layer, one linear readout
        "readout_activation": GATES[str(config.get("gate"))][0] if num_interactions > 1 else "silu",
        "avg_num_neighbors": float(config["avg_num_neighbors"]),
        "atomic_energies": {chemical_symbols[numbers[e]]: float(e0[e]) for e in order},
        "scale": scale,
        "shift": shift,
        "self_connection": [INTERACTIONS[kind][0] for kind in kinds],
        "element_messages": [INTERACTIONS[kind][1] for kind in kinds],
        "interaction": [INTERACTIONS[kind][3] for kind in kinds],
        "neighbour_normalization": "density" if INTERACTIONS[first][2] else "average",
        "distance_transform": "agnesi" if str(config.get("distance_transform")) == "Agnesi" else None,
        "pair_repulsion": "zbl" if "pair_repulsion_fn.c" in state else None,
        "pair_repulsion_scaled": mace.model_class == "ScaleShiftMACE",
        "dtype": "float64",
    }
    model = MACEPotential.from_config(potential)
    weights = model.state_dict()
    mapped = mace_weights(state, potential, hidden, order, head_index, len(heads), config.get("gate"))
    unmapped = [name for name, _ in model.named_parameters() if name not in mapped]
    if unmapped:
        raise RuntimeError(f"convert_mace left parameters unset: {unmapped}")  # a bug
    for name, tensor in mapped.items():
        if weights[name].shape != tensor.shape:
            raise RuntimeError(f"{name}: mapped {tuple(tensor.shape)}, model has {tuple(weights[name].shape)}")
        weights[name] = tensor
    if dtype != "float64":
        potential["dtype"] = dtype
        with default_dtype(dtype):
            model = MACEPotential.from_config(potential)
    model.load_state_dict(weights, strict=True)
    model.metadata = {"imported_from": "mace-torch", "mace_model_class": mace.model_class, "mace_head": heads[head_index]}
    version = getattr(mace, "mace_version", None)
    if version:
        model.metadata["mace_version"] = str(version)
    return model.eval()


def check_supported(model_class: str, config: Dict[str, Any], state: Dict[str, torch.Tensor]) -> None:
    """One MLPotError naming the first mace feature mlpot does not implement."""
    if model_class in UNSUPPORTED_CLASSES:
        raise MLPotError(f"mace model class {model_class} is not supported: mlpot does not implement {UNSUPPORTED_CLASSES[model_class]}")
    if model_class not in ("MACE", "ScaleShiftMACE"):
        raise MLPotError(f"mace model class {model_class} is not supported (mlpot imports MACE and ScaleShiftMACE)")
    for key in ("interaction_cls_first", "interaction_cls"):
        kind = str(config[key])
        if kind not in INTERACTIONS:
            raise MLPotError(f"mace interaction block {kind} is not supported (mlpot imports {', '.join(INTERACTIONS)})")
    if int(config["num_interactions"]) > 1 and INTERACTIONS[str(config["interaction_cls_first"])][2] != INTERACTIONS[str(config["interaction_cls"])][2]:
        raise MLPotError("mace model mixes density-normalised and plain interaction blocks, which mlpot does not implement")
    multilayer = int(config["num_interactions"]) > 1  # one-layer models have only a linear readout
    refusals = [
        (str(config.get("radial_type") or "bessel") != "bessel", f"radial_type {config.get('radial_type')!r} (mlpot has the Bessel basis)"),
        (str(config.get("distance_transform") or "None") not in ("None", "Agnesi"), f"distance_transform {config.get('distance_transform')!r}"),
        (config.get("apply_cutoff", True) is False, "apply_cutoff False (the cutoff applied after the radial MLP)"),
        (bool(config.get("embedding_specs")), "charge/spin embeddings (embedding_specs)"),
        (bool(config.get("use_embedding_readout")), "the embedding readout"),
        (bool(config.get("use_so3")), "use_so3 (SO(3)-only spherical harmonics)"),
        (config.get("edge_irreps") not in (None, "None"), "edge_irreps"),
        (bool(config.get("use_last_readout_only")), "use_last_readout_only"),
        (multilayer and str(config.get("gate")) not in GATES, f"readout gate {config.get('gate')!r} (mlpot has {', '.join(GATES)})"),
        (multilayer and str(config.get("readout_cls") or "NonLinearReadoutBlock") != "NonLinearReadoutBlock",
         f"readout {config.get('readout_cls')}"),
        (multilayer and (str(config.get("MLP_irreps", "0e")).count("x") != 1 or not str(config.get("MLP_irreps")).endswith("x0e")),
         f"MLP_irreps {config.get('MLP_irreps')!r} (scalars only)"),
        (any(int(c) > 3 for c in np.atleast_1d(config["correlation"])), f"correlation {config['correlation']} (mlpot goes to 3)"),
        (len(set(int(c) for c in np.atleast_1d(config["correlation"]))) > 1, f"a correlation per layer {config['correlation']}"),
    ]
    for refused, what in refusals:
        if refused:
            raise MLPotError(f"mace model uses {what}, which mlpot does not implement")
    last = int(config["num_interactions"]) - 1
    if f"products.{last}.symmetric_contractions.contractions.1.weights_max" in state:
        raise MLPotError("mace model keeps non-scalar features after the last layer (keep_last_layer_irreps), which mlpot does not implement")
    if not any(name.startswith("interactions.0.conv_tp_weights.") for name in state):
        raise MLPotError("mace model stores its weights in a layout mlpot does not read (cuEquivariance or OpenEquivariance modules); convert it to e3nn first")
    FeatureIrreps.parse(str(config["hidden_irreps"]))


def choose_head(heads: List[str], head: Optional[str]) -> int:
    """Index of the head to keep: the one named, else the only one or the one named default
    (mace-torch writes "Default" or "default")."""
    if head is None:
        defaults = [i for i, name in enumerate(heads) if name.lower() == "default"]
        if len(heads) == 1 or len(defaults) == 1:
            return 0 if len(heads) == 1 else defaults[0]
        raise MLPotError(f"mace model has heads {', '.join(heads)}; choose one with --head")
    if head not in heads:
        raise MLPotError(f"mace model has no head {head!r}; its heads are {', '.join(heads)}")
    return heads.index(head)


def single_correlation(correlation: Any) -> int:
    return int(np.atleast_1d(correlation)[0])


def head_scale_shift(state: Dict[str, torch.Tensor], head: int) -> Tuple[float, float]:
    """ScaleShiftMACE's scale and shift for ``head`` (plain MACE: 1 and 0)."""
    if "scale_shift.scale" not in state:
        return 1.0, 0.0
    scale = torch.atleast_1d(state["scale_shift.scale"])
    shift = torch.atleast_1d(state["scale_shift.shift"])
    return float(scale[head if scale.numel() > 1 else 0]), float(shift[head if shift.numel() > 1 else 0])


def linear_blocks(flat: torch.Tensor, shapes: Sequence[Tuple[int, ...]]) -> List[torch.Tensor]:
    """An e3nn weight vector -> its per-instruction blocks, in instruction order."""
    sizes = [math.prod(shape) for shape in shapes]
    if flat.numel() != sum(sizes):
        raise MLPotError(f"mace weight has {flat.numel()} entries where {sum(sizes)} were expected (an unsupported variant)")
    return [block.reshape(shape) for block, shape in zip(torch.split(flat, sizes), shapes)]


def mace_paths(lmax_in: int, max_ell: int) -> List[Tuple[int, int, int]]:
    """The convolution's paths in e3nn's weight order: created l1, l2, l3, then sorted by l3."""
    created = [
        (l1, l2, l3)
        for l1 in range(lmax_in + 1)
        for l2 in range(max_ell + 1)
        for l3 in range(abs(l1 - l2), l1 + l2 + 1)
        if l3 <= max_ell and (l1 + l2 + l3) % 2 == 0
    ]
    return [created[k] for k in sorted(range(len(created)), key=lambda k: (created[k][2], k))]


def mace_weights(
    state: Dict[str, torch.Tensor], potential: Dict[str, Any], hidden: FeatureIrreps, order: List[int],
    head: int, num_heads: int, config_gate: Any,
) -> Dict[str, torch.Tensor]:
    """mlpot parameter and buffer name -> value, from mace's state dict."""
    channels = hidden.channels
    num_elements = len(order)
    max_ell = potential["max_ell"]
    num_interactions = potential["num_interactions"]
    out: Dict[str, torch.Tensor] = {}
    embedding = state["node_embedding.linear.weight"].reshape(num_elements, channels)
    out["backbone.embedding"] = embedding[order] / math.sqrt(num_elements)
    out["backbone.radial_embedding.basis.frequencies"] = state["radial_embedding.bessel_fn.bessel_weights"]
    if potential["distance_transform"] == "agnesi":
        transform = "radial_embedding.distance_transform."
        for name in ("q", "p", "a"):
            out[f"backbone.distance_transform.{name}"] = state[transform + name]
        numbers = state["atomic_numbers"].long()
        out["backbone.distance_transform.element_radii"] = state[transform + "covalent_radii"][numbers[order]]
    for t in range(num_interactions):
        lmax_in = 0 if t == 0 else hidden.lmax
        lmax_out = hidden.lmax if t < num_interactions - 1 else 0
        out.update(layer_weights(state, t, lmax_in, lmax_out, max_ell, channels, order, potential))
    gate = GATES[str(config_gate)][1] if num_interactions > 1 else 1.0
    readouts = readout_weights(state, num_interactions, channels, potential["readout_mlp"], head, num_heads, gate, potential["readout_activation"])
    out.update(readouts)
    out["element_offsets"] = torch.zeros(num_elements, dtype=torch.float64)
    if potential["pair_repulsion"] == "zbl":
        out["pair_repulsion.coefficients"] = state["pair_repulsion_fn.c"]
        out["pair_repulsion.a_exp"] = state["pair_repulsion_fn.a_exp"]
        out["pair_repulsion.a_prefactor"] = state["pair_repulsion_fn.a_prefactor"]
        out["pair_repulsion.covalent_radii"] = state["pair_repulsion_fn.covalent_radii"]
    return out


def layer_weights(
    state: Dict[str, torch.Tensor], t: int, lmax_in: int, lmax_out: int, max_ell: int, channels: int,
    order: List[int], potential: Dict[str, Any],
) -> Dict[str, torch.Tensor]:
    """One interaction + product layer."""
    mace, ours = f"interactions.{t}.", f"backbone.layers.{t}."
    num_elements = len(order)
    square = [(channels, channels)]
    out: Dict[str, torch.Tensor] = {}
    out[ours + "interaction.linear_up.weight"] = torch.stack(
        linear_blocks(state[mace + "linear_up.weight"], square * (lmax_in + 1))
    )
    # Radial MLP: hidden layers, then one [width, C] block per path, reordered and signed.
    sizes = [potential["num_bessel"]] + potential["radial_mlp"]
    # mlpot's Bessel prefactor is sqrt(2 / r_max) computed afresh; mace's is a stored buffer.
    prefactor = float(state["radial_embedding.bessel_fn.prefactor"]) / math.sqrt(2.0 / potential["r_max"])
    if potential["interaction"][t] == "gated":
        out.update(gated_weights(state, t, lmax_in, lmax_out, max_ell, channels, order, potential["num_bessel"], prefactor))
        product = f"products.{t}."
        out[ours + "product.weight"] = product_weights(state, product, max_ell, lmax_out, potential["correlation"], order)
        out[ours + "linear.weight"] = torch.stack(linear_blocks(state[product + "linear.weight"], square * (lmax_out + 1)))
        return out
    for i in range(len(sizes) - 1):
        gain = prefactor if i == 0 else SILU_RATIO
        out[ours + f"interaction.radial_mlp.hidden.{i}.weight"] = state[mace + f"conv_tp_weights.layer{i}.weight"] * gain
    last = state[mace + f"conv_tp_weights.layer{len(sizes) - 1}.weight"] * (SILU_RATIO if len(sizes) > 1 else prefactor)
    order_mace = mace_paths(lmax_in, max_ell)
    paths = tensor_product_paths(lmax_in, max_ell, max_ell)
    if sorted(order_mace) != sorted(paths):
        raise RuntimeError(f"path sets differ: {order_mace} vs {paths}")  # a bug
    position = {path: k for k, path in enumerate(order_mace)}
    out[ours + "interaction.radial_mlp.out_weight"] = torch.stack(
        [last[:, position[p] * channels : (position[p] + 1) * channels] * (-1) ** p[1] for p in paths]
    )
    down = linear_blocks(state[mace + "linear.weight"], square * len(order_mace))
    out[ours + "interaction.linear_down.weight"] = torch.stack([down[position[p]] for p in paths])
    if potential["neighbour_normalization"] == "density":
        out[ours + "interaction.density.weight"] = state[mace + "density_fn.layer0.weight"] * prefactor
    stored_w3j = {
        tuple(int(l) for l in name.rsplit("_w3j_", 1)[1].split("_")): tensor
        for name, tensor in state.items()
        if name.startswith(mace + "conv_tp.") and "_w3j_" in name
    }
    if stored_w3j:
        out[ours + "interaction.tensor_product.cg"] = coupling_from_w3j(lmax_in, max_ell, stored_w3j)
    if potential["element_messages"][t]:
        out[ours + "message_linear.weight"] = element_linear(state[mace + "skip_tp.weight"], max_ell, max_ell, channels, order)
    if potential["self_connection"][t]:
        shared = min(lmax_in, lmax_out)
        out[ours + "self_connection.weight"] = element_linear(state[mace + "skip_tp.weight"], shared, shared, channels, order)
    product = f"products.{t}."
    out[ours + "product.weight"] = product_weights(state, product, max_ell, lmax_out, potential["correlation"], order)
    out[ours + "linear.weight"] = torch.stack(linear_blocks(state[product + "linear.weight"], square * (lmax_out + 1)))
    return out


def gated_weights(
    state: Dict[str, torch.Tensor], t: int, lmax_in: int, lmax_out: int, max_ell: int, channels: int,
    order: List[int], num_bessel: int, prefactor: float,
) -> Dict[str, torch.Tensor]:
    """RealAgnosticResidualNonLinearInteractionBlock -> mlpot's gated interaction (mlpot.nn.gated)."""
    mace, ours = f"interactions.{t}.", f"backbone.layers.{t}."
    num_elements = len(order)
    square = [(channels, channels)]
    out: Dict[str, torch.Tensor] = {}
    for side in ("source", "target"):
        embedding = state[mace + f"{side}_embedding.weight"].reshape(num_elements, channels)
        out[ours + f"edge_embedding.{side}"] = embedding[order] / math.sqrt(num_elements)
    out[ours + "interaction.linear_up.weight"] = torch.stack(linear_blocks(state[mace + "linear_up.weight"], square * (lmax_in + 1)))
    order_mace = mace_paths(lmax_in, max_ell)
    paths = tensor_product_paths(lmax_in, max_ell, max_ell)
    position = {path: k for k, path in enumerate(order_mace)}
    for mlp, ours_mlp in (("conv_tp_weights", "radial_mlp"), ("density_fn", "density")):
        prefix = mace + f"{mlp}.net."
        indices = {int(name[len(prefix) :].split(".")[0]) for name in state if name.startswith(prefix)}
        # Linear, LayerNorm, SiLU per hidden layer, then Linear: the Linears are every third module.
        linears = sorted(index for index in indices if index % 3 == 0)
        for k, index in enumerate(linears):
            weight = state[mace + f"{mlp}.net.{index}.weight"].clone()  # [out, in]
            bias = state[mace + f"{mlp}.net.{index}.bias"].clone()
            if k == 0:
                weight[:, :num_bessel] *= prefactor  # mace's stored Bessel prefactor
            if mlp == "conv_tp_weights" and k == len(linears) - 1:  # rows to mlpot's path order and signs
                rows = torch.cat([torch.arange(position[p] * channels, (position[p] + 1) * channels) for p in paths])
                signs = torch.cat([torch.full((channels,), float((-1) ** p[1]), dtype=torch.float64) for p in paths])
                weight, bias = weight[rows] * signs[:, None], bias[rows] * signs
            layer = f"linears.{k}" if k < len(linears) - 1 else "out"
            out[ours + f"interaction.{ours_mlp}.{layer}.weight"] = weight
            out[ours + f"interaction.{ours_mlp}.{layer}.bias"] = bias
            if k < len(linears) - 1:
                out[ours + f"interaction.{ours_mlp}.norms.{k}.weight"] = state[mace + f"{mlp}.net.{index + 1}.weight"]
                out[ours + f"interaction.{ours_mlp}.norms.{k}.bias"] = state[mace + f"{mlp}.net.{index + 1}.bias"]
    out[ours + "interaction.alpha"] = state[mace + "alpha"]
    out[ours + "interaction.beta"] = state[mace + "beta"]
    gate_width = channels * (1 + max_ell)  # scalars, then one gate per channel of each l > 0
    widths = [gate_width if l3 == 0 else channels for _, _, l3 in order_mace]
    down = linear_blocks(state[mace + "linear_1.weight"], [(channels, width) for width in widths])
    out[ours + "interaction.linear_down.weight"] = torch.stack([down[position[p]][:, :channels] for p in paths])
    out[ours + "interaction.gate_down"] = torch.stack([down[position[p]][:, channels:] for p in paths if p[2] == 0])
    shared = min(lmax_in, max_ell)
    residual = linear_blocks(state[mace + "linear_res.weight"], [(channels, gate_width)] + square * shared)
    out[ours + "interaction.residual.weight"] = torch.stack([residual[0][:, :channels]] + residual[1:])
    out[ours + "interaction.gate_residual"] = residual[0][:, channels:]
    out[ours + "interaction.linear_out.weight"] = torch.stack(linear_blocks(state[mace + "linear_2.weight"], square * (max_ell + 1)))
    skip = min(lmax_in, lmax_out)
    out[ours + "linear_self_connection.weight"] = torch.stack(linear_blocks(state[mace + "skip_tp.weight"], square * (skip + 1)))
    return out


def coupling_from_w3j(lmax_in: int, max_ell: int, stored: Dict[Tuple[int, int, int], torch.Tensor]) -> torch.Tensor:
    """mlpot's EdgeTensorProduct ``cg`` buffer with the Wigner 3j blocks e3nn stored in the mace
    file where it stored them (e3nn inlines the others as constants, exact in float64)."""
    paths = tensor_product_paths(lmax_in, max_ell, max_ell)
    columns = []
    for l1, l2, l3 in paths:
        if l1 == 0:
            continue  # coupled by the identity in mlpot's layout
        w3j = stored.get((l1, l2, l3))
        if w3j is None:
            w3j = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
        block = w3j.to(torch.float64) * math.sqrt(2 * l3 + 1)  # [m1, m2, m3]
        column = torch.zeros((max_ell + 1) ** 2, (2 * l1 + 1) * (2 * l3 + 1), dtype=torch.float64)
        column[l_slice(l2)] = block.permute(1, 2, 0).reshape(2 * l2 + 1, -1)
        columns.append(column)
    return torch.cat(columns, dim=1)


def element_linear(flat: torch.Tensor, lmax_in: int, lmax_out: int, channels: int, order: List[int]) -> torch.Tensor:
    """e3nn FullyConnectedTensorProduct(features, one-hot, features) -> mlpot ElementLinear
    weight [Z, l + 1, C, C]: one [C, Z, C] block per l, normalised by 1/sqrt(C Z)."""
    num_elements = len(order)
    blocks = linear_blocks(flat, [(channels, num_elements, channels)] * (min(lmax_in, lmax_out) + 1))
    weight = torch.stack(blocks)  # [l, C_in, Z, C_out]
    return weight.permute(2, 0, 1, 3)[order] / math.sqrt(num_elements)


def product_weights(
    state: Dict[str, torch.Tensor], prefix: str, lmax_in: int, lmax_out: int, correlation: int, order: List[int]
) -> torch.Tensor:
    """mace's symmetric-contraction weights on mlpot's product basis, [Z, P, C]."""
    blocks: List[torch.Tensor] = []
    for degree in range(1, correlation + 1):
        monomials, basis = independent_basis(lmax_in, lmax_out, degree)
        all_monomials = list(itertools.combinations_with_replacement(range((lmax_in + 1) ** 2), degree))
        columns = torch.tensor([all_monomials.index(key) for key in monomials])
        ours = torch.zeros(basis.shape[0], basis.shape[1], len(all_monomials), dtype=torch.float64)
        ours[:, :, columns] = basis  # [P, D_out, all monomials]
        degree_weight = None
        for lo in range(lmax_out + 1):
            contraction = f"{prefix}symmetric_contractions.contractions.{lo}."
            coupling = state[contraction + f"U_matrix_{degree}"]
            if lo == 0:
                coupling = coupling.unsqueeze(0)  # [1, D, ..., D, Q]
            name = "weights_max" if degree == correlation else f"weights.{correlation - 1 - degree}"
            weight = state[contraction + name]  # [Z, Q, C]
            theirs = torch.stack(
                [polynomial_coefficients(coupling[..., q], monomial_index(all_monomials, degree)) for q in range(coupling.shape[-1])]
            )  # [Q, 2lo+1, all monomials]
            rows = [p for p in range(basis.shape[0]) if bool(basis[p, l_slice(lo)].abs().amax() > 0)]
            target = ours[rows][:, l_slice(lo)].reshape(len(rows), -1)  # [P_lo, (2lo+1) M]
            source = theirs.reshape(theirs.shape[0], -1)  # [Q, (2lo+1) M]
            # pinv, not lstsq: mlpot's basis has a redundant path at places (degree 3, l = 1 from
            # l <= 3: 13 paths of rank 12), where lstsq's answer depends on the run.
            solution = source @ torch.linalg.pinv(target, rtol=1e-10)  # [Q, P_lo]
            residual = (solution @ target - source).abs().amax()
            if residual > BASIS_TOLERANCE * max(source.abs().amax().item(), 1.0):
                raise MLPotError(
                    f"mace product basis ({prefix}, degree {degree}, l = {lo}) is not spanned by mlpot's (residual {residual:.1e})"
                )
            if degree_weight is None:
                degree_weight = torch.zeros(weight.shape[0], basis.shape[0], weight.shape[2], dtype=torch.float64)
            degree_weight[:, rows, :] = torch.einsum("zqc,qp->zpc", weight, solution)
        blocks.append(degree_weight)
    return torch.cat(blocks, dim=1)[order]


def monomial_index(monomials: List[Tuple[int, ...]], degree: int) -> torch.Tensor:
    return torch.tensor(monomials, dtype=torch.long).reshape(len(monomials), degree)


def readout_weights(
    state: Dict[str, torch.Tensor], num_interactions: int, channels: int, width: int, head: int, num_heads: int,
    gate_gain: float, activation: str,
) -> Dict[str, torch.Tensor]:
    """Linear readouts and the last MLP readout, for one head; ``gate_gain`` is e3nn's
    constant on the readout's activation, which mlpot puts into the output weights instead."""
    out: Dict[str, torch.Tensor] = {}
    for t in range(max(num_interactions - 1, 1)):
        weight = linear_blocks(state[f"readouts.{t}.linear.weight"], [(channels, num_heads)])[0]
        out[f"readouts.{t}.linear.weight"] = weight[:, head : head + 1]
    if num_interactions == 1:
        return out
    last = f"readouts.{num_interactions - 1}."
    first = linear_blocks(state[last + "linear_1.weight"], [(channels, num_heads * width)])[0]
    second = linear_blocks(state[last + "linear_2.weight"], [(num_heads * width, num_heads)])[0]
    block = slice(head * width, (head + 1) * width)  # mace masks the hidden units of other heads
    out[last + "hidden.weight"] = first[:, block]
    ratio = gate_gain * math.sqrt(READOUT_ACTIVATIONS[activation])
    out[last + "out.weight"] = second[block, head : head + 1] * ratio / math.sqrt(num_heads)
    return out
