"""Running trials until a study's budget is spent, without losing one when a worker stops.

Every worker of a study (``hpo run``, each ``hpo worker``) runs :func:`work`. It counts the
budget over the whole study (finished = COMPLETE or PRUNED, whoever ran them), so K workers
share N trials instead of running N each; it runs re-queued retries of dead workers' trials
even once the budget looks spent; and, with heartbeats on, it does not leave while another
worker's trial is still RUNNING, so the last worker standing retries a trial whose worker
died near the end instead of leaving it RUNNING forever.

Signals: SIGINT and SIGTERM become :class:`Interrupted`, a ``KeyboardInterrupt`` (so Optuna
marks the running trial FAIL and the training code's ``except Exception`` does not swallow
it). Inside a trial it is raised at once; elsewhere (while Optuna creates or tells a trial,
between trials) it is deferred to the next safe point, so a trial is never left half-told.
The interrupted trial is re-queued like a dead worker's, so running again resumes it from
its last checkpoint; the CLI exits with 128 + the signal number (130, 143).

Storage outages: the storage (:class:`hpo.storage_retry.RetryingStorage`) repeats every call
for its grace period. If it gives up inside a trial, the trial is re-queued when it ended
FAIL (or left to the heartbeats when still RUNNING) and the worker leaves with exit code 75.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import socket
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from hourglass.checkpoint import DiskFull
from hourglass.errors import HourglassError
from hpo import optuna_compat as compat
from hpo import record as rec
from hpo.storage import RetryStaleTrial, heartbeat_settings
from hpo.storage_retry import StorageUnavailable

__all__ = [
    "Interrupted",
    "SignalGuard",
    "TooManyFailures",
    "StudyCounts",
    "study_counts",
    "work",
    "retry_trial",
]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"  # user attr "worker": who ran (or last ran) a trial


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM reached a worker; its exit code is 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class TooManyFailures(HourglassError):
    """Several trials in a row failed: something is wrong with every design (data, device,
    code), and a worker that kept sampling would burn the budget producing FAIL trials."""


class SignalGuard:
    """While entered (main thread only), SIGINT/SIGTERM raise :class:`Interrupted` inside
    :meth:`armed` blocks and are remembered elsewhere, for :meth:`check` to raise."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._armed = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is None:
            self.signum = signum
        if self._armed:
            self._armed = False  # a second signal during the clean-up does not cut it short
            raise Interrupted(self.signum)

    def check(self) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum)

    @contextlib.contextmanager
    def armed(self) -> Iterator[None]:
        self._armed = True  # before check(): a signal in between is raised, not lost
        try:
            self.check()
            yield
        finally:
            self._armed = False


@dataclass(frozen=True)
class StudyCounts:
    finished: int  # COMPLETE + PRUNED: what the budget counts
    running: int
    retries_waiting: int  # re-queued trials of dead or interrupted workers
    failed: int


def study_counts(study: optuna.Study) -> StudyCounts:
    trials = study.get_trials(deepcopy=False)
    return StudyCounts(
        finished=sum(t.state in FINISHED for t in trials),
        running=sum(t.state == TrialState.RUNNING for t in trials),
        retries_waiting=sum(
            t.state == TrialState.WAITING and rec.system_get(t, rec.FAILED_TRIAL) is not None for t in trials
        ),
        failed=sum(t.state == TrialState.FAIL for t in trials),
    )


def _heartbeat_interval(study: optuna.Study) -> int | None:
    get = getattr(compat.study_storage(study), "get_heartbeat_interval", None)
    return get() if get is not None else None


def retry_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """Re-queue a FAIL trial the way a dead worker's is (the storage's stale-trial callback,
    so the same ``max_retry`` applies), to be resumed from its checkpoint."""
    get = getattr(compat.study_storage(study), "get_heartbeat_stale_trial_callback", None)
    callback = (get() if get is not None else None) or RetryStaleTrial(max_retry=heartbeat_settings()[2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        callback(study, trial)


@dataclass
class _Guarded:
    """The objective, run with signals armed, remembering which trial it runs."""

    objective: Callable[[optuna.Trial], Any]
    guard: SignalGuard
    trial_id: int | None = None
    stop: DiskFull | None = None  # the worker must stop after this trial (retrying here cannot help)

    def __call__(self, trial: optuna.Trial) -> Any:
        self.trial_id = compat.trial_id(trial)
        rec.put(trial, rec.WORKER, WORKER_ID)
        try:
            with self.guard.armed():
                return self.objective(trial)
        except Interrupted:
            # Optuna logs a failed trial with a traceback; an interrupt is not a failure of the design
            optuna.logging.set_verbosity(optuna.logging.ERROR)
            rec.put(trial, rec.FAIL_REASON, "interrupted")
            raise
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            if isinstance(exc, DiskFull):
                self.stop = exc
            _name_failure(trial, exc)
            raise


def _name_failure(trial: optuna.Trial, exc: Exception) -> None:
    """Every FAIL trial says why: what failed before the objective could say it (resolving
    the design, reading a checkpoint, a storage call) gets ``fail_reason`` and ``traceback``
    here. Best effort: with the storage gone, the trial is failed without them."""
    with contextlib.suppress(Exception):
        if rec.FAIL_REASON not in trial.user_attrs:
            rec.put_all(
                trial,
                {
                    rec.FAIL_REASON: getattr(exc, "fail_reason", "exception"),
                    rec.TRACEBACK: traceback.format_exc()[-4000:],
                },
            )


def _fail_silent_trials(study: optuna.Study, grace_s: float) -> int:
    """Fail and re-queue RUNNING trials whose worker died before the trial's first heartbeat.

    Optuna's ``fail_stale_trials`` skips a trial that never beat, so a worker killed between
    creating a trial and starting it (sampling can take a while) would leave it RUNNING
    forever, and the last worker would wait for it forever. Such a trial lacks the ``worker``
    user attr (the objective's first write; retries do not inherit it); after twice the
    grace period (start times come from the workers' clocks) it is failed here."""
    now = datetime.datetime.now()
    failed = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if rec.get(t, rec.WORKER) is not None or t.datetime_start is None:
            continue
        if (now - t.datetime_start).total_seconds() <= 2 * grace_s:
            continue
        try:
            if not compat.study_storage(study).set_trial_state_values(compat.trial_id(t), TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:
            continue  # another worker got there first
        retry_trial(study, compat.study_storage(study).get_trial(compat.trial_id(t)))
        failed += 1
    return failed


def _taken_over(study: optuna.Study, trial_id: int | None) -> bool:
    """Whether this worker's trial was failed by someone else (see :func:`work`)."""
    return trial_id is not None and compat.study_storage(study).get_trial(trial_id).state == TrialState.FAIL


def _settle_interrupted(study: optuna.Study, trial_id: int | None) -> None:
    """After an interrupt inside a trial: make sure it is FAIL (Optuna tells it on its way
    out; this covers a tell that did not get through), then re-queue it."""
    if trial_id is None:
        return
    storage = compat.study_storage(study)
    trial = storage.get_trial(trial_id)
    if trial.state == TrialState.RUNNING:
        with contextlib.suppress(UpdateFinishedTrialError):
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
        trial = storage.get_trial(trial_id)
    if trial.state == TrialState.FAIL and rec.get(trial, rec.FAIL_REASON) == "interrupted":
        retry_trial(study, trial)


def _requeue_after_outage(study: optuna.Study, trial_id: int | None) -> None:
    """The storage gave up during a trial (after its grace period): re-queue the trial if it
    ended FAIL (its checkpoint stays for the retry), then leave with exit code 75. A trial
    still RUNNING is left to the heartbeats: another worker fails and re-queues it."""
    message = str(
        getattr(compat.study_storage(study), "last_error", None) or "storage unreachable for the grace period"
    )
    if trial_id is not None:
        trial = compat.study_storage(study).get_trial(trial_id)
        if trial.state == TrialState.FAIL:
            retry_trial(study, trial)
            message += f"; trial {trial.number} re-queued"
    raise StorageUnavailable(message)


def _stop_for_disk(study: optuna.Study, trial_id: int | None, exc: DiskFull) -> None:
    """The trial's checkpoint did not fit: re-queue it (its last good checkpoint stays) for
    a worker with room, and stop this worker at once with the one line that says why."""
    if trial_id is not None:
        trial = compat.study_storage(study).get_trial(trial_id)
        if trial.state == TrialState.FAIL:
            retry_trial(study, trial)
            raise DiskFull(f"{exc}; trial {trial.number} re-queued")
    raise exc


def work(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Any],
    *,
    target: int,
    guard: SignalGuard,
    timeout_s: float | None = None,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
    max_failures: int = 5,
    poll_s: float | None = None,
    echo: Callable[[str], None] = print,
) -> list[FrozenTrial]:
    """Run trials until the study holds ``target`` finished ones (see the module docstring);
    returns the trials this worker ran. ``timeout_s`` stops starting new trials."""
    storage = compat.study_storage(study)
    interval = _heartbeat_interval(study)
    poll = poll_s if poll_s is not None else min(interval or 5, 5)
    guarded = _Guarded(objective, guard)
    ran: list[FrozenTrial] = []
    failures_in_row = 0
    start = time.monotonic()
    while True:
        guard.check()
        if timeout_s is not None and time.monotonic() - start >= timeout_s:
            break
        if interval:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)  # dead workers' trials -> FAIL + retry
            _fail_silent_trials(study, getattr(storage, "grace_period", None) or 2 * interval)
        counts = study_counts(study)
        if not counts.retries_waiting and counts.finished + counts.running >= target:
            if interval and counts.running:  # wait: if that worker dies, its retry is ours
                with guard.armed():
                    time.sleep(poll)
                continue
            break
        guarded.trial_id = None
        gave_up = getattr(storage, "gave_up", 0)  # hpo.storage_retry.RetryingStorage counts give-ups
        try:
            study.optimize(
                guarded, n_trials=1, catch=(Exception,), callbacks=list(callbacks), gc_after_trial=True
            )
            if getattr(storage, "gave_up", 0) != gave_up:  # inside the objective: Optuna caught it
                _requeue_after_outage(study, guarded.trial_id)
            if guarded.stop is not None:
                _stop_for_disk(study, guarded.trial_id, guarded.stop)
        except Interrupted:
            _settle_interrupted(study, guarded.trial_id)
            raise
        except DiskFull:  # _stop_for_disk re-queued the trial itself: not a take-over, stop here
            raise
        except Exception as exc:
            if isinstance(exc, StorageUnavailable):
                raise
            if getattr(storage, "gave_up", 0) != gave_up:  # masked by Optuna's tell (UnboundLocalError)
                _requeue_after_outage(study, guarded.trial_id)
            if not isinstance(exc, UpdateFinishedTrialError) and not _taken_over(study, guarded.trial_id):
                raise
            # Another worker declared this one dead (no heartbeat for the grace period: an
            # overloaded machine, a restarting proxy) and re-queued its trial; that retry
            # counts, this run does not. A storage write says so with UpdateFinishedTrialError,
            # Optuna's tell with a ValueError or an AssertionError ("Should not reach").
            echo(
                f"trial id {guarded.trial_id}: taken over by another worker after missed heartbeats; going on"
            )
            continue
        if guarded.trial_id is None:
            continue
        trial = storage.get_trial(guarded.trial_id)
        ran.append(trial)
        failures_in_row = failures_in_row + 1 if trial.state == TrialState.FAIL else 0
        if failures_in_row >= max_failures:
            reason = rec.get(trial, rec.FAIL_REASON, "failed")
            raise TooManyFailures(
                f"study {study.study_name!r}: {failures_in_row} trials in a row failed (last: trial "
                f"{trial.number}, {reason}); see their 'fail_reason' and 'traceback' user attrs"
            )
    return ran
