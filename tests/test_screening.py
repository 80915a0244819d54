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
from tests.workers_support import SPACE, write_preset

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
        {"spread_start": 1},
        {"check_epochs": 1},
        {"screen_epochs": 2, "check_epochs": 2},
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
    for r in complete:  # a promotion continues a design screened earlier: it pays the rest
        assert r["point"] in {p["point"] for p in records[: records.index(r)] if p["state"] == "pruned"}
        assert r["epochs"] == cached_table(table_path).epochs - 1
    assert screened_before
    assert records[-1]["spent"] == sum(r["epochs"] for r in records)


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


def test_the_first_screens_spread_over_every_factor(table_path):
    """The spread start screens every choice of every factor within its first screens
    (random screens of a seed may miss one), so the factor models see every effect."""
    space = cached_table(table_path).search_space()
    for seed in range(3):
        records = _replay(table_path, seed, budget=8, n_startup=8)["records"]
        table = cached_table(table_path)
        params = [table.points[r["point"]].params for r in records[:6]]
        for p in space.params:
            if p.kind == "categorical" and not p.when:
                assert {x[p.name] for x in params} == set(p.choices), (seed, p.name)


def test_a_check_rung_climbs_before_the_end(table_path):
    """With ``check_epochs``, a promoted design first continues its screen to the check rung
    (paused there), and a promotion continues the check: each pays only its new epochs."""
    table = cached_table(table_path)
    records = _replay(
        table_path, 0, budget=90, n_startup=5, burst=1, check_epochs=3, promote_unscreened=False
    )["records"]
    checks = [r for r in records if r["state"] == "pruned" and r["epochs"] == 2]
    assert checks, [(r["state"], r["epochs"]) for r in records]
    done = [r for r in records if r["state"] == "complete"]
    assert any(r["epochs"] == table.epochs - 3 for r in done)  # continued a check
    assert done[0]["epochs"] == table.epochs - 1  # the burst: straight from its screen
    assert records[-1]["spent"] == sum(r["epochs"] for r in records)


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


# the workers' test space without its continuous learning rate: six designs, all categorical
CATEGORICAL_SPACE = {
    **SPACE,
    "description": "six designs, all categorical",
    "params": {k: v for k, v in SPACE["params"].items() if "choices" in v},
}


@pytest.mark.slow
def test_a_live_promotion_resumes_its_screens_checkpoint(tmp_path):
    """Real training: a screen pauses after its planned epoch with its checkpoint kept, and a
    promotion of that design takes the checkpoint over and trains only the epochs after it."""
    from dataclasses import replace

    from hpo.study import run_study

    sampler = {"name": "screen_promote", "kwargs": {"n_startup": 2, "burst": 2, "promote_unscreened": False}}
    path = write_preset(
        tmp_path, trials=5, epochs=3, space_doc=CATEGORICAL_SPACE, sampler=sampler, pruner={"name": "planned"}
    )
    preset = replace(load_preset(path), storage=f"sqlite:///{tmp_path / 'study.db'}")
    ckpt = tmp_path / "ckpt"
    trials = run_study(preset, n_trials=5, progress=False, checkpoint_dir=ckpt).study.trials
    by_number = {t.number: t for t in trials}
    promotions = [t for t in trials if t.user_attrs.get(rec.CONTINUES) is not None]
    assert promotions, [(t.number, t.state, t.user_attrs.get(rec.PLANNED_EPOCHS)) for t in trials]
    for t in promotions:
        screen = by_number[t.user_attrs[rec.CONTINUES]]
        assert screen.state == optuna.trial.TrialState.PRUNED and screen.params == t.params
        assert screen.user_attrs[rec.PRUNE_REASON] == "planned"
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert t.user_attrs[rec.RESUMED_FROM_EPOCH] == 1 and t.user_attrs[rec.EPOCHS_TRAINED] == 2
        assert t.user_attrs[rec.CURVE][0] == screen.user_attrs[rec.CURVE][0]  # its screen's epoch
    # the checkpoints left are those of the screens no promotion took over
    taken = {t.user_attrs[rec.CONTINUES] for t in promotions}
    left = {int(p.name.rsplit("-t", 1)[1]) for p in ckpt.iterdir() if (p / "last.pt").exists()}
    paused = {t.number for t in trials if t.user_attrs.get(rec.PRUNE_REASON) == "planned"}
    assert left == paused - taken
