"""Model files: one file per model, opened without executing any code from it.

The file is ``torch.save`` of a plain dict::

    {"format": "mlpot-model", "format_version": 1, "config": {...}, "state_dict": {...},
     "metadata": {...}}

``load_model`` rebuilds the model from the config and loads the weights with
``torch.load(weights_only=True)``, so a file can only ever hold tensors and plain values.
"""

import codecs
import datetime
import re
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from mlpot.errors import MLPotError
from mlpot.kernels import set_kernels
from mlpot.files import atomic_output, check_input_file
from mlpot.models import build_model

FORMAT = "mlpot-model"
FORMAT_VERSION = 1


def package_versions() -> Dict[str, str]:
    import ase
    import e3nn

    import mlpot

    versions = {"mlpot": mlpot.__version__, "torch": torch.__version__, "e3nn": e3nn.__version__, "ase": ase.__version__}
    return {name: str(version) for name, version in versions.items()}  # TorchVersion is not a plain str


def save_model(model: nn.Module, path: Union[str, Path], metadata: Optional[Dict[str, Any]] = None) -> None:
    """Write ``model`` to ``path`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    config = model.config_dict()
    stored_metadata = dict(getattr(model, "metadata", {}) or {})
    stored_metadata.update(metadata or {})
    stored_metadata.setdefault("units", {"energy": "eV", "length": "Angstrom", "stress": "eV/Angstrom^3"})
    shared = config["members"][0] if config.get("task") == "committee" else config  # members share these
    stored_metadata["elements"] = list(shared.get("elements", []))
    stored_metadata["r_max"] = shared.get("r_max")
    stored_metadata["dtype"] = str(next(model.parameters()).dtype).replace("torch.", "")
    stored_metadata["versions"] = package_versions()
    stored_metadata.setdefault("created", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config,
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "metadata": stored_metadata,
    }
    atomic_torch_save(payload, path)


def atomic_torch_save(payload: Any, path: Path) -> None:
    """torch.save to a temporary file beside ``path``, then rename it into place."""
    with atomic_output(path, "wb") as stream:
        torch.save(payload, stream)


def read_model_file(path: Union[str, Path]) -> Dict[str, Any]:
    """The stored dict of a model file, checked for format; user errors name the file."""
    path = check_input_file(path, "model file")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": noise about a file that fails anyway
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler raises KeyError, IndexError, ... for text or random bytes
        raise MLPotError(f"{path} is not an mlpot model file ({_unloadable_reason(path, error)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise MLPotError(f"{path} is not an mlpot model file (no '{FORMAT}' header)")
    missing = [key for key in ("config", "state_dict") if not isinstance(payload.get(key), dict)]
    if missing:
        raise MLPotError(f"{path} is not a complete mlpot model file (no '{missing[0]}')")
    if not isinstance(payload.get("format_version", FORMAT_VERSION), int):
        raise MLPotError(f"{path} is not a complete mlpot model file ('format_version' is not an integer)")
    if payload.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise MLPotError(
            f"{path} has model format {payload['format_version']}, newer than this mlpot reads ({FORMAT_VERSION}); "
            "upgrade mlpot"
        )
    return payload


def _unloadable_reason(path: Path, error: Exception) -> str:
    """Why torch.load failed, in words about the file rather than torch's unpickler internals."""
    unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
    if unsafe:
        return f"it holds a Python object of type {unsafe.group(1)}, which model files never do"
    with open(path, "rb") as stream:
        head = stream.read(512)
    if not head:
        return "the file is empty"
    if head.startswith(b"PK"):  # torch.save writes a zip archive
        return "a damaged, truncated or foreign zip archive"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "binary data that torch.save did not write"
    return "a text file, not one written by torch.save"


def _committee_of(paths: List[Union[str, Path]], dtype: Optional[torch.dtype], device: str, kernel: str) -> nn.Module:
    from mlpot.models.committee import Committee

    members: List[nn.Module] = []
    for path in paths:
        model = load_model(path, dtype, device, kernel)
        members.extend(model.members if isinstance(model, Committee) else [model])
    if dtype is None:
        dtype = next(members[0].parameters()).dtype
    committee = Committee([member.to(dtype) for member in members]).to(device).eval()
    committee.metadata = {"members_from": [str(path) for path in paths]}
    return committee


def resolve_model_path(path: Union[str, Path]) -> Path:
    """A model file, or the one ``*.model`` file inside a directory (models/<name>)."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("*.model"))
        if len(candidates) != 1:
            found = ", ".join(p.name for p in candidates) or "none"
            raise MLPotError(f"{path} must hold exactly one .model file (found {found})")
        return candidates[0]
    return path


def load_model(
    path: Union[str, Path, Sequence[Union[str, Path]]],
    dtype: Optional[torch.dtype] = None,
    device: str = "cpu",
    kernel: str = "auto",
) -> nn.Module:
    """Rebuild a saved model (a file, or a directory holding one); ``dtype``/``device`` convert it,
    ``kernel`` picks the execution path (:func:`mlpot.kernels.set_kernels`). A list of several
    potential (or committee) files gives one :class:`~mlpot.models.committee.Committee` of them all."""
    if not isinstance(path, (str, Path)):
        paths = list(path)
        if len(paths) != 1:
            return _committee_of(paths, dtype, device, kernel)
        path = paths[0]
    path = resolve_model_path(path)
    payload = read_model_file(path)
    try:
        model = build_model(payload["config"])
    except MLPotError as error:  # e.g. a key of a newer mlpot: say which file holds it
        raise MLPotError(f"{path}: stored config: {error}") from None
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as error:
        raise MLPotError(f"{path}: weights do not fit the stored config ({str(error).splitlines()[0]})") from None
    model.metadata = payload.get("metadata", {})
    if dtype is not None:
        model = model.to(dtype)
    model = model.to(device).eval()
    set_kernels(model, kernel, device)
    return model

