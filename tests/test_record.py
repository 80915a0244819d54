"""hpo.record: the objective registry, rung values, and the time a stopped trial carries."""

from __future__ import annotations

import csv

import optuna
import pytest
from optuna.trial import TrialState, create_trial
from typer.testing import CliRunner

from hourglass.train_config import TrainConfig
from hpo import record as rec
from hpo.cli import app
from hpo.objective import Objective
from hpo.preset import StudyPreset
from tests.study_factory import make_study, trial_attrs

CURVE = [
    {"epoch": 1, "pckh": 10.0, "loss": 0.1, "time_s": 2.0, "wall_s": 2.5},
    {"epoch": 2, "pckh": 20.0, "loss": 0.05, "time_s": 4.0, "wall_s": 5.5},
]


def test_registry_is_where_directions_come_from():
    preset = StudyPreset(name="p", objectives=("pckh", "params", "flops"))
    assert preset.directions == [rec.OBJECTIVES[o].direction for o in preset.objectives]
    assert (
        rec.OBJECTIVES["pckh"].direction == "maximize" and rec.OBJECTIVES[rec.LATENCY].direction == "minimize"
    )
    with pytest.raises(ValueError, match="unknown objective 'speed'"):
        rec.objective_spec("speed")


def test_rung_values_of_a_trial_read_the_curve_and_the_static_costs():
    t = create_trial(
        state=TrialState.PRUNED,
        user_attrs={
            "curve": [
                {"epoch": e, "pckh": p, "time_s": s} for e, (p, s) in enumerate([(10.0, 5.0), (20.0, 9.5)], 1)
            ],
            "params": 1234,
            "flops": 99,
            "step_latency": 0.02,
        },
    )
    assert rec.rung_values(t.user_attrs, 2, ("pckh", "params", "train_time")) == [20.0, 1234.0, 9.5]
    assert rec.rung_values(t.user_attrs, 2, ("flops", "step_latency")) == [99.0, 0.02]
    assert rec.rung_values(t.user_attrs, 3, ("pckh",)) is None  # never got there
    assert rec.rung_values(create_trial(state=TrialState.RUNNING).user_attrs, 1, ("pckh",)) is None


def test_rung_values_read_the_curve_point_and_the_static_attrs():
    attrs = {rec.CURVE: CURVE, rec.PARAMS: 1000}
    assert rec.rung_values(attrs, 2, ["pckh", "params", "train_time"]) == [20.0, 1000.0, 4.0]
    assert rec.rung_values(attrs, 3, ["pckh"]) is None  # did not reach epoch 3
    assert rec.rung_values(attrs, 1, ["flops"]) is None  # not recorded


def test_value_so_far_is_the_last_curve_point_or_the_static_attr():
    assert (
        rec.value_so_far({rec.CURVE: CURVE, rec.WALL_TIME_S: 9.0}, "train_time") == 4.0
    )  # charged, not the clock
    assert rec.value_so_far({rec.CURVE: CURVE, rec.PARAMS: 7}, "params") == 7
    assert rec.value_so_far({rec.WALL_TIME_S: 9.0}, "train_time") is None
    assert rec.value_so_far({rec.CURVE: CURVE}, "pckh") == 20.0
    assert rec.value_so_far({}, "params") is None and rec.value_so_far({}, "nope") is None
    assert rec.times_so_far(CURVE) == {rec.TRAIN_TIME_S: 4.0, rec.WALL_TIME_S: 5.5}
    assert rec.times_so_far([]) == {}


def test_trial_record_is_the_typed_view():
    t = create_trial(
        state=TrialState.PRUNED,
        user_attrs={
            rec.CURVE: CURVE,
            rec.DESIGN: "baseline",
            rec.PRUNED_AT_EPOCH: 2,
            rec.PRUNE_REASON: "mo_rung",
            rec.CONFIG: {"model": {"block": {"name": "conv2"}, "stem": {"name": "conv7"}}},
        },
    )
    r = rec.TrialRecord.of(t)
    assert (r.design, r.state, r.pruned_at_epoch, r.block["name"], r.stem["name"]) == (
        "baseline",
        "PRUNED",
        2,
        "conv2",
        "conv7",
    )
    assert r.wall_time_s is None and r.wall_s_so_far == 5.5


@pytest.mark.parametrize("stop", ["pruned", "failed"])
def test_a_stopped_trial_carries_its_time_so_far(tmp_path, monkeypatch, stop):
    """The objective records train_time_s and wall_time_s when a trial is cut or fails
    after some epochs, not only when it completes."""
    config = TrainConfig.from_dict(
        {
            "model": {"features": 16, "stacks": 1, "depth": 1, "input_size": 64},
            "schedule": {"epochs": 3},
            "data": "synthetic:8:8:0",
        }
    )

    def run(self, trial, config, ckpt_dir, curve):
        curve.extend(CURVE)
        raise optuna.TrialPruned() if stop == "pruned" else RuntimeError("boom")

    monkeypatch.setattr(Objective, "resolve", lambda self, trial: config)
    monkeypatch.setattr(Objective, "_run", run)
    objective = Objective(None, None, None, tmp_path, progress=False)
    study = optuna.create_study()
    study.optimize(objective, n_trials=1, catch=(RuntimeError,))
    t = study.trials[0]
    assert t.state == (TrialState.PRUNED if stop == "pruned" else TrialState.FAIL)
    assert rec.get(t, rec.TRAIN_TIME_S) == 4.0 and rec.get(t, rec.WALL_TIME_S) == 5.5


def test_pareto_all_csv_gives_every_pruned_row_its_training_time(tmp_path):
    """The charged time from the curve, the clock from ``wall_time_s``; a trial still
    running has only its curve, whose last point gives both."""
    study, url = make_study(tmp_path)
    for over, pckh, epochs in (({"features": 16}, 20.0, 2), ({"stacks": 2}, 30.0, 3)):
        attrs, _ = trial_attrs(over, pckh, epochs, "PRUNED")
        study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs=attrs))
    out = tmp_path / "all.csv"
    result = CliRunner().invoke(
        app,
        ["pareto", "demo", "--storage", url, "--all", "--csv", str(out), "--html", str(tmp_path / "r.html")],
    )
    assert result.exit_code == 0, result.output
    pruned = [r for r in csv.DictReader(out.open()) if r["state"] == "PRUNED"]
    assert len(pruned) == 4
    for row in pruned:
        assert float(row["train_time"]) > 0 and float(row["wall_time_s"]) > 0, row
