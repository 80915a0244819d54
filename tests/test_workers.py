"""Many workers on one study: real processes on PostgreSQL, a worker killed mid-trial, signals,
and where the storage URL (and its password) may and may not go."""

from __future__ import annotations

import re
import signal
from dataclasses import replace

import optuna
import pytest
import torch
from optuna.trial import TrialState
from typer.testing import CliRunner

import hpo.dashboard
import hpo.workers
from hourglass.errors import ConfigError
from hpo import optuna_compat as compat
from hpo.cli import app
from hpo.dashboard import make_server
from hpo.preset import load_preset
from hpo.study import open_study
from hpo.workers import (
    check_workers,
    default_workers,
    gpu_device,
    parse_gpus,
    resolve_worker_preset,
    run_worker,
    worker_devices,
    worker_seed,
)
from tests.workers_support import (
    FAST_HEARTBEAT,
    pg_study,  # noqa: F401  (a fixture)
    running_after_epochs,
    start_worker,
    trials_of,
    wait_for,
    worker_env,  # noqa: F401
    write_preset,
)

runner = CliRunner()


def _with_password(url: str, password: str = "s3cret-Pw") -> str:
    """The test URL with a password (trust auth ignores it; it must never be printed)."""
    return re.sub(r"://([^:/@]+)@", rf"://\1:{password}@", url, count=1)


def _assert_every_trial_accounted_for(trials: list[optuna.trial.FrozenTrial]) -> None:
    """COMPLETE, PRUNED, or FAIL with a retry; nothing RUNNING or WAITING; one result per chain."""
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    for t in trials:
        assert t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
            t.state == TrialState.FAIL and t.number in retried
        ), f"trial {t.number} is {t.state.name}"
    chains = [
        t.system_attrs.get("failed_trial", t.number)
        for t in trials
        if t.state.is_finished() and t.state != TrialState.FAIL
    ]
    assert len(chains) == len(set(chains)), "two results from one retry chain"
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(trials))), "duplicate or missing trial numbers"


# ---- units ---------------------------------------------------------------------------------


def test_sqlite_refuses_several_workers_with_a_hint():
    check_workers("sqlite:///studies/x.db", 1)
    with pytest.raises(ConfigError, match="SQLite .* one worker at a time; .*PostgreSQL.*journal"):
        check_workers("sqlite:///studies/x.db", 2)
    check_workers("postgresql+psycopg://u@h/db", 4)
    with pytest.raises(ConfigError, match="expected an integer >= 1"):
        check_workers("postgresql+psycopg://u@h/db", 0)


def test_worker_seeds_are_given_or_differ_per_host_and_process():
    assert worker_seed(0, 7) == 7
    assert worker_seed(3) == worker_seed(3) != worker_seed(4)
    assert 0 <= worker_seed(0) < 2**31


def test_local_workers_get_the_given_device_or_one_gpu_each(monkeypatch):
    assert worker_devices(2, "cuda:1") == [("cuda:1", {}), ("cuda:1", {})]
    monkeypatch.setattr(hpo.workers, "_visible_gpus", lambda: [])
    assert worker_devices(2, None) == [("cpu", {}), ("cpu", {})]
    monkeypatch.setattr(hpo.workers, "_visible_gpus", lambda: ["2", "5"])
    # K per GPU, the GPUs in turn, each worker seeing only its own
    assert worker_devices(2, "auto") == [
        ("cuda", {"CUDA_VISIBLE_DEVICES": "2"}),
        ("cuda", {"CUDA_VISIBLE_DEVICES": "5"}),
        ("cuda", {"CUDA_VISIBLE_DEVICES": "2"}),
        ("cuda", {"CUDA_VISIBLE_DEVICES": "5"}),
    ]
    assert worker_devices(1, None, gpus=(1,)) == [("cuda", {"CUDA_VISIBLE_DEVICES": "5"})]


def test_workers_of_a_cuda_preset_land_on_distinct_gpus(monkeypatch):
    """The shipped GPU preset says `device: cuda`: with 4 GPUs, 4 workers, one on each (a
    plain `cuda` for all would put every worker and its crop cache on GPU 0)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    preset = replace(load_preset("mpii_pareto"), storage="postgresql+psycopg://u@h/db")
    assert preset.device == "cuda" and default_workers(preset) == 4
    assert worker_devices(1, preset.device) == [("cuda", {"CUDA_VISIBLE_DEVICES": str(i)}) for i in range(4)]
    assert default_workers(preset, gpus=parse_gpus("1,3")) == 2
    assert default_workers(replace(preset, storage="sqlite:///x.db")) == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")  # the parent's own list is what children may see
    assert [env for _, env in worker_devices(2, "cuda", gpus=(0, 3))] == [
        {"CUDA_VISIBLE_DEVICES": g} for g in ("4", "7", "4", "7")
    ]
    assert gpu_device(None, (2,)) == "cuda:2"


@pytest.mark.parametrize(
    "gpus, device, message",
    [
        ("0,x", None, "expected distinct GPU indices"),
        ("1,1", None, "expected distinct GPU indices"),
        ("4", None, "GPU 4 is not visible"),
        ("0", "cpu", "cannot be combined with --device cpu"),
    ],
)
def test_bad_gpu_lists_are_one_line_errors(monkeypatch, gpus, device, message):
    monkeypatch.setattr(hpo.workers, "_visible_gpus", lambda: ["0", "1"])
    with pytest.raises(ConfigError, match=message):
        worker_devices(1, device, parse_gpus(gpus))


def test_a_worker_joins_a_study_by_name_with_its_stored_preset(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    preset = replace(load_preset(write_preset(tmp_path, "joined")), storage=url)
    open_study(preset)
    got = resolve_worker_preset("joined", url)
    assert got == preset
    with pytest.raises(
        ConfigError, match=r"'nope': neither a preset .* nor a study in sqlite:///.*found: joined"
    ):
        resolve_worker_preset("nope", url)


def test_the_dashboard_binds_localhost_unless_told_and_hides_the_password(tmp_path, monkeypatch, pg_study):
    name, url = pg_study
    secret_url = _with_password(url)
    preset = replace(load_preset(write_preset(tmp_path, name)), storage=secret_url)
    open_study(preset)
    server = make_server(secret_url, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()
    bound = []

    class FakeServer:  # records where the command would listen, then "Ctrl-C"
        server_address, server_port = ("127.0.0.1", 1), 1

        def serve_forever(self):
            raise KeyboardInterrupt

        def server_close(self):
            pass

    def fake_make_server(storage, host, port, allow_writes=False):
        bound.append(host)
        return FakeServer()

    monkeypatch.setattr(hpo.dashboard, "make_server", fake_make_server)  # looked up when the command runs
    for extra, host in (([], "127.0.0.1"), (["--host", "0.0.0.0"], "0.0.0.0")):
        result = runner.invoke(
            app, ["dashboard", name, "--no-publish", *extra], env={"HPO_STORAGE": secret_url}
        )
        assert result.exit_code == 0, result.output
        assert bound[-1] == host
        assert "s3cret-Pw" not in result.output and ":***@" in result.output


# ---- real processes ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signalled_worker_fails_its_trial_exits_and_a_rerun_resumes(tmp_path, signum, code):
    preset = write_preset(tmp_path, epochs=6, rows=240, trials=2)
    name, url = preset.stem, f"sqlite:///{tmp_path / 'study.db'}"
    log = tmp_path / "worker.log"
    proc = start_worker(preset, url, log=log)
    try:
        wait_for(lambda: running_after_epochs(name, url, 1), 120, "a trial with one epoch done", proc, log)
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == code, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    trials = trials_of(name, url)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    dead = trials[0]
    assert dead.state == TrialState.FAIL and dead.user_attrs["fail_reason"] == "interrupted"
    assert [t.system_attrs["failed_trial"] for t in trials if t.state == TrialState.WAITING] == [0]
    if signum != signal.SIGINT:
        return
    # `hpo run` again: the re-queued trial runs first, from its checkpoint
    result = runner.invoke(
        app,
        [
            "run",
            str(preset),
            "--storage",
            url,
            "--n-trials",
            "1",
            "--quiet",
            "--report",
            str(tmp_path / "r.html"),
        ],
    )
    assert result.exit_code == 0, result.output
    retry = trials_of(name, url)[1]
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["retry_of"] == 0
    assert retry.user_attrs["resumed_from_epoch"] >= 1 and len(retry.user_attrs["curve"]) == 6
    # and says so without --verbose: what the study keeps, which trial continues which, from where
    assert f"study '{name}' resumed: 1 interrupted trial to continue\n" in result.output
    epoch = retry.user_attrs["resumed_from_epoch"]
    assert f"trial   1 continues trial 0 from epoch {epoch} (its checkpoint)" in result.output, result.output


@pytest.mark.slow
def test_three_worker_processes_share_one_postgres_study(tmp_path, pg_study):
    name, url = pg_study
    secret_url = _with_password(url)
    preset = write_preset(tmp_path, name, trials=6, epochs=2)
    result = runner.invoke(
        app,
        [
            "run",
            str(preset),
            "--storage",
            secret_url,
            "--workers",
            "3",
            "--checkpoint-dir",
            str(tmp_path / "ckpt"),
            "--report",
            str(tmp_path / "r.html"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "s3cret-Pw" not in result.output and ":***@" in result.output
    assert result.output.count("worker done:") == 3
    trials = trials_of(name, url)
    _assert_every_trial_accounted_for(trials)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert 6 <= len(finished) <= 8  # two workers may both start the 6th trial at the same moment
    assert len({t.user_attrs["worker"] for t in trials}) >= 2
    assert len({compat.trial_id(t) for t in trials}) == len(trials)
    study = optuna.load_study(study_name=name, storage=url)
    assert study.user_attrs["preset"]["storage"] == _with_password(url, "***")
    assert "s3cret-Pw" not in (tmp_path / "r.html").read_text()


@pytest.mark.slow
def test_a_killed_workers_trial_is_retried_elsewhere_from_its_checkpoint(tmp_path, pg_study, monkeypatch):
    name, url = pg_study
    epochs = 6
    preset_path = write_preset(tmp_path, name, trials=1, epochs=epochs, rows=240)
    ckpt = tmp_path / "ckpt"
    log = tmp_path / "a.log"
    a = start_worker(
        preset_path, url, "--checkpoint-dir", str(ckpt), env=worker_env(**FAST_HEARTBEAT), log=log
    )
    try:
        wait_for(lambda: running_after_epochs(name, url, 1), 120, "worker A's trial after one epoch", a, log)
        a.send_signal(signal.SIGKILL)  # no clean-up at all: the trial stays RUNNING, its heartbeat stops
        a.wait(timeout=30)
    finally:
        if a.poll() is None:
            a.kill()
    (dead,) = trials_of(name, url)
    assert dead.state == TrialState.RUNNING
    done_before_kill = len(dead.user_attrs["curve"])
    assert 1 <= done_before_kill < epochs

    # worker B (this process) finds A's trial stale, fails it, re-queues it and resumes it
    for key, value in FAST_HEARTBEAT.items():
        monkeypatch.setenv(key, value)
    preset = replace(load_preset(preset_path), storage=url)
    summary = run_worker(preset, n_trials=1, checkpoint_dir=ckpt, progress=False)
    trials = summary.study.get_trials()
    _assert_every_trial_accounted_for(trials)
    dead, retry = trials
    assert dead.state == TrialState.FAIL and retry.state == TrialState.COMPLETE
    a_ = retry.user_attrs
    assert a_["retry_of"] == 0 and a_["worker"] != dead.user_attrs["worker"]
    assert a_["resumed_from_epoch"] >= done_before_kill
    assert a_["epochs_trained"] == epochs - a_["resumed_from_epoch"] < epochs  # fewer epochs recomputed
    assert [p["epoch"] for p in a_["curve"]] == list(range(1, epochs + 1))
    assert a_["curve"][:done_before_kill] == dead.user_attrs["curve"]  # the dead worker's epochs, inherited
    assert not any(ckpt.iterdir())


def test_relayed_worker_lines_fit_80_columns_with_their_tag():
    import io

    long = "trial 139 complete PCKh 33.3 10.2k params 43.1 s wall multidilated/patch4 16x2 " * 2
    out: list[str] = []
    hpo.workers._relay(io.StringIO(f"{long}\nshort\n"), "[w1] ", out.append)
    assert all(len(line) <= 80 for line in out), out
    assert out[0].startswith("[w1] trial 139") and out[1].startswith("     ") and out[-1] == "[w1] short"
    # the words survive the wrap, in order
    assert " ".join(part.strip() for part in out[:-1]).removeprefix("[w1] ") == long.strip()


def test_a_launched_worker_describes_trials_in_the_width_it_is_told(monkeypatch):
    from hpo import study as study_mod

    monkeypatch.setenv("COLUMNS", "75")
    assert study_mod._line_width() == 75
    monkeypatch.setenv("COLUMNS", "200")  # never wider than the 80 columns output fits
    assert study_mod._line_width() == 80
    monkeypatch.delenv("COLUMNS")
    assert study_mod._line_width() == 80
