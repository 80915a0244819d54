"""HPO_STORAGE read by every command that opens a study, and a warning for a password on
the command line (issue 27): the README's `export HPO_STORAGE=...; hpo run ... --workers 2`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.workers_support import ROOT, fresh_pg, worker_env, write_preset  # noqa: F401


def _hpo(args, cwd, url, timeout=900):
    env = {**worker_env(HPO_HEARTBEAT_S="2", HPO_GRACE_S="10"), "HPO_STORAGE": url, "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "hpo", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_hpo_storage_reaches_run_with_workers_pareto_export_and_dashboard(tmp_path, fresh_pg):
    url, _, _ = fresh_pg
    preset = write_preset(tmp_path, "envstudy", trials=2, epochs=1, rows=120)
    run = _hpo(["run", str(preset), "--workers", "2", "--quiet"], tmp_path, url)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "started 2 workers on postgresql" in run.stdout
    pareto = _hpo(["pareto", "envstudy"], tmp_path, url)
    assert pareto.returncode == 0 and "Pareto set of study 'envstudy'" in pareto.stdout, pareto.stderr
    # a study outside the default SQLite file gets its report named by its storage (hpo.report)
    assert list((tmp_path / "reports").glob("envstudy@*.html"))
    export = _hpo(["export", "envstudy", "--pareto", "--out", str(tmp_path / "out")], tmp_path, url)
    assert export.returncode == 0 and list((tmp_path / "out").glob("trial_*.yaml")), export.stderr

    env = {**worker_env(), "HPO_STORAGE": url}
    dash = subprocess.Popen(
        [sys.executable, "-m", "hpo", "dashboard", "envstudy", "--port", "0", "--no-publish"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        line = ""
        while not line.startswith("open http://") and time.monotonic() < deadline:
            line = dash.stdout.readline()
            assert line or dash.poll() is None, "the dashboard exited"
        base = line.split()[1].split("/dashboard/")[0]
        with urllib.request.urlopen(f"{base}/api/studies", timeout=30) as resp:
            names = [s["study_name"] for s in json.loads(resp.read())["study_summaries"]]
        assert names == ["envstudy"]
    finally:
        dash.kill()
        dash.wait(timeout=30)


def test_a_password_on_the_command_line_gets_a_warning(tmp_path):
    url = "postgresql+psycopg://hpo:hunter2-pw@127.0.0.l:5432/db"
    done = subprocess.run(
        [sys.executable, "-m", "hpo", "pareto", "s", "--storage", url],
        cwd=tmp_path,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    warning, error = done.stderr.strip().splitlines()
    assert warning.startswith("warning: --storage holds a password") and "HPO_STORAGE" in warning
    assert error.startswith("error: ") and done.returncode == 2 and "hunter2" not in done.stderr
    quiet = subprocess.run(
        [sys.executable, "-m", "hpo", "pareto", "s"],
        cwd=tmp_path,
        env={**worker_env(), "HPO_STORAGE": url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "warning" not in quiet.stderr and quiet.returncode == 2  # from the environment: nothing to warn of
