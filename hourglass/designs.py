"""Named designs: a YAML file of ``base`` + per-design overrides -> ``HourglassConfig``s."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

from hourglass.config import HourglassConfig
from hourglass.errors import ConfigError
from hourglass.yamlio import deep_merge, load_yaml

__all__ = ["SEED_DESIGNS", "load_designs", "design_overrides"]


def _shipped(name: str) -> Path:
    """A file of the shipped search spaces: ``search_spaces/`` of a source checkout, else
    the installed package data (``hpo.spaces``, a data-only package: importing it runs no
    Optuna code). hpo.locations does the same for every lookup, the user's folders first."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "search_spaces" / name).is_file():
        return root / "search_spaces" / name
    try:
        return Path(importlib.resources.files("hpo.spaces").joinpath(name))  # type: ignore[arg-type]
    except ModuleNotFoundError:
        return root / "search_spaces" / name


SEED_DESIGNS = _shipped("seed_designs.yaml")


def design_overrides(path: str | Path = SEED_DESIGNS) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``(base, {name: overrides})`` exactly as written, checked for shape only."""
    doc = load_yaml(path)
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{path}: expected a mapping with keys 'base' and 'designs', but got {type(doc).__name__}"
        )
    unknown = set(doc) - {"base", "designs"}
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r} (allowed: 'base', 'designs')")
    base = doc.get("base") or {}
    designs = doc.get("designs")
    if not isinstance(base, dict):
        raise ConfigError(f"{path}: base: expected a mapping, but got {base!r}")
    if not isinstance(designs, dict) or not designs:
        raise ConfigError(
            f"{path}: designs: expected a non-empty mapping of name -> overrides, but got {designs!r}"
        )
    for name, over in designs.items():
        if over is not None and not isinstance(over, dict):
            raise ConfigError(f"{path}: designs.{name}: expected a mapping of overrides, but got {over!r}")
    return base, {str(name): over or {} for name, over in designs.items()}


def load_designs(path: str | Path = SEED_DESIGNS, **base_changes: Any) -> dict[str, HourglassConfig]:
    """Every design of ``path`` as a validated config; ``base_changes`` override the base
    (e.g. ``features=32, input_size=64`` for tiny CPU versions of the same designs)."""
    base, designs = design_overrides(path)
    base = deep_merge(base, base_changes)
    return {
        name: HourglassConfig.from_dict(deep_merge(base, over), where=f"{path}: designs.{name}")
        for name, over in designs.items()
    }
