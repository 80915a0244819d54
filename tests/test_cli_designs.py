import json
import sys

from typer.testing import CliRunner

from hpo.cli import app

runner = CliRunner()


def test_designs_json_lists_all_eleven_with_baseline_params():
    result = runner.invoke(app, ["designs", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert len(rows) == 11 and rows["baseline"]["params"] == 6_730_912
    # the reference study's parameter column, in millions, to its printed precision
    study = {
        "baseline": 6.73,
        "patchify": 6.72,
        "noskip": 6.69,
        "dwsep_all": 2.92,
        "dwsep_mid": 2.80,
        "conv_two": 17.95,
    }
    for name, millions in study.items():
        assert abs(rows[name]["params"] / 1e6 - millions) <= 0.01, name
    assert {"name", "params", "flops", "layers"} <= set(rows["baseline"])


def test_designs_table_and_timing(tmp_path):
    space = tmp_path / "one.yaml"
    space.write_text("base: {features: 16, depth: 1, stem: {channels: 4}}\ndesigns: {tiny: {}}\n")
    result = runner.invoke(app, ["designs", "--space", str(space), "--time", "1", "--input-size", "32"])
    assert result.exit_code == 0, result.output
    assert "tiny" in result.output and "step s" in result.output


def test_designs_table_fits_80_columns_with_every_number_in_full():
    result = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["designs"])
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80, result.output
    rows = {r["name"]: r for r in json.loads(runner.invoke(app, ["designs", "--json"]).output)}
    for name, row in rows.items():
        assert name in result.output and f"{row['params']:,}" in result.output, name
    assert "…" not in result.output


def test_bad_design_is_one_line_and_exit_2(tmp_path):
    space = tmp_path / "bad.yaml"
    space.write_text("base: {}\ndesigns:\n  x: {block: {name: nope}}\n")
    result = runner.invoke(app, ["designs", "--space", str(space)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "designs.x.block.name" in lines[0] and "'bottleneck'" in lines[0]
    assert "Traceback" not in result.output


def test_malformed_yaml_names_file_and_line(tmp_path):
    space = tmp_path / "broken.yaml"
    space.write_text("base: {\ndesigns: [\n")
    result = runner.invoke(app, ["designs", "--space", str(space)])
    assert result.exit_code == 2 and "broken.yaml: malformed YAML at line" in result.output


def _three(tmp_path):
    space = tmp_path / "three.yaml"
    space.write_text(
        "base: {features: 16, depth: 1, stem: {channels: 4}}\n"
        "designs: {plain: {}, dw: {block: {separable: all}}, p4: {stem: {name: patch4}}}\n"
    )
    return space


def test_designs_latency_and_onnx(tmp_path):
    space = _three(tmp_path)
    args = [
        "designs",
        "--space",
        str(space),
        "--input-size",
        "32",
        "--latency",
        "--runs",
        "2",
        "--onnx",
        str(tmp_path / "o"),
    ]
    result = CliRunner(env={"COLUMNS": "80"}).invoke(app, [*args, "--time", "1"])
    assert result.exit_code == 0, result.output
    # every measured column fits 80 columns, no figure cut short
    assert max(len(line) for line in result.output.splitlines()) <= 80 and "…" not in result.output, (
        result.output
    )
    assert "ORT 1t" in result.output and "torch" in result.output and "load average" in result.output
    assert "Spearman rho (n=3) vs params / flops / layers:" in result.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["dw.onnx", "p4.onnx", "plain.onnx"]
    rows = json.loads(runner.invoke(app, [*args[:-2], "--json"]).output)
    assert [r["name"] for r in rows] == ["plain", "dw", "p4"]  # whatever the file holds, in its order
    for r in rows:
        assert (
            r["ort_1t_ms"] > 0
            and r["ort_all_ms"] > 0
            and r["torch_ms"] > 0
            and r["onnx_max_abs_diff"] <= 1e-4
        )


def test_designs_latency_without_the_deploy_extra_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    result = runner.invoke(app, ["designs", "--space", str(_three(tmp_path)), "--latency"])
    assert result.exit_code == 2
    assert (
        result.output.strip()
        == 'error: --latency needs the deploy extra (missing: onnx): pip install -e ".[deploy]"'
    )
