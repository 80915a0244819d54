"""Load-time check that every model a search space can produce is one the config accepts.

Each choice is type-checked where it is read; what only shows up in combination (a
multidilated block with 4 rates needs features divisible by 8, stack weights need one
weight per stack, a separable mode the chosen block lacks) is found here by walking the
space's params in order, as a trial would, over every combination of model-relevant
values. Building configs with ``from_dict`` costs ~0.1 ms (type hints are re-read each
time), so the walk builds the dataclasses directly (~5 us): values were type-checked on
load, the ``__post_init__`` range checks still run (~30 us a combination in all). Spaces
with more than ``MAX_COMBINATIONS`` get ``SAMPLES`` seeded random combinations instead (a
rule broken by one combination in ten thousand may then slip through; ``suggest`` still
validates every trial's model and names the space file if it does).
"""

from __future__ import annotations

import random
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import is_dataclass
from functools import cache
from typing import Any

from hourglass.config import HourglassConfig
from hourglass.errors import ConfigError
from hpo.space_param import Param, encode_choice, fit_block_knobs, set_path

__all__ = ["build_model_config", "check_combinations", "count_combinations", "MAX_COMBINATIONS", "SAMPLES"]

MAX_COMBINATIONS = 10_000
SAMPLES = 3_000


@cache
def _nested(cls: type) -> dict[str, type]:
    return {k: tp for k, tp in typing.get_type_hints(cls).items() if is_dataclass(tp)}


def _build(cls: type, data: Mapping[str, Any]) -> Any:
    nested = _nested(cls)
    kwargs = {}
    for key, value in data.items():
        if key in nested:
            try:
                value = _build(nested[key], value)
            except ConfigError as exc:
                raise ConfigError(f"{key}.{exc}") from None
        elif type(value) is list:
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def build_model_config(model: Mapping[str, Any]) -> HourglassConfig:
    """``HourglassConfig`` from a complete, already type-checked model dict (fast path)."""
    return _build(HourglassConfig, model)


def _copy(config: Mapping[str, Any]) -> dict[str, Any]:
    """Copy the two dict levels a param may write into (values themselves are never mutated)."""
    return {
        part: {k: dict(v) if type(v) is dict else v for k, v in section.items()}
        for part, section in config.items()
    }


def _values(p: Param, read: set[str]) -> list[Any]:
    """Every value that may matter to the model; schedule-only params keep their default
    unless a condition reads them."""
    touches_model = p.path is None or p.path.startswith("model.") or p.path in read
    return p.grid_values() if touches_model else [p.default]


def _apply(config: Mapping[str, Any], p: Param, value: Any) -> dict[str, Any]:
    out = _copy(config)
    for path, v in p.overrides(value).items():
        set_path(out, path, v)
    return out


def walk_combinations(
    params: Sequence[Param], base: Mapping[str, Any], values: Callable[[int, Param], Sequence[Any]]
) -> Iterator[tuple[dict[str, Any], list[tuple[int, Any]]]]:
    """Every combination of the active params' ``values(i, param)``, depth first, as
    ``(config, chosen)``: the config with those values written (a copy of ``base``; inactive
    params are skipped) and the ``(param index, value)`` pairs chosen. The one walk over a
    space's combinations (the space check and the benchmark's corner designs use it)."""

    def walk(
        i: int, config: dict[str, Any], chosen: list[tuple[int, Any]]
    ) -> Iterator[tuple[dict[str, Any], list[tuple[int, Any]]]]:
        if i == len(params):
            yield config, chosen
            return
        p = params[i]
        if not p.active(config):
            yield from walk(i + 1, config, chosen)
            return
        for v in values(i, p):
            yield from walk(i + 1, _apply(config, p, v), chosen + [(i, v)])

    yield from walk(0, _copy(base), [])


def written_paths(params: Sequence[Param], chosen: Sequence[tuple[int, Any]]) -> set[str]:
    """The config paths the chosen values wrote (what a trial's knob repair must respect)."""
    return {path for i, v in chosen for path in params[i].overrides(v)}


def count_combinations(params: Sequence[Param], base: Mapping[str, Any]) -> int:
    """How many model-relevant combinations a trial can produce. Only params that some
    condition reads are branched on; every other active param multiplies the count."""
    read = {path for p in params for path, _ in p.when}
    values = [_values(p, read) for p in params]

    def count(i: int, config: dict[str, Any]) -> int:
        if i == len(params):
            return 1
        p = params[i]
        if not p.active(config):
            return count(i + 1, config)
        if p.path is not None and p.path not in read:
            return len(values[i]) * count(i + 1, config)
        return sum(count(i + 1, _apply(config, p, v)) for v in values[i])

    return count(0, _copy(base))


def check_combinations(
    params: Sequence[Param], base: Mapping[str, Any], source: str, *, limit: int = MAX_COMBINATIONS
) -> int:
    """Raise a one-line ConfigError for the first combination the model config rejects:
    all of them when there are at most ``limit``, else ``SAMPLES`` seeded random ones.
    Returns how many were checked."""
    read = {path for p in params for path, _ in p.when}
    values = [_values(p, read) for p in params]
    checked = 0

    def leaf(config: dict[str, Any], chosen: list[tuple[int, Any]]) -> None:
        nonlocal checked
        checked += 1
        written = written_paths(params, chosen)
        model = {k: dict(v) if type(v) is dict else v for k, v in config["model"].items()}
        fit_block_knobs(model, written)  # the same knob repair a trial gets
        try:
            build_model_config(model)
        except ConfigError as exc:
            combo = ", ".join(f"{params[i].name}={encode_choice(v)!r}" for i, v in chosen) or "the base alone"
            raise ConfigError(f"{source}: params: {combo} gives a model the config rejects: {exc}") from None

    if count_combinations(params, base) <= limit:
        for config, chosen in walk_combinations(params, base, lambda i, p: values[i]):
            leaf(config, chosen)
        return checked
    rng = random.Random(0)
    for _ in range(SAMPLES):
        config, chosen = _copy(base), []
        for i, p in enumerate(params):
            if p.active(config):
                v = rng.choice(values[i])
                config = _apply(config, p, v)
                chosen.append((i, v))
        leaf(config, chosen)
    return checked
