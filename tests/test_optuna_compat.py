"""hpo.optuna_compat: every private Optuna name the project uses, checked against the
installed Optuna. A failure here after an upgrade means: re-check each name in
hpo/optuna_compat.py against the new Optuna, then move TESTED_WITH and the pin together."""

import re
import tomllib
from pathlib import Path

import optuna
import pytest

from hpo import optuna_compat as compat
from hpo.storage_retry import RetryingStorage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_pinned_to_the_optuna_these_names_were_checked_against():
    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["dependencies"] if re.match(r"optuna\s*==", d)]
    assert pins == [f"optuna=={compat.TESTED_WITH}"], (
        "pyproject's optuna pin and TESTED_WITH must move together"
    )
    assert optuna.__version__ == compat.TESTED_WITH, (
        f"Optuna {optuna.__version__} is installed; hpo.optuna_compat was checked against "
        f"{compat.TESTED_WITH}"
    )


@pytest.mark.parametrize("url", [None, "sqlite"])
def test_a_study_its_storage_and_its_trial_ids(tmp_path, url):
    storage = (
        optuna.storages.InMemoryStorage()
        if url is None
        else optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=60)
    )
    study = optuna.create_study(study_name="compat", storage=storage)
    seen = compat.study_storage(study)  # Optuna may wrap an RDB storage in its cache
    assert isinstance(seen, optuna.storages.BaseStorage) and (seen is storage or seen._backend is storage)
    assert compat.study_id(study) == storage.get_study_id_from_name("compat")
    trial = study.ask()
    study.tell(trial, 1.0)
    tid = storage.get_trial_id_from_study_id_trial_number(compat.study_id(study), trial.number)
    assert compat.trial_id(trial) == tid == compat.trial_id(study.trials[0])
    assert compat.runs_heartbeats(storage) == compat.runs_heartbeats(seen) == (url is not None)


def test_the_heartbeat_hooks_retrying_storage_implements_are_optunas():
    """RetryingStorage is a BaseHeartbeat so that Optuna runs heartbeats through it: the
    methods it overrides must be the ones Optuna's heartbeat code calls."""
    hooks = {
        "record_heartbeat",
        "_get_stale_trial_ids",
        "get_heartbeat_interval",
        "get_heartbeat_stale_trial_callback",
    }
    assert hooks <= set(compat.BaseHeartbeat.__abstractmethods__)
    storage = RetryingStorage(
        optuna.storages.InMemoryStorage(),
        grace_s=0,
        heartbeat=(1, 2, optuna.storages.RetryHeartbeatStaleTrialCallback()),
    )
    assert compat.runs_heartbeats(storage)
    assert optuna.storages._heartbeat.is_heartbeat_enabled(storage)  # Optuna starts its thread for it


def test_optunas_private_names_are_reached_only_through_this_module():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    private = re.compile(r"\._(storage|study_id|trial_id)\b|optuna\.storages\._")
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for package in ("hpo", "hourglass")
        for path in sorted((root / package).rglob("*.py"))
        if path.name != "optuna_compat.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if private.search(line)
    ]
    assert offenders == []
