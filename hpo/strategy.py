"""How a study searches: the preset's sampler and pruner, built side by side, and
:class:`Pruning`, the one call the objective makes after each epoch.

Optuna's pruners rank one intermediate value and raise NotImplementedError on
``trial.report`` in multi-objective studies, so the two kinds of study prune differently:
a single-objective study hands its pruner to Optuna (``study.pruner``; the objective
reports PCKh), a multi-objective one asks :class:`hpo.pruning.ParetoHalvingPruner` itself
with the objective values at the rung. :class:`Pruning` hides that split.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import optuna
from optuna.exceptions import ExperimentalWarning

from hpo.preset import SAMPLER_DEFAULTS, SAMPLERS, StudyPreset
from hpo.pruning import PlannedPruner, RungPruner
from hpo.space import SearchSpace

__all__ = ["create_sampler", "create_pruner", "Pruning"]


def create_sampler(
    preset: StudyPreset, seed: int | None = None, *, space: SearchSpace | None = None
) -> optuna.samplers.BaseSampler:
    """The preset's sampler, seeded (``seed`` defaults to the preset's)."""
    seed = preset.seed if seed is None else seed
    cfg = preset.sampler
    kwargs = {**SAMPLER_DEFAULTS.get(cfg.name, {}), **dict(cfg.kwargs)}
    if cfg.name == "grid":
        kwargs["search_space"] = (space or preset.search_space()).grid()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # group=True, GP, NSGA-III are "experimental"
        return SAMPLERS[cfg.name](seed=seed, **kwargs)


def create_pruner(preset: StudyPreset) -> optuna.pruners.BasePruner:
    """The preset's pruner (:data:`hpo.pruning.PRUNERS`; the preset checked its settings)."""
    return preset.pruner.create(preset.objectives, preset.train_schedule.epochs)


@dataclass(frozen=True)
class Pruning:
    """Whether a trial stops after an epoch, one call for both kinds of study: built once
    per study (:meth:`for_preset`) and handed to the objective.

    ``pruner`` is what the objective consults in a multi-objective study (only a
    :class:`hpo.pruning.RungPruner` can rank several objectives; anything else never prunes
    there); a single-objective study asks Optuna, whose pruner :meth:`attach` installed.
    """

    pruner: optuna.pruners.BasePruner | None
    multi: bool

    @classmethod
    def for_preset(cls, preset: StudyPreset) -> Pruning:
        return cls(create_pruner(preset), preset.multi_objective)

    @property
    def reason(self) -> str:
        """The ``prune_reason`` a trial cut here records: ``planned`` for a trial its sampler
        planned to pause (its checkpoint is kept for a promotion to continue)."""
        if isinstance(self.pruner, PlannedPruner):
            return "planned"
        return "mo_rung" if self.multi else "optuna_pruner"

    def attach(self, study: optuna.Study) -> None:
        """Single objective: Optuna's ``trial.should_prune`` goes through the pruner."""
        if not self.multi and self.pruner is not None:
            study.pruner = self.pruner

    def should_stop(self, trial: optuna.Trial, epoch: int, pckh: float, values: Sequence[float]) -> bool:
        """After ``epoch``: PCKh reported to Optuna (single objective) or the objective
        ``values`` ranked at the rung (multi-objective)."""
        if self.multi:
            study = trial.study
            return isinstance(self.pruner, RungPruner) and self.pruner.should_prune(
                study, trial.number, epoch, values, study.directions
            )
        trial.report(pckh, epoch)
        return trial.should_prune()
