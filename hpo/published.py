"""The reference study's published Table 1, carried whole as data with its source.

Every cell as printed: per-joint PCKh@0.5 (Head ... Ankle), the Mean, the parameter count
(millions), the average training time and the epochs it covers. Cells the study left blank
are ``None`` and print blank; never fill them with guesses. Rows are named by this
project's seed designs (``search_spaces/seed_designs.yaml``) and kept in the table's order.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

__all__ = ["PUBLISHED", "PUBLISHED_COLUMNS", "PUBLISHED_SOURCE"]

PUBLISHED_SOURCE = (
    "reference study (2-stack hourglass block-design study on MPII, 20-epoch schedule), "
    "Table 1 as printed: PCKh@0.5 on the MPII validation split, parameters, average "
    "training time (shared/reference_study/table1.tsv)"
)

# what each row holds; time_s is the printed "Avg. Training Time" (2h30min = 9000 s), epochs
# the epochs it covers (20, or the fewest that reached the baseline's Mean)
PUBLISHED_COLUMNS = (
    "Head",
    "Shoulder",
    "Elbow",
    "Wrist",
    "Hip",
    "Knee",
    "Ankle",
    "Mean",
    "params_m",
    "time_s",
    "epochs",
)

_H = 3600  # a printed "XhYYmin" is X * _H + YY * 60 seconds
_ROWS = (  # design: the 8 PCKh columns, then params_m, time_s, epochs (None: not printed)
    ("baseline", 93.18, 89.16, 79.10, 72.61, 76.89, 69.72, 62.66, 77.84, 6.73, 2 * _H + 30 * 60, 20),
    ("hg_weights_03_07", 92.50, 88.71, 77.77, 70.64, 75.71, 67.12, 60.04, 76.33, None, None, None),
    ("hg_weights_07_03", 90.35, 81.69, 69.17, 58.88, 66.94, 56.62, 49.46, 67.84, None, None, None),
    ("dilated", 92.84, 87.36, 76.61, 69.18, 73.86, 68.15, 61.22, 75.85, None, None, None),
    ("patchify", 91.78, 87.16, 77.57, 70.22, 73.31, 67.48, 60.18, 75.66, 6.72, 2 * _H + 34 * 60, 20),
    ("noskip", 92.84, 88.03, 78.32, 71.42, 75.97, 68.31, 61.36, 76.84, 6.69, 2 * _H + 28 * 60, 20),
    ("dwsep_all", 93.25, 89.86, 80.55, 72.57, 78.05, 70.56, 64.27, 78.67, 2.92, 2 * _H + 20 * 60, 17),
    ("dwsep_mid", 93.11, 88.67, 78.73, 71.50, 75.89, 68.81, 61.83, 77.15, 2.80, 2 * _H + 30 * 60, 20),
    ("dwsep_two", 92.19, 85.09, 73.55, 63.80, 72.17, 62.42, 54.77, 72.19, 1.90, 2 * _H + 40 * 60, 20),
    ("dwsep_two_dilated", 91.30, 84.17, 71.83, 62.36, 71.59, 61.13, 54.77, 71.28, None, None, None),
    ("conv_two", 92.67, 89.50, 80.65, 73.19, 78.26, 70.42, 62.97, 78.52, 17.95, 2 * _H + 10 * 60, 17),
)

# design -> {column: value} for every column of PUBLISHED_COLUMNS, in the table's row order
PUBLISHED: MappingProxyType[str, MappingProxyType[str, Any]] = MappingProxyType(
    {row[0]: MappingProxyType(dict(zip(PUBLISHED_COLUMNS, row[1:], strict=True))) for row in _ROWS}
)
