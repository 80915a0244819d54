"""hourglass: the stacked-hourglass model family, its data, training and PCKh scoring.

Usable without Optuna: nothing in this package imports it. The names below are loaded on
first use (PEP 562), so importing a light submodule (``hourglass.errors``, as every CLI
command does) does not import torch: ``hpo --help`` starts in a fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BlockConfig": "hourglass.config",
    "HourglassConfig": "hourglass.config",
    "StemConfig": "hourglass.config",
    "Costs": "hourglass.costs",  # the function is hourglass.costs.costs: the submodule owns the name
    "ConfigError": "hourglass.errors",
    "DataError": "hourglass.errors",
    "HourglassError": "hourglass.errors",
    "StackedHourglass": "hourglass.model",
    "build_model": "hourglass.model",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hourglass' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
