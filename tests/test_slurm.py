"""The SLURM recipe on a real scheduler: ``deploy/slurm_workers.sbatch`` as a job array.

A one-node cluster of its own (``deploy/slurm/dev_cluster.sh`` in a temporary folder, on
free ports) runs the recipe as users do: ``sbatch --array`` of real ``hpo worker``
processes on a fresh PostgreSQL database, each task logging to ``logs/``. Tasks are
cancelled, requeued and cut off from their storage; the study must still end with its
budget of finished trials, none lost, none counted twice, none left RUNNING, and every
task must end with an exit code of the recipe's table.

Skips (one line) where SLURM cannot start: not root, the Debian packages not installed
(``.ci/run`` installs them), or no PostgreSQL server (``HPO_TEST_POSTGRES_URL``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from workers_support import (
    FAST_HEARTBEAT,
    ROOT,
    _postgres_url,
    free_port,
    new_database,
    running_after_epochs,
    start_proxy,
    trials_of,
    wait_for,
    write_preset,
)

from hpo import record as rec
from hpo.trial_loop import study_counts
from hpo.workers import audit_study

CLUSTER = ROOT / "deploy" / "slurm" / "dev_cluster.sh"
RECIPE = ROOT / "deploy" / "slurm_workers.sbatch"
CPUS = 4  # one per array task (oversubscribing a small machine: the trials are tiny)
RUN_LINE = re.compile(r"^hpo-worker (\d+)_(\d+) run (\d+) on \S+, pid (\d+):", re.MULTILINE)
EXIT_LINE = re.compile(r"^hpo-worker (\d+)_(\d+) run (\d+): exit (\d+)", re.MULTILINE)
DOCUMENTED_EXITS = {0, 2, 75, 130, 143}


def _two_free_ports() -> int:
    """A port P with P and P + 1 free (slurmctld, slurmd)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A running one-node cluster; yields the environment its client commands need."""
    if os.geteuid() != 0:
        pytest.skip("SLURM needs root to start (slurmd, munged)")
    if not all(shutil.which(b) for b in ("slurmctld", "slurmd", "sbatch", "munged")):
        pytest.skip("SLURM is not installed (as root: bash deploy/slurm/dev_cluster.sh install)")
    _postgres_url()  # skips when no PostgreSQL server answers: no cluster for nothing
    folder = tmp_path_factory.mktemp("slurm")
    env = {
        **os.environ,
        "HPO_SLURM_DIR": str(folder),
        "HPO_SLURM_PORT": str(_two_free_ports()),
        "HPO_SLURM_CPUS": str(CPUS),
        "HPO_SLURM_REQUEUE_DELAY_S": "5",
        "SLURM_CONF": str(folder / "slurm.conf"),
    }
    started = subprocess.run(
        ["bash", str(CLUSTER), "start"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    try:
        assert started.returncode == 0, f"dev_cluster.sh start failed:\n{started.stdout}{started.stderr}"
        yield env
    finally:
        subprocess.run(["bash", str(CLUSTER), "stop"], env=env, capture_output=True, timeout=60, check=False)


def _submit(
    slurm_env: dict[str, str],
    folder: Path,
    storage: str,
    preset: Path,
    tasks: int,
    *worker_args: str,
    **extra: str,
) -> tuple[str, dict[str, str]]:
    """``mkdir -p logs && sbatch --array=0-(tasks-1) RECIPE PRESET [WORKER_ARGS]`` from
    ``folder``, as the README says; the job's environment is the submitter's (sbatch's default)."""
    env = {
        **slurm_env,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "HPO_STORAGE": storage,
        "HPO_CHECKPOINTS": str(folder / "ckpt"),
        **FAST_HEARTBEAT,
        **extra,
    }
    (folder / "logs").mkdir(exist_ok=True)
    job = subprocess.run(
        ["sbatch", "--parsable", f"--array=0-{tasks - 1}", str(RECIPE), str(preset), *worker_args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return job.split(";")[0], env


def _scontrol(env: dict[str, str], *args: str) -> str:
    return subprocess.run(["scontrol", *args], env=env, capture_output=True, text=True, check=True).stdout


def _tasks(env: dict[str, str], job: str) -> dict[int, dict[str, str]]:
    """Array task -> its fields in ``scontrol show job`` (JobState, Restarts, JobId, ...)."""
    out = subprocess.run(
        ["scontrol", "-o", "show", "job", job], env=env, capture_output=True, text=True, check=False
    ).stdout  # empty once the job is gone
    tasks = {}
    for line in out.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if fields.get("ArrayTaskId", "").isdigit():
            tasks[int(fields["ArrayTaskId"])] = fields
    return tasks


def _logs(folder: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((folder / "logs").glob("*.log")))


def _wait_done(env: dict[str, str], job: str, folder: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queued = subprocess.run(
            ["squeue", "-h", "-j", job], env=env, capture_output=True, text=True, check=False
        )
        if not queued.stdout.strip():
            return
        time.sleep(1)
    subprocess.run(["scancel", job], env=env, check=False)
    pytest.fail(f"job {job} still queued after {timeout:.0f} s\n{_logs(folder)[-4000:]}")


def _exits(folder: Path) -> dict[tuple[int, int], int]:
    """(array task, run) -> the exit code the recipe logged."""
    return {(int(t), int(r)): int(c) for _, t, r, c in EXIT_LINE.findall(_logs(folder))}


def _task_of_trial(folder: Path, trial: optuna.trial.FrozenTrial) -> int:
    """The array task whose worker (``host:pid``, the trial's ``worker`` attr) runs ``trial``."""
    pid = trial.user_attrs["worker"].rsplit(":", 1)[1]
    for _, task, _, logged_pid in RUN_LINE.findall(_logs(folder)):
        if logged_pid == pid:
            return int(task)
    raise AssertionError(f"no task logged worker pid {pid}")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _start_proxy(url: str, port: int, log: Path):
    """``hpo storage-proxy`` on ``port``, once it accepts connections."""
    proxy = start_proxy(url, port, log)
    wait_for(lambda: _listening(port), 120, "the storage proxy", proc=proxy, log=log)
    return proxy


def _in_first_epochs(name: str, url: str) -> optuna.trial.FrozenTrial | None:
    """A RUNNING trial with exactly one epoch done (of 4): seconds of training still ahead."""
    for t in trials_of(name, url):
        if t.state == optuna.trial.TrialState.RUNNING and len(t.user_attrs.get("curve", [])) == 1:
            return t
    return None


def _assert_clean(url: str, name: str, budget: int, workers: int) -> optuna.Study:
    study = optuna.load_study(study_name=name, storage=url)
    audit, counts = audit_study(study), study_counts(study)
    # the budget, and at most one trial more per other worker: workers that resume at the
    # same instant may each start one before either sees the other's (Optuna's own budget
    # callbacks share that race)
    assert budget <= audit.finished < budget + workers, audit
    assert (audit.lost, audit.duplicated, audit.pending, counts.running) == (0, 0, 0, 0), (audit, counts)
    return study


def test_array_survives_scancel_and_requeue(slurm, tmp_path):
    """4 tasks; one cancelled mid-trial, one requeued: the study gets its budget, cleanly.
    The budget is given as a worker option after the preset (the preset's is far larger)."""
    budget = 8
    preset = write_preset(tmp_path, "slurm_array", trials=100, epochs=4)
    with new_database() as (url, _, _):
        job, env = _submit(slurm, tmp_path, url, preset, 4, "--n-trials", str(budget))
        trial = wait_for(lambda: _in_first_epochs("slurm_array", url), 180, "a trial past its first epoch")
        cancelled = _task_of_trial(tmp_path, trial)
        subprocess.run(["scancel", f"{job}_{cancelled}"], env=env, check=True)
        running = [t for t, f in _tasks(env, job).items() if f["JobState"] == "RUNNING" and t != cancelled]
        assert running, _tasks(env, job)
        requeued = running[0]
        _scontrol(env, "requeue", f"{job}_{requeued}")
        _wait_done(env, job, tmp_path, timeout=300)

        study = _assert_clean(url, "slurm_array", budget, 4)
        exits = _exits(tmp_path)
        assert set(exits.values()) <= DOCUMENTED_EXITS, exits
        assert exits[(cancelled, 0)] == 143, exits  # SIGTERM: its trial failed and re-queued...
        assert (cancelled, 1) not in exits, exits  # ...and the task is not run again
        trials = study.get_trials(deepcopy=False)
        root = rec.system_get(trial, rec.FAILED_TRIAL, trial.number)
        chain = [t.state for t in trials if rec.system_get(t, rec.FAILED_TRIAL, t.number) == root]
        assert trials[trial.number].state == optuna.trial.TrialState.FAIL, trials[trial.number]
        assert chain.count(optuna.trial.TrialState.COMPLETE) == 1, chain  # resumed elsewhere, once
        assert exits[(requeued, 0)] == 143 and exits[(requeued, 1)] == 0, exits
        others = {key: code for key, code in exits.items() if key not in ((cancelled, 0), (requeued, 0))}
        assert set(others.values()) == {0}, exits


def test_storage_outage_exits_75_and_the_requeued_run_finishes(slurm, tmp_path):
    """The workers' storage proxy dies mid-trial and stays down past the grace period, long
    enough that a requeued run also finds it down from its first call: every such run exits
    75 and is requeued by the recipe, and once the proxy is back the last runs finish the
    study."""
    budget, grace = 6, 4
    preset = write_preset(tmp_path, "slurm_outage", trials=budget, epochs=4)
    with new_database() as (url, _, _):
        port = free_port()
        proxy_log = tmp_path / "proxy.log"
        proxy = _start_proxy(url, port, proxy_log)
        try:
            job, env = _submit(
                slurm, tmp_path, f"grpc://127.0.0.1:{port}", preset, 2, HPO_STORAGE_GRACE_S=str(grace)
            )
            wait_for(
                lambda: running_after_epochs("slurm_outage", url, 1), 180, "a trial past its first epoch"
            )
            proxy.send_signal(signal.SIGKILL)
            proxy.wait()
            wait_for(
                lambda: any(int(f.get("Restarts", 0)) >= 2 for f in _tasks(env, job).values()),
                180,
                "a task requeued twice (mid-trial, then from its first call)",
            )
            proxy = _start_proxy(url, port, proxy_log)
            _wait_done(env, job, tmp_path, timeout=300)
        finally:
            proxy.kill()
            proxy.wait()

        _assert_clean(url, "slurm_outage", budget, 2)
        exits = _exits(tmp_path)
        assert set(exits.values()) <= {0, 75}, exits  # a requeue ends its own task's run only
        for task in {t for t, _ in exits}:  # each task gave up at least once, and its last run finished
            runs = sorted(r for t, r in exits if t == task)
            assert [exits[(task, r)] for r in runs[:-1]] == [75] * (len(runs) - 1) and runs[0] == 0, exits
            assert exits[(task, runs[-1])] == 0 and len(runs) >= 2, exits
        assert any(exits.get((t, 1)) == 75 for t, _ in exits), exits  # a run that never reached the storage
        waited = [int(n) for n in re.findall(r"storage unreachable for (\d+) s", _logs(tmp_path))]
        assert waited and min(waited) >= grace, waited  # the outage's real length, not a retry's
