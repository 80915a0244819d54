"""The peers' own code as rivals on a recorded table (the optional ``[bench]`` extra).

- ``syne_moasha``: Syne Tune's ``MOASHA`` scheduler
  (``syne_tune.optimizer.schedulers.multiobjective.MOASHA``, its default non-dominated
  priority), driven through the scheduler calls that Syne Tune's own back ends make:
  ``suggest``, ``on_trial_add``, ``on_trial_result`` after every epoch (the trial stops when
  it answers STOP), ``on_trial_complete``. Runs are sequential, one trial at a time, as the
  Optuna replays are, so Syne Tune's simulator back end (its event queue exists to order
  *parallel* workers' results in simulated time) would make the same calls in the same order.
  Syne Tune samples configurations with NumPy's global generator; a run seeds it and puts
  the caller's state back afterwards.
- ``smac_mf``: SMAC3's ``MultiFidelityFacade`` (Hyperband over successive-halving brackets,
  random-forest surrogate) with ``ParEGO`` as its multi-objective algorithm, through
  ``ask``/``tell``, budgets in epochs from the pruner's first rung to the full length, eta as
  our pruner's. Departures from the facade's defaults: the incumbents are chosen on the
  highest budget only (SMAC 2.4.1's default, the highest *observed* budget, fails an
  assertion in ``update_incumbents`` with several objectives and budgets); its random
  forest runs on one thread, and its cap on leaves per tree is the number of distinct inputs
  instead of 2**20 (:func:`_one_thread_forest`: the same trees, built faster).
  SMAC asks for a design at a budget; the design trains to that epoch with its
  one seed. A design evaluated again at a larger budget *resumes* (charged only the epochs it
  had not trained): SMAC's Hyperband would retrain it, a live study could keep a checkpoint,
  and the cheaper reading favours SMAC. Evaluated at the full length, the design is complete
  and joins the front. A small space can run out: SMAC then raises
  ``ConfigurationSpaceExhaustedException`` and the run ends there, with the epochs it spent.

Both see the objectives normalised as the benchmark scores them (PCKh / 100 as a loss
``1 - PCKh / 100``, params / P_ref, time / T_ref): raw parameter counts would swamp the other
objectives in MOASHA's distance-based tie-break and in ParEGO's weighted scalarisation. The
table's design identity, one seed per design, copies of completed designs and held-out values
are :class:`hpo.bench.ledger.TableRun`'s, as for every replayed method.

A missing extra is one line: ``pip install 'hourglass-hpo[bench]'``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import tempfile
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import numpy as np
import optuna

from hourglass.errors import ConfigError
from hpo.bench.front import Reference, Tracker
from hpo.bench.ledger import TableRun
from hpo.bench.settings import SearchBenchSettings, base_preset
from hpo.bench.table import TablePoint, cached_table, params_key
from hpo.space import SearchSpace

__all__ = ["RIVAL_PACKAGES", "missing_extra", "run_rival"]

RIVAL_PACKAGES = {"syne_moasha": "syne_tune", "smac_mf": "smac"}  # method -> the module it needs
_COPY_LIMIT = 5  # as hpo.bench.replay: stop once the rival proposes little but completed designs


def missing_extra(method: str) -> str | None:
    """One line saying why ``method`` cannot run here, or None if its package is installed."""
    module = RIVAL_PACKAGES.get(method)
    if module is None or importlib.util.find_spec(module) is not None:
        return None
    return f"{method}: needs the {module} package (pip install 'hourglass-hpo[bench]'); skipped"


def run_rival(
    s: SearchBenchSettings, method: str, seed: int, reference: Reference, space: SearchSpace
) -> dict[str, Any]:
    """One (rival, seed) against ``s.table`` until ``s.budget_epochs`` epochs are spent."""
    why = missing_extra(method)
    if why is not None:
        raise ConfigError(why)
    run = {"syne_moasha": _syne_moasha, "smac_mf": _smac_mf}[method]
    return run(s, seed, reference, space)


class _Run:
    """The bookkeeping a rival's loop shares: the table, the tracker, completed designs."""

    def __init__(self, s: SearchBenchSettings, seed: int, reference: Reference, space: SearchSpace) -> None:
        self.table = cached_table(s.table)
        self.space, self.reference, self.budget = space, reference, s.budget_epochs
        self.ledger = TableRun.of(self.table, seed)
        self.track = Tracker(s.budget_epochs, reference, stops_study=False, heldout_view=True)
        self.trained: dict[str, int] = {}  # design -> epochs trained so far (smac_mf resumes)
        self.completed: set[str] = set()
        self.copies = 0
        pruner = base_preset(s.preset).pruner
        self.first_rung = pruner.min_epochs if pruner.name == "mo_halving" else 1
        self.eta = pruner.eta if pruner.name == "mo_halving" else 3

    def point(self, config: Mapping[str, Any]) -> TablePoint:
        """The table's design for a rival's configuration (knobs its block does not take dropped)."""
        return self.ledger.point(self.space.suggest_params(optuna.trial.FixedTrial(dict(config))))

    def losses(self, point: TablePoint, epoch: int) -> list[float]:
        pckh, params, time_s = self.reference.normalise(self.ledger.at_epoch(point, epoch))
        return [1.0 - pckh, params, time_s]

    def finish(self, point: TablePoint, epochs: int, reached: int) -> None:
        """Record a trial that trained ``epochs`` epochs and reached epoch ``reached``."""
        key = params_key(point.params)
        copy = key in self.completed
        self.copies += copy
        n = len(self.track.records)
        if reached >= self.table.epochs:
            self.completed.add(key)
            self.track.add(
                n,
                "complete",
                epochs,
                self.ledger.at_epoch(point, self.table.epochs),
                self.ledger.heldout(point),
                **self.ledger.tag(point),
            )
        else:
            self.track.add(n, "pruned", epochs, None, None, **self.ledger.tag(point))

    @property
    def done(self) -> bool:
        return self.track.spent >= self.budget or self.copies >= _COPY_LIMIT * len(self.table.points)

    def result(self) -> dict[str, Any]:
        return {
            "records": self.track.records,
            "spent": self.track.spent,
            "design_seeds": len(self.ledger.seeds),
        }


@contextlib.contextmanager
def _numpy_global_seed(seed: int) -> Iterator[None]:
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _syne_moasha(
    s: SearchBenchSettings, seed: int, reference: Reference, space: SearchSpace
) -> dict[str, Any]:
    from syne_tune.backend.trial_status import Trial
    from syne_tune.config_space import choice
    from syne_tune.optimizer.scheduler import SchedulerDecision
    from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA

    run = _Run(s, seed, reference, space)
    epochs = run.table.epochs
    metrics = ["pckh_loss", "params", "train_time"]
    scheduler = MOASHA(
        {p.name: choice(list(p.choices)) for p in space.params},
        metrics=metrics,
        do_minimize=True,
        time_attr="epoch",
        max_t=epochs,
        grace_period=run.first_rung,
        reduction_factor=run.eta,
        random_seed=seed,
    )
    with _numpy_global_seed(seed):
        while not run.done:
            config = scheduler.suggest().config
            trial = Trial(trial_id=len(run.track.records), config=config, creation_time=datetime.now())
            scheduler.on_trial_add(trial)
            point = run.point(config)
            copy = params_key(point.params) in run.completed  # known: fed to the scheduler, charged nothing
            for e in range(1, epochs + 1):  # as Syne Tune's Tuner: every result, the last one too
                result = {"epoch": e, **dict(zip(metrics, run.losses(point, e)))}
                if scheduler.on_trial_result(trial, result) == SchedulerDecision.STOP:  # always at max_t
                    scheduler.on_trial_remove(trial)
                    break
            run.finish(point, 0 if copy else e, epochs if copy else e)
    return run.result()


def _smac_mf(s: SearchBenchSettings, seed: int, reference: Reference, space: SearchSpace) -> dict[str, Any]:
    from ConfigSpace import Categorical, ConfigurationSpace
    from smac import MultiFidelityFacade, Scenario
    from smac.main.exceptions import ConfigurationSpaceExhaustedException
    from smac.model.random_forest import RandomForest
    from smac.multi_objective.parego import ParEGO
    from smac.runhistory.dataclasses import TrialValue

    run = _Run(s, seed, reference, space)
    epochs = run.table.epochs
    # ConfigSpace items must be hashable scalars; booleans and numbers map back by position
    cs = ConfigurationSpace(seed=seed)
    items = {p.name: list(p.choices) for p in space.params}
    cs.add([Categorical(name, [str(c) for c in choices]) for name, choices in items.items()])
    with tempfile.TemporaryDirectory(prefix="hpo_smac_") as tmp:
        scenario = Scenario(
            cs,
            objectives=["pckh_loss", "params", "train_time"],
            deterministic=True,
            n_trials=max(10, s.budget_epochs),
            min_budget=run.first_rung,
            max_budget=epochs,
            seed=seed,
            output_directory=f"{tmp}/smac",
        )
        smac = MultiFidelityFacade(
            scenario,
            lambda config, seed=0, budget=None: 0.0,  # never called: ask/tell drives it
            multi_objective_algorithm=ParEGO(scenario),
            model=_one_thread_forest(RandomForest, scenario, math.prod(map(len, items.values())) * epochs),
            intensifier=MultiFidelityFacade.get_intensifier(
                scenario, eta=run.eta, incumbent_selection="highest_budget"
            ),
            overwrite=True,
            logging_level=40,
        )
        while not run.done:
            try:
                info = smac.ask()
            except ConfigurationSpaceExhaustedException:  # every configuration asked at every budget
                break
            config = {
                name: items[name][[str(c) for c in items[name]].index(info.config[name])] for name in items
            }
            point = run.point(config)
            key = params_key(point.params)
            budget = min(epochs, max(1, round(info.budget or epochs)))
            before = run.trained.get(key, 0)
            run.trained[key] = max(before, budget)
            smac.tell(info, TrialValue(cost=run.losses(point, budget)), save=False)
            run.finish(point, max(0, budget - before), budget)
    return run.result()


def _one_thread_forest(forest: Any, scenario: Any, rows: int) -> Any:
    """The facade's own surrogate (the arguments of ``HyperparameterOptimizationFacade.get_model``,
    its defaults) on one thread, as every replayed method runs: its default ``n_jobs=-1``
    polls a thread pool and on a busy machine waits more than it fits.

    Leaves per tree are capped at ``rows``, the distinct inputs the forest can see (the
    space's configurations, times the budgets in case SMAC encodes one), instead of SMAC's
    2**20. The cap never binds: every leaf holds a distinct input row. It keeps
    scikit-learn's best-first builder, so the trees are the same, but that builder allocates
    room for the cap's nodes up front, which with 2**20 cost more than the fit (profiled:
    most of a run's time)."""
    return forest(
        log_y=True,
        n_trees=10,
        bootstrapping=True,
        ratio_features=1.0,
        min_samples_split=2,
        min_samples_leaf=1,
        max_depth=2**20,
        max_leaf_nodes=min(2**20, max(2, rows)),
        configspace=scenario.configspace,
        instance_features=scenario.instance_features,
        seed=scenario.seed,
        n_jobs=1,
    )
