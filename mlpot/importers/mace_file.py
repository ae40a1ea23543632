"""A mace-torch ``.model`` file, read without executing code from it and without mace-torch installed.

mace-torch writes a model with ``torch.save(model)``: a zip archive whose ``data.pkl`` pickles the whole
module tree (mace, e3nn and torch classes, e3nn's generated code, torch.fx graph modules) and whose
``data/N`` entries hold the tensor storages. Unpickling it the usual way imports those classes and runs
their ``__setstate__`` (e3nn compiles TorchScript stored in the file); ``torch.load(weights_only=True)``
refuses it. :class:`_RecordUnpickler` instead turns every class and function the pickle names into an
inert :class:`Record` that only keeps the arguments and state the pickle gives it; the only callables
it runs are builtins that build containers, byte strings and tensors. Tensors are rebuilt from the
archive's storages as torch does (``torch._utils._rebuild_tensor_v2``).

From the record tree of the top module, :func:`read_mace_file` takes what mace's own
``extract_config_mace_model`` (mace/tools/scripts_utils.py) reads, as plain values, and the state dict
with the keys ``model.state_dict()`` has. Anything mlpot does not implement is refused here, in one line
naming it, so that a converted model never silently differs from the mace one.

mace-torch writes no file that pairs a state dict with its config: its training checkpoints
(``checkpoints/*.pt``) hold the state dict, optimizer and scheduler but not the architecture, and its
``*_compiled.model`` is TorchScript. So the pickled module is the one form read here.
"""

import ast
import io
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch

from mlpot.errors import MLPotError


class Record:
    """An object of a class named in the pickle, not built: the arguments and state the pickle gave.

    Subclasses are made per pickled class name by :func:`_record_type`; the class itself stands for the
    pickled class or function (a reference to ``torch.nn.functional.silu`` is such a class)."""

    module: str = ""
    qualname: str = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> "Record":
        record = object.__new__(cls)
        record.args = args  # from NEWOBJ / REDUCE
        record.kwargs = kwargs
        record.state = None  # from BUILD
        return record

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Nothing: the arguments were kept by __new__."""

    def __setstate__(self, state: Any) -> None:
        self.state = state

    @classmethod
    def full_name(cls) -> str:
        return f"{cls.module}.{cls.qualname}"

    def __repr__(self) -> str:
        return f"<record of {self.full_name()}>"


_RECORD_TYPES: Dict[Tuple[str, str], type] = {}


def _record_type(module: str, name: str) -> type:
    key = (module, name)
    if key not in _RECORD_TYPES:
        _RECORD_TYPES[key] = type(name.rpartition(".")[2] or "Record", (Record,), {"module": module, "qualname": name})
    return _RECORD_TYPES[key]


@dataclass(frozen=True)
class _StorageType:
    dtype: torch.dtype


_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexDoubleStorage": torch.complex128,
    "ComplexFloatStorage": torch.complex64,
}


def _rebuild_tensor_v2(
    storage: torch.Tensor,  # [numel] of the storage's dtype
    storage_offset: int,
    size: Tuple[int, ...],
    stride: Tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> torch.Tensor:
    """The tensor viewing ``storage`` as torch._utils._rebuild_tensor_v2 would, as a copy of its own."""
    needed = storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else 0
    if needed > storage.numel():
        raise pickle.UnpicklingError("a tensor reaches past the end of its storage")
    return torch.as_strided(storage, tuple(size), tuple(stride), storage_offset).clone()


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool = False, backward_hooks: Any = None, state: Any = None) -> torch.Tensor:
    return data


def _rebuild_from_type_v2(function: Any, new_type: Any, args: Tuple, state: Any) -> Any:
    """A tensor subclass (nn.Parameter in some torch versions): the plain tensor, if built by a rebuilder above."""
    if function not in (_rebuild_tensor_v2, _rebuild_parameter):
        raise pickle.UnpicklingError(f"unexpected tensor rebuild function {function!r}")
    return function(*args)


def _encode(text: str, encoding: str = "latin1") -> bytes:
    """Protocol 2 pickles bytes as ``_codecs.encode(text, 'latin1')``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("unexpected _codecs.encode arguments")
    return text.encode("latin1")


# The only callables the pickle may reach; everything else it names becomes a Record.
_ALLOWED_CALLABLES = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("collections", "OrderedDict"): dict,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "frozenset"): frozenset,
    ("_codecs", "encode"): _encode,
}


class _RecordUnpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` of a torch zip archive into records, tensors and containers."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._prefix = prefix
        self._storages: Dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_CALLABLES:
            return _ALLOWED_CALLABLES[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        return _record_type(module, name)

    def persistent_load(self, pid: Any) -> torch.Tensor:
        """A storage, as a flat tensor of its dtype: ``('storage', type, key, location, numel)``."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unknown storage type {storage_type!r:.80}")
        if key not in self._storages:
            try:
                raw = self._archive.read(f"{self._prefix}data/{key}")
            except KeyError:
                raise pickle.UnpicklingError(f"storage {key} is missing from the archive") from None
            flat = torch.frombuffer(bytearray(raw), dtype=storage_type.dtype) if raw else torch.empty(0, dtype=storage_type.dtype)
            if flat.numel() != numel:
                raise pickle.UnpicklingError(f"storage {key} holds {flat.numel()} values, not {numel}")
            self._storages[key] = flat
        return self._storages[key]


# --- the archive ---------------------------------------------------------------------------------


def _unpickle(path: Path) -> Any:
    """The top object of the torch zip archive ``path``, as records; user errors name the file."""
    with open(path, "rb") as stream:
        head = stream.read(4)
    if head != b"PK\x03\x04":
        if head[:2] == b"\x80\x02" or head[:1] == b"\x80":
            raise MLPotError(
                f"{path} is in PyTorch's legacy (before 1.6) format; load it with mace-torch and "
                "torch.save it again with a current torch"
            )
        raise MLPotError(f"{path} is not a mace-torch model file (not a PyTorch zip archive)")
    try:
        archive = zipfile.ZipFile(path)
        names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise MLPotError(f"{path} is truncated or damaged (its zip archive cannot be read)") from None
    with archive:
        pickles = [name for name in names if name.count("/") == 1 and name.endswith("/data.pkl")]
        if any(name.count("/") == 1 and name.endswith("/constants.pkl") for name in names):
            raise MLPotError(
                f"{path} is a TorchScript (compiled) model; give the plain .model file mace writes beside it"
            )
        if len(pickles) != 1:
            raise MLPotError(f"{path} is not a mace-torch model file (a zip archive without PyTorch's data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = archive.read(f"{prefix}byteorder").decode().strip() if f"{prefix}byteorder" in names else "little"
        if byteorder != "little":
            raise MLPotError(f"{path} was written on a {byteorder}-endian machine; only little-endian files are read")
        try:
            return _RecordUnpickler(archive.read(pickles[0]), archive, prefix).load()
        except (zipfile.BadZipFile, EOFError, OSError) as error:
            raise MLPotError(f"{path} is truncated or damaged ({error})") from None
        except (pickle.UnpicklingError, AttributeError, TypeError, ValueError, IndexError, KeyError, RuntimeError) as error:
            raise MLPotError(f"{path} is not a mace-torch model file, or is damaged (its pickle cannot be read: {error})") from None


# --- the record tree -----------------------------------------------------------------------------


def _name(value: Any) -> str:
    """The qualified name of the class or function a record (or record class) stands for."""
    if isinstance(value, type) and issubclass(value, Record):
        return value.full_name()
    if isinstance(value, Record):
        return type(value).full_name()
    return type(value).__name__


def _class(value: Any) -> str:
    """The bare class name of a record: ``ScaleShiftMACE``."""
    return _name(value).rpartition(".")[2]


def _fields(record: Any) -> Optional[Dict[str, Any]]:
    """The ``__dict__`` of a pickled nn.Module (``_parameters``, ``_buffers``, ``_modules``, attributes),
    or None if ``record`` is not one. A torch.fx GraphModule is pickled as a call of
    ``reduce_graph_module(body, ...)``; its body is that dict."""
    if not isinstance(record, Record):
        return None
    if isinstance(record.state, dict) and "_modules" in record.state:
        return record.state
    if record.args and isinstance(record.args[0], dict) and "_modules" in record.args[0]:
        return record.args[0]
    return None


class _Module:
    """Attribute access into a pickled nn.Module record, as on the module itself."""

    def __init__(self, record: Any, path: str) -> None:
        fields = _fields(record)
        if fields is None:
            raise _NotAModule(path, record)
        self.record = record
        self.path = path
        self.fields = fields

    @property
    def class_name(self) -> str:
        return _class(self.record)

    def has(self, name: str) -> bool:
        groups = ("_parameters", "_buffers", "_modules")
        return any(name in (self.fields.get(group) or {}) for group in groups) or name in self.fields

    def get(self, name: str, default: Any = None) -> Any:
        for group in ("_parameters", "_buffers"):
            values = self.fields.get(group) or {}
            if name in values:
                return values[name]
        modules = self.fields.get("_modules") or {}
        if name in modules:
            return _Module(modules[name], f"{self.path}.{name}".lstrip(".")) if modules[name] is not None else None
        return self.fields.get(name, default)

    def __getitem__(self, name: str) -> Any:
        if not self.has(name):
            raise _Missing(f"{self.path}.{name}".lstrip("."))
        return self.get(name)

    def children(self) -> List["_Module"]:
        """Submodules in registration order (a ModuleList's items by index)."""
        modules = self.fields.get("_modules") or {}
        return [_Module(child, f"{self.path}.{name}".lstrip(".")) for name, child in modules.items() if child is not None]

    def walk(self) -> Iterator["_Module"]:
        yield self
        for child in self.children():
            yield from child.walk()


class _NotAModule(Exception):
    def __init__(self, path: str, record: Any) -> None:
        super().__init__(f"{path or 'the top object'} is {_name(record)}, not a torch module")


class _Missing(Exception):
    """A module or attribute mace models have is absent or malformed; the message names it."""

    def __str__(self) -> str:
        return f"{self.args[0]} is missing or malformed"


def _state_dict(module: _Module, prefix: str = "") -> Dict[str, torch.Tensor]:
    """What ``module.state_dict()`` gives: parameters, then persistent buffers, then submodules, then
    the TorchScript submodules e3nn's CodeGenMixin pickles as bytes and registers last on loading."""
    out: Dict[str, torch.Tensor] = {}
    for name, tensor in (module.fields.get("_parameters") or {}).items():
        if tensor is not None:
            out[prefix + name] = _tensor(tensor, prefix + name)
    non_persistent = module.fields.get("_non_persistent_buffers_set") or set()
    for name, tensor in (module.fields.get("_buffers") or {}).items():
        if tensor is not None and name not in non_persistent:
            out[prefix + name] = _tensor(tensor, prefix + name)
    for child in module.children():
        out.update(_state_dict(child, f"{prefix}{child.path.rpartition('.')[2]}."))
    for name, archive in (module.fields.get("__codegen__") or {}).items():
        for key, tensor in _script_module_tensors(archive, f"{prefix}{name}").items():
            out[f"{prefix}{name}.{key}"] = tensor
    return out


_SCRIPT_TENSOR_LISTS = re.compile(r"^\s*__(parameters|buffers)__\s*=\s*(\[.*\])\s*$", re.MULTILINE)


def _script_module_tensors(archive_bytes: Any, where: str) -> Dict[str, torch.Tensor]:
    """Parameters and buffers of a flat TorchScript module saved as bytes (``torch.jit.save``): e3nn's
    generated code, whose buffers hold e3nn's Wigner 3j symbols. Its data.pkl is read with the same
    record unpickler; which attributes are parameters and buffers, the ``__parameters__`` and
    ``__buffers__`` lists of its class's code say (read as text, never run)."""
    if not isinstance(archive_bytes, bytes):
        raise _Missing(f"{where} (TorchScript bytes; found {_name(archive_bytes)})")
    try:
        archive = zipfile.ZipFile(io.BytesIO(archive_bytes))
        names = archive.namelist()
        pickles = [name for name in names if name.count("/") == 1 and name.endswith("/data.pkl")]
        prefix = pickles[0][: -len("data.pkl")]
        top = _RecordUnpickler(archive.read(pickles[0]), archive, prefix).load()
        code = archive.read(f"{prefix}code/{type(top).module.replace('.', '/')}.py").decode()
    except (zipfile.BadZipFile, IndexError, KeyError, EOFError, pickle.UnpicklingError, UnicodeDecodeError, AttributeError) as error:
        raise _Missing(f"{where} (an unreadable TorchScript module: {error})") from None
    if not isinstance(top, Record) or not isinstance(top.state, dict):
        raise _Missing(f"{where} (a TorchScript module; found {_name(top)})")
    header = code.split(f"class {type(top).qualname}(", 1)[-1].split("\n  def ", 1)[0]
    lists = {kind: ast.literal_eval(value) for kind, value in _SCRIPT_TENSOR_LISTS.findall(header)}
    return {
        name: _tensor(top.state.get(name), f"{where}.{name}")
        for name in lists.get("parameters", []) + lists.get("buffers", [])
    }


def _tensor(value: Any, where: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise _Missing(f"{where} (a tensor; found {_name(value)})")
    return value


# --- plain values --------------------------------------------------------------------------------


def _irrep(record: Any) -> str:
    args = record.args[0] if len(record.args) == 1 and isinstance(record.args[0], tuple) else record.args
    l, p = args
    return f"{int(l)}{'e' if p == 1 else 'o'}"


def _irreps(value: Any) -> Optional[str]:
    """e3nn's ``str(Irreps)`` of a pickled Irreps: ``8x0e+8x1o``."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if _class(value) != "Irreps":
        raise _Missing(f"irreps (found {_name(value)})")
    items = value.args[0] if value.args else ()
    terms = []
    for item in items:
        args = item.args[0] if isinstance(item, Record) and len(item.args) == 1 else (item.args if isinstance(item, Record) else item)
        mul, ir = args
        terms.append(f"{int(mul)}x{_irrep(ir)}")
    return "+".join(terms)


def _count_scalars(irreps: str) -> int:
    return sum(int(term.split("x")[0]) for term in irreps.split("+") if term.endswith("x0e"))


def _plain(value: Any) -> Any:
    """A JSON-like value of a pickled attribute: numbers, strings, lists, dicts; numpy values unpacked."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, Record):
        return _numpy_value(value)
    return value


def _numpy_dtype(record: Any) -> np.dtype:
    """numpy.dtype('f8', False, True) with state (3, '<', ...): the dtype, from its name and byte order."""
    dtype = np.dtype(str(record.args[0]))
    if isinstance(record.state, tuple) and len(record.state) > 1 and record.state[1] in "<>":
        dtype = dtype.newbyteorder(record.state[1])
    return dtype


def _numpy_value(record: Record) -> Any:
    """A numpy scalar or array pickled by numpy's own reduce functions, else the record unchanged."""
    name = _name(record)
    try:
        if name in ("numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar"):
            dtype, raw = record.args
            return np.frombuffer(raw, dtype=_numpy_dtype(dtype))[0].item()
        if name in ("numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct"):
            _version, shape, dtype, fortran, raw = record.state
            array = np.frombuffer(raw, dtype=_numpy_dtype(dtype)).reshape(shape, order="F" if fortran else "C")
            return array.tolist()
    except (ValueError, TypeError, IndexError) as error:
        raise _Missing(f"a numpy value ({error})") from None
    return record


def _function_name(value: Any) -> str:
    """``silu`` for torch.nn.functional.silu, ``tanh`` for torch.tanh, ``None`` for no function."""
    if value is None:
        return "None"
    if _name(value) in ("builtins.getattr", "__builtin__.getattr"):  # torch.tanh pickles as getattr(torch._C..., "tanh")
        return str(value.args[1])
    return _name(value).rpartition(".")[2]


# --- what mlpot implements -----------------------------------------------------------------------

MODEL_CLASSES = ("MACE", "ScaleShiftMACE")

# The interaction blocks mace's training script offers that mlpot implements; the first four and the
# non-linear one are those of the MACE-MP/OFF/OMAT/MPA/MH foundation models.
INTERACTION_BLOCKS = (
    "RealAgnosticInteractionBlock",
    "RealAgnosticResidualInteractionBlock",
    "RealAgnosticDensityInteractionBlock",
    "RealAgnosticDensityResidualInteractionBlock",
    "RealAgnosticResidualNonLinearInteractionBlock",
)

# Every module class that may appear in the tree of a model mlpot can convert.
_KNOWN_MODULES = set(MODEL_CLASSES + INTERACTION_BLOCKS) | {
    "AtomicEnergiesBlock",
    "EquivariantProductBasisBlock",
    "LinearNodeEmbeddingBlock",
    "LinearReadoutBlock",
    "NonLinearReadoutBlock",
    "RadialEmbeddingBlock",
    "ScaleShiftBlock",
    "GatedEquivariantBlock",
    "reshape_irreps",
    "BesselBasis",
    "PolynomialCutoff",
    "RadialMLP",
    "AgnesiTransform",
    "ZBLBasis",
    "Contraction",
    "SymmetricContraction",
    # e3nn
    "Activation",
    "FullyConnectedNet",
    "_Layer",
    "Linear",
    "SphericalHarmonics",
    "TensorProduct",
    "FullyConnectedTensorProduct",
    "normalize2mom",
    # torch
    "LayerNorm",
    "SiLU",
    "Sequential",
    "ModuleList",
    "ParameterList",
    "reduce_graph_module",  # torch.fx GraphModule (mace's optimized einsums; no weights)
}

# Module classes mlpot does not implement whose purpose a user would know by another name.
_EXTENSIONS = {
    "MACELES": "long-range electrostatics (LES)",
    "PolarMACE": "PolarMACE (polarizable long-range electrostatics)",
    "AtomicDipolesMACE": "dipole prediction (AtomicDipolesMACE)",
    "AtomicDielectricMACE": "dipoles and polarizabilities (AtomicDielectricMACE)",
    "EnergyDipolesMACE": "dipole prediction (EnergyDipolesMACE)",
    "GenericJointEmbedding": "charge/spin embeddings (embedding_specs)",
}

# Options of mace's model classes mlpot does not implement: (config key, the value mlpot implements).
_OPTIONS = (
    ("use_so3", False),
    ("use_agnostic_product", False),
    ("use_last_readout_only", False),
    ("use_embedding_readout", False),
    ("use_edge_irreps_first", False),
    ("edge_irreps", None),
    ("apply_cutoff", True),
    ("embedding_specs", None),
)


def _refusal(top: _Module) -> Optional[str]:
    """Why mlpot cannot convert this model, in a few words naming the part; None if it can."""
    for module in top.walk():
        name = module.class_name
        if name in _EXTENSIONS:
            where = f" in {module.path}" if module.path else ""
            return f"it uses {_EXTENSIONS[name]}{where}, which mlpot does not implement"
        module_path = _name(module.record)
        if module_path.startswith(("cuequivariance", "openequivariance")):
            return (
                f"{module.path} is {module_path} (cuEquivariance/OpenEquivariance); convert the model back "
                "to e3nn with mace's mace_cueq_to_e3nn first"
            )
        if name not in _KNOWN_MODULES:
            if name.startswith("RealAgnostic") or name.endswith("InteractionBlock"):
                return (
                    f"its interaction block {module.path} is {name}, which mlpot does not implement "
                    f"(it implements {', '.join(INTERACTION_BLOCKS)})"
                )
            return f"{module.path or 'the model'} is a {module_path}, which mlpot does not implement"
    return None


# --- the file ------------------------------------------------------------------------------------


@dataclass
class MaceFile:
    """What a mace-torch ``.model`` file holds, as plain values.

    ``config`` has the keys and meanings of mace's ``extract_config_mace_model`` (also for a plain
    ``MACE``, which mace's function refuses; it then lacks the scale/shift keys): irreps as e3nn
    strings, classes by their class name (``interaction_cls``, ``readout_cls``), the gate by its name in
    mace's ``gate_dict`` ("silu", "tanh", "abs", "None"), arrays as (nested) lists; ``correlation`` is
    an int, or one per interaction if they differ; one key mace lacks, ``interaction_blocks``: the
    class name of every interaction block in order. ``state_dict`` has exactly the entries of mace's
    ``model.state_dict()``. ``use_reduced_cg`` records what was asked for: mace builds the reduced
    (cuEquivariance) basis only when cuequivariance is installed, so the U matrices in the state dict
    are what the model uses."""

    path: Path
    model_class: str
    config: Dict[str, Any]
    state_dict: Dict[str, torch.Tensor] = field(repr=False)
    mace_version: Optional[str] = None  # mace-torch does not record it in .model files

    @property
    def heads(self) -> List[str]:
        return list(self.config["heads"])

    @property
    def interaction_blocks(self) -> List[str]:
        return list(self.config["interaction_blocks"])


def _radial_type(bessel_fn: _Module) -> str:
    return {"BesselBasis": "bessel", "GaussianBasis": "gaussian", "ChebychevBasis": "chebyshev"}.get(
        bessel_fn.class_name, bessel_fn.class_name
    )


def _distance_transform(radial: _Module) -> Optional[str]:
    transform = radial.get("distance_transform")
    if not isinstance(transform, _Module):
        return None
    return {"AgnesiTransform": "Agnesi", "SoftTransform": "Soft"}.get(transform.class_name, transform.class_name)


def _radial_mlp(interaction: _Module) -> List[int]:
    """Hidden widths of the first interaction's radial MLP: e3nn FullyConnectedNet's ``hs[1:-1]``, or the
    LayerNorm widths of mace's RadialMLP."""
    weights = interaction["conv_tp_weights"]
    hs = weights.get("hs")
    if hs is not None:
        return [int(width) for width in hs[1:-1]]
    return [int(norm.get("normalized_shape")[0]) for norm in weights["net"].children() if norm.class_name == "LayerNorm"]


def _gate(readout: _Module) -> str:
    non_linearity = readout.get("non_linearity")
    if not isinstance(non_linearity, _Module):
        return "None"
    acts = non_linearity.get("acts")
    first = (acts.children()[0] if acts.children() else None) if isinstance(acts, _Module) else (acts[0] if acts else None)
    if isinstance(first, _Module):
        return _function_name(first.get("f"))
    return _function_name(first)


def _correlation(products: _Module) -> Union[int, List[int]]:
    """mace's count: the number of ``weights`` of the first output's contraction, plus one (the max)."""
    orders = []
    for product in products.children():
        contraction = product["symmetric_contractions"]["contractions"].children()[0]
        orders.append(len(contraction["weights"].fields.get("_parameters") or {}) + 1)
    return orders[0] if len(set(orders)) == 1 else orders


def _number(tensor: torch.Tensor) -> Union[int, float, list]:
    return tensor.tolist()


def _config(model: _Module) -> Dict[str, Any]:
    """mace's ``extract_config_mace_model``, read off the record tree (see :class:`MaceFile`)."""
    heads = list(model.get("heads") or ["default"]) if model.has("heads") else ["default"]
    interactions = model["interactions"].children()
    readouts = model["readouts"].children()
    radial = model["radial_embedding"]
    last_readout = readouts[-1]
    mlp_irreps = _irreps(last_readout.get("hidden_irreps")) if last_readout.has("hidden_irreps") else "1x0e"
    config: Dict[str, Any] = {
        "r_max": _number(model["r_max"]),
        "num_bessel": len(radial["bessel_fn"]["bessel_weights"]),
        "num_polynomial_cutoff": _number(radial["cutoff_fn"]["p"]),
        "max_ell": int(model["spherical_harmonics"]["_lmax"]),
        "interaction_cls": interactions[-1].class_name,
        "interaction_cls_first": interactions[0].class_name,
        "interaction_blocks": [block.class_name for block in interactions],
        "num_interactions": int(_number(model["num_interactions"])),
        "num_elements": len(model["atomic_numbers"]),
        "hidden_irreps": _irreps(model["products"].children()[0]["linear"]["irreps_out"]),
        "edge_irreps": _irreps(model.get("edge_irreps")),
        "MLP_irreps": f"{max(1, _count_scalars(mlp_irreps) // len(heads))}x0e",
        "gate": _gate(last_readout),
        "use_reduced_cg": bool(model.get("use_reduced_cg", False)),
        "use_so3": bool(model.get("use_so3", False)),
        "use_edge_irreps_first": bool(model.get("use_edge_irreps_first", False)),
        "use_agnostic_product": bool(model.get("use_agnostic_product", False)),
        "use_last_readout_only": bool(model.get("use_last_readout_only", False)),
        "use_embedding_readout": model.has("embedding_readout"),
        "readout_cls": last_readout.class_name,
        "cueq_config": _plain(model.get("cueq_config")),
        "atomic_energies": _number(model["atomic_energies_fn"]["atomic_energies"]),
        "avg_num_neighbors": float(_plain(interactions[0]["avg_num_neighbors"])),
        "atomic_numbers": [int(z) for z in model["atomic_numbers"].tolist()],
        "correlation": _correlation(model["products"]),
        "radial_type": _radial_type(radial["bessel_fn"]),
        "embedding_specs": _plain(model.get("embedding_specs")),
        "apply_cutoff": bool(model.get("apply_cutoff", True)),
        "radial_MLP": _radial_mlp(interactions[0]),
        "pair_repulsion": model.has("pair_repulsion_fn"),
        "distance_transform": _distance_transform(radial),
        "heads": heads,
    }
    if model.has("scale_shift"):
        config["atomic_inter_scale"] = _number(model["scale_shift"]["scale"])
        config["atomic_inter_shift"] = _number(model["scale_shift"]["shift"])
    if isinstance(config["cueq_config"], Record):  # a CuEquivarianceConfig dataclass: its fields
        config["cueq_config"] = _plain(config["cueq_config"].state)
    return config


def _options_refusal(config: Dict[str, Any]) -> Optional[str]:
    for key, implemented in _OPTIONS:
        if config.get(key) != implemented:
            return f"it sets {key}={config[key]!r}, which mlpot does not implement"
    if config["radial_type"] != "bessel":
        return f"its radial basis is {config['radial_type']}, which mlpot does not implement (only bessel)"
    if config["distance_transform"] not in (None, "Agnesi"):
        return f"its distance transform is {config['distance_transform']}, which mlpot does not implement (only Agnesi)"
    if config["readout_cls"] not in ("NonLinearReadoutBlock", "LinearReadoutBlock"):
        return f"its readout is {config['readout_cls']}, which mlpot does not implement"
    return None


def read_mace_file(path: Union[str, Path]) -> MaceFile:
    """Read the mace-torch model file ``path`` (``torch.save(model)``); never executes code from it.

    Raises :class:`MLPotError` (one line naming the file) if it is not such a file, is truncated or
    damaged, or uses a model class, block or option mlpot does not implement."""
    path = Path(path)
    top = _unpickle(path)
    if not isinstance(top, Record) or _fields(top) is None:
        what = f"a {_name(top)}" if isinstance(top, Record) else f"a {type(top).__name__}"
        raise MLPotError(f"{path} is not a mace-torch model file (it holds {what}, not a pickled MACE module)")
    model = _Module(top, "")
    if model.class_name not in MODEL_CLASSES and model.class_name not in _EXTENSIONS:
        if not _name(top).startswith("mace."):
            raise MLPotError(f"{path} is not a mace-torch model file (it holds a {_name(top)})")
        raise MLPotError(f"{path}: {model.class_name} models are not implemented in mlpot (only {', '.join(MODEL_CLASSES)})")
    try:
        reason = _refusal(model)
        if reason is not None:
            raise MLPotError(f"{path}: {reason}")
        config = _config(model)
        state_dict = _state_dict(model)
    except (_Missing, _NotAModule) as error:
        raise MLPotError(f"{path} is not a complete mace-torch model ({error})") from None
    reason = _options_refusal(config)
    if reason is not None:
        raise MLPotError(f"{path}: {reason}")
    return MaceFile(path=path, model_class=model.class_name, config=config, state_dict=state_dict)


def summary(mace: MaceFile, head: Optional[str] = None) -> str:
    """One line on what was imported: elements, cutoff, blocks, heads and where the E0s come from."""
    from ase.data import chemical_symbols

    config = mace.config
    elements = [chemical_symbols[z] for z in config["atomic_numbers"]]
    heads = mace.heads
    kept = head if head is not None else heads[0]
    e0 = torch.atleast_2d(torch.tensor(config["atomic_energies"]))  # [n_heads, n_elements]
    e0_row = e0[heads.index(kept)] if len(heads) > 1 and kept in heads else e0[0]
    e0_text = ", ".join(f"{symbol} {energy:.4g}" for symbol, energy in zip(elements, e0_row.tolist())) + " eV"
    if len(elements) > 10:  # a foundation model's 89 elements: the count, not a 2,000-character line
        e0_text = "one per element"
        elements = elements[:3] + ["...", elements[-1], f"({len(config['atomic_numbers'])} elements)"]
    blocks = ", ".join(dict.fromkeys(mace.interaction_blocks))
    head_text = f"heads {', '.join(heads)} (kept {kept})" if len(heads) > 1 else f"head {heads[0]}"
    extras = " + ZBL pair repulsion" if config["pair_repulsion"] else ""
    return (
        f"mace-torch {mace.model_class}{extras}, elements {' '.join(elements)}, r_max {config['r_max']:g} Å, "
        f"{config['num_interactions']} interactions ({blocks}), hidden {config['hidden_irreps']}, "
        f"correlation {config['correlation']}, {head_text}, E0s from the mace file: {e0_text}"
    )
