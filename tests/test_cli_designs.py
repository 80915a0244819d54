import json

from typer.testing import CliRunner

from hpo.cli import app

runner = CliRunner()


def test_designs_json_lists_all_eleven_with_baseline_params():
    result = runner.invoke(app, ["designs", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert len(rows) == 11 and rows["baseline"]["params"] == 6_730_912
    # the reference study's parameter column, in millions, to its printed precision
    study = {"baseline": 6.73, "patchify": 6.72, "noskip": 6.69, "dwsep_all": 2.92, "dwsep_mid": 2.80,
             "conv_two": 17.95}
    for name, millions in study.items():
        assert abs(rows[name]["params"] / 1e6 - millions) <= 0.01, name
    assert {"name", "params", "flops", "layers"} <= set(rows["baseline"])


def test_designs_table_and_timing(tmp_path):
    space = tmp_path / "one.yaml"
    space.write_text("base: {features: 16, depth: 1, stem: {channels: 4}}\ndesigns: {tiny: {}}\n")
    result = runner.invoke(app, ["designs", "--space", str(space), "--time", "1", "--input-size", "32"])
    assert result.exit_code == 0, result.output
    assert "tiny" in result.output and "step s" in result.output


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
