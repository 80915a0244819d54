"""What ``hpo bench-search`` runs: its methods, settings, and the preset each (method, seed) gets.

Shared by the live runs (:mod:`hpo.bench.live`), the replays against a recorded table
(:mod:`hpo.bench.replay`), the summary (:mod:`hpo.bench.summary`) and the driver
(:mod:`hpo.bench.search`); it imports none of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from optuna.study import StudyDirection

from hourglass.errors import ConfigError
from hourglass.validate import check_choice, check_int
from hpo.bench.table import cached_table
from hpo.preset import SamplerConfig, StudyPreset, load_preset
from hpo.pruning import PrunerConfig

__all__ = [
    "METHODS",
    "EXTRA_METHODS",
    "TABLE_METHODS",
    "RIVAL_METHODS",
    "DEFAULT_METHOD",
    "OBJECTIVES",
    "DIRECTIONS",
    "SearchBenchSettings",
    "budget_for",
    "default_workers",
    "base_preset",
    "method_preset",
]

METHODS = ("random", "seed_grid", "nsga2", "tpe_mopruning", "nsga2_mopruning")
# On request only: TPE without pruning, the control that tells the sampler's share of
# tpe_mopruning's result from the pruner's.
EXTRA_METHODS = ("tpe", "screen_promote")
# The peers' own code, called through the optional [bench] extra (hpo.bench.rivals).
RIVAL_METHODS = ("syne_moasha", "smac_mf")
# On a table: the live methods, TPE, our rule-based versions of two outside pruners and a
# BOHB-style multi-fidelity TPE (hpo.bench.baselines), and the rivals.
TABLE_METHODS = (
    "random",
    "seed_grid",
    "nsga2",
    "tpe",
    "tpe_mopruning",
    "nsga2_mopruning",
    "moasha",
    "hub_multi_metric",
    "bohb_tpe",
    "screen_promote",
    *RIVAL_METHODS,
)
DEFAULT_METHOD = "tpe_mopruning"  # what `hpo run` does: the preset's TPE with the mo_halving pruner
OBJECTIVES = ("pckh", "params", "train_time")
DIRECTIONS = [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE, StudyDirection.MINIMIZE]


@dataclass(frozen=True)
class SearchBenchSettings:
    """One benchmark. ``None`` fields take the preset's value; the pruner fields override the
    preset's ``mo_halving`` settings for the two ``*_mopruning`` methods. The bench seeds are
    ``seed_offset, ..., seed_offset + seeds - 1``: tune on one range, report on another."""

    preset: str = "quickstart"
    budget_epochs: int = 40
    seeds: int = 5
    seed_offset: int = 0
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
    sampler_kwargs: dict | None = None  # screen_promote's settings (default: its own)

    def __post_init__(self) -> None:
        check_int("budget_epochs", self.budget_epochs, low=1)
        check_int("seeds", self.seeds, low=1)
        check_int("seed_offset", self.seed_offset, low=0)
        check_int("population_size", self.population_size, low=2)
        check_int("workers", self.workers, low=1)
        for name in ("epochs_per_trial", "batch_size", "min_epochs", "min_trials", "n_startup_trials"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), low=1)
        if self.eta is not None:
            check_int("eta", self.eta, low=2)
        allowed = TABLE_METHODS if self.table else METHODS + EXTRA_METHODS
        if not self.methods:
            raise ConfigError(f"methods: expected some of {', '.join(allowed)}, but got none")
        for m in self.methods:
            check_choice("methods" + (" (with --table)" if self.table else ""), m, allowed)
        object.__setattr__(self, "methods", tuple(dict.fromkeys(self.methods)))

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seed_offset, self.seed_offset + self.seeds))


def budget_for(
    budget_epochs: int | None,
    budget_trials: float | None,
    table: str | Path | None,
    preset: str,
    epochs_per_trial: int | None = None,
) -> int:
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
        epochs = cached_table(str(table)).epochs
    else:
        epochs = epochs_per_trial or int(load_preset(preset).schedule["epochs"])
    return max(1, round(trials * epochs))


def default_workers(table: str | Path | None) -> int:
    """Processes for the (method, seed) runs when none are asked for: live, one (each run
    trains, and several would fight over the cores the training uses); on a table, one per
    CPU this process may use (replays are independent and single-threaded, and each gives
    the same result in any process, so the summary is the serial one)."""
    if table is None:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@lru_cache(maxsize=8)
def base_preset(name: str) -> StudyPreset:
    """The bench's preset, loaded and checked once per process (a frozen, read-only value)."""
    preset = load_preset(name)
    if tuple(preset.objectives) != OBJECTIVES:
        raise ConfigError(
            f"preset {name}: objectives: the benchmark needs {list(OBJECTIVES)}, but got "
            f"{list(preset.objectives)}"
        )
    return preset


def method_preset(
    base: StudyPreset, s: SearchBenchSettings, method: str, seed: int, storage: str
) -> StudyPreset:
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
    sampler = {
        "random": SamplerConfig("random"),
        "seed_grid": SamplerConfig("random"),
        "nsga2": nsga2,
        "tpe_mopruning": tpe,
        "nsga2_mopruning": nsga2,
        "tpe": tpe,
        # hpo.screening: screens designs, promotes the promising ones; pruner "planned" stops them
        "screen_promote": SamplerConfig("screen_promote", s.sampler_kwargs),
    }[method]
    pruner = base.pruner if base.pruner.name == "mo_halving" else PrunerConfig()
    overrides = {k: getattr(s, k) for k in ("min_epochs", "eta") if getattr(s, k) is not None}
    if s.min_trials is not None:
        overrides["min_trials"] = s.min_trials
    if s.min_gain is not None:
        overrides["min_gain"] = s.min_gain if s.min_gain >= 0 else None
    pruner = replace(pruner, **overrides) if method.endswith("_mopruning") else PrunerConfig("none")
    if method == "screen_promote":
        pruner = PrunerConfig("planned")
    return base.replace(
        name=f"bench_{method}_s{seed}",
        sampler=sampler,
        pruner=pruner,
        seed=seed,
        schedule=schedule,
        data=s.data or base.data,
        storage=storage,
        warm_start=None,
    )
