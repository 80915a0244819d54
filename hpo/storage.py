"""Opening Optuna storages from a URL, with one-line errors and passwords kept out of logs.

``sqlite:///path.db`` (single worker, the default), ``postgresql+psycopg://...`` (many
workers, with heartbeats so a vanished worker's trial is failed and retried), or
``journal:///path.log`` (the journal file backend, for sites that only share NFS).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalStorage

from hourglass.errors import ConfigError

__all__ = ["open_storage", "load_study", "redact_url", "default_storage_url", "HEARTBEAT_S", "GRACE_S"]

HEARTBEAT_S = 10
GRACE_S = 30

_PASSWORD = re.compile(r"(?P<head>://[^:/@]+:)[^@]*(?P<tail>@)")


def redact_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    return _PASSWORD.sub(r"\g<head>***\g<tail>", url)


def default_storage_url(study_name: str, folder: str | Path = "studies") -> str:
    return f"sqlite:///{Path(folder) / f'{study_name}.db'}"


def open_storage(url: str, *, heartbeat: bool = False, max_retry: int = 2) -> BaseStorage:
    """Open (and create) the storage behind ``url``.

    ``heartbeat=True`` turns on Optuna's heartbeat for RDB storages: a trial whose worker
    stops beating for ``GRACE_S`` seconds is marked FAIL by the next worker and re-queued
    (up to ``max_retry`` times) with ``RetryHeartbeatStaleTrialCallback``, inheriting
    its intermediate values.
    """
    shown = redact_url(url)
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
    warnings.filterwarnings("ignore", category=ExperimentalWarning, module="hpo")
    if heartbeat:
        kwargs = dict(
            heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                max_retry=max_retry, inherit_intermediate_values=True
            ),
        )
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
