"""Opening Optuna storages from a URL, with one-line errors and passwords kept out of logs.

``sqlite:///path.db`` (single worker, the default), ``postgresql+psycopg://...`` (many
workers, with heartbeats so a vanished worker's trial is failed and retried), or
``journal:///path.log`` (the journal file backend, for sites that only share NFS).
"""

from __future__ import annotations

import copy
import os
import re
import warnings
from pathlib import Path

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalStorage

from hourglass.errors import ConfigError

__all__ = [
    "open_storage", "load_study", "redact_url", "default_storage_url", "is_sqlite", "heartbeat_settings",
    "RetryStaleTrial", "HEARTBEAT_S", "GRACE_S", "MAX_RETRY", "FAILURE_ATTRS",
]

HEARTBEAT_S = 10  # a running trial's worker writes a heartbeat this often (env HPO_HEARTBEAT_S)
GRACE_S = 30  # ... and is declared dead this long after its last one (env HPO_GRACE_S)
MAX_RETRY = 3  # a trial whose worker died is re-queued at most this often (env HPO_MAX_RETRY)
# user attrs about one attempt (how it ended, who ran it): a retry starts clean without them
FAILURE_ATTRS = ("fail_reason", "traceback", "pruned_at_epoch", "prune_reason", "worker")

_PASSWORD = re.compile(r"(?P<head>://[^:/@]+:)[^@]*(?P<tail>@)")


def redact_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    return _PASSWORD.sub(r"\g<head>***\g<tail>", url)


def default_storage_url(study_name: str, folder: str | Path = "studies") -> str:
    return f"sqlite:///{Path(folder) / f'{study_name}.db'}"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def _env_int(name: str, default: int, low: int) -> int:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise ConfigError(f"environment variable {name}: expected an integer >= {low}, but got {text!r}")
    return value


def heartbeat_settings(heartbeat_s: int | None = None, grace_s: int | None = None,
                       max_retry: int | None = None) -> tuple[int, int, int]:
    """(heartbeat interval, grace period, max retries): the arguments, else the environment
    (``HPO_HEARTBEAT_S``, ``HPO_GRACE_S``, ``HPO_MAX_RETRY``), else the module defaults.

    The environment is how a launcher (``hpo run --workers``, a test, a batch script) tunes
    every worker process at once; the grace period must exceed the interval, or a healthy
    worker between two beats would look dead."""
    beat = heartbeat_s if heartbeat_s is not None else _env_int("HPO_HEARTBEAT_S", HEARTBEAT_S, 1)
    grace = grace_s if grace_s is not None else _env_int("HPO_GRACE_S", max(GRACE_S, 2 * beat), 1)
    retry = max_retry if max_retry is not None else _env_int("HPO_MAX_RETRY", MAX_RETRY, 0)
    if grace <= beat:
        raise ConfigError(f"heartbeat: expected a grace period > the interval ({beat} s), but got {grace} s")
    return beat, grace, retry


class RetryStaleTrial(RetryHeartbeatStaleTrialCallback):
    """Optuna's stale-trial retry (same params, same ``failed_trial``/``retry_history`` system
    attrs, inherited user attrs and intermediate values), minus the attrs that say how the
    dead attempt ended: the retry must not look failed or pruned before it has run."""

    def __init__(self, max_retry: int | None = MAX_RETRY) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            super().__init__(max_retry=max_retry, inherit_intermediate_values=True)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        clean = copy.deepcopy(trial)
        clean.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in FAILURE_ATTRS}
        super().__call__(study, clean)


def open_storage(url: str, *, heartbeat: bool = False, max_retry: int | None = None,
                 heartbeat_s: int | None = None, grace_s: int | None = None) -> BaseStorage:
    """Open (and create) the storage behind ``url``.

    ``heartbeat=True`` turns on Optuna's heartbeat for RDB storages: a trial whose worker
    stops beating for the grace period is marked FAIL by the next worker that looks
    (``optuna.storages.fail_stale_trials``, run before every trial) and re-queued, up to
    ``max_retry`` times, with the same params (:class:`RetryStaleTrial`). Settings: see
    :func:`heartbeat_settings`. The journal backend has no heartbeat: a dead worker's trial
    stays RUNNING there.
    """
    shown = redact_url(url)
    warnings.filterwarnings("ignore", category=ExperimentalWarning, module="hpo")
    if url.startswith("journal://"):
        path = Path(url.removeprefix("journal://"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise ConfigError(f"storage {shown}: cannot open the journal file ({exc})") from None
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    elif "://" not in url:
        raise ConfigError(
            f"storage {shown!r}: expected a URL like sqlite:///studies/x.db, "
            "postgresql+psycopg://user@host/db or journal:///path/x.log"
        )
    kwargs = {}
    if heartbeat:
        beat, grace, retry = heartbeat_settings(heartbeat_s, grace_s, max_retry)
        kwargs = dict(heartbeat_interval=beat, grace_period=grace,
                      heartbeat_stale_trial_callback=RetryStaleTrial(max_retry=retry))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats are "experimental"
            return RDBStorage(url, engine_kwargs={"pool_pre_ping": True}, **kwargs)
    except Exception as exc:  # SQLAlchemy/driver errors: bad URL, unreachable server, missing driver
        reason = " ".join(str(exc).split())[:200].replace(url, shown)
        raise ConfigError(f"storage {shown}: cannot connect ({exc.__class__.__name__}: {redact_url(reason)})") from None


def load_study(name: str, url: str) -> optuna.Study:
    """An existing study, or a one-line error listing the studies that do exist there."""
    storage = open_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise ConfigError(
            f"storage {redact_url(url)}: no study named {name!r} (found: {', '.join(names) or 'none'})"
        ) from None
