"""Storage calls that survive a database or proxy restart: retry with backoff, then give up.

A PostgreSQL failover, ``pg_terminate_backend`` or a restarted ``hpo storage-proxy`` breaks
the connections a worker holds. Optuna's storages turn that into an exception from whatever
call came next (a heartbeat, ``set_user_attr`` inside the objective, the final ``tell``),
which used to cost the trial (FAIL, not retried), the heartbeat thread or the worker.
:class:`RetryingStorage` wraps a storage and repeats every call that failed for a transient
reason (a lost connection, never a bad value) with exponential backoff for up to the
storage grace period (``HPO_STORAGE_GRACE_S``, default 60 s), counted from the first
failure of the outage (whichever call or heartbeat met it) and reset by the next answer;
after that it raises :class:`StorageUnavailable`, which the CLI turns into one line and
exit code 75. Connection errors that waiting cannot heal (:func:`is_permanent`) are told
at once when a storage is opened (:mod:`hpo.storage`).

Repeating a write whose commit did get through before the connection died is harmless here:
user/system attrs, params and intermediate values are overwrites; a repeated final
``set_trial_state_values`` that finds the trial already in that state counts as done; a
trial created twice is a RUNNING trial nobody runs, which the trial loop fails and re-queues
(:func:`hpo.trial_loop._fail_silent_trials`).

Heartbeats: a beat that cannot be written is skipped (logged once), never raised, so
Optuna's heartbeat thread cannot die of it; the next beat tries again. A storage without
its own heartbeat (Optuna's gRPC proxy has none) gets one here: each beat is the trial
system attr :data:`HEARTBEAT_ATTR` (a Unix time), and a RUNNING trial is stale when neither
that nor its start is within the grace period (worker clocks must agree to a few seconds).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Container, Sequence
from typing import Any

import optuna
import sqlalchemy.exc as sa_exc
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from hourglass.errors import ConfigError, HourglassError, exception_chain
from hpo import optuna_compat as compat

__all__ = [
    "RetryingStorage",
    "StorageUnavailable",
    "is_transient",
    "is_permanent",
    "server_words",
    "storage_grace_s",
    "STORAGE_GRACE_S",
    "EXIT_STORAGE_UNAVAILABLE",
    "HEARTBEAT_ATTR",
]

STORAGE_GRACE_S = 60.0  # how long a worker keeps retrying a storage that does not answer
EXIT_STORAGE_UNAVAILABLE = 75  # EX_TEMPFAIL: a scheduler may simply start the worker again
HEARTBEAT_ATTR = "hpo:heartbeat"  # trial system attr: the last beat (Unix time), proxy storages only
_MAX_DELAY_S = 5.0
_log = logging.getLogger("hpo.storage")

# gRPC status codes (names) after which a call is repeated: the proxy is restarting or
# its own database call failed (UNKNOWN: an exception inside the proxy)
_GRPC_TRANSIENT = {
    "UNAVAILABLE",
    "DEADLINE_EXCEEDED",
    "UNKNOWN",
    "INTERNAL",
    "ABORTED",
    "RESOURCE_EXHAUSTED",
    "CANCELLED",
}
_SQL_TRANSIENT = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.PendingRollbackError,
    sa_exc.ResourceClosedError,
    sa_exc.TimeoutError,
)


class StorageUnavailable(HourglassError):
    """The storage did not answer for the whole grace period: the worker gives up."""

    exit_code = EXIT_STORAGE_UNAVAILABLE


def storage_grace_s(value: float | None = None) -> float:
    """The argument, else ``HPO_STORAGE_GRACE_S``, else 60 s (0: no retries at all)."""
    if value is None:
        text = os.environ.get("HPO_STORAGE_GRACE_S", "")
        try:
            value = float(text) if text else STORAGE_GRACE_S
        except ValueError:
            value = -1.0
        where = f"environment variable HPO_STORAGE_GRACE_S ({text!r})"
    else:
        where = f"--storage-grace ({value})"
    if not value >= 0:
        raise ConfigError(f"{where}: expected a number of seconds >= 0")
    return float(value)


def is_transient(exc: BaseException) -> bool:
    """A lost connection (SQLAlchemy/driver or gRPC), not a bad value or a missing study."""
    for e in exception_chain(exc):
        if isinstance(e, StorageUnavailable):
            return False
        if isinstance(e, _SQL_TRANSIENT) or getattr(e, "connection_invalidated", False):
            return True
        if type(e).__module__.startswith("psycopg") and type(e).__name__ in (
            "OperationalError",
            "InterfaceError",
        ):
            return True
        code = getattr(e, "code", None)
        if type(e).__module__.startswith("grpc") and callable(code):
            return getattr(code(), "name", "") in _GRPC_TRANSIENT
    return False


# What a connection attempt says when waiting cannot help: a host name that does not resolve
# (EAI_NONAME, not the EAI_AGAIN of a DNS hiccup), a missing database or role, a refused
# password or client. psycopg gives no SQLSTATE for a failed connection, so its text decides.
_PERMANENT = re.compile(
    r"Name or service not known|nodename nor servname|No address associated with hostname|Unknown host"
    r'|database "[^"]*" does not exist|role "[^"]*" does not exist|password authentication failed'
    r"|no password supplied|no pg_hba\.conf entry|authentication failed",
    re.IGNORECASE,
)


def is_permanent(exc: BaseException) -> bool:
    """A connection error that waiting will not heal (see :data:`_PERMANENT`)."""
    return any(_PERMANENT.search(str(e)) for e in exception_chain(exc))


def server_words(exc: BaseException) -> str:
    """What the server (or the driver) said, on one line, without SQLAlchemy's wrapping:
    ``FATAL:  database "x" does not exist`` -> ``database "x" does not exist``."""
    chain = exception_chain(exc)
    inner = chain[-1] if len(chain) > 1 else getattr(exc, "orig", None) or exc
    text = " ".join(str(inner).split("\n(Background")[0].split())
    if "FATAL:" in text:
        text = text.rsplit("FATAL:", 1)[1].strip()
    elif text.startswith("connection failed: "):
        text = text.removeprefix("connection failed: ")
    return text or exc.__class__.__name__


def _retried(name: str) -> Callable[..., Any]:
    def call(self: RetryingStorage, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, *args, **kwargs)

    call.__name__ = name
    call.__doc__ = f"``{name}`` of the wrapped storage, repeated while the storage is unreachable."
    return call


class RetryingStorage(BaseStorage, compat.BaseHeartbeat):
    """``inner`` with every call repeated on transient errors (see the module docstring).

    ``heartbeat`` = (interval, grace period, stale-trial callback) gives heartbeats to an
    ``inner`` that has none (the gRPC proxy); an ``inner`` with its own (RDBStorage) keeps them.
    ``on_retry(attempt, exc)`` is told of every failed attempt (tests, logs)."""

    def __init__(
        self,
        inner: BaseStorage,
        *,
        grace_s: float | None = None,
        heartbeat: tuple[int, int, Callable[[optuna.Study, FrozenTrial], None]] | None = None,
    ) -> None:
        self.inner = inner
        self.grace_s = storage_grace_s(grace_s)
        self._own_heartbeat = heartbeat if not compat.runs_heartbeats(inner) else None
        # The outage clock: when the first failure of the current outage happened (monotonic),
        # shared by every call and thread and reset by the next success, so that the grace
        # period counts from when the storage stopped answering, not from each call's start.
        self._outage_lock = threading.Lock()
        self._outage_since: float | None = None
        self.gave_up = 0  # how many calls gave up (the trial loop checks it after each trial)
        self.retries = 0  # failed attempts that were repeated
        self.last_error: StorageUnavailable | None = None  # the last give-up

    # ---- the retry loop --------------------------------------------------------------------
    def _answered(self) -> None:
        with self._outage_lock:
            self._outage_since = None

    def _failed(self) -> float:
        """Note a failed attempt; seconds since the outage began (0 for its first failure)."""
        now = time.monotonic()
        with self._outage_lock:
            if self._outage_since is None:
                self._outage_since = now
            return now - self._outage_since

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        delay = 0.25
        attempt = 0
        while True:
            try:
                result = getattr(self.inner, name)(*args, **kwargs)
                self._answered()
                return result
            except UpdateFinishedTrialError:
                if attempt and name == "set_trial_state_values" and self._already_told(*args, **kwargs):
                    return True  # the first attempt was committed before its connection died
                raise
            except Exception as exc:
                if not is_transient(exc):
                    raise
                waited = self._failed()
                if waited >= self.grace_s:
                    self.gave_up += 1
                    reason = f"{exc.__class__.__name__}: {server_words(exc)}"
                    self.last_error = StorageUnavailable(
                        f"storage unreachable for {waited:.0f} s (grace period {self.grace_s:g} s, "
                        f"HPO_STORAGE_GRACE_S); last error in {name}: {reason}"
                    )
                    raise self.last_error from None
                if attempt == 0:
                    _log.warning(
                        "storage: %s failed (%s); retrying for up to %g s",
                        name,
                        exc.__class__.__name__,
                        self.grace_s,
                    )
                attempt += 1
                self.retries += 1
                self._reset()
                time.sleep(min(delay, max(self.grace_s - waited, 0.0)))
                delay = min(2 * delay, _MAX_DELAY_S)

    def _reset(self) -> None:
        """Drop this thread's session, so the next attempt starts on a fresh connection."""
        try:
            self.inner.remove_session()
        except Exception:  # the session's connection is gone: nothing left to release
            pass

    def _already_told(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        trial = self.inner.get_trial(trial_id)
        return trial.state == state and (values is None or list(trial.values or []) == list(values))

    for _name in (
        "create_new_study",
        "delete_study",
        "set_study_user_attr",
        "set_study_system_attr",
        "get_study_id_from_name",
        "get_study_name_from_id",
        "get_study_directions",
        "get_study_user_attrs",
        "get_study_system_attrs",
        "get_all_studies",
        "create_new_trial",
        "set_trial_param",
        "get_trial_id_from_study_id_trial_number",
        "get_trial_number_from_id",
        "get_trial_param",
        "set_trial_state_values",
        "set_trial_intermediate_value",
        "set_trial_user_attr",
        "set_trial_system_attr",
        "get_trial",
        "get_trial_params",
        "get_trial_user_attrs",
        "get_trial_system_attrs",
        "get_n_trials",
        "get_best_trial",
    ):
        locals()[_name] = _retried(_name)
    del _name

    def get_all_trials(
        self, study_id: int, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        return self._call("get_all_trials", study_id, deepcopy=deepcopy, states=states)

    def remove_session(self) -> None:
        self._reset()

    # ---- heartbeats ------------------------------------------------------------------------
    @property
    def grace_period(self) -> int | None:
        """The heartbeat grace period (what :mod:`hpo.trial_loop` reads)."""
        own = self._own_heartbeat
        return own[1] if own else getattr(self.inner, "grace_period", None)

    def get_heartbeat_interval(self) -> int | None:
        if self._own_heartbeat:
            return self._own_heartbeat[0]
        return self.inner.get_heartbeat_interval() if compat.runs_heartbeats(self.inner) else None

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        if self._own_heartbeat:
            return self._own_heartbeat[2]
        return self.inner.get_heartbeat_stale_trial_callback() if compat.runs_heartbeats(self.inner) else None

    def record_heartbeat(self, trial_id: int) -> None:
        """One beat; a failed one is skipped (the thread lives on and beats again)."""
        try:
            if self._own_heartbeat:
                self.inner.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
            elif compat.runs_heartbeats(self.inner):
                self.inner.record_heartbeat(trial_id)
            self._answered()
        except UpdateFinishedTrialError:
            return  # another worker declared the trial dead and re-queued it: nothing to beat for
        except Exception as exc:
            if not is_transient(exc):
                raise
            self.retries += 1
            self._failed()  # an outage begins when the first call fails, a beat included
            self._reset()
            _log.warning(
                "storage: a heartbeat of trial id %d failed (%s); beating again later",
                trial_id,
                exc.__class__.__name__,
            )

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        if not self._own_heartbeat:
            return self._call("_get_stale_trial_ids", study_id)
        now, grace = time.time(), self._own_heartbeat[1]
        stale = []
        for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = t.system_attrs.get(HEARTBEAT_ATTR)
            if beat is None:
                continue  # never beat: like Optuna's, left to the silent-trial check
            started = t.datetime_start.timestamp() if t.datetime_start else 0.0
            if now - max(float(beat), started) > grace:
                stale.append(compat.trial_id(t))
        return stale
