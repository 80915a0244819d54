"""The Pareto set of a study as trials and table rows, and the hypervolume it dominates.

A study's results are read once, into a :class:`StudySnapshot` (its trials, directions,
objective names and front), and every results function (here, :mod:`hpo.report`,
:mod:`hpo.table`, :mod:`hpo.export`) works on that snapshot: on a database server each
read of thousands of trials is a long round trip. They also take a study, and snapshot it.

Everything here reads the trial record (:mod:`hpo.record`) that :mod:`hpo.objective`
writes: objective values in the study's objective order, and costs, curve and the resolved
config in the trial's attributes. Only COMPLETE trials have values, so only they can be on the
front; pruned and failed trials still show up in :func:`trial_rows` for ``--all`` exports.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import moocore
import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hourglass.config import without_unused_knobs
from hourglass.errors import ConfigError
from hpo import record as rec
from hpo.directions import signs
from hpo.space_param import leaves

__all__ = [
    "StudySnapshot",
    "snapshot",
    "objective_names",
    "complete_trials",
    "pareto_trials",
    "trial_row",
    "trial_rows",
    "pareto_rows",
    "searched_paths",
    "write_rows",
    "nondominated",
    "hypervolume",
    "SubsetHypervolume",
    "default_reference_point",
    "hypervolume_history",
    "improves",
]


@dataclass(frozen=True)
class StudySnapshot:
    """A study's results as read once: every trial (number order), the directions and the
    objective names; the COMPLETE trials and the Pareto front are derived from them."""

    study_name: str
    directions: tuple[StudyDirection, ...]
    names: tuple[str, ...]  # metric_names, else the study attr "objectives", else objective_<i>
    trials: tuple[FrozenTrial, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)  # the study's user attributes

    @classmethod
    def of(cls, study: optuna.Study) -> StudySnapshot:
        """Read ``study``: its trials once, and the few study attributes."""
        directions = tuple(study.directions)
        attrs = dict(study.user_attrs)
        names = study.metric_names or attrs.get(rec.STUDY_OBJECTIVES)
        if not names or len(names) != len(directions):
            names = [f"objective_{i}" for i in range(len(directions))]
        return cls(
            study.study_name,
            directions,
            tuple(str(n) for n in names),
            tuple(study.get_trials(deepcopy=False)),
            attrs,
        )

    @cached_property
    def complete(self) -> list[FrozenTrial]:
        return [t for t in self.trials if t.state == TrialState.COMPLETE]

    @cached_property
    def counts(self) -> dict[str, int]:
        """Trials per state name."""
        counts: dict[str, int] = {}
        for t in self.trials:
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
        return counts

    @cached_property
    def front(self) -> list[FrozenTrial]:
        """The Pareto front as Optuna's ``best_trials`` has it (every non-dominated COMPLETE
        trial; with one objective, the first best one), best first on the first objective."""
        trials = self.complete
        if not trials:
            return []
        losses = _losses(np.array([t.values for t in trials], dtype=float), self.directions)
        keep = nondominated(losses) if len(self.directions) > 1 else losses[:, 0] == losses[:, 0].min()
        on = [k for k in range(len(trials)) if keep[k]][: None if len(self.directions) > 1 else 1]
        return [trials[k] for k in sorted(on, key=lambda k: (losses[k, 0], trials[k].number))]

    def require_complete(self) -> list[FrozenTrial]:
        """:attr:`complete`, or a one-line error when there are none."""
        if not self.complete:
            found = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items())) or "no trials at all"
            raise ConfigError(
                f"study {self.study_name!r}: expected at least one COMPLETE trial, but found {found}"
            )
        return self.complete


def snapshot(source: StudySnapshot | optuna.Study) -> StudySnapshot:
    """``source`` itself, or a snapshot of a study."""
    return source if isinstance(source, StudySnapshot) else StudySnapshot.of(source)


def objective_names(source: StudySnapshot | optuna.Study) -> list[str]:
    """The study's objective names (``metric_names``, else the study attr ``objectives``)."""
    return list(snapshot(source).names)


def complete_trials(source: StudySnapshot | optuna.Study) -> list[FrozenTrial]:
    """COMPLETE trials in number order, or a one-line error when there are none."""
    return snapshot(source).require_complete()


def pareto_trials(source: StudySnapshot | optuna.Study) -> list[FrozenTrial]:
    """The Pareto front (Optuna's ``best_trials``), best first on the first objective."""
    snap = snapshot(source)
    snap.require_complete()
    return snap.front


def trial_row(trial: FrozenTrial, names: Sequence[str]) -> dict[str, Any]:
    """One flat row: objectives, measured costs and the config knobs that tell designs apart
    (a knob its block does not read is None); ``design`` names it (:attr:`TrialRecord.label`)."""
    r = rec.TrialRecord.of(trial)
    model, stem = r.model, r.stem
    block = without_unused_knobs(model).get("block") or {}
    row: dict[str, Any] = {"number": trial.number, "state": trial.state.name, "design": r.label}
    for i, name in enumerate(names):
        if trial.values is not None:
            row[name] = trial.values[i]
        else:  # pruned or failed: what it measured so far
            row[name] = rec.value_so_far(trial.user_attrs, name)
        if isinstance(row[name], float) and row[name].is_integer() and isinstance(rec.get(trial, name), int):
            row[name] = int(row[name])  # storages keep values as floats; a count reads better as int
    row.update(
        flops=r.flops,
        layers=r.layers,
        ops_per_step=r.ops_per_step,
        epochs=r.epochs_run,
        wall_time_s=r.wall_s_so_far,
        stacks=model.get("stacks"),
        features=model.get("features"),
        depth=model.get("depth"),
        block=block.get("name"),
        dilation=block.get("dilation"),
        separable=block.get("separable"),
        skip=block.get("skip"),
        stem=stem.get("name"),
    )
    if trial.state == TrialState.PRUNED:
        row.update(pruned_at_epoch=r.pruned_at_epoch, prune_reason=r.prune_reason)
    return row


def _config_leaves(trial: FrozenTrial) -> dict[str, Any]:
    """The trial's resolved ``model`` and ``schedule`` as dotted paths (``schedule.lr``),
    without the block knobs its block does not read."""
    config = dict(rec.get(trial, rec.CONFIG) or {})
    if isinstance(config.get("model"), dict):
        config["model"] = without_unused_knobs(config["model"])
    return leaves({k: config[k] for k in ("model", "schedule") if isinstance(config.get(k), dict)})


def searched_paths(trials: Sequence[FrozenTrial]) -> list[str]:
    """The config paths the search decided for ``trials``: every path named by a trial's
    params (``model.block.separable@conv2`` -> ``model.block.separable``) and every path whose
    value differs between them (a bundle param such as ``design`` sets several). Sorted."""
    per_trial = [_config_leaves(t) for t in trials]
    known = set().union(*per_trial) if per_trial else set()
    named = {name.split("@")[0] for t in trials for name in t.params} & known
    varying = {
        path for path in known if len({json.dumps(c.get(path), sort_keys=True) for c in per_trial}) > 1
    }
    return sorted(named | varying)


def trial_rows(
    source: StudySnapshot | optuna.Study, trials: Sequence[FrozenTrial] | None = None
) -> list[dict[str, Any]]:
    """Rows of ``trials`` (default: every trial of the study, in number order), each with the
    value of every searched config path (:func:`searched_paths` over the whole study) under
    its dotted name, so that two rows never look alike while their configs differ."""
    snap = snapshot(source)
    trials = snap.trials if trials is None else trials
    paths = searched_paths(snap.trials)
    rows = []
    for t in trials:
        config = _config_leaves(t)
        rows.append({**trial_row(t, snap.names), **{p: config.get(p) for p in paths}})
    return rows


def pareto_rows(source: StudySnapshot | optuna.Study) -> list[dict[str, Any]]:
    snap = snapshot(source)
    return trial_rows(snap, pareto_trials(snap))


def write_rows(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Rows as ``.csv`` (union of keys, first-seen order) or anything else as a JSON list."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        fields = list(dict.fromkeys(k for row in rows for k in row))
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text(json.dumps(list(rows), indent=2) + "\n", encoding="utf-8")
    return path


def _losses(values: np.ndarray, directions: Sequence[StudyDirection]) -> np.ndarray:
    """Rows of ``values`` (n, d) as losses, as :func:`hpo.directions.as_losses` makes them
    (vectorised: the benchmark computes many hypervolumes)."""
    losses = np.asarray(values, dtype=float).reshape(-1, len(directions)) * np.array(signs(directions))
    return np.where(np.isnan(losses), np.inf, losses)


def nondominated(points: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``points`` (n, d), all minimized, that no other row dominates
    (equal points are all kept)."""
    points = np.asarray(points, dtype=float)
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    return moocore.is_nondominated(points, keep_weakly=True)


def hypervolume(
    values: np.ndarray, reference_point: Sequence[float], directions: Sequence[StudyDirection]
) -> float:
    """Volume between ``reference_point`` and the points ``values`` (n, d) dominate, exact
    (moocore). Directions say which objectives are maximized; points not strictly better
    than the reference on every objective add nothing.
    """
    values = np.asarray(values, dtype=float).reshape(-1, len(directions))
    pts = _losses(values, directions)
    ref = _losses(np.asarray(reference_point, dtype=float)[None], directions)[0]
    pts = pts[(pts < ref).all(1)]
    if len(pts) == 0:
        return 0.0
    return float(moocore.hypervolume(pts, ref=ref))


class SubsetHypervolume:
    """:func:`hypervolume` of subsets of fixed points, each a list of row indices: the rows
    become losses once, not per subset (the benchmark's oracle weighs thousands of subsets
    of one front). A subset's value is exactly :func:`hypervolume` of its rows."""

    def __init__(
        self, values: np.ndarray, reference_point: Sequence[float], directions: Sequence[StudyDirection]
    ) -> None:
        self._losses = _losses(np.asarray(values, dtype=float).reshape(-1, len(directions)), directions)
        self._ref = _losses(np.asarray(reference_point, dtype=float)[None], directions)[0]
        self._inside = (self._losses < self._ref).all(1)

    def __call__(self, rows: Sequence[int]) -> float:
        idx = np.asarray(rows, dtype=int)
        idx = idx[self._inside[idx]]
        return float(moocore.hypervolume(self._losses[idx], ref=self._ref)) if len(idx) else 0.0


def default_reference_point(source: StudySnapshot | optuna.Study) -> list[float]:
    """The documented reference point: 0 for a maximized objective (PCKh in percent, whose
    worst value is 0) and 1.1 x the worst value among COMPLETE trials for a minimized one.

    Fixed for a finished study; pass an explicit point to compare a study while it runs.
    """
    snap = snapshot(source)
    values = np.array([t.values for t in snap.require_complete()], dtype=float)
    return [
        0.0 if d == StudyDirection.MAXIMIZE else float(1.1 * values[:, i].max())
        for i, d in enumerate(snap.directions)
    ]


def hypervolume_history(
    source: StudySnapshot | optuna.Study, reference_point: Sequence[float]
) -> list[float]:
    """Hypervolume of the COMPLETE trials up to each COMPLETE trial (number order)."""
    snap = snapshot(source)
    trials = snap.require_complete()
    if len(reference_point) != len(snap.directions):
        raise ConfigError(
            f"reference point: expected {len(snap.directions)} values (one per objective), but got "
            f"{list(reference_point)}"
        )
    values = np.array([t.values for t in trials], dtype=float)
    history: list[float] = []
    front = np.empty((0, values.shape[1]))
    for v in values:
        if history and not improves(front, v, snap.directions):
            history.append(history[-1])  # a dominated point adds no volume
            continue
        front = np.vstack([front, v])
        history.append(float(hypervolume(front, reference_point, snap.directions)))
    return history


def improves(front: np.ndarray, v: np.ndarray, directions: Sequence[StudyDirection]) -> bool:
    """Whether no row of ``front`` (n, d) is at least as good as ``v`` on every objective:
    only then can adding ``v`` change the hypervolume."""
    pts = _losses(front, directions)
    p = _losses(v[None], directions)[0]
    return not ((pts <= p).all(1)).any()
