"""Objective directions: every objective turned into "smaller is better".

The pruner ranks trials and the results code draws fronts and measures hypervolume; both
compare objective values whose directions differ (PCKh is maximized, the costs minimized),
and both do it on the losses this module makes, so that a sign is flipped in one place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from optuna.study import StudyDirection

__all__ = ["maximized", "signs", "as_losses"]


def maximized(direction: str | StudyDirection) -> bool:
    """Whether ``direction`` (``"maximize"``/``"minimize"`` or Optuna's enum) maximizes."""
    if isinstance(direction, StudyDirection):
        return direction == StudyDirection.MAXIMIZE
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', but got {direction=}")
    return direction == "maximize"


def signs(directions: Sequence[str | StudyDirection]) -> list[float]:
    """-1 for a maximized objective, 1 for a minimized one: ``sign * value`` is a loss."""
    return [-1.0 if maximized(d) else 1.0 for d in directions]


def as_losses(
    values: Sequence[Sequence[float]], directions: Sequence[str | StudyDirection]
) -> list[list[float]]:
    """Every objective turned into "smaller is better"; NaN (a diverged run) is the worst."""
    flip = signs(directions)
    out = []
    for row in values:
        if len(row) != len(flip):
            raise ValueError(f"each point needs one value per direction ({len(flip)}), but got {row=}")
        out.append([math.inf if math.isnan(v) else s * v for s, v in zip(flip, map(float, row))])
    return out
