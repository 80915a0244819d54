"""Pruning for multi-objective studies: successive halving on Pareto rank.

Optuna's pruners rank one intermediate value, and ``Trial.report``/``should_prune`` raise
NotImplementedError in multi-objective studies. :class:`ParetoHalvingPruner` keeps the
idea of successive halving: at rungs ``min_epochs * eta**k`` a trial continues only if it
is among the best ``ceil(n / eta)`` of the ``n`` trials that reached the same rung, where
"best" is non-dominated sorting of the objective values *at that rung* (PCKh after that
many epochs, training time so far, the static costs) with crowding distance breaking ties
inside the front that gets cut, as in NSGA-II, so the survivors stay spread along the front
instead of bunching at its cheap end. Trials that were pruned or are still running count
as long as they reached the rung: the rung compares like with like.

With ``min_gain`` set, once ``MIN_COMPLETE`` trials have completed, a rung asks instead
whether the trial can still pay: its *predicted final* values (PCKh extrapolated by a line
fitted on the completed trials' PCKh at this epoch against their final PCKh, plus one
residual standard deviation of optimism; the training time scaled by the completed trials'
ratio of final to this-epoch time; static costs as they are) must add at least ``min_gain``
of the completed trials' hypervolume. Why: the study is judged by the hypervolume of its
completed trials, and halving keeps a fixed share of each rung whether or not it can move the
front (``hpo bench-search --table`` measures what each rule buys).

The other trials' values are read from their trial record (:mod:`hpo.record`): where each
objective's value after an epoch comes from is its entry in the objective registry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import moocore
import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hourglass.errors import ConfigError
from hourglass.validate import check_choice, check_float, check_int
from hpo import optuna_compat as compat
from hpo import record as rec
from hpo.directions import as_losses

__all__ = [
    "RungPruner",
    "ParetoHalvingPruner",
    "PlannedPruner",
    "PrunerConfig",
    "PrunerEntry",
    "PRUNERS",
    "rung_population",
    "nondominated_ranks",
    "crowding_distance",
    "survivors",
    "survives",
    "CURVE_KEYS",
    "STATIC_ATTRS",
    "predict_final",
    "front_gain",
]

# objectives read from the curve point, and those read from a static trial attribute
CURVE_KEYS = {n: s.curve_key for n, s in rec.OBJECTIVES.items() if s.curve_key}
STATIC_ATTRS = tuple(n for n, s in rec.OBJECTIVES.items() if not s.curve_key)
_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
MIN_COMPLETE = 2  # completed trials the min_gain rule needs (a front and a prediction)
OPTIMISM_FALLBACK = 5.0  # PCKh points added to a prediction made from fewer than 3 curves


def nondominated_ranks(
    values: Sequence[Sequence[float]], directions: Sequence[str | StudyDirection]
) -> list[int]:
    """Front index of every point: 0 = Pareto front, 1 = the front once 0 is removed, ...
    (moocore's non-dominated sorting; equal points share a front)."""
    losses = as_losses(values, directions)
    if not losses:
        return []
    return [int(r) for r in moocore.pareto_rank(np.array(losses, dtype=float))]


def crowding_distance(values: Sequence[Sequence[float]]) -> list[float]:
    """NSGA-II crowding distance of the points of one front (direction does not matter):
    per objective, the extremes get infinity and the others the normalised gap between their
    two neighbours; the sum over objectives. An objective where all points tie adds 0."""
    n = len(values)
    if n == 0:
        return []
    dist = [0.0] * n
    for k in range(len(values[0])):
        order = sorted(range(n), key=lambda i: values[i][k])
        lo, hi = values[order[0]][k], values[order[-1]][k]
        if not hi > lo:  # all equal (or NaN): this objective separates nobody
            continue
        dist[order[0]] = dist[order[-1]] = math.inf
        span = hi - lo
        if not math.isfinite(span):  # an infinite (diverged) value: only the extremes stand out
            continue
        for a, i, b in zip(order, order[1:-1], order[2:]):
            dist[i] += (values[b][k] - values[a][k]) / span
    return dist


def survivors(
    values: Sequence[Sequence[float]],
    directions: Sequence[str | StudyDirection],
    keep: int,
    favour: int | None = None,
) -> set[int]:
    """Indices of the ``keep`` best points: whole fronts in rank order, then the most
    crowding-distant points of the front that does not fit. Ties go to ``favour`` (the trial
    asking: pruning cannot be undone), then to the earlier index."""
    ranks = nondominated_ranks(values, directions)
    losses = as_losses(values, directions)
    kept: set[int] = set()
    for rank in range(max(ranks, default=-1) + 1):
        front = [i for i, r in enumerate(ranks) if r == rank]
        if len(kept) + len(front) <= keep:
            kept.update(front)
            continue
        crowd = crowding_distance([losses[i] for i in front])
        order = sorted(range(len(front)), key=lambda j: (-crowd[j], front[j] != favour, front[j]))
        kept.update(front[j] for j in order[: keep - len(kept)])
        break
    return kept


def survives(
    own: Sequence[float],
    others: Sequence[Sequence[float]],
    directions: Sequence[str | StudyDirection],
    eta: int,
) -> bool:
    """Whether ``own`` is among the best ``ceil(n / eta)`` of itself and ``others``."""
    values = [list(own), *map(list, others)]
    keep = math.ceil(len(values) / eta)
    return 0 in survivors(values, directions, keep, favour=0)


def rung_population(
    study: optuna.Study, trial_number: int, epoch: int, objectives: Sequence[str]
) -> list[list[float]]:
    """The ``objectives`` of every trial but ``trial_number`` (complete, pruned or running)
    as they stood after ``epoch`` epochs, for those that reached it."""
    out = []
    for t in study.get_trials(deepcopy=False, states=_STATES):
        if t.number != trial_number:
            values = rec.rung_values(t.user_attrs, epoch, objectives)
            if values is not None:
                out.append(values)
    return out


@dataclass(frozen=True)
class PrunerConfig:
    """A study's pruner settings (the preset's ``pruner:`` section), checked here and only
    here: every pruner of :data:`PRUNERS` is built from one of these.

    ``mo_halving``: Pareto-rank successive halving (any number of objectives); rungs at
    ``min_epochs * eta**k``, none before ``min_trials`` trials reached the rung. The Optuna
    pruners (single objective only) get ``min_epochs`` as their warm-up/min resource.
    """

    name: str = "mo_halving"
    min_epochs: int = 1
    eta: int = 3
    min_trials: int = 5
    # mo_halving only: once trials complete, a rung keeps a trial only if its predicted final
    # values would add this share of the front's hypervolume (module doc; None: halving only)
    min_gain: float | None = None

    def __post_init__(self) -> None:
        check_choice("name", self.name, PRUNERS)
        for field, low in (("min_epochs", 1), ("eta", 2), ("min_trials", 1)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int):  # built in code, not only from YAML
                raise ConfigError(f"{field}: expected an integer >= {low}, but got {value!r}")
            check_int(field, value, low=low)
        if self.min_gain is not None:
            if isinstance(self.min_gain, bool) or not isinstance(self.min_gain, (int, float)):
                raise ConfigError(f"min_gain: expected a share in [0, 1), but got {self.min_gain!r}")
            check_float("min_gain", self.min_gain, low=0.0)
            if self.min_gain >= 1.0 or self.name != "mo_halving":
                raise ConfigError(
                    f"min_gain: expected a share in [0, 1) with pruner mo_halving, but got "
                    f"{self.min_gain!r} with {self.name!r}"
                )

    @property
    def multi_objective(self) -> bool:
        """Whether this pruner can rank several objectives."""
        return PRUNERS[self.name].multi_objective

    def create(self, objectives: Sequence[str], epochs: int) -> optuna.pruners.BasePruner:
        """The pruner, for a study of ``objectives`` whose trials train ``epochs`` epochs."""
        return PRUNERS[self.name].factory(self, tuple(objectives), epochs)


class RungPruner(optuna.pruners.BasePruner):
    """A pruner that ranks a trial's several objective values after an epoch: what a
    multi-objective study can consult (:class:`hpo.strategy.Pruning`). Subclasses decide in
    :meth:`should_prune`; the benchmark's outside baselines (:mod:`hpo.bench.baselines`) are
    ones too."""

    def should_prune(
        self,
        study: optuna.Study,
        trial_number: int,
        epoch: int,
        values: Sequence[float],
        directions: Sequence[str | StudyDirection] | None = None,
    ) -> bool:
        raise NotImplementedError

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return False  # single-objective studies: only ParetoHalvingPruner takes part


class ParetoHalvingPruner(RungPruner):
    """Successive halving on Pareto rank, for studies of any number of objectives.

    Multi-objective studies cannot use Optuna's pruning API, so there the objective calls
    :meth:`should_prune` itself at the end of every epoch (after storing the epoch in the
    trial's ``curve``) and raises ``optuna.TrialPruned`` when it says so. In a
    single-objective study it also works as an ordinary Optuna pruner (``study.pruner``;
    ``trial.report(pckh, epoch)`` then ``trial.should_prune()``): :meth:`prune` reads the
    trial's own values from its ``curve`` at its last reported step.
    """

    def __init__(
        self,
        min_epochs: int = 1,
        eta: int = 3,
        min_trials_at_rung: int = 5,
        objectives: Sequence[str] | None = None,
        min_gain: float | None = None,
    ) -> None:
        """Args:
            min_epochs: the first rung; the others are ``min_epochs * eta**k``.
            eta: keep the best ``1 / eta`` at each rung.
            min_trials_at_rung: never prune before this many trials reached the rung.
            objectives: the objective names, in value order (default: the study's).
            min_gain: with enough completed trials, prune a trial whose predicted final
                values add less than this share of the front's hypervolume.

        Raises ``ValueError`` (a :class:`ConfigError`) for values :class:`PrunerConfig`
        refuses, or an unknown objective name.
        """
        super().__init__()
        PrunerConfig("mo_halving", min_epochs, eta, min_trials_at_rung, min_gain)  # raises if not valid
        for name in objectives or ():
            rec.objective_spec(name)
        self.min_epochs = min_epochs
        self.eta = eta
        self.min_trials_at_rung = min_trials_at_rung
        self.objectives = tuple(objectives) if objectives is not None else None
        self.min_gain = None if min_gain is None else float(min_gain)

    def __repr__(self) -> str:
        return (
            f"ParetoHalvingPruner(min_epochs={self.min_epochs}, eta={self.eta}, "
            f"min_trials_at_rung={self.min_trials_at_rung}, min_gain={self.min_gain})"
        )

    def is_rung(self, epoch: int) -> bool:
        """Whether ``epoch`` is ``min_epochs * eta**k`` for some k >= 0."""
        if epoch < self.min_epochs or epoch % self.min_epochs:
            return False
        q = epoch // self.min_epochs
        while q % self.eta == 0:
            q //= self.eta
        return q == 1

    def rungs(self, max_epoch: int) -> list[int]:
        out, e = [], self.min_epochs
        while e <= max_epoch:
            out.append(e)
            e *= self.eta
        return out

    def _objectives(self, study: optuna.Study) -> tuple[str, ...]:
        if self.objectives is not None:
            return self.objectives
        names = rec.study_get(study, rec.STUDY_OBJECTIVES) or study.metric_names
        if not names:
            raise ConfigError(
                f"study {study.study_name!r}: the pruner needs the objective names "
                "(study user attr 'objectives'), but the study has none"
            )
        return tuple(names)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        """Optuna's pruner hook (single-objective studies): the same rule as :meth:`should_prune`."""
        epoch = trial.last_step
        if epoch is None or not self.is_rung(epoch):
            return False
        values = rec.rung_values(trial.user_attrs, epoch, self._objectives(study))
        return values is not None and self.should_prune(study, trial.number, epoch, values)

    def should_prune(
        self,
        study: optuna.Study,
        trial_number: int,
        epoch: int,
        values: Sequence[float],
        directions: Sequence[str | StudyDirection] | None = None,
    ) -> bool:
        """Whether trial ``trial_number``, with objective ``values`` after ``epoch`` epochs,
        should stop. ``directions`` default to the study's."""
        if not self.is_rung(epoch):
            return False
        directions = list(study.directions if directions is None else directions)
        if len(values) != len(directions):
            raise ValueError(f"values needs one entry per objective ({len(directions)}), but got {values=}")
        if self.min_gain is not None:
            complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if len(complete) >= MIN_COMPLETE:
                return (
                    front_gain(complete, epoch, values, self._objectives(study), directions) < self.min_gain
                )
        others = rung_population(study, trial_number, epoch, self._objectives(study))
        if len(others) + 1 < self.min_trials_at_rung:
            return False
        return not survives(values, others, directions, self.eta)


class PlannedPruner(RungPruner):
    """Stops a trial after the epochs its sampler planned (:data:`hpo.record.PLANNED_EPOCHS`
    in its trial record, written by :class:`hpo.screening.ScreenPromoteSampler` before the
    objective starts); a trial without a plan runs to the end."""

    def should_prune(
        self,
        study: optuna.Study,
        trial_number: int,
        epoch: int,
        values: Sequence[float],
        directions: Sequence[str | StudyDirection] | None = None,
    ) -> bool:
        storage = compat.study_storage(study)  # this trial's record only, not the whole (shared) study
        trial_id = storage.get_trial_id_from_study_id_trial_number(compat.study_id(study), trial_number)
        plan = storage.get_trial_user_attrs(trial_id).get(rec.PLANNED_EPOCHS)
        return plan is not None and epoch >= int(plan)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        """Optuna's pruner hook (single-objective studies): the same plan."""
        plan = trial.user_attrs.get(rec.PLANNED_EPOCHS)
        return trial.last_step is not None and plan is not None and trial.last_step >= int(plan)


def predict_final(
    complete: Sequence[FrozenTrial], epoch: int, values: Sequence[float], objectives: Sequence[str]
) -> list[float]:
    """``values`` after ``epoch`` epochs turned into optimistic final values, learnt from the
    completed trials' curves (see the module docstring)."""
    out = list(values)
    pairs = [(rec.rung_values(t.user_attrs, epoch, objectives), list(t.values)) for t in complete]
    pairs = [(at, final) for at, final in pairs if at is not None]
    for k, name in enumerate(objectives):
        if not rec.OBJECTIVES[name].curve_key or not pairs:
            continue  # a static cost: known exactly
        at = np.array([a[k] for a, _ in pairs], dtype=float)
        final = np.array([f[k] for _, f in pairs], dtype=float)
        if name == "train_time":
            ratio = final / np.where(at > 0, at, np.nan)
            out[k] = values[k] * float(np.nanmedian(ratio)) if np.isfinite(ratio).any() else values[k]
        # a line needs spread in x: copies of one design agree to rounding, a rank-deficient fit
        elif len(at) >= 3 and at.std() > 1e-6 * max(1.0, float(np.abs(at).max())):
            slope, intercept = np.polyfit(at, final, 1)
            spread = float(np.std(final - (intercept + slope * at), ddof=1))
            out[k] = intercept + slope * values[k] + spread
        else:
            out[k] = values[k] + float(np.median(final - at)) + OPTIMISM_FALLBACK
    return out


def front_gain(
    complete: Sequence[FrozenTrial],
    epoch: int,
    values: Sequence[float],
    objectives: Sequence[str],
    directions: Sequence[str | StudyDirection],
) -> float:
    """The hypervolume the predicted final values would add to the completed trials' front,
    as a share of that front's hypervolume (reference point: 10 % beyond the worst value of
    each objective over the front and the candidate)."""
    predicted = predict_final(complete, epoch, values, objectives)
    losses = np.array(as_losses([list(t.values) for t in complete] + [predicted], directions), dtype=float)
    losses[~np.isfinite(losses)] = np.nan
    if np.isnan(losses[-1]).any():
        return 0.0  # a diverged candidate adds nothing
    losses = losses[~np.isnan(losses).any(axis=1)]
    lo, hi = losses.min(axis=0), losses.max(axis=0)
    ref = hi + 0.1 * (hi - lo) + 1e-12 * np.maximum(np.abs(hi), 1.0)
    before = float(moocore.hypervolume(losses[:-1], ref=ref)) if len(losses) > 1 else 0.0
    after = float(moocore.hypervolume(losses, ref=ref))
    return (after - before) / before if before > 0 else math.inf


@dataclass(frozen=True)
class PrunerEntry:
    """One pruner of :data:`PRUNERS`: how to build it from the checked settings, the study's
    objectives and its trials' epochs, and whether it ranks several objectives (a
    single-objective pruner goes to Optuna's ``study.pruner`` and sees PCKh only)."""

    factory: Callable[[PrunerConfig, tuple[str, ...], int], optuna.pruners.BasePruner]
    multi_objective: bool


# name -> pruner, as SAMPLERS in hpo.preset: a new pruner is one entry here and its class
PRUNERS: dict[str, PrunerEntry] = {
    "mo_halving": PrunerEntry(
        lambda c, objectives, epochs: ParetoHalvingPruner(
            c.min_epochs, c.eta, c.min_trials, objectives=objectives, min_gain=c.min_gain
        ),
        multi_objective=True,
    ),
    "median": PrunerEntry(
        lambda c, objectives, epochs: optuna.pruners.MedianPruner(
            n_startup_trials=c.min_trials, n_warmup_steps=c.min_epochs
        ),
        multi_objective=False,
    ),
    "successive_halving": PrunerEntry(
        lambda c, objectives, epochs: optuna.pruners.SuccessiveHalvingPruner(
            min_resource=c.min_epochs, reduction_factor=c.eta
        ),
        multi_objective=False,
    ),
    "hyperband": PrunerEntry(
        lambda c, objectives, epochs: optuna.pruners.HyperbandPruner(
            min_resource=c.min_epochs, max_resource=epochs, reduction_factor=c.eta
        ),
        multi_objective=False,
    ),
    "planned": PrunerEntry(lambda c, objectives, epochs: PlannedPruner(), multi_objective=True),
    "none": PrunerEntry(lambda c, objectives, epochs: optuna.pruners.NopPruner(), multi_objective=True),
}
