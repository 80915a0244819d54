"""Replay a search method against a recorded table (``hpo bench-search --table``).

The sampler asks as in a live study (an in-memory Optuna study over the table's space); the
table answers epoch by epoch with the curve of one of the point's training seeds, drawn per
trial; after each epoch the trial record gets that epoch (:mod:`hpo.record`, exactly what
:class:`hpo.objective.Objective` writes) and the method's pruner decides through
:class:`hpo.strategy.Pruning`, the call the live objective makes. Epochs trained are
charged; ``train_time`` is the table's measured training time. A design that already
completed is copied at no cost, as :func:`hpo.objective.completed_twin` does live (the live
study trains with one seed, so a repeat would train to the same result). A run is a list of
the same records as a live one (:func:`hpo.bench.search.summarize` reads both).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from hpo import record as rec
from hpo.bench.baselines import HubMultiMetricRule, MoashaRule
from hpo.bench.search import Tracker, base_preset, method_preset
from hpo.bench.table import BenchTable, TablePoint, load_table, params_key
from hpo.preset import resolve_file
from hpo.pruning import RungPruner
from hpo.space import SPACES_DIR, SearchSpace, plan_seed_trials
from hpo.strategy import Pruning, create_pruner, create_sampler

__all__ = ["TABLE_METHODS", "replay_method", "cached_table"]

# the live methods (hpo.bench.search.METHODS and "tpe") and the two outside baselines
TABLE_METHODS = ("random", "seed_grid", "nsga2", "tpe", "tpe_mopruning", "nsga2_mopruning", "moasha", "hub_multi_metric")
_AS_LIVE = {"moasha": "random", "hub_multi_metric": "tpe"}  # whose sampler the baseline uses
# A run stops once its sampler has proposed this many times the table's points in designs it
# had completed (copied at no cost). Why: TPE late in a 100-trial budget proposes little else,
# each ask costs more as the study grows, and the front no longer moves.
COPY_LIMIT = 5


@lru_cache(maxsize=4)
def cached_table(path: str) -> BenchTable:
    return load_table(path)  # once per process


@dataclass(frozen=True)
class _Lookup:
    space: SearchSpace
    points: dict[str, TablePoint]


@lru_cache(maxsize=4)
def _lookup(path: str) -> _Lookup:
    table = cached_table(path)
    return _Lookup(table.search_space(), table.by_params())


def _pruner(method: str, preset: Any, epochs: int, objectives: tuple[str, ...]) -> RungPruner | None:
    if method.endswith("_mopruning"):
        return create_pruner(preset)  # type: ignore[return-value]  # mo_halving: a RungPruner
    if method == "moasha":
        return MoashaRule(objectives, epochs, grace_period=preset.pruner.min_epochs, eta=preset.pruner.eta)
    if method == "hub_multi_metric":
        return HubMultiMetricRule(objectives)
    return None  # no pruning


def replay_method(s: Any, method: str, seed: int, reference: Any) -> dict[str, Any]:
    """Run one (method, seed) of :class:`hpo.bench.search.SearchBenchSettings` ``s`` against
    the table ``s.table`` until ``s.budget_epochs`` epochs are spent."""
    start = time.perf_counter()
    table = cached_table(s.table)
    look = _lookup(s.table)
    base = base_preset(s.preset)  # the preset whose sampler and pruner settings apply
    preset = method_preset(base, s, _AS_LIVE.get(method, method), seed, "sqlite:///unused.db")
    if method in _AS_LIVE:  # the baselines take the rung settings of our pruner (first rung, eta)
        preset = preset.replace(pruner=method_preset(base, s, "tpe_mopruning", seed, "sqlite:///unused.db").pruner)
    pruning = Pruning(_pruner(method, preset, table.epochs, tuple(preset.objectives)), multi=True)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(directions=preset.directions, sampler=create_sampler(preset, seed))
        rec.study_put(study, rec.STUDY_OBJECTIVES, list(preset.objectives))
        designs: list[str] = []
        if method == "seed_grid":
            plan = plan_seed_trials(look.space, resolve_file(s.designs, near=None, folder=SPACES_DIR, what="designs"))
            for name, params in plan.trials:
                study.enqueue_trial(params, user_attrs=rec.seed_attrs(name))
            designs = [name for name, _ in plan.trials]
        track = Tracker(s.budget_epochs, reference, stops_study=False)
        rng = np.random.default_rng([seed, 7919])
        twins: dict[str, optuna.trial.FrozenTrial] = {}
        copies = 0
        n = 0
        while track.spent < s.budget_epochs and (method != "seed_grid" or n < len(designs)):
            trial = study.ask()
            point = look.points.get(params_key(look.space.suggest_params(trial)))
            if point is None:
                raise KeyError(f"{s.table}: no point for params {trial.params}")  # a table/space mismatch: a bug
            twin = twins.get(params_key(point.params))
            if twin is not None:  # as the live objective: a completed design is copied, not retrained
                rec.put_all(trial, rec.copy_of(twin))
                state, values = TrialState.COMPLETE, list(twin.values)
            else:
                run = point.runs[table.seeds[int(rng.integers(len(table.seeds)))]]
                state, values = _play(trial, point, run, table.epochs, pruning)
            frozen = study.tell(trial, values=values, state=state)
            if state == TrialState.COMPLETE:
                twins.setdefault(params_key(point.params), frozen)
            track(study, frozen)
            n += 1
            copies += twin is not None
            if copies >= COPY_LIMIT * len(table.points):
                break  # the sampler has settled on designs it completed (TPE late in a long budget)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {"method": method, "seed": seed, "records": track.records, "spent": track.spent,
            "wall_s": time.perf_counter() - start, **({"designs": designs} if method == "seed_grid" else {})}


def _play(trial: optuna.Trial, point: TablePoint, run: dict[str, tuple[float, ...]], epochs: int,
          pruning: Pruning) -> tuple[TrialState, list[float] | None]:
    """Feed one curve to the trial record epoch by epoch, as the live objective does."""
    params = int(point.costs["params"])
    rec.put_all(trial, {rec.PARAMS: params, rec.FLOPS: point.costs.get("flops"), rec.LAYERS: point.costs.get("layers"),
                        rec.OPS_PER_STEP: point.costs.get("ops_per_step"), rec.CONFIG: point.config})
    curve: list[dict[str, float]] = []
    for e in range(1, epochs + 1):
        pckh, time_s = run["pckh"][e - 1], run["time_s"][e - 1]
        curve.append({"epoch": e, "pckh": pckh, "loss": run["loss"][e - 1], "time_s": time_s, "wall_s": run["wall_s"][e - 1]})
        rec.put_all(trial, {rec.CURVE: curve, rec.EPOCHS_RUN: e})
        if e < epochs and pruning.should_stop(trial, e, pckh, [pckh, float(params), time_s]):
            rec.put_all(trial, {rec.PRUNED_AT_EPOCH: e, rec.PRUNE_REASON: pruning.reason, **rec.times_so_far(curve)})
            return TrialState.PRUNED, None
    rec.put_all(trial, rec.times_so_far(curve))
    return TrialState.COMPLETE, [curve[-1]["pckh"], float(params), curve[-1]["time_s"]]
