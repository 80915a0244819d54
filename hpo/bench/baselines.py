"""Outside methods written from their published rules, for the benchmark (the peers' own code
is called in :mod:`hpo.bench.rivals`).

- :class:`MoashaRule` (``moasha``): Syne Tune's MOASHA (Salinas et al., ICLR 2021 NAS
  workshop; ``syne_tune.optimizer.schedulers.multiobjective.moasha``), one bracket.
  Rungs at ``grace_period * eta**k`` below the trial's full length. A trial reaching a rung
  that nobody reached before goes on. Otherwise the trial's values and those recorded at the
  rung are sorted by non-dominated fronts, each front ordered by an epsilon-net (the point
  best in the first objective first, then always the point farthest from those already
  chosen); with ``p`` the trial's position in that order and ``n`` the points sorted, the
  trial stops if ``p / n > 1 / eta``. Difference from Syne Tune: distances are taken on
  objectives scaled to [0, 1] over the rung (raw parameter counts would swamp PCKh), and
  the net starts from the best PCKh instead of a random point (deterministic replays).
- :class:`HubMultiMetricRule` (``hub_multi_metric``): OptunaHub's ``multi_metric_pruner``
  in its joint mode (S. Watanabe, 2026) over Optuna's ``MedianPruner`` defaults. After each
  epoch every trial that reported that epoch gets a synthetic value: its non-domination rank
  among them, ties inside a front broken by hypervolume contribution (largest first, as a
  fraction of one rank). The median rule then runs on those synthetic values: once 5 trials
  have finished, a trial stops if its best synthetic value so far is worse than the median
  of the finished trials' values at this epoch.

- :class:`RungTPE` (``bohb_tpe``, with :class:`MoashaRule` stopping): BOHB's model
  (Falkner et al., ICML 2018) on a multi-objective study. Per rung (the stopping rule's rungs
  and the full length) an in-memory study holds every trial's values at that rung; a new
  design comes from Optuna's multi-objective TPE fitted on the highest rung that has more
  observations than the space has params (BOHB's minimum), one in three at random (BOHB's
  rho), and at random until a rung has enough.

The pruners read the rung values from the trial record, like :class:`hpo.pruning.ParetoHalvingPruner`,
so a replayed study and a live one feed them the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import moocore
import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState, create_trial

from hpo import record as rec
from hpo.pruning import RungPruner, as_losses, nondominated_ranks, rung_population

__all__ = ["MoashaRule", "HubMultiMetricRule", "RungTPE", "epsilon_net_order", "hv_contribution_order"]


def _scaled(losses: np.ndarray) -> np.ndarray:
    lo, hi = losses.min(0), losses.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (losses - lo) / span


def epsilon_net_order(points: np.ndarray) -> list[int]:
    """Indices of ``points`` (losses, already scaled) in epsilon-net order: the one lowest in
    the first column, then repeatedly the one farthest from all chosen so far."""
    n = len(points)
    if n == 0:
        return []
    order = [int(np.argmin(points[:, 0]))]
    nearest = np.linalg.norm(points - points[order[0]], axis=1)
    nearest[order[0]] = -1.0
    while len(order) < n:
        nxt = int(np.argmax(nearest))
        order.append(nxt)
        nearest = np.minimum(nearest, np.linalg.norm(points - points[nxt], axis=1))
        nearest[order] = -1.0
    return order


def hv_contribution_order(points: np.ndarray, ref: np.ndarray) -> list[int]:
    """Indices of one front's ``points`` (losses) by exclusive hypervolume contribution,
    largest first (moocore), ties by index."""
    if len(points) <= 1:
        return list(range(len(points)))
    contrib = moocore.hv_contributions(points, ref=ref)
    return sorted(range(len(points)), key=lambda i: (-contrib[i], i))


def _finite_losses(rows: Sequence[Sequence[float]], directions: Sequence[str | StudyDirection]) -> np.ndarray:
    """The rows as losses (smaller is better), a diverged (NaN) value one worse than the worst."""
    losses = np.array(as_losses(rows, directions), dtype=float)
    finite = np.isfinite(losses)
    losses[~finite] = np.nanmax(np.where(finite, losses, np.nan)) + 1.0
    return losses


class MoashaRule(RungPruner):
    """Syne Tune's MOASHA stopping rule (module docstring)."""

    def __init__(
        self, objectives: Sequence[str], max_epochs: int, grace_period: int = 1, eta: int = 3
    ) -> None:
        super().__init__()
        if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
            raise ValueError(f"eta must be an integer >= 2, but got {eta=}")
        if (
            isinstance(grace_period, bool)
            or not isinstance(grace_period, int)
            or not 1 <= grace_period <= max_epochs
        ):
            raise ValueError(f"grace_period must be an integer in [1, max_epochs], but got {grace_period=}")
        self.objectives, self.max_epochs, self.grace_period, self.eta = (
            tuple(objectives),
            max_epochs,
            grace_period,
            eta,
        )

    def rungs(self) -> list[int]:
        out, e = [], self.grace_period
        while e < self.max_epochs:
            out.append(e)
            e *= self.eta
        return out

    def should_prune(
        self,
        study: optuna.Study,
        trial_number: int,
        epoch: int,
        values: Sequence[float],
        directions: Sequence[str | StudyDirection] | None = None,
    ) -> bool:
        if epoch not in self.rungs():
            return False
        recorded = rung_population(study, trial_number, epoch, self.objectives)
        if not recorded:
            return False
        directions = list(study.directions if directions is None else directions)
        losses = _finite_losses([list(values), *recorded], directions)
        ranks = nondominated_ranks(losses.tolist(), ["minimize"] * losses.shape[1])
        scaled = _scaled(losses)
        order: list[int] = []
        for r in range(max(ranks) + 1):
            front = [i for i, x in enumerate(ranks) if x == r]
            order += [front[j] for j in epsilon_net_order(scaled[front])]
        position = order.index(0)
        return position / len(order) > 1 / self.eta


class HubMultiMetricRule(RungPruner):
    """OptunaHub's joint multi-metric rule over the median pruner (module docstring)."""

    def __init__(self, objectives: Sequence[str], n_startup_trials: int = 5, n_warmup_steps: int = 0) -> None:
        super().__init__()
        self.objectives, self.n_startup_trials, self.n_warmup_steps = (
            tuple(objectives),
            n_startup_trials,
            n_warmup_steps,
        )

    def _synthetic(
        self, own: Sequence[float], others: list[list[float]], directions: Sequence[str | StudyDirection]
    ) -> list[float]:
        """Synthetic values (lower is better) of ``[own, *others]`` at one epoch."""
        scaled = _scaled(_finite_losses([list(own), *others], directions))
        ranks = nondominated_ranks(scaled.tolist(), ["minimize"] * scaled.shape[1])
        out = [0.0] * len(ranks)
        ref = np.full(scaled.shape[1], 1.1)
        for r in range(max(ranks) + 1):
            front = [i for i, x in enumerate(ranks) if x == r]
            for pos, j in enumerate(hv_contribution_order(scaled[front], ref)):
                out[front[j]] = r + pos / len(front)
        return out

    def should_prune(
        self,
        study: optuna.Study,
        trial_number: int,
        epoch: int,
        values: Sequence[float],
        directions: Sequence[str | StudyDirection] | None = None,
    ) -> bool:
        if epoch <= self.n_warmup_steps:
            return False
        directions = list(study.directions if directions is None else directions)
        trials = study.get_trials(deepcopy=False)
        me = next((t for t in trials if t.number == trial_number), None)
        finished = [t for t in trials if t.state.is_finished() and t.number != trial_number]
        if len(finished) < self.n_startup_trials:
            return False
        best = math.inf
        at_epoch: list[float] = []
        for e in range(1, epoch + 1):
            own = list(values) if e == epoch else me and rec.rung_values(me.user_attrs, e, self.objectives)
            if own is None:
                continue
            reported = [
                (t, rec.rung_values(t.user_attrs, e, self.objectives))
                for t in trials
                if t.number != trial_number
            ]
            reported = [(t, v) for t, v in reported if v is not None]
            synthetic = self._synthetic(own, [v for _, v in reported], directions)
            best = min(best, synthetic[0])
            if e == epoch:
                at_epoch = [s for (t, _), s in zip(reported, synthetic[1:]) if t.state.is_finished()]
        if not at_epoch:
            return False
        return best > float(np.median(at_epoch))


class RungTPE:
    """BOHB's proposal model over Optuna's TPE (module docstring)."""

    def __init__(
        self,
        directions: Sequence[str | StudyDirection],
        rungs: Sequence[int],
        seed: int,
        random_fraction: float = 1 / 3,
    ) -> None:
        if not rungs or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in rungs):
            raise ValueError(f"rungs must be epochs >= 1, but got {list(rungs)}")
        if not 0.0 <= random_fraction < 1.0:
            raise ValueError(f"random_fraction must be in [0, 1), but got {random_fraction=}")
        self.rungs = sorted(set(rungs))
        self.random_fraction = random_fraction
        self._rng = np.random.default_rng([seed, 4099])
        self._studies = {
            r: optuna.create_study(
                directions=list(directions),
                sampler=optuna.samplers.TPESampler(n_startup_trials=0, seed=int(self._rng.integers(2**31))),
            )
            for r in self.rungs
        }
        self._distributions: dict[str, BaseDistribution] = {}

    def observe(self, trial: FrozenTrial, values_by_epoch: Sequence[Sequence[float]]) -> None:
        """A finished trial's values after each epoch it trained (none for a copy)."""
        self._distributions.update(trial.distributions)
        for r in self.rungs:
            if r <= len(values_by_epoch):
                self._studies[r].add_trial(
                    create_trial(
                        params=trial.params,
                        distributions=trial.distributions,
                        values=list(values_by_epoch[r - 1]),
                    )
                )

    def propose(self) -> dict[str, object] | None:
        """Params for the next design, or None for a random one."""
        if not self._distributions or self._rng.random() < self.random_fraction:
            return None
        enough = len(self._distributions) + 1
        rung = next(
            (
                r
                for r in reversed(self.rungs)
                if len(self._studies[r].get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) >= enough
            ),
            None,
        )
        if rung is None:
            return None
        study = self._studies[rung]
        trial = study.ask(fixed_distributions=self._distributions)
        study.tell(trial, state=TrialState.FAIL)  # a proposal, not an observation: TPE skips it
        return dict(trial.params)
