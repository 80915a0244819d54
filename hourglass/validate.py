"""Build frozen dataclass configs from plain dicts (YAML), checking every field once.

One generic builder serves every config in the project (model, schedule, study preset):
unknown keys, wrong types and out-of-range values all become a :class:`ConfigError` whose
message names the dotted field path (``model.block.dilation``) and what was expected.
Range checks live in each dataclass's ``__post_init__`` (so direct construction is checked
too) and use the ``check_*`` helpers below; :func:`from_dict` prefixes their messages with
the path of the dataclass inside the document.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from hourglass.errors import ConfigError

__all__ = ["from_dict", "to_dict", "convert", "check_choice", "check_int", "check_float"]

T = TypeVar("T")


def _fmt(values: Iterable[Any]) -> str:
    return ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values)


def check_choice(field: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"{field}: expected one of {_fmt(allowed)}, but got {value!r}")


def check_int(field: str, value: int, *, low: int | None = None, high: int | None = None) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]" if low is not None else f"<= {high}"
        raise ConfigError(f"{field}: expected an integer {bounds}, but got {value!r}")


def check_float(field: str, value: float, *, low: float | None = None, positive: bool = False) -> None:
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{field}: expected a finite number, but got {value!r}")
    if positive and value <= 0:
        raise ConfigError(f"{field}: expected a number > 0, but got {value!r}")
    if low is not None and value < low:
        raise ConfigError(f"{field}: expected a number >= {low}, but got {value!r}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def convert(tp: Any, value: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert lists to tuples."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for arg in inner:
            try:
                return convert(arg, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            errors[0]
            if len(errors) == 1
            else f"{path}: expected {' or '.join(map(_type_name, inner))}, but got {value!r}"
        )
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value, path)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, but got {value!r}")
        item_tp = args[0]
        return tuple(convert(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is typing.Literal:
        check_choice(path, value, typing.get_args(tp))
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, but got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, but got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, but got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, but got {value!r}")
        return value
    if tp is Any:
        return value
    raise TypeError(f"unsupported config field type {tp!r} at {path}")  # a bug, not user input


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build ``cls`` from a mapping, naming ``where.field`` in every error; a ``where`` that
    ends with a colon names a file, whose fields follow it as ``file.yaml: model.features``."""
    label = where.removesuffix(":") or cls.__name__
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{label}: expected a mapping, but got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(f"{label}: unknown key {unknown[0]!r} (allowed: {_fmt(fields)})")
    prefix = f"{where} " if where.endswith(":") else f"{where}." if where else ""
    kwargs = {k: convert(hints[k], v, f"{prefix}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if where:  # __post_init__ names fields relative to its own dataclass
            raise ConfigError(f"{prefix}{exc}") from None
        raise


def to_dict(obj: Any) -> Any:
    """The plain-data (YAML/JSON-ready) form of a config: tuples become lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
