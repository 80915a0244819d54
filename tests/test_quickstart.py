"""The quickstart preset's structure (``hpo run`` with no argument): what makes it finish many
designs within its budget and prune some of them visibly. Its timing is measured in
docs/quickstart.md, not here."""

from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from hourglass.data.synthetic import VAL_FRACTION
from hourglass.errors import ConfigError
from hpo.cli import app
from hpo.preset import load_preset, preset_storage
from hpo.pruning import ParetoHalvingPruner
from hpo.report import default_report_path
from hpo.savings import pruning_savings
from hpo.space import plan_seed_trials
from hpo.storage import open_storage
from hpo.strategy import create_pruner
from hpo.workers import check_workers, default_workers
from tests.workers_support import ROOT, write_preset

optuna.logging.set_verbosity(optuna.logging.WARNING)
runner = CliRunner()


@pytest.fixture(scope="module")
def quick():
    return load_preset("quickstart")


def test_it_runs_anywhere_offline(quick):
    assert quick.data.startswith("synthetic:") and quick.device in ("cpu", "auto")
    assert quick.objectives == ("pckh", "params", "train_time")


def test_two_local_workers_share_a_journal_file_that_results_commands_find(quick, tmp_path, monkeypatch):
    """Two designs train at once on a 2-core machine: two processes, so a storage that
    several processes can write (SQLite takes one); `hpo pareto quickstart` and the report
    must open that same study without a --storage."""
    assert quick.workers == 2 and default_workers(quick) == 2
    assert quick.storage == "journal://studies/quickstart.log"
    monkeypatch.chdir(tmp_path)
    assert preset_storage("quickstart") == quick.storage
    assert default_report_path("quickstart", quick.storage) == Path("reports/quickstart.html")
    # --storage sqlite:///... on the same preset runs one worker instead of failing
    assert default_workers(quick.replace(storage=f"sqlite:///{tmp_path / 'q.db'}")) == 1
    check_workers(quick.storage, quick.workers)  # a journal file takes both
    with pytest.raises(ConfigError, match="SQLite"):
        check_workers("sqlite:///studies/quickstart.db", quick.workers)


def test_epochs_are_short_rounds_over_a_large_training_set(quick):
    """Rungs come at epoch ends: an epoch of a fraction of the training split lets the pruner cut
    a design early, while enough generated people (not repeats of few) keep the seed at 60 %."""
    n = int(quick.data.split(":")[1])
    train_rows = n - round(VAL_FRACTION * n)
    s = quick.train_schedule
    per_epoch = s.steps_per_epoch * s.batch_size
    assert per_epoch <= train_rows // 2  # a rung after at most half a pass
    assert s.epochs * per_epoch >= 3 * train_rows  # a full trial still sees every person about 4 times
    assert list(s.milestones) == [s.epochs - 1]  # lr / 10 for the last epoch


def test_the_pruner_has_rungs_before_the_end_and_a_front_gain_rule(quick):
    pruner = create_pruner(quick)
    assert isinstance(pruner, ParetoHalvingPruner)
    rungs = pruner.rungs(quick.train_schedule.epochs - 1)  # the last epoch is never a rung
    assert rungs[0] == 1 and len(rungs) >= 2, rungs  # a design can be cut after its first epoch
    assert pruner.min_gain is not None and pruner.min_gain > 0
    assert quick.pruner.min_trials <= 3  # the rule starts early in a 10-design budget


def test_budget_and_sampler_fit_a_five_minute_run(quick):
    assert quick.budget.timeout_s is not None and quick.budget.timeout_s <= 300
    # 10 distinct designs are the goal; a copy of a completed design counts as a finished
    # trial, so the budget leaves room for a couple of them
    assert quick.budget.trials >= 12
    assert quick.sampler.name == "tpe"
    assert (
        1 <= quick.sampler.kwargs["n_startup_trials"] < quick.budget.trials // 2
    )  # TPE does most of the run


def test_the_known_good_seed_design_is_trial_zero(quick):
    plan = plan_seed_trials(quick.search_space(), quick.warm_start_file())
    assert not plan.skipped, plan.skipped
    assert len(plan.trials) == 1  # one anchor, then the sampler: the budget is for search
    _, params = plan.trials[0]
    study = optuna.create_study(directions=quick.directions)
    study.enqueue_trial(params)
    trial = study.ask()
    config = quick.train_config(quick.search_space().suggest(trial))
    assert trial.params == params  # the space expresses it exactly
    assert config.model.input_size == 64 and config.schedule.epochs == quick.train_schedule.epochs


@pytest.mark.slow
def test_a_preset_of_two_workers_runs_them_and_its_results_open_without_storage(tmp_path, monkeypatch):
    """What `hpo run` does with the quickstart's `workers: 2` and journal storage, on a tiny
    preset: two worker processes, each saying every epoch with --verbose; the closing lines
    count the designs over both; `hpo pareto NAME` then opens the same study by name."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    (tmp_path / "studies").mkdir()
    name = "two_workers"
    write_preset(
        tmp_path / "studies",
        name,
        trials=4,
        epochs=2,
        workers=2,
        storage=f"journal://studies/{name}.log",
        pruner={"name": "mo_halving", "min_epochs": 1, "eta": 2, "min_trials": 2, "min_gain": 0.9},
    )
    result = runner.invoke(app, ["run", name, "--verbose"])
    assert result.exit_code == 0, result.output
    assert result.output.count("worker done:") == 2
    # the launcher says once where the study is and that it is new; its workers do not repeat it
    assert result.output.count(f"study '{name}': not yet in journal://studies/{name}.log") == 1
    assert "resuming" not in result.output and f"study '{name}': new" not in result.output
    assert "] trial   0 epoch  1/2  PCKh" in result.output  # --verbose reached the workers
    assert "[w0] trial" in result.output and "[w1] trial" in result.output
    savings = pruning_savings(
        optuna.load_study(study_name=name, storage=open_storage(f"journal://studies/{name}.log")).trials
    )
    assert savings.designs + savings.copies >= 4
    assert "\n".join(savings.lines()) in result.output  # "pruning: ..." and "epochs: ... saved"
    assert "report:    reports/two_workers.html" in result.output
    assert f"dashboard: hpo dashboard {name}\n" in result.output  # no --storage: the preset says it
    shown = runner.invoke(app, ["pareto", name])
    assert shown.exit_code == 0, shown.output
    assert f"study '{name}' in journal://studies/{name}.log" in shown.output
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    missing = runner.invoke(app, ["pareto", name])
    assert missing.exit_code == 2 and "no such file" in missing.output
    assert not (elsewhere / "studies").exists()  # a read command creates no journal file
