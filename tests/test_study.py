"""A real study, end to end: tiny models on synthetic data, SQLite storage, our MO pruner."""

import json
import os
import re
import subprocess
import sys

import optuna
import pytest
import torch
import yaml
from typer.testing import CliRunner

from hourglass.config import HourglassConfig
from hourglass.costs import costs
from hpo.cli import app
from hpo.export import export_trials
from hpo.pareto import pareto_trials
from hpo.preset import load_preset
from hpo.record import PCKH_JOINTS
from hpo.study import open_study, run_study
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
runner = CliRunner()

SPACE = """
base: {model: {stacks: 1, features: 16, depth: 2, input_size: 64, stem: {channels: 8}}}
params:
  model.features: {choices: [16, 32]}
  model.stacks: {choices: [1, 2]}
  schedule.lr: {choices: [5.0e-3, 1.0e-7]}
"""

GOOD = [(16, 1), (16, 2), (32, 1)]
HOPELESS = {"model.features": 32, "model.stacks": 2, "schedule.lr": 1e-7}  # biggest, and cannot learn


@pytest.fixture
def preset_path(tmp_path):
    (tmp_path / "space.yaml").write_text(SPACE)
    path = tmp_path / "e2e.yaml"
    path.write_text(f"""
objectives: [pckh, params, train_time]
sampler: {{name: random}}
pruner: {{name: mo_halving, min_epochs: 2, eta: 4, min_trials: 4}}
budget: {{trials: 4}}
data: synthetic:400:64:0
space: {tmp_path / "space.yaml"}
schedule: {{epochs: 3, batch_size: 8, milestones: []}}
storage: sqlite:///{tmp_path / "e2e.db"}
device: cpu
""")
    return path


def _dominates(a, b, directions):
    better = [
        (x >= y) if d == optuna.study.StudyDirection.MAXIMIZE else (x <= y)
        for x, y, d in zip(a, b, directions)
    ]
    return all(better) and a != b


def test_study_end_to_end(preset_path, tmp_path):
    preset = load_preset(preset_path)
    study = open_study(preset)
    for features, stacks in GOOD:
        study.enqueue_trial({"model.features": features, "model.stacks": stacks, "schedule.lr": 5e-3})
    study.enqueue_trial(HOPELESS)
    summary = run_study(preset, progress=False)
    trials = summary.study.trials
    assert summary.new_trials == 4 and [t.number for t in trials] == [0, 1, 2, 3]

    # the deliberately hopeless design is cut at the first rung by the Pareto-rank pruner
    hopeless = trials[3]
    assert hopeless.state == optuna.trial.TrialState.PRUNED
    assert hopeless.user_attrs["prune_reason"] == "mo_rung" and hopeless.user_attrs["pruned_at_epoch"] == 2
    assert len(hopeless.user_attrs["curve"]) == 2  # the pruned trial keeps its learning curve

    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 3
    for t in done:
        a = t.user_attrs
        pckh, params, train_time = t.values
        assert pckh == a["curve"][-1]["pckh"] and 0 <= pckh <= 100
        assert params == a["params"] == costs(HourglassConfig.from_dict(a["config"]["model"])).params
        # charged: the noise-robust time; the wall time is kept beside it
        assert train_time == a["train_time_s"] == a["curve"][-1]["time_s"] > 0
        assert a["wall_time_s"] == a["curve"][-1]["wall_s"] > 0 and a["compile_s"] == 0.0
        assert a["epochs_run"] == 3 and [p["epoch"] for p in a["curve"]] == [1, 2, 3]
        assert {"flops", "layers", "ops_per_step", "train_img_s", "device", "config_hash"} <= set(a)
        # the final per-joint table; its Mean is the last epoch's PCKh
        assert set(a[PCKH_JOINTS]) == {"Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean"}
        assert a[PCKH_JOINTS]["Mean"] == pytest.approx(pckh)

    # the Pareto set is exactly the non-dominated complete trials
    front = {t.number for t in pareto_trials(summary.study)}
    brute = {
        t.number for t in done if not any(_dominates(o.values, t.values, study.directions) for o in done)
    }
    assert front == brute and front

    # running again resumes: the trial count grows, finished trials are untouched
    before = {t.number: t.values for t in done}
    again = run_study(preset, n_trials=1, progress=False).study
    assert len(again.trials) == 5
    assert {t.number: t.values for t in again.trials if t.number in before} == before


def test_export_then_train_reproduces_the_trial(preset_path, tmp_path):
    preset = load_preset(preset_path)
    study = open_study(preset)
    study.enqueue_trial({"model.features": 16, "model.stacks": 2, "schedule.lr": 5e-3})
    study = run_study(preset, n_trials=1, progress=False).study
    (path,) = export_trials(study, [0], tmp_path / "exported")
    assert yaml.safe_load(path.read_text())["cpu_threads"] == study.trials[0].user_attrs["cpu_threads"] == 1
    torch.set_num_threads(2)  # hpo train must use the trial's count, not whatever the process has
    try:
        result = runner.invoke(app, ["train", str(path), "--device", "cpu", "--json"])
    finally:
        torch.set_num_threads(1)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["params"] == study.trials[0].user_attrs["params"]
    assert set(out["per_joint"]) == {"Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean"}
    assert abs(out["per_joint"]["Mean"] - study.trials[0].values[0]) <= 0.5


def test_hpo_run_into_a_log_file_writes_one_line_per_trial(preset_path, tmp_path):
    log = tmp_path / "log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    with log.open("w") as f:  # `hpo run > log 2>&1`: not a terminal
        done = subprocess.run(
            [sys.executable, "-m", "hpo", "run", str(preset_path), "--n-trials", "2", "--verbose"],
            cwd=tmp_path,
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    text = log.read_text()
    assert done.returncode == 0, text
    assert len(text) < 30_000 and "\r" not in text  # no progress-bar redraws
    assert len(re.findall(r"^trial +\d+ (complete|pruned) ", text, flags=re.M)) == 2, text
    assert re.search(r"^trial +0 epoch +1/3 +PCKh", text, flags=re.M), text  # --verbose: a line per epoch
    # the closing lines say what pruning bought (hpo.savings)
    assert re.search(r"^pruning: +\d+ of 2 designs cut", text, flags=re.M), text
    assert re.search(
        r"^epochs: +\d+ trained, \d+ \(\d+ %\) saved of 6 for every design to the end", text, flags=re.M
    ), text
    table = text.split("Pareto set of study")[1].split("report:")[0]  # lines naming tmp paths may be long
    long = [
        line for line in [*table.splitlines(), *re.findall(r"^trial .*$", text, flags=re.M)] if len(line) > 80
    ]
    assert not long, long


def test_hpo_run_cli_prints_pareto_and_report(preset_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", str(preset_path), "--n-trials", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "1 new trial," in result.output and "Pareto set" in result.output
    # the preset's storage is not studies/e2e.db: the report is named after it too
    assert (tmp_path / "reports" / "e2e@e2e.html").stat().st_size > 10_000
    assert "report:    reports/e2e@e2e.html" in result.output
    assert "hpo dashboard e2e" in result.output


def test_trial_lines_name_the_wall_time_and_fit_80_columns(tmp_path):
    from hpo import record as rec
    from hpo.study import describe_trial
    from tests.study_factory import make_study, trial_attrs

    study, _ = make_study(tmp_path)
    lines = {t.number: describe_trial(t) for t in study.trials}
    wall = study.trials[0].user_attrs[rec.WALL_TIME_S]
    assert (
        f" {wall:.1f} s wall  baseline" in lines[0]
        and f"{study.trials[0].user_attrs['params']:,} params" in lines[0]
    )
    assert re.match(
        r"trial +6 pruned +PCKh 24\.9 +16,256 params epoch 2 +multidilated/conv7 32x1$", lines[6]
    ), lines[6]
    # the longest tiny design, and a full-size network that took long: still 80 columns, nothing cut
    for over, params, seconds in (
        ({"block": {"name": "multidilated"}, "stem": {"name": "patch4"}}, None, 812.3),
        ({"features": 256, "stacks": 2, "block": {"name": "multidilated"}}, 6_730_912, 9876.5),
    ):
        attrs, _ = trial_attrs(over, 60.0, 6, "COMPLETE")
        attrs[rec.WALL_TIME_S] = seconds
        attrs[rec.PARAMS] = params or attrs[rec.PARAMS]
        trial = optuna.trial.create_trial(values=[60.0, attrs[rec.PARAMS], 1.0], user_attrs=attrs)
        line = describe_trial(trial)
        assert (
            len(line) <= 80
            and f"{seconds:.1f} s wall" in line
            and line.endswith("x" + str(attrs["config"]["model"]["stacks"]))
        ), line
    assert "6.73M params" in line
