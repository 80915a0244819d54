"""hpo.bench.replay and hpo.bench.baselines: replays against a made-up table."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial

from hourglass.costs import Costs
from hourglass.train import EpochMetrics, TrainResult
from hpo import objective as objective_module
from hpo import record as rec
from hpo.bench.baselines import HubMultiMetricRule, MoashaRule, epsilon_net_order
from hpo.bench.replay import TABLE_METHODS, cached_table, replay_method
from hpo.bench.search import SearchBenchSettings, base_preset, Tracker, method_preset, run_search_bench, table_reference_point
from hpo.bench.table import params_key
from hpo.objective import Objective
from hpo.strategy import Pruning, create_pruner, create_sampler
from table_factory import make_table

OBJECTIVES = ("pckh", "params", "train_time")
DIRECTIONS = ["maximize", "minimize", "minimize"]


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    return str(make_table(tmp_path_factory.mktemp("table") / "t.json.gz"))


def _strip(records):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in records]


@pytest.mark.parametrize("method", ["tpe_mopruning", "nsga2", "moasha", "hub_multi_metric"])
def test_replay_is_deterministic_per_seed(table_path, method):
    s = SearchBenchSettings(table=table_path, seeds=1, budget_epochs=60, methods=(method,))
    ref = table_reference_point(s)
    a, b = replay_method(s, method, 3, ref), replay_method(s, method, 3, ref)
    assert _strip(a["records"]) == _strip(b["records"]) and a["spent"] == b["spent"] >= 60
    other = replay_method(s, method, 4, ref)
    assert _strip(other["records"]) != _strip(a["records"])  # the seed matters


def test_replay_charges_epochs_and_times_from_the_table(table_path):
    s = SearchBenchSettings(table=table_path, seeds=1, budget_epochs=120, methods=("tpe_mopruning",))
    run = replay_method(s, "tpe_mopruning", 0, table_reference_point(s))
    table = cached_table(table_path)
    points = table.by_params()
    assert run["spent"] == sum(r["epochs"] for r in run["records"])
    assert any(r["state"] == "pruned" for r in run["records"]) and any(r["state"] == "complete" for r in run["records"])
    for r in run["records"]:
        if r["state"] == "complete":
            pckh, n_params, time_s = r["values"]
            curves = [p for p in points.values() if p.costs["params"] == n_params]
            assert any(run_["pckh"][-1] == pckh and run_["time_s"][-1] == time_s
                       for p in curves for run_ in p.runs.values())


def test_replayed_pruner_decides_as_the_live_objective(table_path, tmp_path, monkeypatch):
    """The real Objective on a real study, hourglass training swapped for the table's curves
    (the same seed draw per trial): the same trials, states and prune epochs as the replay."""
    s = SearchBenchSettings(table=table_path, seeds=1, budget_epochs=150, methods=("tpe_mopruning",))
    reference = table_reference_point(s)
    replayed = replay_method(s, "tpe_mopruning", 1, reference)

    table = cached_table(table_path)
    points = table.by_params()
    rng = np.random.default_rng([1, 7919])  # replay's per-trial seed draw

    def point_of(model, lr=None):
        params = {"model.block.name": model.block.name, "model.block.skip": model.block.skip,
                  "model.features": model.features, "model.stacks": model.stacks}
        return [p for p in points.values() if all(p.params[k] == v for k, v in params.items())
                and (lr is None or p.params["schedule.lr"] == lr)]

    def fake_costs(model, **_):
        c = point_of(model)[0].costs
        return Costs(c["params"], c["flops"], c["layers"], c["ops_per_step"], model.input_size)

    def fake_train(config, arrays, *, device=None, on_epoch_end=None, checkpoint_dir=None, progress=True, compile=None):
        (point,) = point_of(config.model, config.schedule.lr)
        run = point.runs[table.seeds[int(rng.integers(len(table.seeds)))]]
        history = []
        for e in range(1, table.epochs + 1):
            m = EpochMetrics(epoch=e, loss=run["loss"][e - 1], pckh=run["pckh"][e - 1], time_s=run["wall_s"][e - 1],
                             epoch_time_s=0.0, train_img_s=0.0, lr=config.schedule.lr, train_time_s=run["time_s"][e - 1])
            history.append(m)
            on_epoch_end(m)
        return TrainResult(config, history, None, point.costs["params"], "cpu", model=None)

    monkeypatch.setattr(objective_module, "costs", fake_costs)
    monkeypatch.setattr(objective_module, "train", fake_train)
    preset = method_preset(base_preset(s.preset), s, "tpe_mopruning", 1, f"sqlite:///{tmp_path / 'live.db'}")
    study = optuna.create_study(directions=preset.directions, sampler=create_sampler(preset, 1))
    rec.study_put(study, rec.STUDY_OBJECTIVES, list(preset.objectives))
    objective = Objective(preset, table.search_space(), None, tmp_path / "ckpt", device="cpu",
                          pruning=Pruning.for_preset(preset), progress=False)
    tracker = Tracker(s.budget_epochs, reference)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=200, callbacks=[tracker])

    live = [(t.params, t.state.name.lower(), rec.get(t, rec.PRUNED_AT_EPOCH)) for t in study.trials]
    assert len(live) == len(replayed["records"]) > 10
    got = [(params_key(p), state, at) for p, state, at in live]
    want = []
    for r, t in zip(replayed["records"], study.trials):
        want.append((params_key(t.params), r["state"], None if r["state"] == "complete" else r["epochs"]))
    assert got == want
    assert sum(state == "pruned" for _, state, _ in got) >= 3  # the pruner did act
    assert [r["hv"] for r in tracker.records] == [r["hv"] for r in replayed["records"]]


def test_every_table_method_runs_and_summarizes(table_path):
    s = SearchBenchSettings(table=table_path, seeds=2, budget_epochs=40, methods=TABLE_METHODS)
    out = run_search_bench(s, progress=False)
    assert set(out["methods"]) == set(TABLE_METHODS)
    for name, m in out["methods"].items():
        assert len(m["final_hv_per_seed"]) == 2 and len(m["epochs_to_random_final_per_seed"]) == 2
        assert 0.0 <= min(m["final_hv_per_seed"]) and max(m["final_hv_per_seed"]) < 1.0
    assert out["methods"]["seed_grid"]["trials_mean"] <= 5  # the reference designs the space expresses
    assert out["budget_epochs"] == 40


def test_table_methods_are_refused_live():
    from hourglass.errors import ConfigError

    with pytest.raises(ConfigError, match="moasha"):
        SearchBenchSettings(methods=("moasha",))


# ----------------------------------------------------------------------------- baselines
def _study_with(rung_points, epoch, state=TrialState.COMPLETE):
    study = optuna.create_study(directions=DIRECTIONS)
    for pckh, params, time_s in rung_points:
        curve = [{"epoch": e, "pckh": pckh, "time_s": time_s, "loss": 0.0} for e in range(1, epoch + 1)]
        study.add_trial(create_trial(state=state, values=[pckh, params, time_s] if state == TrialState.COMPLETE else None,
                                     user_attrs={rec.CURVE: curve, rec.PARAMS: params}))
    return study


def test_epsilon_net_starts_best_and_takes_the_farthest_next():
    pts = np.array([[0.5, 0.5], [0.0, 1.0], [0.1, 0.9], [1.0, 0.0]])
    assert epsilon_net_order(pts) == [1, 3, 0, 2]


def test_moasha_rungs_and_rule():
    rule = MoashaRule(OBJECTIVES, max_epochs=9, grace_period=1, eta=3)
    assert rule.rungs() == [1, 3]
    empty = _study_with([], 1)
    assert not rule.should_prune(empty, 99, 1, [10.0, 1000, 1.0], DIRECTIONS)  # first at the rung goes on
    study = _study_with([(50.0, 1000, 1.0), (60.0, 900, 0.9)], 1)
    assert rule.should_prune(study, 99, 1, [40.0, 1100, 1.1], DIRECTIONS)  # dominated: position 2 of 3
    assert not rule.should_prune(study, 99, 1, [70.0, 800, 0.8], DIRECTIONS)  # dominates both: first
    assert not rule.should_prune(study, 99, 2, [0.0, 9999, 9.0], DIRECTIONS)  # not a rung
    with pytest.raises(ValueError, match="eta"):
        MoashaRule(OBJECTIVES, 9, eta=1)


def test_hub_rule_waits_for_five_finished_then_prunes_below_the_median():
    rule = HubMultiMetricRule(OBJECTIVES)
    few = _study_with([(60.0, 900, 0.9)] * 4, 2)
    assert not rule.should_prune(few, 99, 2, [10.0, 5000, 5.0], DIRECTIONS)
    many = _study_with([(60.0 + i, 900 - i, 0.9) for i in range(6)], 2)
    many.add_trial(create_trial(state=TrialState.RUNNING, user_attrs={
        rec.CURVE: [{"epoch": 1, "pckh": 10.0, "time_s": 5.0, "loss": 0.0}], rec.PARAMS: 5000}))
    me = many.trials[-1].number
    assert rule.should_prune(many, me, 2, [10.0, 5000, 5.0], DIRECTIONS)  # dominated by every finished trial
    assert not rule.should_prune(many, me, 2, [99.0, 10, 0.1], DIRECTIONS)  # dominates them all
