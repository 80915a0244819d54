"""A run's front, as it grows: the fixed normalisation, and one record per finished trial.

Objectives are normalised to ``(PCKh / 100, params / P_ref, time / T_ref)`` with the fixed
reference point ``(0, 1, 1)``, so every hypervolume is in [0, 1] and comparable across
methods and seeds (:class:`Reference`). :class:`Tracker` records, after each trial, the
epochs spent so far and the hypervolume of the complete trials' front, as trained and, on a
recorded table, on held-out seeds (each complete design valued by the mean of the table's
seeds it was not trained on).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from hpo.bench.settings import DIRECTIONS, OBJECTIVES
from hpo.bench.table import BenchTable
from hpo.pareto import hypervolume, improves
from hpo.record import TrialRecord

__all__ = [
    "REFERENCE_MARGIN",
    "Reference",
    "table_reference",
    "Tracker",
    "hv_at",
    "epochs_to_reach",
    "front_hv",
]

REFERENCE_MARGIN = 1.1
_POINT = [0.0, 1.0, 1.0]


@dataclass(frozen=True)
class Reference:
    """The fixed normalisation and reference point (see the module docstring)."""

    params: float  # P_ref
    time_s: float  # T_ref, charged seconds
    designs: int  # structural corners (live) or table points counted
    largest_params: int
    largest_time_s: float
    epochs_per_trial: int

    def normalise(self, values: Sequence[float]) -> list[float]:
        pckh, params, time_s = values
        return [pckh / 100.0, params / self.params, time_s / self.time_s]

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "point_normalised": list(_POINT),
            "objectives": list(OBJECTIVES),
            "normalisation": "pckh/100 (max), params/params_ref (min), train_time/time_s_ref (min)",
        }


def table_reference(table: BenchTable) -> Reference:
    """1.1 x the largest parameter count and the largest full-length training time of any
    point and seed in the table."""
    largest_p = max(p.costs["params"] for p in table.points)
    largest_t = max(run["time_s"][-1] for p in table.points for run in p.runs.values())
    return Reference(
        REFERENCE_MARGIN * largest_p,
        REFERENCE_MARGIN * largest_t,
        len(table.points),
        largest_p,
        largest_t,
        table.epochs,
    )


def front_hv(points: Sequence[Sequence[float]]) -> float:
    """Hypervolume of normalised points against ``(0, 1, 1)`` (0 for none)."""
    return hypervolume(np.array(points), _POINT, DIRECTIONS) if len(points) else 0.0


def _epochs_trained(trial: FrozenTrial) -> int:
    """Epochs a trial trained: its curve, plus the epoch a divergence interrupted."""
    r = TrialRecord.of(trial)
    if r.copied_from is not None:
        return 0  # a repeat of a completed design, copied (hpo.objective.completed_twin)
    # a promotion that continued its screen's checkpoint paid only the epochs after it
    resumed = int(r.resumed_from_epoch or 0) if r.continues is not None else 0
    trained = max(len(r.curve), int(r.pruned_at_epoch or 0)) if r.prune_reason == "diverged" else len(r.curve)
    return trained - resumed


@dataclass
class Tracker:
    """Study callback: one record per finished trial; stops the study at the budget.

    A replay (``heldout_view``) calls :meth:`add` with each complete trial's held-out values
    too; live there are none (``hv_heldout`` is None)."""

    budget: int
    reference: Reference
    spent: int = 0
    points: list[list[float]] = field(default_factory=list)
    heldout: list[list[float]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    stops_study: bool = True  # a replay drives ask/tell itself and stops at the budget
    heldout_view: bool = False  # a replay: also the front on held-out seeds
    # The fronts' hypervolumes so far: recomputed only when a point could change them
    # (long replays add thousands of pruned trials and copies of completed designs).
    _hv: float = field(default=0.0, repr=False)
    _hv_heldout: float = field(default=0.0, repr=False)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        r = TrialRecord.of(trial)
        complete = trial.state == TrialState.COMPLETE
        self.add(
            trial.number,
            trial.state.name.lower(),
            _epochs_trained(trial),
            list(trial.values) if complete else None,
            None,
            wall_s=r.wall_time_s,
            design=r.design,
            pckh_curve=[p["pckh"] for p in r.curve],
        )
        if self.spent >= self.budget and self.stops_study:
            study.stop()

    def add(
        self,
        number: int,
        state: str,
        epochs: int,
        values: Sequence[float] | None,
        heldout: Sequence[float] | None,
        **extra: Any,
    ) -> None:
        """One finished trial: ``values`` (as trained) and ``heldout`` for a complete one."""
        self.spent += epochs
        if values is not None and _grow(self.points, self.reference.normalise(values)):
            self._hv = front_hv(self.points)
        if heldout is not None and _grow(self.heldout, self.reference.normalise(heldout)):
            self._hv_heldout = front_hv(self.heldout)
        self.records.append(
            {
                "trial": number,
                "state": state,
                "epochs": epochs,
                "spent": self.spent,
                "hv": self._hv,
                "hv_heldout": self._hv_heldout if self.heldout_view else None,
                "values": list(values) if values is not None else None,
                "heldout_values": list(heldout) if heldout is not None else None,
                **extra,
            }
        )


def _grow(points: list[list[float]], point: list[float]) -> bool:
    """Append ``point`` to ``points``; whether the hypervolume may have changed (a point that
    another one weakly dominates adds no volume)."""
    changed = not points or improves(np.asarray(points), np.asarray(point), DIRECTIONS)
    points.append(point)
    return changed


def hv_at(records: Sequence[Mapping[str, Any]], epochs: float, key: str = "hv") -> float:
    """The hypervolume (``key``: ``hv`` or ``hv_heldout``) after the last trial that ended
    within ``epochs`` epochs (0 before any)."""
    hv = 0.0
    for r in records:
        if r["spent"] > epochs:
            break
        hv = r[key] or 0.0
    return hv


def epochs_to_reach(
    records: Sequence[Mapping[str, Any]], target: float, budget: int, key: str = "hv"
) -> int | None:
    """Epochs spent when the hypervolume first reached ``target`` within the budget, or None."""
    for r in records:
        if r["spent"] > budget:
            return None
        if (r[key] or 0.0) >= target - 1e-12:
            return r["spent"]
    return None
