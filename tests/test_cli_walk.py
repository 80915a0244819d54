"""A new user's walk through the CLI at ``COLUMNS=80``: every line it prints fits 80 columns.

Help texts, a study from start to resume (trial lines, the Pareto table, the closing
lines), Ctrl-C, errors, ``hpo pareto`` / ``export`` / ``train`` (the per-joint table) and
``hpo designs``, each run as a user runs it, from the folder the study lives in.
"""

from __future__ import annotations

import shutil

import pytest
import typer
from typer.testing import CliRunner

import hpo.study
import hpo.workers  # noqa: F401  (imported before the test patches hpo.study, so it keeps the real run_study)
from hourglass.designs import SEED_DESIGNS
from hpo.cli import app
from tests.workers_support import write_preset

pytestmark = pytest.mark.slow
WIDTH = 80
runner = CliRunner(env={"COLUMNS": str(WIDTH)})


def _help_commands() -> list[list[str]]:
    """``--help`` of the root, of every command and of every command of a sub-app."""
    root = typer.main.get_command(app)
    out = [["--help"]]
    for name, command in root.commands.items():
        out.append([name, "--help"])
        out += [[name, sub, "--help"] for sub in getattr(command, "commands", {})]
    return out


def test_every_line_of_the_walk_fits_80_columns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_preset(tmp_path, "walk", trials=2, epochs=2, rows=150)
    (tmp_path / "bad_space.yaml").write_text(
        "params:\n  model.block.name: {choices: [bottleneck, conv2, resnet]}\n  model.block.dilation: "
        "{choices: [1, 2]}\n"
    )
    write_preset(tmp_path, "typo", space="bad_space.yaml")
    shutil.copy(SEED_DESIGNS, tmp_path / "seeds.yaml")
    printed: dict[str, str] = {}

    def walk(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (args, result.output)
        printed[" ".join(args)] = result.output
        return result.output

    for args in _help_commands():
        walk(*args)
    first = walk("run", "walk.yaml", "--verbose")
    again = walk("run", "walk.yaml", "--n-trials", "1")
    walk("pareto", "walk", "--csv", "walk.csv")
    walk("export", "walk", "--trial", "0", "--out", "exported")
    trained = walk("train", "exported/trial_0.yaml", "--epochs", "1")
    designs = walk("designs", "--space", "seeds.yaml", "--input-size", "64")
    errors = [
        walk("run", "typo.yaml", code=2),
        walk("run", "no_such_preset", code=2),
        walk("pareto", "walk", "--columns", "speed", code=2),
        walk("run", "walk.yaml", "--storage", "studies/walk.db", code=2),
    ]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(hpo.study, "run_study", interrupted)
    ctrl_c = walk("run", "walk.yaml", code=130)

    too_wide = [
        (command, line) for command, out in printed.items() for line in out.splitlines() if len(line) > WIDTH
    ]
    assert not too_wide, "\n".join(
        f"{len(line)} columns, `hpo {command}`: {line}" for command, line in too_wide
    )
    # what the walk is about was printed at all (and the long lines are among it)
    assert "study 'walk': new" in first and " s wall  " in first and "Pareto set of study 'walk'" in first
    assert "train s: charged training time" in first and "report:    reports/walk.html" in first
    assert "study 'walk' resumed: 2 finished trials kept" in again
    assert "Total" in trained and "Shoulder" in trained and "s wall" in trained
    assert designs.splitlines()[0] == "designs in seeds.yaml at 64x64" and "conv_two" in designs
    # an error is one message starting "error: " (after the line naming the study it opened, if any)
    assert all(any(line.startswith("error: ") for line in out.splitlines()) for out in errors)
    assert "choices[2]: expected one of" in " ".join(errors[0].split())
    message = ctrl_c[ctrl_c.index("interrupted: ") :]  # after the line naming the study it opened
    assert (
        message.startswith("interrupted: run the same command again to resume")
        and len(message.splitlines()) > 1
    )
    assert len(printed) > 20
