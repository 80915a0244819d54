import csv
import json
import sys
from wsgiref.simple_server import WSGIServer

import numpy as np
import optuna
import pytest
import yaml
from typer.testing import CliRunner

from hpo import optuna_compat as compat
from hpo.cli import app
from hpo.dashboard import FIGURE_IDS
from hpo.pareto import pareto_trials
from tests.study_factory import make_study, trial_attrs

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("cli"))


def test_pareto_prints_the_table_and_writes_report_csv_json(demo, tmp_path):
    study, url = demo
    out = tmp_path / "o"
    result = runner.invoke(
        app,
        [
            "pareto",
            "demo",
            "--storage",
            url,
            "--csv",
            str(out / "p.csv"),
            "--json",
            str(out / "p.json"),
            "--html",
            str(out / "r.html"),
        ],
    )
    assert result.exit_code == 0, result.output
    front = pareto_trials(study)
    assert f"Pareto set of study 'demo' ({len(front)} trials)" in result.output
    for name in ("baseline", "conv_two", "dwsep_mid", "bottleneck"):
        assert name in result.output
    assert f"{study.trials[0].user_attrs['params']:,}" in result.output
    rows = list(csv.DictReader((out / "p.csv").open()))
    assert [int(r["number"]) for r in rows] == [t.number for t in front]
    assert json.loads((out / "p.json").read_text())[0]["number"] == front[0].number
    assert (out / "r.html").stat().st_size > 100_000 and f"report: {out / 'r.html'}" in result.output


def test_pareto_all_exports_every_trial_and_default_report_path(demo, tmp_path, monkeypatch):
    study, url = demo
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app, ["pareto", "demo", "--storage", url, "--json", "all.json", "--all", "--ref", "0,1e6,100"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "all.json").read_text())
    assert [r["state"] for r in rows].count("PRUNED") == 2 and len(rows) == len(study.trials)
    # not the default storage (studies/demo.db): the report is named after the storage too
    report = tmp_path / "reports" / "demo@demo.html"
    assert f"report: {report.relative_to(tmp_path)}" in result.output
    assert "params=1e+06" in report.read_text() and f"storage: <code>{url}</code>" in report.read_text()


def test_a_front_of_one_is_one_trial(tmp_path):
    _, url = make_study(tmp_path, trials=[(None, {"block": {"name": "multidilated"}}, 50.0, "COMPLETE", 2)])
    result = runner.invoke(app, ["pareto", "demo", "--storage", url, "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "Pareto set of study 'demo' (1 trial)" in result.output
    assert "multidilated/conv7 32x1" in result.output  # the design column names the sampled design


def test_one_study_name_in_two_storages_gets_two_reports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    make_study(tmp_path / "studies", "demo")
    _, other = make_study(tmp_path / "studies", "other")
    with optuna.storages.RDBStorage(other).engine.begin() as conn:  # the study "demo" in other.db
        conn.exec_driver_sql("UPDATE studies SET study_name = 'demo'")
    outputs = [runner.invoke(app, ["pareto", "demo", *args]) for args in ([], ["--storage", other])]
    assert [r.exit_code for r in outputs] == [0, 0], [r.output for r in outputs]
    own, copy = tmp_path / "reports" / "demo.html", tmp_path / "reports" / "demo@other.html"
    assert (
        "report: reports/demo.html" in outputs[0].output
        and "report: reports/demo@other.html" in outputs[1].output
    )
    assert (
        "<code>sqlite:///studies/demo.db</code>" in own.read_text()
        and f"<code>{other}</code>" in copy.read_text()
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["pareto", "nope"], "storage sqlite:///studies/nope.db: no such file"),
        (["pareto", "other", "--storage", "{url}"], "no study named 'other' (found: demo)"),
        (
            ["pareto", "demo", "--storage", "{url}", "--ref", "1,2"],
            "--ref: expected 3 comma-separated numbers",
        ),
        (["export", "demo", "--storage", "{url}", "--out", "x"], "expected exactly one of --trial N"),
        (
            ["export", "demo", "--storage", "{url}", "--out", "x", "--trial", "1", "--pareto"],
            "expected exactly one",
        ),
        (["export", "demo", "--storage", "{url}", "--out", "x", "--trial", "99"], "no trial number 99"),
        (["dashboard", "nope", "--port", "0"], "studies/nope.db: no such file"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(demo, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [a.replace("{url}", demo[1]) for a in args])
    assert result.exit_code == 2, result.output
    # besides the line saying which study it opened (hpo.study_location), one error line
    lines = [line for line in result.output.strip().splitlines() if not line.startswith("study 'demo' in ")]
    # a message wraps at $COLUMNS, its continuation lines indented: one message all the same
    assert lines and lines[0].startswith("error: ") and all(line.startswith("  ") for line in lines[1:]), (
        result.output
    )
    assert message in " ".join(line.strip() for line in lines), result.output
    assert not (tmp_path / "studies").exists()  # a typo must not create an empty study database


def test_empty_study_is_a_one_line_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'e.db'}"
    optuna.create_study(study_name="e", storage=url, directions=["maximize", "minimize", "minimize"])
    result = runner.invoke(app, ["pareto", "e", "--storage", url])
    assert (
        result.exit_code == 2
        and "expected at least one COMPLETE trial, but found no trials at all" in result.output
    )


def test_export_pareto_and_single_trials(demo, tmp_path):
    study, url = demo
    result = runner.invoke(
        app, ["export", "demo", "--storage", url, "--pareto", "--out", str(tmp_path / "p")]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == sorted(
        f"trial_{t.number}.yaml" for t in pareto_trials(study)
    )
    result = runner.invoke(
        app,
        ["export", "demo", "--storage", url, "--trial", "0", "--trial", "6", "--out", str(tmp_path / "t")],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == [
        str(tmp_path / "t" / "trial_0.yaml"),
        str(tmp_path / "t" / "trial_6.yaml"),
    ]
    assert f"study 'demo' in {demo[1]}: " in result.stderr  # which storage it read
    assert yaml.safe_load((tmp_path / "t" / "trial_0.yaml").read_text())["model"]["stem"]["channels"] == 8


def test_dashboard_publishes_prints_the_url_and_stops_on_ctrl_c(tmp_path, monkeypatch):
    study, url = make_study(tmp_path)
    seen = {}

    def interrupted(self, poll_interval=0.5):
        seen["address"] = self.server_address
        raise KeyboardInterrupt

    monkeypatch.setattr(WSGIServer, "serve_forever", interrupted)
    result = runner.invoke(app, ["dashboard", "demo", "--storage", url, "--port", "0"])
    assert result.exit_code == 0, result.output
    host, port = seen["address"]
    assert host == "127.0.0.1" and port > 0
    assert f"open http://127.0.0.1:{port}/dashboard/studies/1" in result.output
    assert f"published figures: {', '.join(FIGURE_IDS)}" in result.output
    attrs = compat.study_storage(study).get_study_system_attrs(compat.study_id(study))
    assert any(k.startswith("dashboard:plot_data:hpo-cost-model:") for k in attrs)


def test_pareto_at_80_columns_prints_every_number_in_full_and_the_searched_lr(tmp_path):
    study, url = make_study(tmp_path)
    attrs, seconds = trial_attrs({"features": 16}, 60.0, 6, "COMPLETE")
    attrs["config"]["schedule"]["lr"] = 3.2e-3  # the same design as trial 7, another learning rate
    study.add_trial(optuna.trial.create_trial(values=[60.0, attrs["params"], seconds - 1], user_attrs=attrs))
    result = CliRunner(env={"COLUMNS": "80"}).invoke(
        app,
        [
            "pareto",
            "demo",
            "--storage",
            url,
            "--html",
            str(tmp_path / "r.html"),
            "--csv",
            str(tmp_path / "p.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("\nwrote ")[0].splitlines()  # the table (paths below may be long)
    assert max(len(line) for line in lines) <= 80, result.output
    for t in pareto_trials(study):
        assert f"{t.values[0]:.2f}" in result.output and f"{t.user_attrs['params']:,}" in result.output
    assert "lr" in lines[1].split() or "lr=0.0032" in result.output
    assert "0.0032" in result.output and "0.001" in result.output
    assert "design" in lines[1]  # some rows have one
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert {"schedule.lr", "model.block.name", "model.features"} <= set(rows[0])


def test_pareto_wide_and_columns(demo, tmp_path):
    _, url = demo
    args = ["pareto", "demo", "--storage", url, "--html", str(tmp_path / "r.html")]
    narrow = CliRunner(env={"COLUMNS": "80"})

    def header(result):
        assert result.exit_code == 0, result.output
        return result.stdout.splitlines()[1].split()

    assert "GFLOPs" not in header(narrow.invoke(app, args))
    assert "GFLOPs" in header(narrow.invoke(app, [*args, "--wide"]))
    assert header(narrow.invoke(app, [*args, "--columns", "layers,sep"]))[-2:] == ["layers", "sep"]
    result = narrow.invoke(app, [*args, "--columns", "speed"])
    assert result.exit_code == 2 and "error: --columns: unknown column 'speed'" in result.output


def test_export_onnx_writes_a_checked_network_beside_each_yaml(demo, tmp_path):
    import onnxruntime as ort

    study, url = demo
    out = tmp_path / "o"
    result = runner.invoke(
        app, ["export", "demo", "--storage", url, "--trial", "0", "--trial", "4", "--out", str(out), "--onnx"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == [
        str(out / f"trial_{n}.{ext}") for n in (0, 4) for ext in ("yaml", "onnx")
    ]
    assert "UNTRAINED" in result.stderr
    session = ort.InferenceSession(str(out / "trial_4.onnx"), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.shape == [1, 3, 64, 64]
    (heatmaps,) = session.run(None, {inp.name: np.zeros((1, 3, 64, 64), np.float32)})
    assert heatmaps.shape == (1, 16, 16, 16)


def test_export_onnx_without_the_deploy_extra_is_one_line(demo, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    study, url = demo
    result = runner.invoke(
        app, ["export", "demo", "--storage", url, "--trial", "0", "--out", str(tmp_path / "x"), "--onnx"]
    )
    assert result.exit_code == 2
    assert (
        result.output.strip().splitlines()[-1]
        == 'error: export --onnx needs the deploy extra (missing: onnxruntime): pip install -e ".[deploy]"'
    )
    assert not (tmp_path / "x").exists()
