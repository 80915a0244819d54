"""Table 1 of a study: rows, the 80-column text, CSV/Markdown, and the published figures."""

import csv

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial
from typer.testing import CliRunner

from hourglass.errors import ConfigError
from hpo.cli import app
from hpo.published import PUBLISHED
from hpo.record import PCKH_JOINTS
from hpo.table import JOINT_COLUMNS, format_table, published_rho, table_rows, write_table

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

DESIGNS = ["baseline", "hg_weights_07_03", "conv_two", "dwsep_two_dilated"]
DIST = {"design": CategoricalDistribution(DESIGNS)}


def _joints(mean: float) -> dict[str, float]:
    return {col: mean + i for i, col in enumerate(JOINT_COLUMNS[:-1])} | {"Mean": mean}


def _study(url: str = "sqlite:///:memory:") -> optuna.Study:
    study = optuna.create_study(study_name="t1", storage=url, directions=["maximize", "minimize", "minimize"])
    study.set_metric_names(["pckh", "params", "train_time"])
    # added out of the designs file's order: the table puts them back in it
    for design, mean, params, seconds in [
        ("conv_two", 60.0, 17_954_528, 300.0),
        ("baseline", 50.0, 6_730_912, 100.0),
        ("hg_weights_07_03", 40.0, 6_730_912, 110.0),
    ]:
        study.add_trial(
            create_trial(
                params={"design": design},
                distributions=DIST,
                values=[mean, params, seconds],
                user_attrs={PCKH_JOINTS: _joints(mean), "params": params, "wall_time_s": seconds + 1},
            )
        )
    study.add_trial(
        create_trial(  # no per-joint results recorded: blank cells, not a guess
            params={"design": "dwsep_two_dilated"},
            distributions=DIST,
            values=[33.0, 2_373_856, 50.0],
            user_attrs={"params": 2_373_856},
        )
    )
    study.add_trial(
        create_trial(
            params={"design": "baseline"},
            distributions=DIST,
            state=TrialState.PRUNED,
            user_attrs={"params": 6_730_912},
        )
    )
    return study


def test_rows_follow_the_designs_file_and_time_is_relative_to_baseline():
    rows = table_rows(_study())
    assert [r["design"] for r in rows] == ["baseline", "hg_weights_07_03", "dwsep_two_dilated", "conv_two"]
    base, weighted, old, conv = rows
    assert base["Head"] == 50.0 and base["Ankle"] == 56.0 and base["Mean"] == 50.0
    assert base["train_time_s"] == 100.0  # the train_time objective, not the wall time beside it
    assert conv["time_vs_baseline"] == pytest.approx(3.0) and weighted["time_vs_baseline"] == pytest.approx(
        1.1
    )
    assert old["Mean"] is None and old["Head"] is None
    assert "pub_Mean" not in base


def test_text_table_fits_80_columns_and_shows_published_lines():
    rows = table_rows(_study(), published=True)
    text = format_table(rows)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0].split()[:10] == [
        "design",
        "Head",
        "Sho",
        "Elb",
        "Wri",
        "Hip",
        "Knee",
        "Ank",
        "Mean",
        "params",
    ]
    base = lines[2].split()
    assert base[0] == "baseline" and base[8] == "50.0" and base[9] == "6.73M" and base[-1] == "1.00x"
    # the study's whole row: joints, Mean 77.84, 6.73M, 2h30min; hg_weights_07_03 printed no costs
    assert lines[3].split() == [
        "published",
        "93.2",
        "89.2",
        "79.1",
        "72.6",
        "76.9",
        "69.7",
        "62.7",
        "77.8",
        "6.73M",
        "2h30m",
        "1.00x",
    ]
    assert lines[5].split() == ["published", "90.3", "81.7", "69.2", "58.9", "66.9", "56.6", "49.5", "67.8"]
    assert lines[9].split()[-3:] == ["17.95M", "2h10m", "0.87x"]  # conv_two: 130 / 150 min
    assert rows[0]["pub_Mean"] == PUBLISHED["baseline"]["Mean"] == 77.84 and rows[0]["pub_Head"] == 93.18


def test_published_rho_compares_the_design_orders():
    rows = table_rows(_study(), published=True)
    # ours: conv_two 60 > baseline 50 > hg_weights_07_03 40 > dwsep_two_dilated 33;
    # published: conv_two 78.52 > baseline 77.84 > dwsep_two_dilated 71.28 > hg_weights_07_03 67.84
    rho, p, n = published_rho(rows)
    assert n == 4 and rho == pytest.approx(0.8) and 0 < p < 1
    # (the design with no per-joint results counts with its pckh objective, the same Mean)
    flipped = [r | {"Mean": 100 - (r["Mean"] if r["Mean"] is not None else r["pckh"])} for r in rows]
    assert published_rho(flipped)[0] == pytest.approx(-0.8)
    # a design trained twice counts once, with its average: 80 and 20 average to 50
    twice = [*rows, rows[0] | {"Mean": 80.0}, rows[0] | {"Mean": 20.0}]
    assert published_rho(twice)[:2] == published_rho(rows)[:2] and published_rho(twice)[2] == 4
    assert published_rho(rows[:2]) is None  # fewer than 3 designs
    assert published_rho([r | {"Mean": 5.0} for r in rows]) is None  # constant: no order
    assert published_rho(table_rows(_study())) is None  # without the published figures


def test_csv_and_markdown_exports(tmp_path):
    rows = table_rows(_study(), published=True)
    got = list(csv.DictReader(write_table(rows, tmp_path / "t.csv").open()))
    assert [r["design"] for r in got] == [r["design"] for r in rows]
    assert float(got[0]["Wrist"]) == 53.0 and got[0]["pub_Mean"] == "77.84" and got[1]["pub_params_m"] == ""
    md = write_table(rows, tmp_path / "t.md", markdown=True).read_text().splitlines()
    assert md[0].startswith("| design | Head | Shoulder |") and "Mean (published)" in md[0]
    assert md[2].startswith("| baseline | 50.00 | 51.00 |") and "| 77.84 | 6.73M | 6.73M |" in md[2]
    assert len(md) == 2 + len(rows)


def test_no_complete_trial_is_a_one_line_error():
    study = optuna.create_study(directions=["maximize", "minimize"])
    with pytest.raises(ConfigError, match="no COMPLETE trial yet"):
        table_rows(study)


def test_cli_table_prints_and_exports(tmp_path):
    url = f"sqlite:///{tmp_path / 't1.db'}"
    _study(url)
    runner = CliRunner()
    out = tmp_path / "o"
    result = runner.invoke(
        app,
        [
            "table",
            "t1",
            "--storage",
            url,
            "--compare-published",
            "--csv",
            str(out / "t.csv"),
            "--markdown",
            str(out / "t.md"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Table 1 of study 't1'" in result.output and "published: reference study" in result.output
    assert "Spearman's rho to the published Mean order: +0.80 over 4 designs (p = 0.2)" in result.output
    assert "conv_two" in result.output and "17.95M" in result.output
    assert (out / "t.csv").is_file() and (out / "t.md").is_file()
    missing = runner.invoke(app, ["table", "nope", "--storage", f"sqlite:///{tmp_path / 'nope.db'}"])
    assert (
        missing.exit_code == 2
        and missing.output.startswith("error: storage")
        and "no such file" in missing.output
    )
