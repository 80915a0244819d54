"""hpo.screening (the screen_promote sampler) and hpo.pruning.PlannedPruner."""

from __future__ import annotations

import multiprocessing

import numpy as np
import optuna
import pytest
from table_factory import make_table

from hourglass.errors import ConfigError
from hpo import record as rec
from hpo.bench.front import front_hv, table_reference
from hpo.bench.replay import replay_method
from hpo.bench.settings import SearchBenchSettings
from hpo.bench.table import cached_table, params_key
from hpo.preset import SamplerConfig, load_preset
from hpo.pruning import PlannedPruner, PrunerConfig
from hpo.screening import ScreenPromoteSampler
from hpo.strategy import Pruning

OBJECTIVES = ["pckh", "params", "train_time"]
DIRECTIONS = ["maximize", "minimize", "minimize"]


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    return str(make_table(tmp_path_factory.mktemp("table") / "t.json.gz"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_startup": 0},
        {"screens_per_promotion": -1},
        {"screen_epochs": 0},
        {"n_draws": 1.5},
        {"burst": True},
    ],
)
def test_constructor_refuses_bad_counts(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ScreenPromoteSampler(**kwargs)


def test_preset_pairs_the_sampler_with_the_planned_pruner():
    preset = load_preset("quickstart")
    with pytest.raises(ConfigError, match="planned"):
        preset.replace(sampler=SamplerConfig("screen_promote"))
    with pytest.raises(ConfigError, match="planned"):
        preset.replace(pruner=PrunerConfig("planned"))
    paired = preset.replace(
        sampler=SamplerConfig("screen_promote", {"n_startup": 4}), pruner=PrunerConfig("planned")
    )
    assert paired.sampler.kwargs["n_startup"] == 4


def test_planned_pruner_stops_at_the_plan_and_never_without_one():
    study = optuna.create_study(directions=DIRECTIONS)
    planned, free = study.ask(), study.ask()
    planned.set_user_attr(rec.PLANNED_EPOCHS, 2)
    pruning = Pruning(PlannedPruner(), multi=True)
    assert not pruning.should_stop(planned, 1, 10.0, [10.0, 1.0, 1.0])
    assert pruning.should_stop(planned, 2, 10.0, [10.0, 1.0, 1.0])
    assert not any(pruning.should_stop(free, e, 10.0, [10.0, 1.0, 1.0]) for e in range(1, 20))


def _replay(table_path, seed, budget=120, **kwargs):
    s = SearchBenchSettings(
        table=table_path,
        seeds=1,
        budget_epochs=budget,
        methods=("screen_promote",),
        sampler_kwargs=kwargs or None,
    )
    return replay_method(s, "screen_promote", seed, table_reference(cached_table(table_path)))


def test_screens_distinct_designs_then_promotes_screened_ones(table_path):
    out = _replay(table_path, 0, n_startup=6, screens_per_promotion=1, burst=0, promote_unscreened=False)
    records = out["records"]
    first = records[:6]
    assert all(r["state"] == "pruned" and r["epochs"] == 1 for r in first)  # the random screens
    assert len({r["point"] for r in first}) == 6  # never the same design twice
    complete = [r for r in records if r["state"] == "complete"]
    assert len(complete) >= 3
    screened_before = {r["point"] for r in records if r["state"] == "pruned"}
    for r in complete:  # a promotion trains a design that was screened earlier
        assert r["point"] in {p["point"] for p in records[: records.index(r)] if p["state"] == "pruned"}
        assert r["epochs"] == cached_table(table_path).epochs
    assert screened_before


def test_promotions_beat_the_designs_screened_at_random(table_path):
    """The models must rank: the front of the promoted designs (final values, mean over the
    table's seeds) has more hypervolume than the front of as many designs screened at random,
    seed after seed."""
    table = cached_table(table_path)
    ref = table_reference(table)

    def final(i):
        p = table.points[i]
        runs = list(p.runs.values())
        pckh, time_s = np.mean([r["pckh"][-1] for r in runs]), np.mean([r["time_s"][-1] for r in runs])
        return ref.normalise([pckh, p.costs["params"], time_s])

    wins = 0
    for seed in range(4):
        records = _replay(table_path, seed, budget=70, n_startup=6)["records"]
        promoted = [r["point"] for r in records if r["state"] == "complete"]
        random_screens = [r["point"] for r in records[:6]][: len(promoted)]
        wins += front_hv([final(i) for i in promoted]) > front_hv([final(i) for i in random_screens])
    assert wins >= 3


def test_promote_unscreened_trains_an_untried_design_to_the_end(table_path):
    records = _replay(table_path, 1, budget=80, n_startup=4, burst=3, promote_unscreened=True)["records"]
    screened = set()
    straight = 0
    for r in records:
        if r["state"] == "complete" and r["point"] not in screened:
            straight += 1
        screened.add(r["point"])
    assert [r["state"] for r in records[:4]] == ["pruned"] * 4
    assert straight >= 1


def _journal(path: str) -> optuna.storages.JournalStorage:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))


def _worker(path: str, n: int, seed: int) -> None:
    """One worker: the sampler plans, a made-up objective writes its curve to the record and
    asks the per-epoch decision, as the live objective does."""
    sampler = ScreenPromoteSampler(n_startup=3, promote_unscreened=False, seed=seed)
    study = optuna.load_study(study_name="s", storage=_journal(path), sampler=sampler)
    pruning = Pruning(PlannedPruner(), multi=True)

    def objective(trial: optuna.Trial) -> list[float]:
        x, y = trial.suggest_categorical("x", [0, 1, 2, 3]), trial.suggest_categorical("y", [0, 1, 2])
        params = float(10 + 5 * x + y)
        rec.put(trial, rec.PARAMS, params)
        curve = []
        for e in range(1, 5):
            pckh = (10.0 * x + 3.0 * y) * e / 4 + 1.0
            curve.append({"epoch": e, "pckh": pckh, "time_s": float(e), "loss": 0.0})
            rec.put_all(trial, {rec.CURVE: curve, rec.EPOCHS_RUN: e})
            if e < 4 and pruning.should_stop(trial, e, pckh, [pckh, params, float(e)]):
                raise optuna.TrialPruned()
        return [pckh, params, float(e)]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=n)


def test_two_processes_share_one_journal_storage(tmp_path):
    path = str(tmp_path / "s.log")
    study = optuna.create_study(study_name="s", storage=_journal(path), directions=DIRECTIONS)
    rec.study_put(study, rec.STUDY_OBJECTIVES, OBJECTIVES)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(path, 8, seed)) for seed in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    trials = optuna.load_study(study_name="s", storage=_journal(path)).trials
    assert len(trials) == 16 and all(t.state.is_finished() for t in trials)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    screens = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert complete and all(t.user_attrs.get(rec.PLANNED_EPOCHS) is None for t in complete)
    assert all(t.user_attrs[rec.PLANNED_EPOCHS] == 1 and len(t.user_attrs[rec.CURVE]) == 1 for t in screens)
    # a promotion is a design some worker screened: learnt from the shared storage
    screened = {params_key(t.params) for t in screens}
    assert any(params_key(t.params) in screened for t in complete)
