"""Typed, validated configuration sections.

A section is a dataclass; :func:`parse_section` turns a user's dict into it and raises one
:class:`MLPotError` naming the key for an unknown key (with the likely key meant), a value of the
wrong type (NaN or infinity where a number is expected), or a value outside its allowed set.
Sections turn back into plain dicts with :func:`dataclasses.asdict`, which is what model files
and resolved configs store.
"""

import contextlib
import dataclasses
import difflib
import math
import re
import typing
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Type, TypeVar

import torch

from mlpot.choices import DTYPE_NAMES
from mlpot.errors import MLPotError

Section = TypeVar("Section")


def parse_section(cls: Type[Section], given: Dict[str, Any], where: str) -> Section:
    """Build dataclass ``cls`` from ``given``; ``where`` names the section in messages."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise MLPotError(f"{where} must be a mapping of keys to values, got {type(given).__name__}")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in given:
        if key not in fields:
            meant = likely_key(str(key), list(fields))
            hint = f"; did you mean '{meant}'?" if meant else f"; allowed keys: {', '.join(fields)}"
            raise MLPotError(f"unknown key '{where}.{key}'{hint}")
    missing = [
        name
        for name, field in fields.items()
        if name not in given
        and field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
    if missing:
        raise MLPotError(f"missing required key '{where}.{missing[0]}'")
    values = {key: _check_type(value, hints[key], f"{where}.{key}") for key, value in given.items()}
    section = cls(**values)
    validate = getattr(section, "validate", None)
    if validate is not None:
        validate(where)
    return section


def require(checks: Sequence[Tuple[bool, str, str]], section: Any, where: str) -> None:
    """Raise for the first failed (ok, key, message) check, naming '<where>.<key>' and its value."""
    for ok, key, message in checks:
        if not ok:
            raise MLPotError(f"'{where}.{key}' {message}, got {getattr(section, key)!r}")


def likely_key(key: str, allowed: List[str]) -> Optional[str]:
    """The allowed key a typo most likely meant: a close spelling, an abbreviation ("dir" ->
    "directory") or matching initials ("learning_rate" -> "lr")."""
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return close[0]
    prefixed = [candidate for candidate in allowed if len(key) >= 2 and candidate.startswith(key)]
    if len(prefixed) == 1:
        return prefixed[0]
    initials = "".join(word[0] for word in key.split("_") if word)
    for candidate in allowed:
        if candidate == initials or "".join(w[0] for w in candidate.split("_") if w) == key:
            return candidate
    return None


_EXPONENT_WITHOUT_POINT = re.compile(r"[-+]?[0-9]+[eE][-+]?[0-9]+")


def _check_type(value: Any, hint: Any, key: str) -> Any:
    """Return ``value`` (ints promoted to float where a float is expected) or raise."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _check_type(value, option, key)
            except MLPotError as error:
                errors.append(str(error))
        raise MLPotError(errors[0] if len(errors) == 1 else f"'{key}' has an unsupported value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise MLPotError(f"'{key}' must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (list, typing.List):
        if not isinstance(value, (list, tuple)):
            raise MLPotError(f"'{key}' must be a list, got {value!r}")
        return [_check_type(item, args[0], f"{key}[{i}]") for i, item in enumerate(value)] if args else list(value)
    if origin in (dict, typing.Dict):
        if not isinstance(value, dict):
            raise MLPotError(f"'{key}' must be a mapping, got {value!r}")
        return {k: _check_type(v, args[1], f"{key}.{k}") for k, v in value.items()} if args else dict(value)
    if hint is float:
        if isinstance(value, str) and _EXPONENT_WITHOUT_POINT.fullmatch(value.strip()):
            value = float(value)  # PyYAML follows YAML 1.1, which reads 1e-3 (no point) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MLPotError(f"'{key}' must be a number, got {value!r}")
        number = float(value) if not isinstance(value, int) or abs(value) < 2**1023 else math.inf
        if not math.isfinite(number):  # YAML's .nan and .inf parse as floats
            raise MLPotError(f"'{key}' must be a finite number, got {value!r}")
        return number
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise MLPotError(f"'{key}' must be an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise MLPotError(f"'{key}' must be true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise MLPotError(f"'{key}' must be a string, got {value!r}")
        return value
    raise TypeError(f"config type {hint} of '{key}' is not supported")  # a bug, not a user error


DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}  # name -> torch dtype


@contextlib.contextmanager
def default_dtype(name: str) -> Iterator[None]:
    """Build modules in dtype ``name`` so buffers derived in float64 are not rounded first."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(DTYPES[name])
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
