"""Screen-and-promote search: a multi-fidelity, multi-objective sampler that learns from every
trial's curve so far (complete, pruned or running), and the per-epoch rule that pairs with it.

Why. Pruning saves epochs only on the designs a sampler proposes, and TPE learns only from
completed trials; yet one epoch of a design already tells much of its final PCKh, and its
counted costs are exact once it has been built. :class:`ScreenPromoteSampler` therefore
plans, for every new trial, *what* to train and *how far*:

- a **screen**: a design not trained yet, for ``screen_epochs`` epochs, then *paused*
  (its checkpoint kept); the first ``n_startup`` spread over the design factors, later the
  untried design whose predicted values promise the most expected hypervolume improvement;
- a **promotion**: the design with the largest expected hypervolume improvement over the
  completed front, trained to the end: a paused one, which resumes its screen's checkpoint
  (:data:`hpo.record.CONTINUES`) and pays only the epochs after the pause, or with
  ``promote_unscreened`` also one the models alone vouch for; with ``check_epochs`` it
  climbs to that rung first and is paused again. An enqueued (seed) design is promoted.

Per objective, Bayesian ridge models (scikit-learn) predict with uncertainty: one over the
design factors (one-hot choices, scaled numbers) fitted on every screen, which pools the
factors' effects (one screen of one design is noisy: a screened design's own value is
weighed against the pooled prediction by their precisions), and for a curve objective one
fitted on the completed trials for the step from screen to final. Positive costs are
modelled on the log scale and taken as measured once a design was screened. The expected
improvement is a Monte Carlo mean over ``n_draws`` draws (moocore's hypervolume).

The plan is written into the trial record (:data:`hpo.record.PLANNED_EPOCHS`,
:data:`hpo.record.PLANNED_DESIGN`, :data:`hpo.record.CONTINUES`) before the objective
starts; :class:`hpo.pruning.PlannedPruner` (pruner ``planned``) stops the trial after that
many epochs through the one per-epoch decision call. Every other trial is read from the
study's storage, so several workers on one storage share what each has learnt.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import moocore
import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hpo import optuna_compat as compat
from hpo import record as rec

__all__ = ["ScreenPromoteSampler", "design_key", "continued_trial"]

_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
_STEP_FACTORS = 8  # completed trials before the screen-to-final step depends on the factors
_EXACT = 12  # designs whose expected improvement is computed over every draw, per decision
_ENUMERATE_LIMIT = 4096  # a categorical space up to this many points is enumerated whole
_FITS_KEPT = 64  # fitted models kept between decisions


def continued_trial(trial: optuna.Trial) -> int | None:
    """The paused trial whose checkpoint ``trial`` continues (:data:`hpo.record.CONTINUES`).

    Read from the storage: the sampler writes it in ``before_trial``, after Optuna cached the
    trial's attributes."""
    return trial.storage.get_trial_user_attrs(compat.trial_id(trial)).get(rec.CONTINUES)


def design_key(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """A design's identity: its params, order-free."""
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


class ScreenPromoteSampler(optuna.samplers.BaseSampler):
    """Screen many designs for a few epochs, promote the most promising to the end.

    Args:
        n_startup: random screens before the models choose.
        screens_per_promotion: after the start, at most this many screens between two
            promotions, chosen by the models among the untried designs.
        burst: promotions in a row right after the random screens (the front early).
        screen_epochs: epochs of a screen (where :class:`hpo.pruning.PlannedPruner` stops it).
        promote_unscreened: let a design never screened be promoted straight to the end
            when its expected improvement beats every screened one's.
        n_draws: Monte Carlo draws of the expected hypervolume improvement.
        max_candidates: untried designs scored per decision (a larger space is sampled).
        spread_start: the first screens spread over the factors (each the untried design
            the factor models know least about) instead of drawn at random.
        check_epochs: a rung between screen and end: a promoted design first continues to
            this many epochs, and climbs on only if it still promises most (None: straight
            to the end). Needs epochs per trial above it.
        per_epoch: promote the design with the largest expected improvement per epoch its
            promotion trains (a paused design costs only the epochs after its pause).
        seed: random seed.

    Raises:
        ValueError: a count below its minimum, or ``promote_unscreened`` not a bool.
    """

    def __init__(
        self,
        n_startup: int = 8,
        screens_per_promotion: int = 1,
        burst: int = 3,
        screen_epochs: int = 1,
        promote_unscreened: bool = True,
        n_draws: int = 24,
        max_candidates: int = 512,
        spread_start: bool = True,
        check_epochs: int | None = None,
        per_epoch: bool = False,
        seed: int | None = None,
    ) -> None:
        for name, value, low in (
            ("n_startup", n_startup, 1),
            ("screens_per_promotion", screens_per_promotion, 0),
            ("burst", burst, 0),
            ("screen_epochs", screen_epochs, 1),
            ("n_draws", n_draws, 1),
            ("max_candidates", max_candidates, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: expected an integer >= {low}, but got {value!r}")
        for name, flag in (
            ("promote_unscreened", promote_unscreened),
            ("spread_start", spread_start),
            ("per_epoch", per_epoch),
        ):
            if not isinstance(flag, bool):
                raise ValueError(f"{name}: expected true or false, but got {flag!r}")
        self._spread_start, self._per_epoch = spread_start, per_epoch
        if check_epochs is not None and (
            isinstance(check_epochs, bool)
            or not isinstance(check_epochs, int)
            or check_epochs <= screen_epochs
        ):
            raise ValueError(
                f"check_epochs: expected an integer above screen_epochs ({screen_epochs}) or null, "
                f"but got {check_epochs!r}"
            )
        self._check = check_epochs
        self._n_startup = n_startup
        self._per_promotion = screens_per_promotion
        self._burst = burst
        self._screen_epochs = screen_epochs
        self._promote_unscreened = promote_unscreened
        self._n_draws = n_draws
        self._max_candidates = max_candidates
        self._rng = np.random.default_rng(seed)
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._plans: dict[int, dict[str, Any]] = {}  # trial number -> the params it was given
        self._fits: dict[bytes, Any] = {}  # the models' fits by their data (see _Scorer._ridge)

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._random.reseed_rng()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}  # the plan (before_trial) fixes the params; sample_independent hands them out

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        plan = self._plans.get(trial.number, {})
        if param_name in plan:
            return plan[param_name]
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._plans.pop(trial.number, None)

    # --- the plan --------------------------------------------------------------------------
    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trials = [t for t in study.get_trials(deepcopy=False, states=_STATES) if t.number != trial.number]
        if "fixed_params" in trial.system_attrs:  # an enqueued design (a seed design): promote it
            self._set_plan(study, trial, None, {})
            return
        space = _space(trials)
        seen = _Designs.of(trials, self._objectives(study), self._check)
        n_screens = sum(1 for t in trials if _is_screen(t))
        candidates = self._candidates(space, seen)
        if n_screens < self._n_startup or not seen.screened:
            pick = (
                self._spread(space, candidates, seen)
                if self._spread_start
                else self._untried(candidates, seen)
            )
            self._set_plan(study, trial, self._screen_epochs, pick or {})
            return
        scored = _Scorer(seen, space, list(study.directions), self._rng, self._n_draws, self._fits)
        untried = [c for c in candidates if not seen.has(c)]
        climbs = len(trials) - n_screens  # promotions and checks
        full = sum(1 for t in trials if t.user_attrs.get(rec.PLANNED_EPOCHS) is None)
        quota = 0 if climbs < self._burst else self._per_promotion
        if untried and _screens_since_promotion(trials) < quota:
            pick = scored.best(untried)  # screen the untried design that promises most
            self._set_plan(study, trial, self._screen_epochs, pick[0] if pick else {})
            return
        open_designs = [
            seen.params[d] for d in seen.screened if d not in seen.complete and d not in seen.running
        ]
        choices = open_designs + (untried if self._promote_unscreened else [])
        pick = scored.best(choices, [self._cost(seen, c, full) for c in choices] if self._per_epoch else None)
        if pick is None:  # nothing screened left to promote
            self._set_plan(study, trial, self._screen_epochs, self._untried(candidates, seen) or {})
            return
        key = design_key(pick[0])
        to_check = self._to_check(seen, key, full)
        self._set_plan(study, trial, self._check if to_check else None, pick[0], seen.paused.get(key))

    def _to_check(self, seen: _Designs, key: Any, full: int) -> bool:
        """Whether a promotion of design ``key`` stops at the check rung: with one, a design
        climbs to it before the end, after the first promotions (which have no completed
        curves yet to tell a check's value from the final one)."""
        return self._check is not None and full >= self._burst and key not in seen.checked

    def _cost(self, seen: _Designs, design: Mapping[str, Any], full: int) -> float:
        """Epochs a promotion of ``design`` trains from where it paused (to the check rung
        if it would stop there). Why: the study gains hypervolume per epoch, not per trial."""
        key = design_key(design)
        reached = self._check if key in seen.checked else (self._screen_epochs if key in seen.screened else 0)
        to_check = self._to_check(seen, key, full)
        end = seen.full_epochs or 3 * (self._check or self._screen_epochs)  # a guess until one completes
        return float((self._check if to_check else end) - reached)  # type: ignore[operator]

    def _set_plan(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        epochs: int | None,
        params: Mapping[str, Any],
        continues: int | None = None,
    ) -> None:
        self._plans[trial.number] = dict(params)
        storage, trial_id = compat.study_storage(study), compat.trial_id(trial)
        if params:
            storage.set_trial_user_attr(trial_id, rec.PLANNED_DESIGN, dict(params))
        if continues is not None:  # the objective resumes that screen's checkpoint
            storage.set_trial_user_attr(trial_id, rec.CONTINUES, int(continues))
        if epochs is not None:  # a promotion carries no plan: it runs to the end
            storage.set_trial_user_attr(trial_id, rec.PLANNED_EPOCHS, int(epochs))

    def _objectives(self, study: optuna.Study) -> tuple[str, ...]:
        names = rec.study_get(study, rec.STUDY_OBJECTIVES) or study.metric_names
        if not names or len(names) != len(study.directions):
            raise ValueError(
                f"study {study.study_name!r}: the sampler needs the objective names "
                "(study user attr 'objectives'), one per direction"
            )
        return tuple(names)

    def _candidates(self, space: Mapping[str, BaseDistribution], seen: _Designs) -> list[dict[str, Any]]:
        if not space:
            return []
        if all(isinstance(d, CategoricalDistribution) for d in space.values()):
            sizes = [len(d.choices) for d in space.values()]  # type: ignore[attr-defined]
            if math.prod(sizes) <= _ENUMERATE_LIMIT:
                names = list(space)
                combos = itertools.product(*(space[n].choices for n in names))  # type: ignore[attr-defined]
                out = [dict(zip(names, c)) for c in combos]
                if len(out) > self._max_candidates:
                    keep = self._rng.choice(len(out), self._max_candidates, replace=False)
                    out = [out[i] for i in sorted(keep)]
                return out
        return [_draw(space, self._rng) for _ in range(self._max_candidates)]

    def _spread(
        self, space: Mapping[str, BaseDistribution], candidates: list[dict[str, Any]], seen: _Designs
    ) -> dict[str, Any] | None:
        """The untried design the factor models know least about: the largest variance
        x'(X'X + I)^-1 x over the designs tried so far (a greedy D-optimal design), so that
        the first screens estimate every factor's effect, not just the common ones."""
        fresh = [c for c in candidates if not seen.has(c)]
        if not fresh:
            return None
        with_one = lambda x: np.hstack([np.ones((len(x), 1)), x])  # noqa: E731
        x = with_one(_features(space, fresh))
        tried = with_one(_features(space, list(seen.params.values())))
        inverse = np.linalg.inv(tried.T @ tried + np.eye(x.shape[1]))
        variance = np.einsum("ij,jk,ik->i", x, inverse, x)
        best = np.flatnonzero(variance >= variance.max() - 1e-9)
        return fresh[int(best[self._rng.integers(len(best))])]

    def _untried(self, candidates: list[dict[str, Any]], seen: _Designs) -> dict[str, Any] | None:
        fresh = [c for c in candidates if not seen.has(c)]
        return fresh[int(self._rng.integers(len(fresh)))] if fresh else None


def _is_screen(t: FrozenTrial) -> bool:
    """A screen: a design's first trial, with a plan (a check continues a screen)."""
    return t.user_attrs.get(rec.PLANNED_EPOCHS) is not None and t.user_attrs.get(rec.CONTINUES) is None


def _screens_since_promotion(trials: Sequence[FrozenTrial]) -> int:
    count = 0
    for t in sorted(trials, key=lambda t: t.number, reverse=True):
        if not _is_screen(t):
            break
        count += 1
    return count


def _space(trials: Sequence[FrozenTrial]) -> dict[str, BaseDistribution]:
    """The union of the trials' distributions (a name with two different ones is left out)."""
    out: dict[str, BaseDistribution] = {}
    bad: set[str] = set()
    for t in trials:
        for name, dist in t.distributions.items():
            if name in out and out[name] != dist:
                bad.add(name)
            out.setdefault(name, dist)
    return {k: v for k, v in out.items() if k not in bad}


def _draw(space: Mapping[str, BaseDistribution], rng: np.random.Generator) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            out[name] = dist.choices[int(rng.integers(len(dist.choices)))]
        else:
            low, high = dist.low, dist.high  # type: ignore[attr-defined]
            if getattr(dist, "log", False):
                value = math.exp(rng.uniform(math.log(low), math.log(high)))
            else:
                value = rng.uniform(low, high)
            step = getattr(dist, "step", None)
            if step:
                value = low + round((value - low) / step) * step
            out[name] = type(low)(min(max(value, low), high)) if isinstance(low, int) else float(value)
    return out


def _features(space: Mapping[str, BaseDistribution], designs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Design factors as model inputs: one-hot choices, numbers scaled to [0, 1] (log scale
    where the param is)."""
    cols: list[np.ndarray] = []
    for name, dist in space.items():
        values = [d.get(name) for d in designs]
        if isinstance(dist, CategoricalDistribution):
            for choice in dist.choices[1:] if len(dist.choices) > 1 else dist.choices:
                cols.append(np.array([v == choice for v in values], dtype=float))
        else:
            low, high = float(dist.low), float(dist.high)  # type: ignore[attr-defined]
            f = (lambda v: math.log(v)) if getattr(dist, "log", False) else (lambda v: v)
            span = (f(high) - f(low)) or 1.0
            cols.append(np.array([(f(float(v)) - f(low)) / span if v is not None else 0.5 for v in values]))
    if not cols:
        return np.zeros((len(designs), 1))
    return np.stack(cols, axis=1)


class _Designs:
    """What the study knows per design: its params, its objective values after the screen,
    its final values (complete) and whether it is being trained to the end right now."""

    def __init__(self, objectives: tuple[str, ...], check: int | None = None) -> None:
        self.objectives = objectives
        self.check = check
        self.params: dict[Any, dict[str, Any]] = {}
        self.screened: dict[Any, list[float]] = {}  # values after the first epoch
        self.checked: dict[Any, list[float]] = {}  # values after the check rung's epochs
        self.complete: dict[Any, list[float]] = {}
        self.running: set[Any] = set()
        self.full_epochs = 0  # epochs of a complete trial (its curve's length)
        self._has: dict[Any, bool] = {}  # has(), by candidate (asked several times a decision)
        self.paused: dict[Any, int] = {}  # a design's screen whose checkpoint was kept

    def has(self, candidate: Mapping[str, Any]) -> bool:
        """Whether a trial already trained ``candidate``: a trial of a conditional space lacks
        the params its choices switch off, so a trial matches every candidate it agrees with."""
        key = design_key(candidate)
        if key in self.params:
            return True
        if key not in self._has:
            items = set(key)
            self._has[key] = any(items.issuperset(k) for k in self.params)
        return self._has[key]

    @classmethod
    def of(
        cls, trials: Sequence[FrozenTrial], objectives: tuple[str, ...], check: int | None = None
    ) -> _Designs:
        out = cls(objectives, check)
        for t in sorted(trials, key=lambda t: t.number):
            planned = t.user_attrs.get(rec.PLANNED_DESIGN)
            # another worker's trial may not have suggested its params yet: its plan says which
            params = planned if t.state == TrialState.RUNNING and planned else t.params
            key = design_key(params)
            out.params.setdefault(key, dict(params))
            first = rec.rung_values(t.user_attrs, 1, objectives)
            if first is not None and all(math.isfinite(v) for v in first):
                out.screened.setdefault(key, first)
            at_check = rec.rung_values(t.user_attrs, check, objectives) if check else None
            if at_check is not None and all(math.isfinite(v) for v in at_check):
                out.checked.setdefault(key, at_check)
            if t.state == TrialState.COMPLETE and t.values is not None:
                out.complete.setdefault(key, list(t.values))
                out.full_epochs = max(out.full_epochs, len(t.user_attrs.get(rec.CURVE) or ()))
            elif t.state == TrialState.RUNNING:
                out.running.add(key)
            if t.state == TrialState.PRUNED and t.user_attrs.get(rec.PRUNE_REASON) == "planned":
                out.paused[key] = t.number
            elif t.user_attrs.get(rec.CONTINUES) is not None:
                out.paused.pop(key, None)  # taken over by a promotion
        return out


class _Scorer:
    """Predicts the final objective values of designs, with uncertainty, and scores them by
    expected hypervolume improvement over the completed front.

    Per objective, a Bayesian ridge over the design factors fitted on every screen pools the
    factors' effects (one screen of one design is noisy); for a curve objective a second one
    fitted on the completed trials predicts the step from screen to final. A positive cost
    is modelled on the log scale and taken as measured once a design was screened.
    """

    def __init__(
        self,
        seen: _Designs,
        space: Mapping[str, BaseDistribution],
        directions: Sequence[StudyDirection],
        rng: np.random.Generator,
        n_draws: int,
        fits: dict[bytes, Any] | None = None,
    ) -> None:
        self.seen, self.space, self.rng, self.n_draws = seen, space, rng, n_draws
        self.fits = {} if fits is None else fits
        self.sign = np.array([-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in directions])
        self.curve = [bool(rec.objective_spec(n).curve_key) for n in seen.objectives]
        n_obj = len(self.curve)
        self.screened = list(seen.screened)
        self.done = list(seen.complete)
        self.x_screened = self._features([seen.params[k] for k in self.screened])
        self.x_done = self._features([seen.params[k] for k in self.done])
        self.y_screened = np.array([seen.screened[k] for k in self.screened], dtype=float).reshape(-1, n_obj)
        self.y_done = np.array([seen.complete[k] for k in self.done], dtype=float).reshape(-1, n_obj)
        self.front = self.y_done * self.sign  # as losses
        self.logged = [
            bool(self.sign[k] > 0 and (self.y_screened[:, k] > 0).all() and (self.y_done[:, k] > 0).all())
            for k in range(n_obj)
        ]
        self._models: dict[int, Any] = {}

    def _features(self, designs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return _features(self.space, designs)

    def _t(self, k: int, y: np.ndarray) -> np.ndarray:
        return np.log(y) if self.logged[k] else y

    def _ridge(self, x: np.ndarray, y: np.ndarray) -> Any:
        from sklearn.linear_model import BayesianRidge  # a second's import, paid once needed

        # one decision after another mostly refits on the same data (a screen changes no step
        # model, a promotion no screen model): fits are kept by their data
        key = hashlib.blake2b(repr(x.shape).encode() + x.tobytes() + y.tobytes(), digest_size=16).digest()
        if key not in self.fits:
            if len(self.fits) >= _FITS_KEPT:
                self.fits.clear()
            model = BayesianRidge()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a constant target: the fit is the mean
                model.fit(x, y)
            self.fits[key] = model
        return self.fits[key]

    def _models_of(self, k: int) -> tuple[Any, Any, Any]:
        """Objective ``k``'s ridges: the value after the screen over the factors, fitted on
        every screen, and the steps from screen and from check rung to final over the
        completed trials (None before any): over the screen value alone, and over the
        factors too once ``_STEP_FACTORS`` trials completed (a per-factor step from a few
        curves overfits)."""
        if k not in self._models:
            first = self._ridge(self.x_screened, self._t(k, self.y_screened[:, k]))
            step = None
            if self.curve[k] and self.done:
                at_screen = self._t(k, np.array([self.seen.screened[d][k] for d in self.done], dtype=float))
                step = self._ridge(
                    self._step_x(at_screen, self.x_done), self._t(k, self.y_done[:, k]) - at_screen
                )
            check = None  # the step from the check rung to final, on the same trials
            done = [d for d in self.done if d in self.seen.checked]
            if self.curve[k] and done and len(done) == len(self.done):
                at_check = self._t(k, np.array([self.seen.checked[d][k] for d in done], dtype=float))
                check = self._ridge(
                    self._step_x(at_check, self.x_done), self._t(k, self.y_done[:, k]) - at_check
                )
            self._models[k] = (first, step, check)
        return self._models[k]

    def _step_x(self, at_screen: np.ndarray, x: np.ndarray) -> np.ndarray:
        own = at_screen.reshape(-1, 1)
        return np.hstack([own, x]) if len(self.done) >= _STEP_FACTORS else own

    def _predict(self, designs: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd of the final values (transformed scale), shape (designs, objectives).
        A screened design's own screen and the factors' prediction are weighed by their
        precisions (the ridge's noise against its uncertainty about the design)."""
        x = self._features(designs)
        known = [self.seen.screened.get(design_key(d)) for d in designs]
        mean = np.zeros((len(designs), len(self.curve)))
        sd = np.zeros_like(mean)
        checked = [self.seen.checked.get(design_key(d)) for d in designs]
        for k in range(len(self.curve)):
            first, step, check = self._models_of(k)
            m, s = first.predict(x, return_std=True)
            noise = 1.0 / max(float(first.alpha_), 1e-12)
            prior = np.maximum(s**2 - noise, 1e-12)
            for j, screen in enumerate(known):
                if screen is None:
                    continue
                y = float(self._t(k, np.array([screen[k]]))[0])
                if not self.curve[k] or self.sign[k] > 0:  # a cost: its own measurement
                    m[j], s[j] = y, 0.0
                else:
                    w = prior[j] / (prior[j] + noise)
                    m[j], s[j] = w * y + (1 - w) * m[j], math.sqrt(prior[j] * noise / (prior[j] + noise))
            if step is not None:
                g, gs = step.predict(self._step_x(m, x), return_std=True)
                m, s = m + g, np.sqrt(s**2 + gs**2)
            rows = [j for j, c in enumerate(checked) if c is not None]
            if check is not None and rows and self.curve[k] and self.sign[k] < 0:
                at = self._t(k, np.array([checked[j][k] for j in rows], dtype=float))  # type: ignore[index]
                g, gs = check.predict(self._step_x(at, x[rows]), return_std=True)
                m[rows], s[rows] = at + g, gs  # a checked design: its own longer curve decides
            mean[:, k], sd[:, k] = m, s
        return mean, sd

    def best(
        self, designs: Sequence[Mapping[str, Any]], costs: Sequence[float] | None = None
    ) -> tuple[dict[str, Any], float] | None:
        """The design of ``designs`` with the largest expected hypervolume improvement (per
        epoch it costs, with ``costs``), and that improvement (0 if none improves)."""
        if not designs:
            return None
        per = np.ones(len(designs)) if costs is None else np.maximum(np.asarray(costs, dtype=float), 1e-9)
        mean, sd = self._predict(designs)
        draws = mean[None] + sd[None] * self.rng.standard_normal((self.n_draws, *mean.shape))
        optimistic = mean - sd * self.sign  # one sd towards better
        for k, logged in enumerate(self.logged):
            if logged:
                draws[:, :, k], mean[:, k] = np.exp(draws[:, :, k]), np.exp(mean[:, k])
                optimistic[:, k] = np.exp(optimistic[:, k])
        losses = draws * self.sign  # (draws, designs, objectives)
        everything = np.vstack([mean * self.sign, self.front])
        lo, hi = everything.min(axis=0), everything.max(axis=0)
        ref = hi + 0.1 * (hi - lo) + 1e-9
        base = float(moocore.hypervolume(self.front, ref=ref)) if len(self.front) else 0.0
        # the expectation over every draw only for the designs whose optimistic value improves
        # most: a few hundred hypervolumes per decision, not thousands
        first = self._improvements(optimistic * self.sign, ref, base) / per
        best_j, best = int(np.argmax(first)), 0.0
        for j in np.argsort(-first)[:_EXACT]:
            total = float(self._improvements(losses[:, j], ref, base).sum()) / per[j]
            if total / self.n_draws > best:
                best_j, best = int(j), total / self.n_draws
        return dict(designs[best_j]), float(best)

    def _improvements(self, points: np.ndarray, ref: np.ndarray, base: float) -> np.ndarray:
        """The hypervolume each of ``points`` (losses) adds to the completed front: 0 for
        one the front dominates (found for all at once; the hypervolume only for the rest)."""
        out = np.zeros(len(points))
        live = np.isfinite(points).all(axis=1) & (points < ref).all(axis=1)
        if len(self.front):
            live &= ~(self.front[None, :, :] <= points[:, None, :]).all(axis=2).any(axis=1)
        for i in np.flatnonzero(live):
            out[i] = float(moocore.hypervolume(np.vstack([self.front, points[i]]), ref=ref)) - base
        return out
