"""The Pareto set of a study as trials and table rows, and the hypervolume it dominates.

Everything here reads the trial record (:mod:`hpo.record`) that :mod:`hpo.objective`
writes: objective values in the study's objective order, and costs, curve and the resolved
config in the trial's attributes. Only COMPLETE trials have values, so only they can be on the
front; pruned and failed trials still show up in :func:`trial_rows` for ``--all`` exports.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
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
from hpo.space_param import leaves

__all__ = [
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
    "default_reference_point",
    "hypervolume_history",
]


def objective_names(study: optuna.Study) -> list[str]:
    """The study's objective names (``metric_names``, else the study attr ``objectives``)."""
    names = study.metric_names or rec.study_get(study, rec.STUDY_OBJECTIVES)
    if names and len(names) == len(study.directions):
        return [str(n) for n in names]
    return [f"objective_{i}" for i in range(len(study.directions))]


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    """COMPLETE trials in number order, or a one-line error when there are none."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not trials:
        counts = {}
        for t in study.get_trials(deepcopy=False):
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
        found = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trials at all"
        raise ConfigError(f"study {study.study_name!r}: expected at least one COMPLETE trial, but found {found}")
    return trials


def _best_first_key(study: optuna.Study):
    sign = -1.0 if study.directions[0] == StudyDirection.MAXIMIZE else 1.0
    return lambda t: (sign * t.values[0], t.number)


def pareto_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Optuna's Pareto front (``study.best_trials``), best first on the first objective."""
    complete_trials(study)
    return sorted(study.best_trials, key=_best_first_key(study))


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
    varying = {path for path in known if len({json.dumps(c.get(path), sort_keys=True) for c in per_trial}) > 1}
    return sorted(named | varying)


def trial_rows(study: optuna.Study, trials: Sequence[FrozenTrial] | None = None) -> list[dict[str, Any]]:
    """Rows of ``trials`` (default: every trial of the study, in number order), each with the
    value of every searched config path (:func:`searched_paths` over the whole study) under
    its dotted name, so that two rows never look alike while their configs differ."""
    names = objective_names(study)
    every = study.get_trials(deepcopy=False)
    trials = every if trials is None else trials
    paths = searched_paths(every)
    rows = []
    for t in trials:
        config = _config_leaves(t)
        rows.append({**trial_row(t, names), **{p: config.get(p) for p in paths}})
    return rows


def pareto_rows(study: optuna.Study) -> list[dict[str, Any]]:
    return trial_rows(study, pareto_trials(study))


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


def _as_minimization(values: np.ndarray, directions: Sequence[StudyDirection]) -> np.ndarray:
    signs = np.array([-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in directions])
    return np.asarray(values, dtype=float) * signs


def nondominated(points: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``points`` (n, d), all minimized, that no other row dominates
    (equal points are all kept)."""
    points = np.asarray(points, dtype=float)
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    return moocore.is_nondominated(points, keep_weakly=True)


def hypervolume(values: np.ndarray, reference_point: Sequence[float],
                directions: Sequence[StudyDirection]) -> float:
    """Volume between ``reference_point`` and the points ``values`` (n, d) dominate, exact
    (moocore). Directions say which objectives are maximized; points not strictly better
    than the reference on every objective add nothing.
    """
    values = np.asarray(values, dtype=float).reshape(-1, len(directions))
    pts = _as_minimization(values, directions)
    ref = _as_minimization(np.asarray(reference_point, dtype=float)[None], directions)[0]
    pts = pts[(pts < ref).all(1)]
    if len(pts) == 0:
        return 0.0
    return float(moocore.hypervolume(pts, ref=ref))


def default_reference_point(study: optuna.Study) -> list[float]:
    """The documented reference point: 0 for a maximized objective (PCKh in percent, whose
    worst value is 0) and 1.1 x the worst value among COMPLETE trials for a minimized one.

    Fixed for a finished study; pass an explicit point to compare a study while it runs.
    """
    values = np.array([t.values for t in complete_trials(study)], dtype=float)
    return [
        0.0 if d == StudyDirection.MAXIMIZE else float(1.1 * values[:, i].max())
        for i, d in enumerate(study.directions)
    ]


def hypervolume_history(study: optuna.Study, reference_point: Sequence[float]) -> list[float]:
    """Hypervolume of the COMPLETE trials up to each COMPLETE trial (number order)."""
    trials = complete_trials(study)
    if len(reference_point) != len(study.directions):
        raise ConfigError(
            f"reference point: expected {len(study.directions)} values (one per objective), but got {list(reference_point)}"
        )
    values = np.array([t.values for t in trials], dtype=float)
    history: list[float] = []
    front = np.empty((0, values.shape[1]))
    for v in values:
        if history and not _improves(front, v, study.directions):
            history.append(history[-1])  # a dominated point adds no volume
            continue
        front = np.vstack([front, v])
        history.append(float(hypervolume(front, reference_point, study.directions)))
    return history


def _improves(front: np.ndarray, v: np.ndarray, directions: Sequence[StudyDirection]) -> bool:
    pts = _as_minimization(front, directions)
    p = _as_minimization(v[None], directions)[0]
    return not ((pts <= p).all(1)).any()
