"""hpo.bench.table: the grid, the study that trains it, the file and its checks."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from table_factory import SPACE_DOC, make_table, make_table_doc
from typer.testing import CliRunner

from hourglass.errors import ConfigError
from hpo.bench.table import SEED_PARAM, grid_trials, load_table, write_table
from hpo.cli import app
from hpo.space import SearchSpace

runner = CliRunner()


def test_grid_trials_are_every_point_times_every_seed_seed_outermost():
    trials = grid_trials(SearchSpace.from_dict(SPACE_DOC))
    assert len(trials) == 2 * 2 * 2 * 2 * 2 * 2
    assert len({json.dumps(t, sort_keys=True) for t in trials}) == len(trials)
    assert [t[SEED_PARAM] for t in trials[:32]] == [0] * 32  # a partial run has whole seeds


def test_grid_trials_collapse_knobs_a_block_does_not_take():
    doc = {
        **SPACE_DOC,
        "params": {
            "model.block.name": {"choices": ["bottleneck", "multidilated"]},
            "model.block.separable": {"choices": ["none", "all"]},
            SEED_PARAM: {"choices": [0]},
        },
    }
    trials = grid_trials(SearchSpace.from_dict(doc))
    assert len(trials) == 3  # bottleneck x 2 separable modes + multidilated (takes no separable knob)


def test_grid_trials_refuse_a_range_and_a_space_without_seeds():
    ranged = {
        **SPACE_DOC,
        "params": {**SPACE_DOC["params"], "schedule.lr": {"type": "float", "low": 1e-3, "high": 1e-2}},
    }
    with pytest.raises(ConfigError, match="schedule.lr: the bench table needs a space of `choices` only"):
        grid_trials(SearchSpace.from_dict(ranged))
    seedless = {**SPACE_DOC, "params": {k: v for k, v in SPACE_DOC["params"].items() if k != SEED_PARAM}}
    with pytest.raises(ConfigError, match="needs a schedule.seed param"):
        grid_trials(SearchSpace.from_dict(seedless))


def test_shipped_bench_space_has_at_least_150_points():
    trials = grid_trials(SearchSpace.load("search_spaces/bench_tiny.yaml"))
    points = {json.dumps({k: v for k, v in t.items() if k != SEED_PARAM}, sort_keys=True) for t in trials}
    assert len(points) >= 150 and len(trials) == 2 * len(points)


def test_table_round_trip(tmp_path):
    table = load_table(make_table(tmp_path / "t.json.gz"))
    assert table.epochs == 9 and table.seeds == (0, 1) and len(table.points) == 32
    assert set(table.points[0].runs) == {0, 1} and len(table.points[0].runs[1]["pckh"]) == 9
    assert table.search_space().names == tuple(k for k in SPACE_DOC["params"] if k != SEED_PARAM)


def _write_raw(path: Path, doc) -> Path:
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(doc))
    return path


def _broken(kind: str) -> dict:
    doc = make_table_doc()
    if kind == "kind":
        doc["kind"] = "something else"
    elif kind == "short_curve":
        doc["points"][3]["runs"]["1"]["pckh"] = doc["points"][3]["runs"]["1"]["pckh"][:4]
    elif kind == "nan":
        doc["points"][0]["runs"]["0"]["time_s"][2] = float("nan")
    elif kind == "missing_seed":
        del doc["points"][5]["runs"]["1"]
    elif kind == "epochs":
        doc["epochs"] = 0
    return doc


@pytest.mark.parametrize(
    "kind, message",
    [
        ("kind", "expected kind 'hourglass-hpo bench table'"),
        ("short_curve", r"points\[3\]: runs\[1\].pckh: expected 9 finite numbers"),
        ("nan", r"points\[0\]: runs\[0\].time_s: expected 9 finite numbers"),
        ("missing_seed", r"points\[5\]: no run for seed 1"),
        ("epochs", "epochs: expected an integer >= 1, but got 0"),
    ],
)
def test_load_refuses_a_malformed_table_in_one_line(tmp_path, kind, message):
    path = _write_raw(tmp_path / "bad.json.gz", _broken(kind))
    with pytest.raises(ConfigError, match=message) as info:
        load_table(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_load_refuses_a_file_that_is_not_gzipped_json(tmp_path):
    path = tmp_path / "bad.json.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ConfigError, match="cannot read it as \\(gzipped\\) JSON"):
        load_table(path)
    with pytest.raises(ConfigError, match="no such bench table"):
        load_table(tmp_path / "missing.json.gz")


def test_cli_refuses_a_malformed_table_in_one_line_exit_2(tmp_path):
    path = _write_raw(tmp_path / "bad.json.gz", _broken("missing_seed"))
    result = runner.invoke(
        app, ["bench-search", "--table", str(path), "--seeds", "1", "--json", str(tmp_path / "o.json")]
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"error: {path}: not a bench table: points[5]: no run for seed 1"]


def test_write_table_is_byte_stable(tmp_path):
    doc = make_table_doc()
    a, b = write_table(doc, tmp_path / "a.json.gz"), write_table(doc, tmp_path / "b.json.gz")
    assert a.read_bytes() == b.read_bytes()


# ----------------------------------------------------------------------------- the study
PRESET = """
objectives: [pckh]
sampler: {name: random}
pruner: {name: none}
budget: {trials: 4}
data: synthetic:40:64:0
space: space.yaml
schedule: {epochs: 2, batch_size: 8, eval_flip: false, augment: false}
"""
SPACE = """
base:
  model: {stacks: 1, features: 16, depth: 2, joints: 16, input_size: 64, block: {name: conv2}, stem: {name: patch4, channels: 8}}
params:
  model.block.skip: {choices: [true, false]}
  schedule.seed: {choices: [0, 1]}
"""


def test_bench_table_trains_the_grid_once_resumes_and_exports(tmp_path):
    (tmp_path / "space.yaml").write_text(SPACE)
    preset = tmp_path / "grid.yaml"
    preset.write_text(PRESET + f"storage: sqlite:///{tmp_path / 'grid.db'}\n")
    out = tmp_path / "table.json.gz"
    result = runner.invoke(app, ["bench-table", str(preset), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "4 trials (points x seeds), 0 finished, 4 enqueued now" in result.output
    table = load_table(out)
    assert len(table.points) == 2 and table.seeds == (0, 1) and table.epochs == 2
    skips = {p.params["model.block.skip"] for p in table.points}
    assert skips == {True, False}
    for p in table.points:
        assert p.config["model"]["block"]["skip"] == p.params["model.block.skip"]  # retrainable as is
        assert p.costs["params"] > 0 and all(
            run["time_s"][1] > run["time_s"][0] > 0 for run in p.runs.values()
        )
    again = runner.invoke(app, ["bench-table", str(preset), "--out", str(out), "--quiet"])
    assert again.exit_code == 0, again.output
    assert "4 trials (points x seeds), 4 finished, 0 enqueued now" in again.output


def test_check_transfer_retrains_points_and_compares(tmp_path):
    (tmp_path / "space.yaml").write_text(SPACE)
    preset = tmp_path / "grid.yaml"
    preset.write_text(PRESET + f"storage: sqlite:///{tmp_path / 'grid.db'}\n")
    space_doc = {
        "base": {
            "model": {
                "stacks": 1,
                "features": 16,
                "depth": 2,
                "joints": 16,
                "input_size": 64,
                "block": {"name": "conv2"},
                "stem": {"name": "patch4", "channels": 8},
            }
        },
        "params": {
            "model.block.skip": {"choices": [True, False]},
            "model.features": {"choices": [16, 24]},
            SEED_PARAM: {"choices": [0, 1]},
        },
    }
    (tmp_path / "space.yaml").write_text(json.dumps(space_doc))  # JSON is YAML
    out = tmp_path / "table.json.gz"
    assert runner.invoke(app, ["bench-table", str(preset), "--out", str(out), "--quiet"]).exit_code == 0
    check = tmp_path / "transfer.json"
    result = runner.invoke(
        app,
        [
            "bench-table",
            str(preset),
            "--out",
            str(out),
            "--check-transfer",
            "3",
            "--check-json",
            str(check),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(check.read_text())
    assert doc["seed"] == 2 and doc["n"] == 3 and len(doc["points"]) == 3
    assert all(len(r["table_final"]) == 2 and 0.0 <= r["live_final"] <= 100.0 for r in doc["points"])
    assert "over 3 points" in result.output


def test_bench_table_adds_seeds_to_a_table_and_resumes(tmp_path):
    (tmp_path / "space.yaml").write_text(SPACE)
    preset = tmp_path / "grid.yaml"
    preset.write_text(PRESET + f"storage: sqlite:///{tmp_path / 'grid.db'}\n")
    out = tmp_path / "table.json.gz"
    assert runner.invoke(app, ["bench-table", str(preset), "--out", str(out), "--quiet"]).exit_code == 0
    before = load_table(out)
    seeds_db = f"sqlite:///{tmp_path / 'seeds.db'}"
    add = ["bench-table", str(preset), "--out", str(out), "--seeds", "2", "--storage", seeds_db, "--quiet"]
    # nothing trained yet: the table is left as it was, and the command says how to go on
    waiting = runner.invoke(app, [*add, "--export-only"])
    assert waiting.exit_code == 0, waiting.output
    assert "0 of 2 points done; run again" in waiting.output and load_table(out).seeds == (0, 1)
    result = runner.invoke(app, add)
    assert result.exit_code == 0, result.output
    assert "2 trials (points x seeds), 0 finished, 2 enqueued now" in result.output
    after = load_table(out)
    assert after.seeds == (0, 1, 2) and len(after.points) == len(before.points)
    for old, new in zip(before.points, after.points):
        assert (
            new.runs[0] == old.runs[0] and new.runs[1] == old.runs[1]
        )  # the recorded seeds kept as they were
        assert new.runs[2]["loss"] != old.runs[0]["loss"]  # a new training (another seed)
    again = runner.invoke(app, add)
    assert again.exit_code == 2 and "already holds seeds [2]" in again.output
    assert len(again.output.strip().splitlines()) == 1


def test_a_field_added_since_the_table_was_written_is_the_same_design():
    # seeds trained after the schedule gained steps_per_epoch (None: a full pass) merge into a
    # table written before it; a set value is another design
    from hpo.bench.table import point_key

    before = {"model": {"stacks": 1}, "schedule": {"lr": 0.003, "seed": 0}}
    after = {"model": {"stacks": 1}, "schedule": {"lr": 0.003, "seed": 2, "steps_per_epoch": None}}
    assert point_key(before) == point_key(after)
    assert point_key(before) != point_key({**after, "schedule": {**after["schedule"], "steps_per_epoch": 5}})
    assert point_key(before) != point_key({**before, "model": {"stacks": 2}})
