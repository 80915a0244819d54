"""Does the search pay? Hypervolume per training epoch, search methods against baselines.

``hpo bench-search`` gives every method the same budget of *training epochs* per seed and
records, after each trial, (epochs spent so far, hypervolume of the COMPLETE trials' front):

- ``random``: random search, no pruning;
- ``seed_grid``: the reference designs (``seed_designs.yaml`` mapped onto the space), in
  file order, until the budget or the designs run out (a design trained again with the same
  seed gives the same result, so the grid does not cycle);
- ``nsga2``: NSGA-II, no pruning;
- ``tpe_mopruning``: the preset's TPE sampler with the Pareto-rank pruner
  (:class:`hpo.pruning.ParetoHalvingPruner`);
- ``nsga2_mopruning``: NSGA-II with that pruner;
- ``tpe`` (only when asked for): TPE without pruning, to tell the sampler's share of
  ``tpe_mopruning``'s result from the pruner's.

With ``table`` set (``--table``, a file of ``hpo bench-table``), nothing is trained: every
(method, seed) is replayed against the recorded curves in an in-memory study
(:mod:`hpo.bench.replay`), ``train_time`` is the table's measured time, and three more
methods join: ``tpe``, ``moasha`` (Syne Tune's MOASHA over random search) and
``hub_multi_metric`` (OptunaHub's multi-metric rule over a median pruner, with TPE); see
:mod:`hpo.bench.baselines`. The rest of this docstring is about the live mode.

Each (method, seed) is its own study in a temporary SQLite file, run by the real
:class:`hpo.objective.Objective` (the study's own training, costs and pruning). Epochs spent
= epochs actually trained, pruned trials included. The bench seed seeds the sampler and the
training (``schedule.seed``); the data set is the same for all.

Why a cost model instead of wall time. On a shared machine the wall time of the same design
varies by 2x with the neighbours' load, which would decide the comparison by who ran when.
The ``train_time`` objective is therefore charged by :class:`StepCostModel`, a deterministic
model of CPU training time: time follows the number of operator calls per step (kernel
launches) more than FLOPs (measured on 24 tiny designs: Spearman 0.82 for ops, 0.27 for
FLOPs), so a step costs ``s_per_op * ops_per_step + s_per_mflop * batch * MFLOPs``, with the
two coefficients fitted on those measurements. The wall time is still recorded per trial and
the summary reports how well the charge ranks it.

Hypervolume. Objectives are normalised to ``(PCKh / 100, params / P_ref, time / T_ref)``
with the fixed reference point ``(0, 1, 1)``, so every value is in [0, 1] and comparable
across methods and seeds: ``P_ref`` and ``T_ref`` are 1.1 x the largest parameter count and
the largest charged training time (``epochs_per_trial`` epochs) over the space's structural
corners (:func:`reference_point`). A method's final hypervolume is the one after its last
trial that ended within the budget; the trial that crosses the budget is run (a trial is not
cut short) but does not count for the final figures.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import multiprocessing
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from hourglass.costs import Costs, costs
from hourglass.data.dataset import PoseArrays, load_pose_data
from hourglass.errors import ConfigError
from hourglass.train_config import TrainConfig
from hourglass.validate import check_choice, check_int
from hpo.objective import Objective
from hpo.pareto import hypervolume
from hpo.preset import SamplerConfig, StudyPreset, load_preset, resolve_file
from hpo.pruning import PrunerConfig
from hpo.record import TrialRecord, seed_attrs
from hpo.space import SPACES_DIR, SearchSpace, plan_seed_trials
from hpo.space_check import build_model_config, walk_combinations, written_paths
from hpo.space_param import Param, fit_block_knobs
from hpo.strategy import Pruning
from hpo.study import open_study

__all__ = [
    "METHODS", "EXTRA_METHODS", "OBJECTIVES", "DIRECTIONS", "SearchBenchSettings", "StepCostModel", "Reference", "reference_point",
    "method_preset", "run_method", "hv_at", "summarize", "run_search_bench", "write_html", "write_svg", "hv_bands",
    "Tracker", "base_preset", "budget_for", "table_methods", "table_reference_point", "replay_job",
]

METHODS = ("random", "seed_grid", "nsga2", "tpe_mopruning", "nsga2_mopruning")
# On request only: TPE without pruning, the control that tells the sampler's share of
# tpe_mopruning's result from the pruner's.
EXTRA_METHODS = ("tpe",)
OBJECTIVES = ("pckh", "params", "train_time")
DIRECTIONS = [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE, StudyDirection.MINIMIZE]
REFERENCE_MARGIN = 1.1
# Space knobs that change neither the weights nor the layer graph, hence no cost: stack
# weights only weight the loss, dilation only spaces a kernel's taps (tests check the latter),
# output weights add S multiply-adds of the heatmaps (a few operator calls, no weights).
COST_FREE = ("model.stack_weights", "model.block.dilation", "model.output_weights")


@dataclass(frozen=True)
class StepCostModel:
    """Charged CPU seconds for training a design (see the module docstring for why).

    Coefficients: least squares on 24 tiny designs (64 px, batch 8, one thread, 2-core
    machine), step time ~ ``s_per_op * ops_per_step + s_per_mflop * batch * forward MFLOPs``.
    Evaluation (forward only, no optimizer) is charged ``eval_share`` of a train step.
    """

    s_per_op: float = 13.8e-6
    s_per_mflop: float = 0.117e-3  # per image and forward MFLOP, for forward + backward + Adam
    eval_share: float = 1 / 3

    def seconds(self, c: Costs, epochs: int, n_train: int, n_val: int, batch: int) -> float:
        mflops = c.flops / 1e6
        steps = n_train // batch if n_train > batch else 1  # the loader drops the last batch
        images = steps * batch if n_train > batch else n_train
        train = steps * c.ops_per_step * self.s_per_op + images * mflops * self.s_per_mflop
        eval_batches = math.ceil(n_val / max(batch, 32))  # the trainer's evaluation batch
        evaluate = self.eval_share * (eval_batches * c.ops_per_step * self.s_per_op + n_val * mflops * self.s_per_mflop)
        return epochs * (train + evaluate)

    def for_data(self, arrays: PoseArrays) -> Callable[[TrainConfig, Costs, int], float]:
        """The Objective's ``time_model`` hook for this data set."""
        n_val = int(np.asarray(arrays.is_val).astype(bool).sum())
        return partial(_charge, self, len(arrays.is_val) - n_val, n_val)


def _charge(model: StepCostModel, n_train: int, n_val: int, config: TrainConfig, c: Costs, epoch: int) -> float:
    return model.seconds(c, epoch, n_train, n_val, config.schedule.batch_size)


@dataclass(frozen=True)
class SearchBenchSettings:
    """One benchmark. ``None`` fields take the preset's value; the pruner fields override the
    preset's ``mo_halving`` settings for the two ``*_mopruning`` methods."""

    preset: str = "quickstart"
    budget_epochs: int = 40
    seeds: int = 5
    epochs_per_trial: int | None = None
    data: str | None = None
    batch_size: int | None = None
    population_size: int = 6  # NSGA-II generation size; Optuna's 50 would be all random here
    min_epochs: int | None = None
    eta: int | None = None
    min_trials: int | None = None
    n_startup_trials: int | None = None  # TPE's random start (default: the preset's)
    min_gain: float | None = None  # the pruner's front-gain rule (default: the preset's; < 0: off)
    methods: tuple[str, ...] = METHODS
    designs: str = "seed_designs"
    workers: int = 1
    table: str | None = None  # a recorded table (hpo bench-table): replay instead of training

    def __post_init__(self) -> None:
        check_int("budget_epochs", self.budget_epochs, low=1)
        check_int("seeds", self.seeds, low=1)
        check_int("population_size", self.population_size, low=2)
        check_int("workers", self.workers, low=1)
        for name in ("epochs_per_trial", "batch_size", "min_epochs", "min_trials", "n_startup_trials"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), low=1)
        if self.eta is not None:
            check_int("eta", self.eta, low=2)
        allowed = table_methods() if self.table else METHODS + EXTRA_METHODS
        if not self.methods:
            raise ConfigError(f"methods: expected some of {', '.join(allowed)}, but got none")
        for m in self.methods:
            check_choice("methods" + (" (with --table)" if self.table else ""), m, allowed)
        object.__setattr__(self, "methods", tuple(dict.fromkeys(self.methods)))


@dataclass(frozen=True)
class Reference:
    """The fixed normalisation and reference point (see the module docstring)."""

    params: float  # P_ref
    time_s: float  # T_ref, charged seconds
    designs: int  # structural corners counted
    largest_params: int
    largest_time_s: float
    epochs_per_trial: int

    def normalise(self, values: Sequence[float]) -> list[float]:
        pckh, params, time_s = values
        return [pckh / 100.0, params / self.params, time_s / self.time_s]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "point_normalised": [0.0, 1.0, 1.0], "objectives": list(OBJECTIVES),
                "normalisation": "pckh/100 (max), params/params_ref (min), train_time/time_s_ref (min)"}


def budget_for(budget_epochs: int | None, budget_trials: float | None, table: str | Path | None, preset: str,
               epochs_per_trial: int | None = None) -> int:
    """The budget in epochs: ``budget_epochs``, or ``budget_trials`` full trials (the table's
    epochs, else the preset's), by default 40 epochs live and 30 full trials on a table."""
    if budget_epochs is not None and budget_trials is not None:
        raise ConfigError("--budget-epochs and --budget-trials: expected one of them, but got both")
    if budget_epochs is not None:
        return budget_epochs
    if budget_trials is None and table is None:
        return 40
    trials = 30.0 if budget_trials is None else float(budget_trials)
    if not trials > 0:
        raise ConfigError(f"--budget-trials: expected a number > 0, but got {budget_trials}")
    if table is not None:
        from hpo.bench.replay import cached_table

        epochs = cached_table(str(table)).epochs
    else:
        epochs = epochs_per_trial or int(load_preset(preset).schedule["epochs"])
    return max(1, round(trials * epochs))


def table_methods() -> tuple[str, ...]:
    from hpo.bench.replay import TABLE_METHODS

    return TABLE_METHODS


# ----------------------------------------------------------------------------- presets
@lru_cache(maxsize=8)
def base_preset(name: str) -> StudyPreset:
    """The bench's preset, loaded and checked once per process (a frozen, read-only value)."""
    preset = load_preset(name)
    if tuple(preset.objectives) != OBJECTIVES:
        raise ConfigError(f"preset {name}: objectives: the benchmark needs {list(OBJECTIVES)}, but got {list(preset.objectives)}")
    return preset


def method_preset(base: StudyPreset, s: SearchBenchSettings, method: str, seed: int, storage: str) -> StudyPreset:
    """The preset a (method, seed) study runs: the bench's data/schedule, the method's
    sampler and pruner, its own storage."""
    check_choice("method", method, METHODS + EXTRA_METHODS)  # the live methods (a replay maps its baselines)
    schedule = {**dict(base.schedule), "seed": seed}
    if s.epochs_per_trial is not None:
        schedule["epochs"] = s.epochs_per_trial
    if s.batch_size is not None:
        schedule["batch_size"] = s.batch_size
    nsga2 = SamplerConfig("nsga2", {"population_size": s.population_size})
    tpe = base.sampler if base.sampler.name == "tpe" else SamplerConfig("tpe")
    if s.n_startup_trials is not None:
        tpe = SamplerConfig("tpe", {**dict(tpe.kwargs), "n_startup_trials": s.n_startup_trials})
    sampler = {"random": SamplerConfig("random"), "seed_grid": SamplerConfig("random"), "nsga2": nsga2,
               "tpe_mopruning": tpe, "nsga2_mopruning": nsga2, "tpe": tpe}[method]
    pruner = base.pruner if base.pruner.name == "mo_halving" else PrunerConfig()
    overrides = {k: getattr(s, k) for k in ("min_epochs", "eta") if getattr(s, k) is not None}
    if s.min_trials is not None:
        overrides["min_trials"] = s.min_trials
    if s.min_gain is not None:
        overrides["min_gain"] = s.min_gain if s.min_gain >= 0 else None
    pruner = replace(pruner, **overrides) if method.endswith("_mopruning") else PrunerConfig("none")
    return base.replace(name=f"bench_{method}_s{seed}", sampler=sampler, pruner=pruner, seed=seed,
                        schedule=schedule, data=s.data or base.data, storage=storage, warm_start=None)


# ----------------------------------------------------------------------------- reference point
def _corner_models(space: SearchSpace) -> list[dict[str, Any]]:
    """Every structurally distinct model the space can produce at its largest: categorical
    model params over all their choices, numeric ones (features; stacks as numeric choices)
    at their maximum, since every cost grows with width and stack count; schedule params and
    :data:`COST_FREE` knobs at their default."""
    out: dict[str, dict[str, Any]] = {}

    def corner_values(i: int, p: Param) -> list[Any]:
        structural = p.path is None or (p.path.startswith("model.") and p.path not in COST_FREE)
        if not structural:
            return [p.default]
        if p.kind != "categorical":
            return [p.high]
        if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in p.choices):
            return [max(p.choices)]
        return list(p.choices)

    base = {"model": space.base["model"], "schedule": space.base["schedule"]}
    for config, chosen in walk_combinations(space.params, base, corner_values):
        model = {k: dict(v) if isinstance(v, dict) else v for k, v in config["model"].items()}
        fit_block_knobs(model, written_paths(space.params, chosen))
        out.setdefault(repr(sorted(model.items(), key=str)), model)
    return list(out.values())


@lru_cache(maxsize=4)
def _arrays(spec: str) -> PoseArrays:
    return load_pose_data(spec)  # once per process and data set


def _model_costs(model: dict[str, Any]) -> Costs:
    torch.set_num_threads(1)
    return costs(build_model_config(model))


def reference_point(s: SearchBenchSettings, cost_model: StepCostModel = StepCostModel(), *, progress: bool = True,
                    map_fn: Callable[..., Iterable[Any]] = map) -> Reference:
    """``P_ref``/``T_ref``: 1.1 x the largest params / charged time over :func:`_corner_models`
    (``map_fn``: e.g. a process pool's ``map``; counting costs takes ~0.5 s a design)."""
    preset = method_preset(base_preset(s.preset), s, "random", 0, "sqlite:///unused.db")
    charge = cost_model.for_data(_arrays(preset.data))
    config = TrainConfig(schedule=preset.train_schedule, data=preset.data)
    epochs = config.schedule.epochs
    models = _corner_models(preset.search_space())
    found = list(tqdm(map_fn(_model_costs, models), total=len(models), desc="reference point", unit="design",
                      disable=not progress))
    best_p = max(c.params for c in found)
    best_t = max(charge(config, c, epochs) for c in found)
    return Reference(REFERENCE_MARGIN * best_p, REFERENCE_MARGIN * best_t, len(models), best_p, best_t, epochs)


# ----------------------------------------------------------------------------- one run
def _epochs_trained(trial: FrozenTrial) -> int:
    """Epochs a trial trained: its curve, plus the epoch a divergence interrupted."""
    r = TrialRecord.of(trial)
    if r.copied_from is not None:
        return 0  # a repeat of a completed design, copied (hpo.objective.completed_twin)
    return max(len(r.curve), int(r.pruned_at_epoch or 0)) if r.prune_reason == "diverged" else len(r.curve)


@dataclass
class Tracker:
    """Study callback: one record per finished trial; stops the study at the budget."""

    budget: int
    reference: Reference
    spent: int = 0
    points: list[list[float]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    stops_study: bool = True  # a replay drives ask/tell itself and stops at the budget

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        epochs = _epochs_trained(trial)
        self.spent += epochs
        complete = trial.state == TrialState.COMPLETE
        if complete:
            self.points.append(self.reference.normalise(trial.values))
        hv = hypervolume(np.array(self.points), [0.0, 1.0, 1.0], DIRECTIONS) if self.points else 0.0
        r = TrialRecord.of(trial)
        self.records.append({
            "trial": trial.number, "state": trial.state.name.lower(), "epochs": epochs, "spent": self.spent,
            "hv": hv, "values": list(trial.values) if complete else None,
            "wall_s": r.wall_time_s, "design": r.design, "pckh_curve": [p["pckh"] for p in r.curve],
        })
        if self.spent >= self.budget and self.stops_study:
            study.stop()


def run_method(s: SearchBenchSettings, method: str, seed: int, reference: Reference,
               cost_model: StepCostModel = StepCostModel()) -> dict[str, Any]:
    """Run one (method, seed) study until ``s.budget_epochs`` epochs are spent."""
    torch.set_num_threads(1)  # measured: 2 threads were ~40x slower on the loaded 2-core machine
    base = base_preset(s.preset)
    start = time.perf_counter()
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study" line per run
    try:
        return _run_method(s, base, method, seed, reference, cost_model, start)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _run_method(s: SearchBenchSettings, base: StudyPreset, method: str, seed: int, reference: Reference,
                cost_model: StepCostModel, start: float) -> dict[str, Any]:
    designs: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hpo_bench_") as tmp:
        preset = method_preset(base, s, method, seed, f"sqlite:///{Path(tmp) / 'study.db'}")
        arrays = _arrays(preset.data)
        space = preset.search_space()
        study = open_study(preset, seed=seed)
        objective = Objective(preset, space, arrays, Path(tmp) / "checkpoints",
                              device=None if preset.device == "auto" else preset.device,
                              pruning=Pruning.for_preset(preset), progress=False, time_model=cost_model.for_data(arrays))
        n_trials = 4 * s.budget_epochs  # a guard: trials that fail before their first epoch cost nothing
        if method == "seed_grid":  # the designs the space can express, in file order
            plan = plan_seed_trials(space, resolve_file(s.designs, near=None, folder=SPACES_DIR, what="designs"))
            for name, params in plan.trials:
                study.enqueue_trial(params, user_attrs=seed_attrs(name))
            designs, n_trials = [name for name, _ in plan.trials], len(plan.trials)
        tracker = Tracker(s.budget_epochs, reference)
        study.optimize(objective, n_trials=n_trials, callbacks=[tracker], catch=(Exception,), gc_after_trial=True)
    return {"method": method, "seed": seed, "records": tracker.records, "spent": tracker.spent,
            "wall_s": time.perf_counter() - start, **({"designs": designs} if method == "seed_grid" else {})}


def table_reference_point(s: SearchBenchSettings) -> Reference:
    """The table's :class:`Reference`: 1.1 x the largest parameter count and the largest
    full-length training time of any point and seed in the table."""
    from hpo.bench.replay import cached_table

    table = cached_table(s.table)
    largest_p = max(p.costs["params"] for p in table.points)
    largest_t = max(run["time_s"][-1] for p in table.points for run in p.runs.values())
    return Reference(REFERENCE_MARGIN * largest_p, REFERENCE_MARGIN * largest_t, len(table.points),
                     largest_p, largest_t, table.epochs)


def table_rung_predictiveness(path: str) -> dict[str, Any]:
    """Spearman of PCKh after each epoch against the final PCKh, over every point and seed
    of the table: what a rung at that epoch can know."""
    from hpo.bench.replay import cached_table

    return _predictiveness([run["pckh"] for p in cached_table(path).points for run in p.runs.values()])


def replay_job(s: SearchBenchSettings, method: str, seed: int, reference: Reference) -> dict[str, Any]:
    """One (method, seed) replayed against ``s.table`` (:mod:`hpo.bench.replay`)."""
    from hpo.bench.replay import replay_method

    return replay_method(s, method, seed, reference)


# ----------------------------------------------------------------------------- summary
def hv_at(records: Sequence[Mapping[str, Any]], epochs: float) -> float:
    """The hypervolume after the last trial that ended within ``epochs`` epochs (0 before any)."""
    hv = 0.0
    for r in records:
        if r["spent"] > epochs:
            break
        hv = r["hv"]
    return hv


def epochs_to_reach(records: Sequence[Mapping[str, Any]], target: float, budget: int) -> int | None:
    """Epochs spent when the hypervolume first reached ``target`` within the budget, or None."""
    for r in records:
        if r["spent"] > budget:
            return None
        if r["hv"] >= target - 1e-12:
            return r["spent"]
    return None


def _mean_std(xs: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(xs, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def _spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None  # undefined for constant input
    from scipy.stats import spearmanr

    rho = spearmanr(x, y).statistic
    return None if not np.isfinite(rho) else float(rho)


def _rung_predictiveness(runs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """How well PCKh after ``e`` epochs ranks the final PCKh, over the unpruned trials of
    every run (Spearman per epoch ``e``): what a rung at ``e`` can know."""
    return _predictiveness([x["pckh_curve"] for r in runs for x in r["records"]
                            if x["state"] == "complete" and x.get("pckh_curve")])


def _predictiveness(curves: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Spearman of each epoch's PCKh against the final one, over the full-length ``curves``."""
    if not curves:
        return {"trials": 0, "spearman_by_epoch": {}}
    full = max(len(c) for c in curves)
    curves = [c for c in curves if len(c) == full]
    final = [c[-1] for c in curves]
    return {"trials": len(curves), "final_epoch": full,
            "spearman_by_epoch": {str(e + 1): _spearman([c[e] for c in curves], final) for e in range(full - 1)}}


def summarize(runs: Iterable[Mapping[str, Any]], s: SearchBenchSettings, reference: Reference) -> dict[str, Any]:
    """The JSON summary: per method the final hypervolume (mean, sample std over seeds), the
    epochs needed to reach random search's final hypervolume of the same seed (mean over the
    seeds that reached it; ``null`` if none did), trial counts; the win count of
    ``tpe_mopruning`` over ``nsga2``; every run's curve."""
    by = {(r["method"], r["seed"]): r for r in runs}
    seeds = sorted({seed for _, seed in by})
    budget = s.budget_epochs
    final = {key: hv_at(r["records"], budget) for key, r in by.items()}
    methods: dict[str, Any] = {}
    for m in s.methods:
        rs = [by[(m, seed)] for seed in seeds if (m, seed) in by]
        if not rs:
            continue
        finals = [final[(m, r["seed"])] for r in rs]
        to_random = [
            epochs_to_reach(r["records"], final[("random", r["seed"])], budget) if ("random", r["seed"]) in final else None
            for r in rs
        ]
        reached = [e for e in to_random if e is not None]
        within = [[x for x in r["records"] if x["spent"] <= budget] for r in rs]
        trials = [len(w) for w in within]
        pruned = [sum(x["state"] == "pruned" for x in w) for w in within]
        spent = [w[-1]["spent"] if w else 0 for w in within]
        mean, std = _mean_std(finals)
        methods[m] = {
            "final_hv_mean": mean, "final_hv_std": std, "final_hv_median": float(np.median(finals)),
            "final_hv_per_seed": finals,
            "epochs_to_random_final": float(np.mean(reached)) if reached else None,
            # the goal: random search's final front with at most a third of the budget
            "random_final_within_third_share": sum(e is not None and e <= budget / 3 for e in to_random) / len(rs),
            "epochs_to_random_final_per_seed": to_random,
            "reached_random_final_seeds": len(reached),
            "trials_mean": float(np.mean(trials)), "pruned_mean": float(np.mean(pruned)),
            "complete_mean": float(np.mean([sum(x["state"] == "complete" for x in w) for w in within])),
            "epochs_per_trial_mean": float(np.sum(spent) / max(np.sum(trials), 1)),
            "epochs_spent_mean": float(np.mean(spent)),
            "wall_s_mean": float(np.mean([r["wall_s"] for r in rs])),
        }
    wins = None
    if {"tpe_mopruning", "nsga2"} <= set(s.methods):
        wins = sum(bool(final[("tpe_mopruning", seed)] > final[("nsga2", seed)]) for seed in seeds
                   if ("tpe_mopruning", seed) in final and ("nsga2", seed) in final)
    return {
        "seeds": len(seeds), "budget_epochs": budget, "methods": methods, "wins_vs_nsga2_nopruning": wins,
        "rung_predictiveness": table_rung_predictiveness(s.table) if s.table else _rung_predictiveness(by.values()),
        "goal": {"epochs": budget / 3, "tpe_mopruning_epochs_to_random_final":
                 methods.get("tpe_mopruning", {}).get("epochs_to_random_final"),
                 "tpe_mopruning_within_third_share": methods.get("tpe_mopruning", {}).get("random_final_within_third_share")},
        "seed_grid_designs": next((r["designs"] for r in by.values() if "designs" in r), None),
        "reference": reference.to_dict(),
        "time_objective": _time_objective(by.values(), table=bool(s.table)),
        "settings": asdict(s),
        "curves": {m: {str(seed): by[(m, seed)]["records"] for seed in seeds if (m, seed) in by} for m in s.methods},
    }


def _time_objective(runs: Iterable[Mapping[str, Any]], *, table: bool) -> dict[str, Any]:
    """How ``train_time`` was measured; live, how well the charge ranks the wall time."""
    if table:
        return {"kind": "table", "measured": "the table's recorded training time (hourglass.steptime)"}
    charged, wall = [], []
    for r in runs:
        for x in r["records"]:
            if x["values"] is not None and x["wall_s"] is not None:
                charged.append(x["values"][2])
                wall.append(x["wall_s"])
    return {"kind": "charged", "model": asdict(StepCostModel()),
            "spearman_charged_vs_wall": _spearman(charged, wall), "trials": len(charged)}


# ----------------------------------------------------------------------------- driver
def run_search_bench(s: SearchBenchSettings, *, progress: bool = True) -> dict[str, Any]:
    """The reference point, every (method, seed) run (``s.workers`` processes), then
    :func:`summarize`."""
    jobs = list(itertools.product(range(s.seeds), s.methods))
    runs: list[dict[str, Any]] = []
    bar = None

    def done(run: dict[str, Any]) -> None:
        runs.append(run)
        bar.update(1)
        final = hv_at(run["records"], s.budget_epochs)
        bar.write(f"{run['method']:16s} seed {run['seed']}: HV {final:.4f}  {len(run['records'])} trials, "
                  f"{run['spent']} epochs, {run['wall_s']:.0f} s")

    run = replay_job if s.table else run_method
    with contextlib.ExitStack() as stack:
        pool = None
        if s.workers > 1:
            ctx = multiprocessing.get_context("spawn")  # fork after torch has started threads is unsafe
            pool = stack.enter_context(ProcessPoolExecutor(max_workers=s.workers, mp_context=ctx))
        if s.table:
            reference = table_reference_point(s)
        else:
            reference = reference_point(s, progress=progress, map_fn=pool.map if pool else map)
        bar = stack.enter_context(tqdm(total=len(jobs), desc="bench-search", unit="run", disable=not progress))
        if pool is None:
            for seed, method in jobs:
                done(run(s, method, seed, reference))
        else:
            for f in as_completed([pool.submit(run, s, method, seed, reference) for seed, method in jobs]):
                done(f.result())
    return summarize(runs, s, reference)


def write_html(summary: Mapping[str, Any], path: str | Path) -> Path:
    """Hypervolume vs epochs spent: mean line and a 95 % interval of the mean (normal
    approximation, 1.96 standard errors) per method."""
    import plotly.graph_objects as go
    from plotly.colors import hex_to_rgb, qualitative

    fig = go.Figure()
    for i, (m, b) in enumerate(hv_bands(summary).items()):
        grid, mean = b["epochs"], b["mean"]
        color = qualitative.Plotly[i % len(qualitative.Plotly)]
        band = "rgba({}, {}, {}, 0.15)".format(*hex_to_rgb(color))
        fig.add_trace(go.Scatter(x=grid + grid[::-1], y=b["high"] + b["low"][::-1], fill="toself",
                                 fillcolor=band, line={"width": 0}, hoverinfo="skip",
                                 legendgroup=m, showlegend=False))
        fig.add_trace(go.Scatter(x=grid, y=mean, mode="lines", name=m, legendgroup=m, line={"color": color, "shape": "hv"}))
    ref = summary["reference"]
    fig.update_layout(
        title=(f"Hypervolume vs training epochs spent ({summary['seeds']} seeds, mean and 95 % interval)<br><sup>objectives "
               f"PCKh/100, params/{ref['params']:.0f}, train time/{ref['time_s']:.1f} s; reference point (0, 1, 1)</sup>"),
        xaxis_title="training epochs spent", yaxis_title="hypervolume (normalised)", template="plotly_white",
        height=520,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return path


def hv_bands(summary: Mapping[str, Any], step: int = 1) -> dict[str, dict[str, list[float]]]:
    """Per method, on epochs ``0, step, ..., budget``: the mean hypervolume over seeds and
    its 95 % interval (1.96 standard errors)."""
    grid = list(range(0, summary["budget_epochs"] + 1, step))
    out = {}
    for m, per_seed in summary["curves"].items():
        curves = np.array([[hv_at(recs, e) for e in grid] for recs in per_seed.values()])
        mean = curves.mean(0)
        half = 1.96 * curves.std(0, ddof=1) / np.sqrt(len(curves)) if len(curves) > 1 else np.zeros_like(mean)
        out[m] = {"epochs": grid, "mean": mean.tolist(), "low": (mean - half).tolist(), "high": (mean + half).tolist()}
    return out


_SVG_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def write_svg(summary: Mapping[str, Any], path: str | Path, width: int = 760, height: int = 420) -> Path:
    """The plot of :func:`write_html` as a small static SVG (no JavaScript), for the README:
    mean hypervolume against epochs spent per method, with its 95 % interval as a band."""
    bands = hv_bands(summary, step=max(1, summary["budget_epochs"] // 150))
    left, right, top, bottom = 60, 170, 30, 45
    w, h = width - left - right, height - top - bottom
    budget = summary["budget_epochs"]
    lows = [v for b in bands.values() for v in b["low"][1:]]
    y0 = max(0.0, math.floor(min(lows) * 20) / 20) if lows else 0.0
    y1 = math.ceil(max(v for b in bands.values() for v in b["high"]) * 20) / 20 or 1.0

    def x(e: float) -> float:
        return left + w * e / budget

    def y(v: float) -> float:
        return top + h * (1 - (min(max(v, y0), y1) - y0) / (y1 - y0))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
             f'<text x="{left}" y="18" font-size="13">Hypervolume vs training epochs spent ({summary["seeds"]} seeds, '
             f'mean and 95 % interval)</text>']
    for i in range(6):  # axes, ticks, grid
        v = y0 + (y1 - y0) * i / 5
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
        e = budget * i / 5
        parts.append(f'<text x="{x(e):.1f}" y="{top + h + 16}" text-anchor="middle">{e:.0f}</text>')
    parts.append(f'<line x1="{x(budget / 3):.1f}" x2="{x(budget / 3):.1f}" y1="{top}" y2="{top + h}" stroke="#999" '
                 f'stroke-dasharray="4 3"/><text x="{x(budget / 3) + 4:.1f}" y="{top + 12}" fill="#666">1/3 budget</text>')
    parts.append(f'<text x="{left + w / 2}" y="{height - 8}" text-anchor="middle">training epochs spent</text>')
    if "random" in bands:  # the goal: random search's final front, within a third of the budget
        v = bands["random"]["mean"][-1]
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#999" '
                     f'stroke-dasharray="4 3"/><text x="{left + 4}" y="{y(v) - 4:.1f}" fill="#666">random, final</text>')
    for i, (m, b) in enumerate(bands.items()):
        c = _SVG_COLOURS[i % len(_SVG_COLOURS)]
        upper = " ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in zip(b["epochs"], b["high"]))
        lower = " ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in zip(reversed(b["epochs"]), reversed(b["low"])))
        line = " ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in zip(b["epochs"], b["mean"]))
        parts.append(f'<polygon points="{upper} {lower}" fill="{c}" fill-opacity="0.15" stroke="none"/>')
        parts.append(f'<polyline points="{line}" fill="none" stroke="{c}" stroke-width="{2.5 if m == "tpe_mopruning" else 1.5}"/>')
        ly = top + 14 + 18 * i
        parts.append(f'<line x1="{left + w + 12}" x2="{left + w + 32}" y1="{ly - 4}" y2="{ly - 4}" stroke="{c}" stroke-width="2.5"/>'
                     f'<text x="{left + w + 38}" y="{ly}">{m}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#333"/></svg>')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path
