"""Replay a search method against a recorded table (``hpo bench-search --table``).

The sampler asks as in a live study (an in-memory Optuna study over the table's space); the
table answers epoch by epoch with the curve of the design's one training seed for the run
(:class:`hpo.bench.ledger.TableRun`: drawn at its first proposal, kept for every repeat);
after each epoch the trial record gets that epoch (:mod:`hpo.record`, exactly what
:class:`hpo.objective.Objective` writes) and the method's pruner decides through
:class:`hpo.strategy.Pruning`, the call the live objective makes. Epochs trained are
charged; ``train_time`` is the table's measured training time. A design that already
completed is copied at no cost, as :func:`hpo.objective.completed_twin` does live; a pruned
design proposed again trains its same curve again from the start, as the live objective
does (it keeps no checkpoint of a pruned trial), except that a promotion continues its
paused screen (:data:`hpo.record.CONTINUES`), as the live objective resumes the screen's
checkpoint: it pays only the epochs after the screen. A run is a list of the same records as a
live one (:mod:`hpo.bench.front`), each complete design also valued on held-out seeds.

The peers' own code (``syne_moasha``, ``smac_mf``) is driven by :mod:`hpo.bench.rivals`.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import optuna
from optuna.trial import TrialState

from hpo import record as rec
from hpo.bench.baselines import HubMultiMetricRule, MoashaRule, RungTPE
from hpo.bench.front import Reference, Tracker
from hpo.bench.ledger import TableRun
from hpo.bench.rivals import run_rival
from hpo.bench.settings import (
    RIVAL_METHODS,
    SearchBenchSettings,
    base_preset,
    method_preset,
)
from hpo.bench.table import TablePoint, cached_table, params_key
from hpo.preset import resolve_file
from hpo.pruning import RungPruner
from hpo.screening import continued_trial
from hpo.space import SPACES_DIR, SearchSpace, plan_seed_trials
from hpo.strategy import Pruning, create_pruner, create_sampler

__all__ = ["replay_method", "COPY_LIMIT"]

_AS_LIVE = {
    "moasha": "random",
    "hub_multi_metric": "tpe",
    "bohb_tpe": "random",
}  # whose sampler the baseline uses
# A run stops once its sampler has proposed this many times the table's points in designs it
# had completed (copied at no cost). Why: TPE late in a 100-trial budget proposes little else,
# each ask costs more as the study grows, and the front no longer moves.
COPY_LIMIT = 5


@lru_cache(maxsize=4)
def _space(path: str) -> SearchSpace:
    return cached_table(path).search_space()  # parsed once per process


def _pruner(method: str, preset: Any, epochs: int, objectives: tuple[str, ...]) -> RungPruner | None:
    if method.endswith("_mopruning") or method == "screen_promote":
        return create_pruner(preset)  # type: ignore[return-value]  # mo_halving, planned: RungPruners
    if method in ("moasha", "bohb_tpe"):
        return MoashaRule(objectives, epochs, grace_period=preset.pruner.min_epochs, eta=preset.pruner.eta)
    if method == "hub_multi_metric":
        return HubMultiMetricRule(objectives)
    return None  # no pruning


def replay_method(s: SearchBenchSettings, method: str, seed: int, reference: Reference) -> dict[str, Any]:
    """Run one (method, seed) of ``s`` against the table ``s.table`` until ``s.budget_epochs``
    epochs are spent."""
    start = time.perf_counter()
    if method in RIVAL_METHODS:
        out = run_rival(s, method, seed, reference, _space(s.table))
    else:
        out = _replay_optuna(s, method, seed, reference)
    return {"method": method, "seed": seed, **out, "wall_s": time.perf_counter() - start}


def _replay_optuna(s: SearchBenchSettings, method: str, seed: int, reference: Reference) -> dict[str, Any]:
    table = cached_table(s.table)
    space = _space(s.table)
    base = base_preset(s.preset)  # the preset whose sampler and pruner settings apply
    preset = method_preset(base, s, _AS_LIVE.get(method, method), seed, "sqlite:///unused.db")
    if method in _AS_LIVE:  # the baselines take the rung settings of our pruner (first rung, eta)
        preset = preset.replace(
            pruner=method_preset(base, s, "tpe_mopruning", seed, "sqlite:///unused.db").pruner
        )
    rule = _pruner(method, preset, table.epochs, tuple(preset.objectives))
    pruning = Pruning(rule, multi=True)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        proposer = (
            RungTPE(preset.directions, [*rule.rungs(), table.epochs], seed) if method == "bohb_tpe" else None
        )
        study = optuna.create_study(directions=preset.directions, sampler=create_sampler(preset, seed))
        rec.study_put(study, rec.STUDY_OBJECTIVES, list(preset.objectives))
        designs: list[str] = []
        if method == "seed_grid":
            plan = plan_seed_trials(
                space, resolve_file(s.designs, near=None, folder=SPACES_DIR, what="designs")
            )
            for name, params in plan.trials:
                study.enqueue_trial(params, user_attrs=rec.seed_attrs(name))
            designs = [name for name, _ in plan.trials]
        track = Tracker(s.budget_epochs, reference, stops_study=False, heldout_view=True)
        ledger = TableRun.of(table, seed)
        twins: dict[str, optuna.trial.FrozenTrial] = {}
        paused: dict[int | None, int] = {}  # trial number -> the epochs its kept checkpoint holds
        copies = n = 0
        while track.spent < s.budget_epochs and (method != "seed_grid" or n < len(designs)):
            if proposer is not None and (params := proposer.propose()) is not None:
                study.enqueue_trial(params)
            trial = study.ask()
            point = ledger.point(space.suggest_params(trial))
            twin = twins.get(params_key(point.params))
            start = 0
            if twin is not None:  # as the live objective: a completed design is copied, not retrained
                rec.put_all(trial, rec.copy_of(twin))
                state, values, epochs = TrialState.COMPLETE, list(twin.values), 0
            else:
                # a promotion resumes its screen (only a sampler that pauses trials plans one)
                start = paused.pop(continued_trial(trial), 0) if paused else 0
                state, values, epochs = _play(trial, point, ledger, table.epochs, pruning, start)
            frozen = study.tell(trial, values=values, state=state)
            if state == TrialState.PRUNED and frozen.user_attrs.get(rec.PRUNE_REASON) == "planned":
                paused[frozen.number] = start + epochs  # its checkpoint stays for a promotion
            complete = state == TrialState.COMPLETE
            if complete:
                twins.setdefault(params_key(point.params), frozen)
            track.add(
                frozen.number,
                state.name.lower(),
                epochs,
                values,
                ledger.heldout(point) if complete else None,
                **ledger.tag(point),
            )
            if proposer is not None:
                proposer.observe(
                    frozen,
                    [ledger.at_epoch(point, e) for e in range(1, max(epochs, 1) + 1)] if twin is None else [],
                )
            n += 1
            copies += twin is not None
            if copies >= COPY_LIMIT * len(table.points):
                break  # the sampler has settled on designs it completed (TPE late in a long budget)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {
        "records": track.records,
        "spent": track.spent,
        "design_seeds": len(ledger.seeds),
        **({"designs": designs} if method == "seed_grid" else {}),
    }


def _play(
    trial: optuna.Trial, point: TablePoint, ledger: TableRun, epochs: int, pruning: Pruning, start: int = 0
) -> tuple[TrialState, list[float] | None, int]:
    """Feed the design's curve to the trial record epoch by epoch, as the live objective
    does; returns the state, the final values of a complete trial, and the epochs trained.
    ``start``: epochs resumed from a paused trial's checkpoint (the same curve, not paid
    again and not judged again)."""
    run = ledger.curve(point)
    params = int(point.costs["params"])
    rec.put_all(
        trial,
        {
            rec.PARAMS: params,
            rec.FLOPS: point.costs.get("flops"),
            rec.LAYERS: point.costs.get("layers"),
            rec.OPS_PER_STEP: point.costs.get("ops_per_step"),
            rec.CONFIG: point.config,
            rec.RESUMED_FROM_EPOCH: start,
        },
    )
    curve: list[dict[str, float]] = []
    for e in range(1, epochs + 1):
        pckh, time_s = run["pckh"][e - 1], run["time_s"][e - 1]
        curve.append(
            {
                "epoch": e,
                "pckh": pckh,
                "loss": run["loss"][e - 1],
                "time_s": time_s,
                "wall_s": run["wall_s"][e - 1],
            }
        )
        if e <= start:
            continue
        rec.put_all(trial, {rec.CURVE: curve, rec.EPOCHS_RUN: e})
        if e < epochs and pruning.should_stop(trial, e, pckh, [pckh, float(params), time_s]):
            rec.put_all(
                trial, {rec.PRUNED_AT_EPOCH: e, rec.PRUNE_REASON: pruning.reason, **rec.times_so_far(curve)}
            )
            return TrialState.PRUNED, None, e - start
    rec.put_all(trial, rec.times_so_far(curve))
    return TrialState.COMPLETE, [curve[-1]["pckh"], float(params), curve[-1]["time_s"]], epochs - start
