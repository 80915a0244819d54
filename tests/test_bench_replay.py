"""hpo.bench.replay and hpo.bench.baselines: replays against a made-up table."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial
from table_factory import make_table

from hourglass.costs import Costs
from hourglass.train import EpochMetrics, TrainResult
from hpo import objective as objective_module
from hpo import record as rec
from hpo.bench.baselines import HubMultiMetricRule, MoashaRule, RungTPE, epsilon_net_order
from hpo.bench.front import Tracker, table_reference
from hpo.bench.ledger import TableRun
from hpo.bench.replay import replay_method
from hpo.bench.rivals import missing_extra
from hpo.bench.search import run_search_bench
from hpo.bench.settings import TABLE_METHODS, SearchBenchSettings, base_preset, method_preset
from hpo.bench.table import cached_table, params_key
from hpo.objective import Objective
from hpo.strategy import Pruning, create_sampler

OBJECTIVES = ("pckh", "params", "train_time")
DIRECTIONS = ["maximize", "minimize", "minimize"]


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    return str(make_table(tmp_path_factory.mktemp("table") / "t.json.gz"))


@pytest.fixture(scope="module")
def table4_path(tmp_path_factory):
    """Four training seeds per point, as the shipped table gets them."""
    return str(make_table(tmp_path_factory.mktemp("table4") / "t4.json.gz", seeds=(0, 1, 2, 3)))


@pytest.fixture(params=["two seeds", "four seeds"])
def any_table(request, table_path, table4_path):
    return table_path if request.param == "two seeds" else table4_path


def table_reference_point(s):
    return table_reference(cached_table(s.table))


def _strip(records):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in records]


@pytest.mark.parametrize("method", ["tpe_mopruning", "nsga2", "moasha", "hub_multi_metric", "bohb_tpe"])
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
    assert any(r["state"] == "pruned" for r in run["records"]) and any(
        r["state"] == "complete" for r in run["records"]
    )
    for r in run["records"]:
        if r["state"] == "complete":
            pckh, n_params, time_s = r["values"]
            curves = [p for p in points.values() if p.costs["params"] == n_params]
            assert any(
                run_["pckh"][-1] == pckh and run_["time_s"][-1] == time_s
                for p in curves
                for run_ in p.runs.values()
            )


def test_replayed_pruner_decides_as_the_live_objective(table_path, tmp_path, monkeypatch):
    """The real Objective on a real study, hourglass training swapped for the table's curves
    (the same seed draw per trial): the same trials, states and prune epochs as the replay."""
    s = SearchBenchSettings(
        table=table_path,
        seeds=1,
        budget_epochs=150,
        methods=("tpe_mopruning",),
        eta=3,
        min_trials=3,
        min_gain=0.005,
    )
    reference = table_reference_point(s)
    replayed = replay_method(s, "tpe_mopruning", 1, reference)

    table = cached_table(table_path)
    points = table.by_params()
    rng = np.random.default_rng([1, 7919])  # replay's draw: a design's seed at its first training, then kept
    seeds: dict[str, int] = {}

    def point_of(model, lr=None):
        params = {
            "model.block.name": model.block.name,
            "model.block.skip": model.block.skip,
            "model.features": model.features,
            "model.stacks": model.stacks,
        }
        return [
            p
            for p in points.values()
            if all(p.params[k] == v for k, v in params.items())
            and (lr is None or p.params["schedule.lr"] == lr)
        ]

    def fake_costs(model, **_):
        c = point_of(model)[0].costs
        return Costs(c["params"], c["flops"], c["layers"], c["ops_per_step"], model.input_size)

    def fake_train(
        config, arrays, *, device=None, on_epoch_end=None, checkpoint_dir=None, progress=True, compile=None
    ):
        (point,) = point_of(config.model, config.schedule.lr)
        key = params_key(point.params)
        if key not in seeds:
            seeds[key] = table.seeds[int(rng.integers(len(table.seeds)))]
        run = point.runs[seeds[key]]
        history = []
        for e in range(1, table.epochs + 1):
            m = EpochMetrics(
                epoch=e,
                loss=run["loss"][e - 1],
                pckh=run["pckh"][e - 1],
                time_s=run["wall_s"][e - 1],
                epoch_time_s=0.0,
                train_img_s=0.0,
                lr=config.schedule.lr,
                train_time_s=run["time_s"][e - 1],
            )
            history.append(m)
            on_epoch_end(m)
        return TrainResult(config, history, None, point.costs["params"], "cpu", model=None)

    monkeypatch.setattr(objective_module, "costs", fake_costs)
    monkeypatch.setattr(objective_module, "train", fake_train)
    preset = method_preset(base_preset(s.preset), s, "tpe_mopruning", 1, f"sqlite:///{tmp_path / 'live.db'}")
    study = optuna.create_study(directions=preset.directions, sampler=create_sampler(preset, 1))
    rec.study_put(study, rec.STUDY_OBJECTIVES, list(preset.objectives))
    objective = Objective(
        preset,
        table.search_space(),
        None,
        tmp_path / "ckpt",
        device="cpu",
        pruning=Pruning.for_preset(preset),
        progress=False,
    )
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
    s = SearchBenchSettings(
        table=table_path, seeds=2, seed_offset=10, budget_epochs=40, methods=TABLE_METHODS
    )
    out = run_search_bench(s, progress=False)
    ran = [m for m in TABLE_METHODS if missing_extra(m) is None]
    assert list(out["methods"]) == ran and out["skipped"] == [m for m in TABLE_METHODS if m not in ran]
    assert out["default_method"] == "tpe_mopruning" and out["headline"] == "hv_heldout"
    for m in out["methods"].values():
        assert m["seeds"] == [10, 11]
        for view in ("heldout", "as_trained"):
            assert len(m[view]["hv_per_seed"]) == 2 and len(m[view]["epochs_to_random_final_per_seed"]) == 2
            assert 0.0 <= min(m[view]["hv_per_seed"]) and max(m[view]["hv_per_seed"]) < 1.0
        assert m["heldout_median_hv"] == m["heldout"]["median_hv"]
        for w in ("within_third", "within_sixth"):
            assert m[w]["n"] == 2 and 0.0 <= m[w]["low"] <= m[w]["share"] <= m[w]["high"] <= 1.0
    assert out["methods"]["seed_grid"]["trials_mean"] <= 5  # the reference designs the space expresses
    assert out["budget_epochs"] == 40
    assert out["oracle"]["heldout"]["within_third"]["n"] == 2
    json.dumps(out)


def test_table_methods_are_refused_live():
    from hourglass.errors import ConfigError

    with pytest.raises(ConfigError, match="moasha"):
        SearchBenchSettings(methods=("moasha",))


# ----------------------------------------------------------------------------- baselines
def _study_with(rung_points, epoch, state=TrialState.COMPLETE):
    study = optuna.create_study(directions=DIRECTIONS)
    for pckh, params, time_s in rung_points:
        curve = [{"epoch": e, "pckh": pckh, "time_s": time_s, "loss": 0.0} for e in range(1, epoch + 1)]
        study.add_trial(
            create_trial(
                state=state,
                values=[pckh, params, time_s] if state == TrialState.COMPLETE else None,
                user_attrs={rec.CURVE: curve, rec.PARAMS: params},
            )
        )
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
    many.add_trial(
        create_trial(
            state=TrialState.RUNNING,
            user_attrs={
                rec.CURVE: [{"epoch": 1, "pckh": 10.0, "time_s": 5.0, "loss": 0.0}],
                rec.PARAMS: 5000,
            },
        )
    )
    me = many.trials[-1].number
    assert rule.should_prune(many, me, 2, [10.0, 5000, 5.0], DIRECTIONS)  # dominated by every finished trial
    assert not rule.should_prune(many, me, 2, [99.0, 10, 0.1], DIRECTIONS)  # dominates them all


# ----------------------------------------------------------------------------- live semantics
# The rule these tests reason about, pinned (eta 3, 3 trials a rung, min_gain 0.005) so that
# retuning the quickstart's pruner does not change what they check.


def _by_point(records):
    out = {}
    for r in records:
        out.setdefault(r["point"], []).append(r)
    return out


def test_a_pruned_design_proposed_again_keeps_its_seed(any_table, monkeypatch):
    """One seed per design for the whole run: a pruned design proposed twice trains its same
    curve again (same seed), never a re-rolled one; a completed one is copied at no cost."""
    table_path = any_table
    played: dict[str, list[int]] = {}  # design -> the curve each of its trainings was fed
    curve = TableRun.curve

    def spy(self, point):
        run = curve(self, point)
        played.setdefault(params_key(point.params), []).append(id(run))
        return run

    monkeypatch.setattr(TableRun, "curve", spy)
    s = SearchBenchSettings(
        table=table_path,
        seeds=1,
        budget_epochs=300,
        methods=("tpe_mopruning",),
        eta=3,
        min_trials=3,
        min_gain=0.005,
    )
    run = replay_method(s, "tpe_mopruning", 2, table_reference_point(s))
    by_point = _by_point(run["records"])
    repeats = [rs for rs in by_point.values() if len(rs) > 1 and rs[0]["state"] == "pruned"]
    assert len(repeats) >= 3  # TPE proposes pruned designs again on a 32-point table
    for rs in by_point.values():
        assert len({r["train_seed"] for r in rs}) == 1
    table = cached_table(table_path)
    for rs in repeats:  # every training of it played its kept seed's curve (the pruner may cut it
        # at another rung: its rungs have filled meanwhile)
        p = table.points[rs[0]["point"]]
        fed = played[params_key(p.params)]
        assert len(fed) >= 2 and fed == [id(p.runs[rs[0]["train_seed"]])] * len(fed)
    for rs in by_point.values():
        done = [r for r in rs if r["state"] == "complete"]
        for r in done[1:]:
            assert r["epochs"] == 0 and r["values"] == done[0]["values"]  # a copy
        for r in done:
            p, seed = table.points[r["point"]], r["train_seed"]
            assert r["values"] == [p.runs[seed]["pckh"][-1], p.costs["params"], p.runs[seed]["time_s"][-1]]
            other = [x for x in table.seeds if x != seed]
            assert r["heldout_values"][0] == pytest.approx(np.mean([p.runs[x]["pckh"][-1] for x in other]))


def test_table_run_draws_a_design_seed_once(table_path):
    table = cached_table(table_path)
    ledger = TableRun.of(table, 5)
    p, q = table.points[0], table.points[1]
    first = ledger.seed_of(p)
    assert all(ledger.seed_of(p) == first for _ in range(20))
    ledger.seed_of(q)
    assert ledger.seed_of(p) == first and set(ledger.seeds.values()) <= set(table.seeds)
    own = p.runs[first]
    assert ledger.at_epoch(p, 3) == [own["pckh"][2], float(p.costs["params"]), own["time_s"][2]]
    other = [s for s in table.seeds if s != first]
    assert ledger.heldout(p)[0] == pytest.approx(np.mean([p.runs[s]["pckh"][-1] for s in other]))


def test_heldout_front_is_scored_on_other_seeds(any_table):
    """A run's held-out hypervolume is the front of its complete designs valued by the mean
    of the seeds they were not trained on: one other seed on a two-seed table, three of four."""
    from hpo.bench.front import front_hv

    s = SearchBenchSettings(table=any_table, seeds=1, budget_epochs=200, methods=("random",))
    ref = table_reference_point(s)
    run = replay_method(s, "random", 0, ref)
    table = cached_table(any_table)
    done = [r for r in run["records"] if r["state"] == "complete"]
    heldout = []
    for r in done:
        p = table.points[r["point"]]
        others = [x for x in table.seeds if x != r["train_seed"]]
        assert len(others) == len(table.seeds) - 1
        values = [
            np.mean([p.runs[x]["pckh"][-1] for x in others]),
            p.costs["params"],
            np.mean([p.runs[x]["time_s"][-1] for x in others]),
        ]
        assert r["heldout_values"] == pytest.approx(values)
        heldout.append(ref.normalise(values))
    assert run["records"][-1]["hv_heldout"] == pytest.approx(front_hv(heldout))
    assert run["records"][-1]["hv_heldout"] != pytest.approx(run["records"][-1]["hv"])


def test_design_seeds_are_drawn_among_all_of_a_tables_seeds(table4_path):
    """On a four-seed table a run's designs get every one of the four seeds, about evenly,
    and two runs (bench seeds) draw differently."""
    s = SearchBenchSettings(table=table4_path, seeds=1, budget_epochs=400, methods=("random",))
    ref = table_reference_point(s)
    draws = [
        {r["point"]: r["train_seed"] for r in replay_method(s, "random", seed, ref)["records"]}
        for seed in (0, 1)
    ]
    for d in draws:
        counts = np.bincount(list(d.values()), minlength=4)
        assert len(d) >= 30 and len(counts) == 4 and counts.min() >= 3, counts
    common = set(draws[0]) & set(draws[1])
    assert len(common) >= 10 and any(draws[0][p] != draws[1][p] for p in common)


def test_rung_tpe_proposes_from_the_highest_rung_with_enough_points():
    tpe = RungTPE(["maximize", "minimize", "minimize"], [1, 3, 9], seed=0, random_fraction=0.0)
    assert tpe.propose() is None  # nothing observed: random
    dist = optuna.distributions.CategoricalDistribution([0, 1, 2, 3])
    for i in range(3):
        t = create_trial(params={"x": i % 4}, distributions={"x": dist}, values=[1.0, 1.0, 1.0])
        tpe.observe(t, [[10.0 * i, 1.0, 1.0]])  # epoch 1 only: not enough (2 needed) until the 2nd
    params = tpe.propose()
    assert params is not None and set(params) == {"x"} and params["x"] in (0, 1, 2, 3)
    with pytest.raises(ValueError, match="rungs"):
        RungTPE(["maximize"], [], seed=0)


def test_runs_dir_resumes_and_refuses_other_settings(table_path, tmp_path, monkeypatch):
    from hourglass.errors import ConfigError
    from hpo.bench import search

    folder = tmp_path / "runs"
    s = SearchBenchSettings(table=table_path, seeds=2, budget_epochs=40, methods=("random", "tpe_mopruning"))
    first = run_search_bench(s, progress=False, runs_dir=folder)
    assert {p.name for p in folder.glob("*_s*.json")} == {
        f"{m}_s{seed}.json" for m in ("random", "tpe_mopruning", "oracle") for seed in (0, 1)
    }
    calls = []
    real = search.replay_method
    monkeypatch.setattr(search, "replay_method", lambda *a: calls.append(a[1:3]) or real(*a))
    more = run_search_bench(replace(s, seeds=3), progress=False, runs_dir=folder)
    assert sorted(calls) == [("random", 2), ("tpe_mopruning", 2)]  # only the new seed ran
    for m in ("random", "tpe_mopruning"):
        assert (
            more["methods"][m]["heldout"]["hv_per_seed"][:2] == first["methods"][m]["heldout"]["hv_per_seed"]
        )
    with pytest.raises(ConfigError, match="other settings"):
        run_search_bench(replace(s, budget_epochs=50), progress=False, runs_dir=folder)


def _without_timings(value):
    if isinstance(value, dict):
        return {
            k: _without_timings(v) for k, v in value.items() if k not in ("wall_s", "wall_s_mean", "workers")
        }
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def test_worker_processes_give_the_serial_summary(table4_path):
    """``--workers`` (the default on a table: one process per CPU) changes the wall time
    only: the summary, every run's records included, is the serial one. (``smac_mf`` is left
    out: it depends on the string-hash seed, which the pool pins and this process does not.)"""
    from hpo.bench.settings import default_workers

    methods = tuple(
        m for m in ("random", "tpe_mopruning", "moasha", "bohb_tpe", "syne_moasha") if not missing_extra(m)
    )
    s = SearchBenchSettings(table=table4_path, seeds=3, budget_epochs=45, methods=methods)
    serial = run_search_bench(s, progress=False)
    parallel = run_search_bench(replace(s, workers=2), progress=False)
    assert parallel["settings"]["workers"] == 2 and serial["settings"]["workers"] == 1
    assert _without_timings(parallel) == _without_timings(serial)
    assert len(serial["curves"]["tpe_mopruning"]) == 3 and serial["oracle"]["seeds"] == [0, 1, 2]
    assert default_workers(None) == 1 and default_workers(table4_path) >= 1
