"""Opening storages: a typo'd folder, a missing driver or gRPC extra, and storage calls that
survive a lost connection (retry with backoff) or give up after the grace period."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

import pytest
import sqlalchemy.exc as sa_exc
from optuna.storages import InMemoryStorage
from optuna.study import StudyDirection
from optuna.trial import TrialState
from typer.testing import CliRunner

import hpo.workers
from hourglass.errors import ConfigError
from hpo import optuna_compat as compat
from hpo.cli import app
from hpo.storage import open_storage
from hpo.storage_proxy import GRPC_EXTRA_HINT, parse_grpc_url
from hpo.storage_retry import (
    EXIT_STORAGE_UNAVAILABLE,
    HEARTBEAT_ATTR,
    RetryingStorage,
    StorageUnavailable,
    is_transient,
)
from tests.workers_support import write_preset

runner = CliRunner()


def _dropped() -> sa_exc.OperationalError:
    return sa_exc.OperationalError(
        "SELECT 1", {}, Exception("terminating connection due to administrator command")
    )


class Flaky(InMemoryStorage):
    """An in-memory storage whose ``fail[name]`` next calls of a method raise ``error``
    (``after=True``: the call is done first, like a commit whose answer was lost)."""

    def __init__(self, error=_dropped, after: bool = False) -> None:
        super().__init__()
        self.fail: dict[str, int] = {}
        self.error, self.after, self.calls = error, after, 0

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        fail = super().__getattribute__("fail")
        if not callable(attr) or fail.get(name, 0) <= 0:
            return attr

        def failing(*args, **kwargs):
            fail[name] -= 1
            if self.after:
                attr(*args, **kwargs)
            raise self.error()

        return failing


# ---- issue 13 items 3 and 5: honest errors, nothing created ------------------------------------


@pytest.mark.parametrize("scheme", ["sqlite:///", "journal://"])
def test_a_storage_in_a_missing_folder_exits_2_names_it_and_creates_nothing(tmp_path, monkeypatch, scheme):
    preset = write_preset(tmp_path, trials=1, epochs=1)
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    url = f"{scheme}{tmp_path}/no/such/dir/x.db"
    result = runner.invoke(app, ["run", str(preset), "--storage", url, "--n-trials", "1", "--quiet"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"error: storage {url}: folder {tmp_path}/no/such/dir does not exist (create it, or fix the path)"
    ]
    assert sorted(tmp_path.rglob("*")) == before  # no database, no checkpoint folder, no studies/


def test_the_default_studies_folder_is_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    open_storage("sqlite:///studies/x.db")
    assert (tmp_path / "studies" / "x.db").is_file()


def test_a_postgres_url_without_the_driver_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ImportError
    url = "postgresql+psycopg://hpo:hunter2-pw@127.0.0.1:1/db"
    with pytest.raises(ConfigError, match=r'driver is not installed; pip install -e "\.\[postgres\]"'):
        open_storage(url)
    result = runner.invoke(app, ["worker", str(write_preset(tmp_path))], env={"HPO_STORAGE": url})
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert 'pip install -e ".[postgres]"' in line and "cannot connect" not in line and "hunter2" not in line


def test_a_grpc_url_without_grpcio_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "grpc", None)
    with pytest.raises(ConfigError, match=r'grpcio and protobuf: pip install -e "\.\[grpc\]"') as err:
        open_storage("grpc://127.0.0.1:13000")
    assert str(err.value) == GRPC_EXTRA_HINT
    result = runner.invoke(app, ["storage-proxy", "--storage", "sqlite:///x.db"])
    assert result.exit_code == 2 and result.output.strip() == f"error: {GRPC_EXTRA_HINT}"


def test_grpc_urls_are_host_and_port():
    assert parse_grpc_url("grpc://10.0.0.5:13000") == ("10.0.0.5", 13000)
    for bad in ("grpc://host", "grpc://:13000", "grpc://h:port", "grpc://h:1/db"):
        with pytest.raises(ConfigError, match="expected grpc://host:port"):
            parse_grpc_url(bad)


# ---- retries ---------------------------------------------------------------------------------


def _study(storage) -> int:
    return storage.create_new_study([StudyDirection.MAXIMIZE], "s")


def test_a_dropped_connection_costs_a_retry_not_the_call():
    inner = Flaky()
    storage = RetryingStorage(inner, grace_s=10)
    sid = _study(storage)
    tid = storage.create_new_trial(sid)
    inner.fail["set_trial_user_attr"] = 3
    storage.set_trial_user_attr(tid, "k", 1)
    assert storage.get_trial(tid).user_attrs == {"k": 1} and storage.retries == 3 and not storage.gave_up


def test_a_tell_that_was_committed_before_its_answer_was_lost_counts_as_done():
    inner = Flaky(after=True)
    storage = RetryingStorage(inner, grace_s=10)
    tid = storage.create_new_trial(_study(storage))
    inner.fail["set_trial_state_values"] = 1
    assert storage.set_trial_state_values(tid, TrialState.COMPLETE, [1.0]) is True
    assert storage.get_trial(tid).state == TrialState.COMPLETE


def test_errors_that_are_not_about_the_connection_are_not_retried():
    inner = Flaky(error=lambda: sa_exc.DataError("INSERT", {}, Exception("value too long")))
    storage = RetryingStorage(inner, grace_s=10)
    sid = _study(storage)
    inner.fail["get_all_trials"] = 1
    with pytest.raises(sa_exc.DataError):
        storage.get_all_trials(sid)
    assert storage.retries == 0 and not is_transient(KeyError("x"))


def test_after_the_grace_period_the_worker_gives_up_with_exit_code_75(monkeypatch, tmp_path):
    inner = Flaky()
    storage = RetryingStorage(inner, grace_s=0.6)
    sid = _study(storage)
    inner.fail["get_all_trials"] = 10**6
    with pytest.raises(
        StorageUnavailable, match=r"unreachable for \d+ s .*grace period 0.6 s.*get_all_trials"
    ):
        storage.get_all_trials(sid)
    assert storage.gave_up == 1 and StorageUnavailable.exit_code == EXIT_STORAGE_UNAVAILABLE == 75

    def unreachable(*args, **kwargs):
        raise StorageUnavailable("storage unreachable for 60 s (grace period 60 s, HPO_STORAGE_GRACE_S)")

    monkeypatch.setattr(hpo.workers, "run_worker", unreachable)  # looked up when the command runs
    result = runner.invoke(
        app, ["worker", str(write_preset(tmp_path)), "--storage", f"sqlite:///{tmp_path}/s.db"]
    )
    assert result.exit_code == 75
    # after the line that says where the study is (hpo.study_location), one error line
    assert result.output.strip().splitlines()[1:] == [
        "error: storage unreachable for 60 s (grace period 60 s, HPO_STORAGE_GRACE_S)"
    ]


def test_a_failed_heartbeat_is_skipped_and_the_proxy_heartbeat_finds_stale_trials(monkeypatch):
    inner = Flaky()
    storage = RetryingStorage(inner, grace_s=10, heartbeat=(1, 5, None))
    sid = _study(storage)
    tid = storage.create_new_trial(sid)
    inner.fail["set_trial_system_attr"] = 1
    storage.record_heartbeat(tid)  # does not raise: Optuna's heartbeat thread lives on
    assert HEARTBEAT_ATTR not in storage.get_trial(tid).system_attrs
    storage.record_heartbeat(tid)
    assert storage._get_stale_trial_ids(sid) == []
    clock = storage.get_trial(tid).system_attrs[HEARTBEAT_ATTR]
    monkeypatch.setattr("hpo.storage_retry.time.time", lambda: clock + 6)
    assert storage._get_stale_trial_ids(sid) == [tid] and storage.get_heartbeat_interval() == 1


# ---- the trial loop through outages --------------------------------------------------------


def _study_on(storage):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.create_study(storage=storage, study_name="loop")


def test_a_trial_taken_over_by_another_worker_is_left_to_its_retry():
    from hpo.trial_loop import SignalGuard, work

    storage = RetryingStorage(Flaky(), grace_s=5)
    study = _study_on(storage)

    def objective(trial):
        if trial.number == 0:  # meanwhile another worker declared this one dead
            storage.set_trial_state_values(compat.trial_id(trial), TrialState.FAIL)
        return 1.0

    lines = []
    work(study, objective, target=1, guard=SignalGuard(), echo=lines.append)
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.COMPLETE]
    assert lines == ["trial id 0: taken over by another worker after missed heartbeats; going on"]


def test_a_trial_whose_writes_gave_up_is_requeued_and_the_worker_leaves():
    from hpo.trial_loop import SignalGuard, work

    inner = Flaky()
    storage = RetryingStorage(inner, grace_s=0.3)
    study = _study_on(storage)

    def objective(trial):
        inner.fail["set_trial_user_attr"] = 10**6  # the database goes away mid-trial ...
        try:
            trial.set_user_attr("curve", [1])
        finally:
            inner.fail["set_trial_user_attr"] = 0  # ... and is back for the tell
        return 1.0

    with pytest.raises(StorageUnavailable, match="grace period 0.3 s.*; trial 0 re-queued"):
        work(study, objective, target=1, guard=SignalGuard())
    failed, retry = study.get_trials()
    assert failed.state == TrialState.FAIL and retry.state == TrialState.WAITING
    assert retry.system_attrs["failed_trial"] == 0


# ---- the outage clock and connection errors (issues 25, 27, 28) ------------------------------


def test_the_grace_period_counts_from_the_first_failure_of_the_outage_and_a_success_resets_it():
    """Two calls in one outage share one clock (the second gives up when the outage, not
    the call, reaches the grace period, saying how long it really lasted); an answer in
    between starts the next outage afresh."""
    inner = Flaky()
    storage = RetryingStorage(inner, grace_s=1.5)
    sid = _study(storage)
    inner.fail["get_all_trials"] = 10**6
    start = time.monotonic()
    with pytest.raises(StorageUnavailable, match=r"unreachable for [12] s"):
        storage.get_all_trials(sid)
    assert 1.4 <= time.monotonic() - start < 3.0
    time.sleep(0.5)
    with pytest.raises(StorageUnavailable, match=r"unreachable for 2 s"):  # the same outage: 2 s, not 0 s
        storage.get_all_trials(sid)
    inner.fail.clear()
    storage.get_all_trials(sid)  # the storage answers: the outage is over
    inner.fail["get_all_trials"] = 2  # a short new one is ridden out
    assert storage.get_all_trials(sid) == [] and storage.gave_up == 2


PG = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _worker(tmp_path, url: str, grace: str = "60") -> tuple[int, list[str], float]:
    """``hpo worker`` on ``url``: exit code, output lines, and the CPU seconds it took (the
    machine's load makes wall time meaningless here; a minute-long retry loop would show)."""
    import resource
    import subprocess

    from tests.workers_support import ROOT, worker_env

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "hpo", "worker", str(write_preset(tmp_path)), "--quiet"],
        cwd=ROOT,
        env={**worker_env(HPO_STORAGE_GRACE_S=grace), "HPO_STORAGE": url, "COLUMNS": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return done.returncode, (done.stdout + done.stderr).strip().splitlines(), cpu


def _fake_postgres_refusing_passwords() -> tuple[int, threading.Thread]:
    """A server that speaks just enough of PostgreSQL's protocol to refuse every password."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer() -> None:
        with server:
            server.settimeout(30)
            for _ in range(4):  # libpq may try twice (with and without SSL)
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                with conn:
                    length = int.from_bytes(conn.recv(4), "big")
                    body = conn.recv(length - 4)
                    if body[:4] == (80877103).to_bytes(4, "big"):  # SSLRequest: no SSL here
                        conn.sendall(b"N")
                        length = int.from_bytes(conn.recv(4), "big")
                        conn.recv(length - 4)
                    fields = b'SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "hpo"\0\0'
                    conn.sendall(b"E" + (len(fields) + 4).to_bytes(4, "big") + fields)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return server.getsockname()[1], thread


@pytest.mark.parametrize("case", ["unresolvable host", "missing database", "wrong password"])
def test_a_permanent_connection_error_exits_2_at_once_in_the_servers_words(tmp_path, case):
    pytest.importorskip("psycopg")
    if case == "unresolvable host":
        url, words = (
            f"postgresql+psycopg://hpo:hunter2-pw@127.0.0.l:5432/{'x' * 150}",
            "Name or service not known",
        )
    elif case == "missing database":
        from tests.workers_support import _postgres_url

        _postgres_url()  # skips without a server
        url, words = f"{PG}/hpo_i27_no_such_db", 'database "hpo_i27_no_such_db" does not exist'
    else:
        port, _ = _fake_postgres_refusing_passwords()
        url, words = (
            f"postgresql+psycopg://hpo:hunter2-pw@127.0.0.1:{port}/db",
            'password authentication failed for user "hpo"',
        )
    start = time.monotonic()
    code, lines, cpu = _worker(tmp_path, url)
    assert code == 2 and cpu < 5, lines
    assert time.monotonic() - start < 60  # no retry loop (the grace period is 60 s)
    (line,) = [ln for ln in lines if ln.startswith("error: ")]
    assert words in line and "hunter2" not in line and "retrying" not in "\n".join(lines)
    if case == "missing database":
        assert line.endswith("create it with: createdb -h 127.0.0.1 -p 5432 -U postgres hpo_i27_no_such_db")
    assert line.startswith("error: storage postgresql+psycopg://")


def test_a_server_that_never_answers_exits_75_after_the_grace_period(tmp_path):
    pytest.importorskip("psycopg")
    code, lines, took = _worker(tmp_path, "postgresql+psycopg://hpo:hunter2-pw@127.0.0.1:1/db", grace="2")
    (line,) = [ln for ln in lines if ln.startswith("error: ")]
    assert code == 75, lines
    assert "cannot connect, no answer for 2 s (grace period 2 s" in line and "Connection refused" in line
    assert "hunter2" not in "\n".join(lines)


def test_a_storage_proxy_that_never_answers_exits_75(tmp_path):
    pytest.importorskip("grpc")
    from tests.workers_support import free_port

    code, lines, _ = _worker(tmp_path, f"grpc://127.0.0.1:{free_port()}", grace="1")
    assert code == 75 and any("no hpo storage-proxy answered" in ln for ln in lines), lines


def test_a_preset_may_name_the_storage_through_an_environment_variable_or_a_file(tmp_path, monkeypatch):
    from hpo.preset import load_preset

    url = f"sqlite:///{tmp_path}/secret.db"
    monkeypatch.setenv("I27_DB", url)
    assert load_preset(write_preset(tmp_path, storage="env:I27_DB")).storage == url
    (tmp_path / "db.url").write_text(url + "\n")
    assert load_preset(write_preset(tmp_path, storage=f"file:{tmp_path}/db.url")).storage == url
    with pytest.raises(ConfigError, match="environment variable I27_NOPE is not set"):
        load_preset(write_preset(tmp_path, storage="env:I27_NOPE"))


# ---- one process per SQLite study (issue 27) ----------------------------------------------------


def test_a_second_hpo_run_on_one_sqlite_study_exits_2_at_once(tmp_path):
    import subprocess

    from tests.workers_support import wait_for, worker_env

    preset = write_preset(tmp_path, "locked", trials=2, epochs=2)
    url = f"sqlite:///{tmp_path}/locked.db"
    lock = tmp_path / "locked.db.lock"
    cmd = [sys.executable, "-m", "hpo", "run", str(preset), "--storage", url, "--quiet"]
    # run from tmp_path: the first run writes its report under reports/ there
    first = subprocess.Popen(
        cmd, cwd=tmp_path, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for(lambda: lock.exists() and lock.read_text(), 120, "the first run's lock", first)
        second = subprocess.run(
            cmd, cwd=tmp_path, env=worker_env(), capture_output=True, text=True, timeout=120
        )
        assert first.poll() is None  # refused while the first one runs
    finally:
        out, _ = first.communicate(timeout=600)
    assert second.returncode == 2, second.stdout + second.stderr
    (line,) = [
        ln for ln in (second.stdout + second.stderr).strip().splitlines() if not ln.startswith("study ")
    ]
    assert f"pid {first.pid} on" in line and "is running this study" in line and "PostgreSQL" in line
    assert first.returncode == 0, out
    assert not lock.exists()  # cleaned on exit
    import optuna

    assert len(optuna.load_study(study_name="locked", storage=url).trials) == 2  # each design trained once


def test_the_sqlite_lock_of_a_killed_process_is_taken_over(tmp_path):
    import signal
    import subprocess

    from hpo.storage import single_runner
    from tests.workers_support import ROOT, wait_for, worker_env

    url = f"sqlite:///{tmp_path}/s.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from hpo.storage import single_runner\n"
            f"with single_runner({url!r}): time.sleep(600)",
        ],
        cwd=ROOT,
        env=worker_env(),
    )
    lock = tmp_path / "s.db.lock"
    wait_for(lambda: lock.exists() and lock.read_text(), 60, "the lock", holder)
    with pytest.raises(ConfigError, match=f"pid {holder.pid} on .* is running this study"):
        with single_runner(url):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert lock.exists()  # stale: left by the dead process ...
    with single_runner(url):  # ... and taken over
        assert str(os.getpid()) in lock.read_text()
    assert not lock.exists()


def test_shown_storage_names_the_file_each_url_opens(tmp_path, monkeypatch):
    # journal:///abs.log is absolute (the path follows "journal://", as open_storage reads it);
    # only a relative file gets its full path added
    from hpo.study_location import shown_storage

    monkeypatch.chdir(tmp_path)
    assert shown_storage("journal:///srv/x.log") == "journal:///srv/x.log"
    assert shown_storage("journal://x.log") == f"journal://x.log ({tmp_path / 'x.log'})"
    assert shown_storage("sqlite:///s/a.db") == f"sqlite:///s/a.db ({tmp_path / 's' / 'a.db'})"
