"""The reference study's published figures, carried as data with their source.

Only what is actually known is here: the study's Table 1 has per-joint PCKh@0.5 columns and
training times, but the numbers we were given are its parameter column and two Mean values
(baseline, and the first hourglass up-weighted). Unknown cells are ``None`` and print blank;
never fill them with guesses.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

__all__ = ["PUBLISHED", "PUBLISHED_SOURCE"]

PUBLISHED_SOURCE = (
    "reference study (2-stack hourglass block-design study on MPII), Table 1, as quoted in "
    "hourglass-hpo issue 17: parameter column and the Means of baseline and hg_weights_07_03; "
    "its per-joint columns and training times are not carried here"
)

# design -> {"Mean": PCKh@0.5 table Mean in percent, "params_m": parameters as printed, millions}
PUBLISHED: MappingProxyType[str, MappingProxyType[str, Any]] = MappingProxyType({
    name: MappingProxyType(row) for name, row in {
        "baseline": {"Mean": 77.84, "params_m": 6.73},
        "hg_weights_07_03": {"Mean": 67.84, "params_m": None},  # first hourglass up-weighted
        "patchify": {"Mean": None, "params_m": 6.72},
        "noskip": {"Mean": None, "params_m": 6.69},
        "dwsep_all": {"Mean": None, "params_m": 2.92},
        "dwsep_mid": {"Mean": None, "params_m": 2.80},
        "dwsep_two": {"Mean": None, "params_m": 1.90},  # its exact layout is not published
        "conv_two": {"Mean": None, "params_m": 17.95},
    }.items()
})
