"""Workers at scale and through faults, on fresh PostgreSQL databases (issue 16): started at
the same instant, every connection terminated every few seconds, and through
``hpo storage-proxy`` with a worker SIGKILLed. Faults reach only the test's own database."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import optuna
import pytest
from optuna.trial import TrialState

from tests.workers_support import (
    PROXY_APP,
    count_connections,
    free_port,
    fresh_pg,  # noqa: F401  (a fixture)
    new_database,
    running_after_epochs,
    start_proxy,
    start_worker,  # noqa: F401
    terminate_connections,
    trials_of,
    wait_for,
    worker_env,
    write_preset,
)

# A trial is a few seconds; heartbeats every 2 s, dead after 10 s (a worker retrying a
# dropped connection must not look dead).
ENV = {"HPO_HEARTBEAT_S": "2", "HPO_GRACE_S": "10"}


def _check_study(url: str, name: str, *, retries_finished: bool = True) -> list[optuna.trial.FrozenTrial]:
    """One study; unique trial numbers; nothing RUNNING or WAITING; every FAIL trial has a
    finished retry; one result per retry chain."""
    summaries = optuna.get_all_study_summaries(url)
    assert [s.study_name for s in summaries] == [name]
    trials = trials_of(name, url)
    assert [t.number for t in trials] == list(range(len(trials)))
    by_number = {t.number: t for t in trials}
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    for t in trials:
        assert t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL), (
            f"trial {t.number}: {t.state.name}"
        )
        if t.state == TrialState.FAIL:
            retries = [
                r
                for r in finished
                if r.system_attrs.get("failed_trial") == t.system_attrs.get("failed_trial", t.number)
            ]
            assert retries, (
                f"trial {t.number} FAIL ({t.user_attrs.get('fail_reason')}) without a finished retry"
            )
    chains = [t.system_attrs.get("failed_trial", t.number) for t in finished]
    assert len(chains) == len(set(chains)), "two results from one retry chain"
    assert by_number
    return trials


def _wait_all(procs: list[subprocess.Popen], logs, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    codes = []
    for p, log in zip(procs, logs):
        try:
            codes.append(p.wait(timeout=max(deadline - time.monotonic(), 1)))
        except subprocess.TimeoutExpired:
            p.kill()
            pytest.fail(f"worker did not finish\n{log.read_text()[-3000:]}")
    return codes


@pytest.mark.slow
def test_four_workers_started_together_on_a_fresh_database_join_one_study(tmp_path):
    for round_ in range(5):
        folder = tmp_path / f"r{round_}"
        folder.mkdir()
        preset = write_preset(folder, "together", trials=4, epochs=1, rows=64)
        logs = [folder / f"w{i}.log" for i in range(4)]
        with new_database() as (url, _, _):
            procs = [
                start_worker(
                    preset, url, "--checkpoint-dir", str(folder / "ckpt"), env=worker_env(**ENV), log=log
                )
                for log in logs
            ]
            codes = _wait_all(procs, logs, 300)
            assert codes == [0, 0, 0, 0], "\n".join(log.read_text()[-1500:] for log in logs)
            trials = _check_study(url, "together")
        assert sum(t.state == TrialState.COMPLETE for t in trials) >= 4
        assert all(t.state == TrialState.COMPLETE for t in trials)


def _terminator(
    admin: str, database: str, every_s: float, for_s: float, stop: threading.Event, counts: list[int]
) -> None:
    end = time.monotonic() + for_s
    while not stop.wait(every_s) and time.monotonic() < end:
        counts.append(terminate_connections(admin, database))


@pytest.mark.slow
def test_two_workers_survive_every_connection_terminated_every_5_s(tmp_path, fresh_pg):
    url, database, admin = fresh_pg
    preset = write_preset(tmp_path, "failover", trials=10**4, epochs=2, rows=96)
    logs = [tmp_path / f"w{i}.log" for i in range(2)]
    stop, killed = threading.Event(), []
    fault = threading.Thread(target=_terminator, args=(admin, database, 5.0, 90.0, stop, killed))
    fault.start()
    try:
        procs = [
            start_worker(
                preset,
                url,
                "--timeout",
                "80",
                "--checkpoint-dir",
                str(tmp_path / "ckpt"),
                env=worker_env(**ENV),
                log=log,
            )
            for log in logs
        ]
        codes = _wait_all(procs, logs, 240)
    finally:
        stop.set()
        fault.join()
    assert codes == [0, 0], "\n".join(log.read_text()[-2000:] for log in logs)
    assert len(killed) >= 15 and sum(killed) >= 15  # the faults did happen, to live connections
    trials = _check_study(url, "failover")
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= 8
    assert "retrying for up to 60 s" in "".join(log.read_text() for log in logs)


@pytest.mark.slow
def test_three_workers_through_the_storage_proxy_with_one_sigkill(tmp_path, fresh_pg):
    url, database, admin = fresh_pg
    port = free_port()
    proxy = start_proxy(url, port, tmp_path / "proxy.log")
    grpc_url = f"grpc://127.0.0.1:{port}"
    preset = write_preset(tmp_path, "proxied", trials=6, epochs=4, rows=160)
    logs = [tmp_path / f"w{i}.log" for i in range(3)]
    try:
        procs = [
            start_worker(
                preset, grpc_url, "--checkpoint-dir", str(tmp_path / "ckpt"), env=worker_env(**ENV), log=log
            )
            for log in logs
        ]
        victim = wait_for(
            lambda: running_after_epochs("proxied", url, 1), 180, "a trial after one epoch", procs[0], logs[0]
        )
        pid = int(victim.user_attrs["worker"].rsplit(":", 1)[1])
        (killed,) = [i for i, p in enumerate(procs) if p.pid == pid]
        procs[killed].send_signal(signal.SIGKILL)
        procs[killed].wait(timeout=30)
        connections = count_connections(admin, database, app=PROXY_APP)
        rest = [i for i in range(3) if i != killed]
        codes = _wait_all([procs[i] for i in rest], [logs[i] for i in rest], 300)
    finally:
        for p in [proxy, *locals().get("procs", [])]:
            if p.poll() is None:
                p.kill()
    assert codes == [0, 0], "\n".join(log.read_text()[-2000:] for log in logs)
    trials = _check_study(url, "proxied")
    dead = next(t for t in trials if t.number == victim.number)
    assert dead.state == TrialState.FAIL
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["resumed_from_epoch"] >= 1
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= 6
    assert 1 <= connections <= 15  # the proxy's pool (5 + 10 overflow), whatever the number of workers


# ---- the grace period as promised (issue 27) ---------------------------------------------------
# The figures are a 60 s grace period and outages of 45 s and 90 s; CI runs them at
# a third of that (HPO_TEST_OUTAGE_SCALE=3 restores them): the same proportions.
_SCALE = float(__import__("os").environ.get("HPO_TEST_OUTAGE_SCALE", "1"))
_GRACE, _SHORT, _LONG = 20 * _SCALE, 15 * _SCALE, 30 * _SCALE


def _outage(tmp_path, url: str, down_s: float) -> tuple[list[int], list, float]:
    """Two workers through a proxy that is SIGKILLed mid-trial and restarted ``down_s`` later
    (None: never); returns the workers' exit codes, their logs and when the proxy died."""
    port = free_port()
    proxy = start_proxy(url, port, tmp_path / "proxy.log")
    preset = write_preset(tmp_path, "outage", trials=4, epochs=3, rows=160)
    logs = [tmp_path / f"w{i}.log" for i in range(2)]
    env = worker_env(**ENV, HPO_STORAGE_GRACE_S=f"{_GRACE:g}")
    procs = [
        start_worker(
            preset, f"grpc://127.0.0.1:{port}", "--checkpoint-dir", str(tmp_path / "ckpt"), env=env, log=log
        )
        for log in logs
    ]
    try:
        wait_for(
            lambda: running_after_epochs("outage", url, 1), 300, "a trial after one epoch", procs[0], logs[0]
        )
        proxy.kill()
        proxy.wait(timeout=30)
        killed_at = time.monotonic()
        deadline = killed_at + down_s
        while time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs) or down_s > _GRACE, (
                "a worker left within the grace period"
            )
            time.sleep(0.5)
        if down_s <= _GRACE:
            proxy = start_proxy(url, port, tmp_path / "proxy.log")
        codes = _wait_all(procs, logs, 900)
    finally:
        for p in [proxy, *procs]:
            if p.poll() is None:
                p.kill()
    return codes, logs, killed_at


@pytest.mark.slow
def test_a_proxy_down_for_less_than_the_grace_period_costs_no_worker(tmp_path, fresh_pg):
    url, _, _ = fresh_pg
    codes, logs, _ = _outage(tmp_path, url, _SHORT)
    assert codes == [0, 0], "\n".join(log.read_text()[-2000:] for log in logs)
    trials = _check_study(url, "outage")
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= 4


@pytest.mark.slow
def test_a_proxy_down_for_longer_than_the_grace_period_ends_the_workers_with_75(tmp_path, fresh_pg):
    url, _, _ = fresh_pg
    codes, logs, killed_at = _outage(tmp_path, url, _LONG)
    took = time.monotonic() - killed_at
    assert codes == [75, 75], "\n".join(log.read_text()[-2000:] for log in logs)
    for log in logs:
        (line,) = [ln for ln in log.read_text().splitlines() if ln.startswith("error: ")]
        seconds = int(line.split("unreachable for ")[1].split(" s")[0])
        assert _GRACE <= seconds <= _GRACE + 10 * _SCALE, line  # the outage's real length, not "0 s"
    assert took < _GRACE + 60 * _SCALE
