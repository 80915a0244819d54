"""hourglass: the stacked-hourglass model family, its data, training and PCKh scoring.

Usable without Optuna: nothing in this package imports it.
"""

from hourglass.config import BlockConfig, HourglassConfig, StemConfig
from hourglass.costs import Costs, costs
from hourglass.errors import ConfigError, DataError, HourglassError
from hourglass.model import StackedHourglass, build_model

__all__ = [
    "BlockConfig", "HourglassConfig", "StemConfig", "StackedHourglass", "build_model",
    "Costs", "costs", "HourglassError", "ConfigError", "DataError",
]
