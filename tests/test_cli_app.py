"""The root app: start-up without torch, help texts, the interrupt message."""

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import hpo.study
import hpo.workers  # noqa: F401  (imported before a test patches hpo.study, so it keeps the real run_study)
from hpo.cli import app
from hpo.cli._app import show_progress
from tests.conftest import ROOT

runner = CliRunner(env={"COLUMNS": "120"})


def test_help_imports_no_torch():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hpo", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    modules = {
        line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")
    }
    assert "typer" in modules  # the probe sees imports at all
    assert not {m for m in modules if m == "torch" or m.startswith("torch.")}, "hpo --help imported torch"
    assert "Search stacked-hourglass" in out.stdout


@pytest.mark.parametrize("command", ["run", "pareto", "train", "worker", "export", "bench", "designs"])
def test_flags_show_no_type(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output and "--help" in result.output


def test_ctrl_c_in_hpo_run_says_how_to_resume(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(hpo.study, "run_study", interrupted)
    result = runner.invoke(app, ["run", "quickstart", "--n-trials", "1", "--workers", "1"])
    assert result.exit_code == 130
    assert "interrupted: run the same command again to resume" in result.output


def test_progress_bars_only_on_a_terminal(monkeypatch):
    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    monkeypatch.setattr(sys, "stderr", Stream(True))
    assert show_progress() and not show_progress(quiet=True)
    monkeypatch.setattr(sys, "stderr", Stream(False))
    assert not show_progress()
