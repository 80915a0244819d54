"""Opening Optuna storages from a URL, with one-line errors and passwords kept out of logs.

``sqlite:///path.db`` (single worker, the default), ``postgresql+psycopg://...`` (many
workers, with heartbeats so a vanished worker's trial is failed and retried), or
``journal:///path.log`` (the journal file backend, for sites that only share NFS), or
``grpc://host:port`` (an ``hpo storage-proxy`` in front of one database: hundreds of workers
without hundreds of database connections). Database and proxy storages retry what a
restart or failover breaks (:mod:`hpo.storage_retry`); workers that start together create
the schema and the study under one lock (:func:`creation_lock`).
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import logging
import os
import re
import socket
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import optuna
import sqlalchemy
import sqlalchemy.exc as sa_exc
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalStorage

from hourglass.errors import ConfigError, exception_chain
from hpo import record as rec
from hpo.storage_proxy import open_proxy
from hpo.storage_retry import (
    HEARTBEAT_ATTR,
    RetryingStorage,
    StorageUnavailable,
    is_permanent,
    is_transient,
    server_words,
    storage_grace_s,
)

__all__ = [
    "open_storage",
    "load_study",
    "redact_url",
    "default_storage_url",
    "resolve_storage",
    "is_sqlite",
    "storage_file",
    "heartbeat_settings",
    "RetryStaleTrial",
    "HEARTBEAT_S",
    "GRACE_S",
    "MAX_RETRY",
    "FAILURE_ATTRS",
    "creation_lock",
    "single_runner",
    "probe_storage",
]

T = TypeVar("T")
DEFAULT_FOLDER = "studies"  # where default_storage_url puts a study (created when missing)
_LOCK_KEY = 0x68706F5F  # the PostgreSQL advisory lock of study creation ("hpo_")
_HELD: set[str] = set()  # creation locks this process holds (re-entrant)
_log = logging.getLogger("hpo.storage")

HEARTBEAT_S = 10  # a running trial's worker writes a heartbeat this often (env HPO_HEARTBEAT_S)
GRACE_S = 30  # ... and is declared dead this long after its last one (env HPO_GRACE_S)
MAX_RETRY = 3  # a trial whose worker died is re-queued at most this often (env HPO_MAX_RETRY)
# user attrs about one attempt (how it ended, who ran it): a retry starts clean without them
FAILURE_ATTRS = (rec.FAIL_REASON, rec.TRACEBACK, rec.PRUNED_AT_EPOCH, rec.PRUNE_REASON, rec.WORKER)

_PASSWORD = re.compile(r"(?P<head>://[^:/@]+:)[^@]*(?P<tail>@)")


def redact_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    return _PASSWORD.sub(r"\g<head>***\g<tail>", url)


def resolve_storage(value: str, where: str = "storage") -> str:
    """A storage URL, or what ``env:NAME`` (an environment variable) or ``file:PATH`` (the
    first line of a file, e.g. one only its owner may read) holds: a preset can then name
    a password-protected database without holding the password."""
    if value.startswith("env:"):
        name = value.removeprefix("env:")
        url = os.environ.get(name, "").strip()
        if not url:
            raise ConfigError(f"{where}: {value}: environment variable {name} is not set")
        return url
    if value.startswith("file:") and not value.startswith("file://"):
        path = Path(value.removeprefix("file:")).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").split("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: {value}: cannot read it ({exc.__class__.__name__})") from None
        if not lines[0].strip():
            raise ConfigError(f"{where}: {value}: expected a storage URL on its first line, but it is empty")
        return lines[0].strip()
    return value


def default_storage_url(study_name: str, folder: str | Path = DEFAULT_FOLDER) -> str:
    return f"sqlite:///{Path(folder) / f'{study_name}.db'}"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def storage_file(url: str) -> Path | None:
    """The file a SQLite or journal storage lives in (relative to the working directory
    unless absolute: ``journal:///abs.log``), None for a database server or a proxy."""
    for scheme in ("sqlite:///", "journal://"):
        if url.startswith(scheme):
            return Path(url.removeprefix(scheme))
    return None


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


def heartbeat_settings(
    heartbeat_s: int | None = None, grace_s: int | None = None, max_retry: int | None = None
) -> tuple[int, int, int]:
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
        clean.system_attrs = {k: v for k, v in trial.system_attrs.items() if k != HEARTBEAT_ATTR}
        super().__call__(study, clean)


def _missing_driver(exc: BaseException) -> bool:
    return any(isinstance(e, (ImportError, sa_exc.NoSuchModuleError)) for e in exception_chain(exc))


def _connect_error(url: str, exc: BaseException) -> ConfigError:
    """The one-line message for a storage that cannot be opened, in the server's own words."""
    shown = redact_url(url)
    if _missing_driver(exc):
        hint = 'pip install -e ".[postgres]"' if url.startswith("postgres") else "install the database driver"
        return ConfigError(f"storage {shown}: the database driver is not installed; {hint}")
    words = redact_url(server_words(exc).replace(url, shown))
    return ConfigError(f"storage {shown}: {words}{_create_hint(url, words)}")


def _create_hint(url: str, words: str) -> str:
    """How to create a PostgreSQL database the server says does not exist."""
    if not url.startswith("postgres") or not re.search(r'database "[^"]*" does not exist', words):
        return ""
    u = sqlalchemy.make_url(url)
    flags = "".join(
        f" {flag} {value}" for flag, value in (("-h", u.host), ("-p", u.port), ("-U", u.username)) if value
    )
    return f"; create it with: createdb{flags} {u.database}"


def _check_folder(url: str, path: Path) -> None:
    """A typo in a storage path must not silently start a new study somewhere else: the
    folder of a SQLite/journal file must exist (the default ``studies/`` is created)."""
    folder = path.parent
    if folder == Path(DEFAULT_FOLDER):
        folder.mkdir(parents=True, exist_ok=True)
    elif not folder.is_dir():
        raise ConfigError(
            f"storage {redact_url(url)}: folder {folder} does not exist (create it, or fix the path)"
        )


def _with_retries(url: str, grace_s: float, make: Callable[[], T]) -> T:
    """``make()``, repeated with backoff for ``grace_s`` on transient errors (a server
    restarting, a connection dropped while two workers start). A permanent error (a host
    name that does not resolve, a missing database, a refused password) is a
    :class:`ConfigError` at once; a server that never answered within ``grace_s`` is
    :class:`StorageUnavailable` (exit code 75: start the worker again later)."""
    start, delay = time.monotonic(), 0.5
    while True:
        try:
            return make()
        except Exception as exc:  # SQLAlchemy/driver errors: bad URL, unreachable server, missing driver
            # IntegrityError: a schema created by another process at the same moment (no lock: MySQL ...)
            again = is_transient(exc) or isinstance(exc, sa_exc.IntegrityError)
            if _missing_driver(exc) or is_permanent(exc) or not again:
                raise _connect_error(url, exc) from None
            waited = time.monotonic() - start
            if waited >= grace_s:
                shown = redact_url(url)
                words = redact_url(server_words(exc).replace(url, shown))
                raise StorageUnavailable(
                    f"storage {shown}: cannot connect, no answer for {waited:.0f} s (grace "
                    f"period {grace_s:g} s, HPO_STORAGE_GRACE_S): {words}"
                ) from None
            if delay == 0.5:
                _log.warning(
                    "storage %s: cannot connect yet (%s); retrying for up to %g s (HPO_STORAGE_GRACE_S)",
                    redact_url(url),
                    exc.__class__.__name__,
                    grace_s,
                )
            time.sleep(min(delay, max(grace_s - waited, 0.0)))
            delay = min(2 * delay, 5.0)


@contextlib.contextmanager
def creation_lock(url: str, *, wait: bool = True) -> Iterator[None]:
    """Serialize schema and study creation among workers that start at the same moment.

    PostgreSQL: a session-level advisory lock (held by one extra connection, released when
    it closes, even if the process dies); SQLite/journal files: ``flock`` on the file
    itself. Re-entrant within a process; other storages (the gRPC proxy) take no lock:
    Optuna's own ``create_study(load_if_exists=True)`` already survives that race."""
    if url in _HELD or not (url.startswith(("postgresql", "sqlite:///", "journal://"))):
        yield
        return
    with contextlib.ExitStack() as stack:
        if url.startswith("postgresql"):
            # open_storage retries the whole creation (wait=False); a launcher retries the lock
            conn = (
                _with_retries(url, storage_grace_s(), lambda: _advisory_lock(url))
                if wait
                else _advisory_lock(url)
            )
            stack.callback(_close, conn)
        else:
            path = Path(url.removeprefix("sqlite:///").removeprefix("journal://"))
            _check_folder(url, path)
            handle = stack.enter_context(open(path, "ab"))
            fcntl.flock(handle, fcntl.LOCK_EX)
        _HELD.add(url)
        stack.callback(_HELD.discard, url)
        yield


@contextlib.contextmanager
def single_runner(url: str) -> Iterator[None]:
    """While entered, no other process may run trials on the SQLite file of ``url``.

    SQLite serializes writers, and two processes sampling one study train the same designs
    twice, so a second ``hpo run``/``hpo worker`` on it is refused at once (one line,
    exit 2). The lock is ``flock`` on ``<file>.lock`` beside the database, holding the
    owner's pid: the kernel releases it when the process dies (a stale file is taken
    over), and the file is removed on a clean exit. Other storages are not locked."""
    if not url.startswith("sqlite:///"):
        yield
        return
    db = Path(url.removeprefix("sqlite:///"))
    _check_folder(url, db)
    lock = db.with_name(f"{db.name}.lock")
    while True:
        handle = open(lock, "a+")  # noqa: SIM115 (held for the whole block)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise ConfigError(
                f"storage {redact_url(url)}: {owner} is running this study; SQLite takes one "
                "process at a time (wait for it, or share the study through PostgreSQL)"
            ) from None
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()  # the owner removed it between our open and our lock: take the new file
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        yield
    finally:
        lock.unlink(missing_ok=True)  # before unlocking: a waiting process re-checks the inode
        handle.close()


def _advisory_lock(url: str) -> sqlalchemy.Connection:
    """A new connection holding the creation lock (blocks while another process holds it)."""
    conn = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool).connect()
    conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
    return conn


def _close(conn: sqlalchemy.Connection) -> None:
    """Close the lock's connection (which releases the lock); a dead one has nothing to close."""
    try:
        conn.close()
        conn.engine.dispose()
    except Exception:  # terminated by the server: the lock went with it
        pass


def open_storage(
    url: str,
    *,
    heartbeat: bool = False,
    max_retry: int | None = None,
    heartbeat_s: int | None = None,
    grace_s: int | None = None,
    wait: bool | None = None,
) -> BaseStorage:
    """Open (and create) the storage behind ``url``.

    ``heartbeat=True`` turns on Optuna's heartbeat for RDB storages: a trial whose worker
    stops beating for the grace period is marked FAIL by the next worker that looks
    (``optuna.storages.fail_stale_trials``, run before every trial) and re-queued, up to
    ``max_retry`` times, with the same params (:class:`RetryStaleTrial`). Settings: see
    :func:`heartbeat_settings`. The journal backend has no heartbeat: a dead worker's trial
    stays RUNNING there; the gRPC proxy gets heartbeats from :mod:`hpo.storage_retry`.

    Database and proxy storages come wrapped in :class:`~hpo.storage_retry.RetryingStorage`.
    ``wait`` (default: ``heartbeat``, i.e. a worker) also retries the first connection for
    the storage grace period, so that workers outlive a database that is restarting.
    """
    shown = redact_url(url)
    warnings.filterwarnings("ignore", category=ExperimentalWarning, module="hpo")
    wait = heartbeat if wait is None else wait
    grace = storage_grace_s() if wait else 0.0
    if url.startswith("journal://"):
        path = Path(url.removeprefix("journal://"))
        _check_folder(url, path)
        try:
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise ConfigError(f"storage {shown}: cannot open the journal file ({exc})") from None
    if url.startswith("sqlite:///"):
        _check_folder(url, Path(url.removeprefix("sqlite:///")))
    elif "://" not in url:
        raise ConfigError(
            f"storage {shown!r}: expected a URL like sqlite:///studies/x.db, "
            "postgresql+psycopg://user@host/db, journal:///path/x.log or grpc://host:port"
        )
    beats = heartbeat_settings(heartbeat_s, grace_s, max_retry) if heartbeat else None
    if url.startswith("grpc://"):
        own = (beats[0], beats[1], RetryStaleTrial(max_retry=beats[2])) if beats else None
        return RetryingStorage(open_proxy(url, wait_s=grace), heartbeat=own)
    kwargs = {}
    if beats:
        kwargs = dict(
            heartbeat_interval=beats[0],
            grace_period=beats[1],
            heartbeat_stale_trial_callback=RetryStaleTrial(max_retry=beats[2]),
        )

    def make() -> RDBStorage:
        with creation_lock(url, wait=False), warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats are "experimental"
            return RDBStorage(url, engine_kwargs={"pool_pre_ping": True}, **kwargs)

    return RetryingStorage(_with_retries(url, grace, make))


def probe_storage(url: str, *, wait: bool = True) -> None:
    """Open a database or proxy storage once, so that a typo, a missing database or a
    refused password is told before anything heavy (torch, the data) is loaded; for a file
    (SQLite, journal) only its folder is checked."""
    if url.startswith(("sqlite:///", "journal://")):
        _check_folder(url, Path(url.removeprefix("sqlite:///").removeprefix("journal://")))
    elif "://" in url:
        open_storage(url, wait=wait)


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
