"""The results of a study are read once: ``hpo pareto`` on a PostgreSQL study of 1,000
trials (table, CSV of every trial, HTML report) and an export of its Pareto set each read
the trials in one storage call, however many figures and rows they make."""

from __future__ import annotations

import collections
import functools
import inspect
import random
import warnings

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from hpo import record as rec
from hpo.cli import app
from hpo.export import export_trials
from hpo.pareto import StudySnapshot
from hpo.storage import load_study
from hpo.table import table_rows
from tests.study_factory import DIRECTIONS, OBJECTIVES, SPACE, TRIALS, trial_attrs
from tests.workers_support import fresh_pg  # noqa: F401  (fixture)

N_TRIALS = 1000


def _fill(url: str, name: str) -> None:
    """1,000 trials shaped like the objective writes them (the study factory's designs,
    each PCKh jittered), added in one go."""
    study = optuna.create_study(study_name=name, storage=url, directions=DIRECTIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(OBJECTIVES)
    rng = random.Random(0)
    trials = []
    for k in range(N_TRIALS):
        design, over, pckh, state, epochs = TRIALS[k % len(TRIALS)]
        pckh = None if pckh is None else pckh + rng.uniform(-5, 5)
        attrs, seconds = trial_attrs(over, pckh, epochs, state)
        if design:
            attrs[rec.DESIGN] = design
        model = attrs[rec.CONFIG]["model"]
        params = {
            "stacks": model["stacks"],
            "features": model["features"],
            "block": model["block"]["name"],
            "separable": model["block"]["separable"],
            "dilation": model["block"]["dilation"],
        }
        values = [pckh, attrs[rec.PARAMS], seconds] if state == "COMPLETE" else None
        trials.append(
            optuna.trial.create_trial(
                state=TrialState[state], values=values, user_attrs=attrs, params=params, distributions=SPACE
            )
        )
    study.add_trials(trials)


@pytest.fixture
def counted(monkeypatch):
    """Calls per method of the PostgreSQL storage (every read and write a worker or a
    report makes goes through one of them)."""
    calls: collections.Counter[str] = collections.Counter()
    cls = optuna.storages.RDBStorage
    for name, method in vars(cls).items():
        if inspect.isfunction(method) and not name.startswith("_"):

            def counting(*args, _name=name, _method=method, **kwargs):
                calls[_name] += 1
                return _method(*args, **kwargs)

            monkeypatch.setattr(cls, name, functools.wraps(method)(counting))
    return calls


def test_a_report_on_a_postgres_study_of_1000_trials_reads_the_trials_once(fresh_pg, tmp_path, counted):
    url, _, _ = fresh_pg
    _fill(url, "big")
    study = load_study("big", url)
    assert len(study.trials) == N_TRIALS
    counted.clear()

    out = CliRunner().invoke(
        app,
        [
            "pareto",
            "big",
            "--storage",
            url,
            "--all",
            "--csv",
            str(tmp_path / "all.csv"),
            "--html",
            str(tmp_path / "big.html"),
        ],
        env={"COLUMNS": "80"},
    )
    assert out.exit_code == 0, out.output
    assert (tmp_path / "big.html").stat().st_size > 0 and "Pareto set of study 'big'" in out.output
    assert counted["get_all_trials"] == 1, dict(counted)  # table, every row, every figure: one read
    assert sum(counted.values()) <= 10, dict(counted)  # and a handful of study-level calls

    counted.clear()
    snap = StudySnapshot.of(load_study("big", url))
    rows = table_rows(snap)
    paths = export_trials(snap, None, tmp_path / "export")
    assert len(rows) == len(snap.complete) > 0 and len(paths) == len(snap.front) > 0
    assert counted["get_all_trials"] == 1, dict(counted)
