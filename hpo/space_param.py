"""The pieces of a search space: the config schema it addresses, and one Optuna parameter.

Kept apart from :mod:`hpo.space` (the file format and the space as a whole) so that each
module has one job: here is what a *single* parameter is, how its values travel through
Optuna (which only stores primitives) and how it decides whether it is asked at all.
"""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from functools import cache
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from hourglass.blocks import BLOCKS, BlockConfig
from hourglass.config import HourglassConfig
from hourglass.errors import ConfigError
from hourglass.train_config import ScheduleConfig
from hourglass.validate import to_dict

__all__ = [
    "Param",
    "BLOCK_KNOBS",
    "schedule_class",
    "schema_types",
    "schema_defaults",
    "get_path",
    "set_path",
    "leaves",
    "same_value",
    "encode_choice",
    "knob_applies",
    "knob_accepts",
    "fit_block_knobs",
]

# Knobs of BlockConfig whose meaning depends on the block design; which designs accept them
# (and which values) is asked of the registry spec, never listed here.
BLOCK_KNOBS = ("dilation", "separable", "rates")
_PRIMITIVE = (type(None), bool, int, float, str)
_BLOCK_DEFAULTS = to_dict(BlockConfig())


def schedule_class() -> type:
    """The schedule dataclass whose fields ``schedule.*`` paths address."""
    return ScheduleConfig


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _leaf_types(cls: type, prefix: str) -> dict[str, Any]:
    """``{dotted path: type hint}`` of every non-dataclass field, recursively."""
    out: dict[str, Any] = {}
    for f in fields(cls):
        tp = _hints(cls)[f.name]
        if is_dataclass(tp):
            out.update(_leaf_types(tp, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = tp
    return out


def schema_types() -> dict[str, Any]:
    """Every path a space may address (``model.block.dilation``, ``schedule.lr``) -> type."""
    return {**_leaf_types(HourglassConfig, "model."), **_leaf_types(schedule_class(), "schedule.")}


def schema_defaults() -> dict[str, dict[str, Any]]:
    """``{"model": HourglassConfig() as a dict, "schedule": the schedule defaults}``."""
    return {"model": HourglassConfig().to_dict(), "schedule": to_dict(schedule_class()())}


def get_path(config: Mapping[str, Any], path: str, missing: Any = None) -> Any:
    node: Any = config
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return missing
        node = node[key]
    return node


def set_path(config: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` in a nested dict that the caller owns (a fresh copy per trial)."""
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def leaves(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"block": {"name": x}}}`` -> ``{"model.block.name": x}``."""
    out: dict[str, Any] = {}
    for key, value in nested.items():
        if isinstance(value, Mapping):
            out.update(leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def same_value(a: Any, b: Any) -> bool:
    """Config equality that tells ``True`` from ``1`` but not ``[1, 2]`` from ``(1.0, 2.0)``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return a == b


def encode_choice(value: Any) -> Any:
    """Optuna categoricals hold primitives only: lists (stack weights, rates) travel as JSON."""
    if isinstance(value, _PRIMITIVE):
        return value
    return json.dumps(to_dict(value), sort_keys=True)


def knob_applies(block: str, knob: str) -> bool:
    """Whether design ``block`` has the knob at all (from its registry spec)."""
    return knob in BLOCKS[block].knobs


def knob_accepts(block: str, knob: str, value: Any) -> bool:
    """Whether ``BlockConfig`` takes ``value`` for ``knob`` on design ``block``."""
    if isinstance(value, list):
        value = tuple(value)
    return _knob_accepts(block, knob, value)


@cache
def _knob_accepts(block: str, knob: str, value: Any) -> bool:
    try:
        BlockConfig(name=block, **{knob: value})
    except (ConfigError, TypeError):
        return False
    return True


def fit_block_knobs(model: dict[str, Any], written: set[str]) -> None:
    """A knob nobody set this trial keeps the base value if the block accepts it, else the
    ``BlockConfig`` default (a base with dilation 2 must still allow a multidilated block)."""
    block = model["block"]
    for knob in BLOCK_KNOBS:
        if f"model.block.{knob}" not in written and not knob_accepts(block["name"], knob, block[knob]):
            block[knob] = _BLOCK_DEFAULTS[knob]


@dataclass(frozen=True)
class Param:
    """One Optuna parameter: what it is called, what it sets, its values, when it is asked.

    ``path`` is the dotted config path it sets, or ``None`` for a *bundle*: a categorical
    whose choices are labels of override mappings (a named design is a bundle choice).
    ``when`` is a conjunction of ``(path, allowed values)``, evaluated on the config as
    resolved so far; a parameter whose condition is false is not asked and keeps the base.
    """

    name: str
    path: str | None
    kind: str  # categorical | int | float
    choices: tuple[Any, ...] = ()
    bundles: Mapping[str, Mapping[str, Any]] | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    default: Any = None

    def active(self, config: Mapping[str, Any]) -> bool:
        return all(any(same_value(get_path(config, p), v) for v in allowed) for p, allowed in self.when)

    def distribution(self) -> BaseDistribution:
        if self.kind == "categorical":
            return CategoricalDistribution([encode_choice(c) for c in self.choices])
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def encode(self, value: Any) -> Any:
        return encode_choice(value) if self.kind == "categorical" else value

    def decode(self, raw: Any) -> Any:
        if self.kind != "categorical":
            return raw
        for choice in self.choices:
            if same_value(encode_choice(choice), raw):
                return choice
        raise KeyError(raw)  # a bug: Optuna handed back a value outside the distribution

    def suggest(self, trial: optuna.Trial) -> Any:
        """The decoded value ``trial`` picks (or was given, for an enqueued trial)."""
        if self.kind == "categorical":
            return self.decode(trial.suggest_categorical(self.name, [encode_choice(c) for c in self.choices]))
        if self.kind == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def accepts(self, value: Any) -> bool:
        """Whether this parameter can produce ``value`` (a decoded value or bundle label)."""
        if self.kind == "categorical":
            return any(same_value(c, value) for c in self.choices)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not self.low <= value <= self.high
        ):
            return False
        if self.kind == "int":
            return isinstance(value, int) and (value - self.low) % (self.step or 1) == 0
        return self.step is None or math.isclose(
            (value - self.low) / self.step, round((value - self.low) / self.step)
        )

    def grid_values(self, limit: int = 16) -> list[Any]:
        """Values to enumerate when checking combinations: every choice or int on the grid
        (evenly thinned to ``limit``); a float's ends."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "float":
            return [self.low, self.high]
        grid = list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if len(grid) <= limit:
            return grid
        picks = {grid[round(i * (len(grid) - 1) / (limit - 1))] for i in range(limit)}
        return sorted(picks)

    def overrides(self, value: Any) -> dict[str, Any]:
        """``{dotted path: value}`` this parameter writes when it takes ``value``."""
        if self.path is None:
            return leaves(self.bundles[value])  # type: ignore[index]
        return {self.path: value}
