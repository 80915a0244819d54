"""Tiny presets, worker processes and PostgreSQL access for the worker and fault tests.

Every design here is a 1-stack, 16-feature hourglass at 32x32 on ~150 synthetic persons: a
trial is a few seconds on one CPU thread, so a test can afford real training and real
processes. PostgreSQL tests use ``HPO_TEST_POSTGRES_URL`` (``.ci/run`` sets it) and skip
when it is unset or the server does not answer; each uses its own study name and deletes
its study afterwards.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest

from hourglass.yamlio import dump_yaml

ROOT = Path(__file__).resolve().parent.parent

SPACE = {
    "description": "test designs: 1 stack, 16 features, 32x32",
    "base": {
        "model": {
            "stacks": 1,
            "features": 16,
            "depth": 1,
            "input_size": 32,
            "stem": {"name": "conv7", "channels": 8},
            "block": {"name": "bottleneck"},
        }
    },
    "params": {
        "model.block.name": {"choices": ["bottleneck", "conv2", "multidilated"]},
        "model.depth": {"choices": [1, 2]},
        "schedule.lr": {"type": "float", "low": 3.0e-4, "high": 3.0e-3, "log": True, "default": 1.0e-3},
    },
}

# Heartbeat every second, dead after 3: a killed worker's trial is retried within seconds.
FAST_HEARTBEAT = {"HPO_HEARTBEAT_S": "1", "HPO_GRACE_S": "3"}


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def write_preset(
    folder: Path,
    name: str | None = None,
    *,
    trials: int = 3,
    epochs: int = 3,
    rows: int = 150,
    space_doc: dict | None = None,
    **fields,
) -> Path:
    """A preset YAML (and its space ``space_doc``) in ``folder``; ``fields`` override preset keys."""
    name = name or unique_name()
    dump_yaml(space_doc or SPACE, folder / f"{name}_space.yaml")
    preset = {
        "name": name,
        "objectives": ["pckh", "params", "train_time"],
        "sampler": {"name": "random"},
        "pruner": {"name": "none"},
        "budget": {"trials": trials},
        "data": f"synthetic:{rows}:32:0",
        "space": f"{name}_space.yaml",
        "schedule": {"epochs": epochs, "batch_size": 16, "milestones": [], "augment": False},
        "seed": 0,
        "device": "cpu",
        **fields,
    }
    return dump_yaml(preset, folder / f"{name}.yaml")


def worker_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    env.pop("HPO_STORAGE", None)
    return {**env, **extra}


def start_worker(
    preset: Path | str, storage: str, *args: str, env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen:
    """``python -m hpo worker PRESET`` as a real process (storage through HPO_STORAGE)."""
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [sys.executable, "-m", "hpo", "worker", str(preset), "--quiet", *args],
        cwd=ROOT,
        env={**(env or worker_env()), "HPO_STORAGE": storage},
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def wait_for(
    condition: Callable[[], object],
    timeout: float,
    what: str,
    proc: subprocess.Popen | None = None,
    log: Path | None = None,
) -> object:
    """Poll ``condition`` until it returns something truthy; fail with the worker's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = condition()
        except (KeyError, optuna.exceptions.StorageInternalError):
            got = None  # the study is not created yet
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    pytest.fail(f"timed out waiting for {what} (worker rc={proc.poll() if proc else None})\n{tail}")


def trials_of(name: str, url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def running_after_epochs(name: str, url: str, epochs: int) -> optuna.trial.FrozenTrial | None:
    """A RUNNING trial whose curve (written after each epoch's checkpoint) has ``epochs`` points."""
    for t in trials_of(name, url):
        if t.state == optuna.trial.TrialState.RUNNING and len(t.user_attrs.get("curve", [])) >= epochs:
            return t
    return None


def _postgres_url() -> str:
    url = os.environ.get("HPO_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("HPO_TEST_POSTGRES_URL is not set (see .ci/run)")
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # no driver, no server, wrong credentials: not this test's business
        pytest.skip(f"PostgreSQL at HPO_TEST_POSTGRES_URL is not reachable ({exc.__class__.__name__})")
    return url


@pytest.fixture
def pg_study() -> Iterator[tuple[str, str]]:
    """(study name, PostgreSQL URL); the study is deleted afterwards."""
    url = _postgres_url()
    name = unique_name("pg")
    yield name, url
    try:
        optuna.delete_study(study_name=name, storage=url)
    except KeyError:
        pass


# ---- fresh databases and faults (issue 16) ---------------------------------------------------


def _admin_engine(url: str):
    import sqlalchemy

    return sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)


def terminate_connections(admin_url: str, database: str) -> int:
    """``pg_terminate_backend`` every connection to ``database`` (what a failover does)."""
    import sqlalchemy

    with _admin_engine(admin_url).connect() as conn:
        return len(
            conn.execute(
                sqlalchemy.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db AND pid <> "
                    "pg_backend_pid()"
                ),
                {"db": database},
            ).fetchall()
        )


PROXY_APP = "hpo-storage-proxy"  # the application_name (PGAPPNAME) of start_proxy's connections


def count_connections(admin_url: str, database: str, app: str | None = None) -> int:
    """Connections to ``database`` (of application ``app`` only, if given)."""
    import sqlalchemy

    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = :db"
    with _admin_engine(admin_url).connect() as conn:
        return conn.execute(
            sqlalchemy.text(query + (" AND application_name = :app" if app else "")),
            {"db": database, "app": app},
        ).scalar_one()


@contextlib.contextmanager
def new_database() -> Iterator[tuple[str, str, str]]:
    """(URL of a new, empty database, its name, the admin URL); dropped afterwards. Faults
    are injected only into such a database (other tests share the server's ``test`` one)."""
    import sqlalchemy

    admin = _postgres_url()
    database = unique_name("hpo16")
    with _admin_engine(admin).connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{database}"'))
    try:
        yield (
            sqlalchemy.make_url(admin).set(database=database).render_as_string(hide_password=False),
            database,
            admin,
        )
    finally:
        with _admin_engine(admin).connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


@pytest.fixture
def fresh_pg() -> Iterator[tuple[str, str, str]]:
    with new_database() as got:
        yield got


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_proxy(storage: str, port: int, log: Path) -> subprocess.Popen:
    """``python -m hpo storage-proxy`` on 127.0.0.1:``port`` (storage through HPO_STORAGE)."""
    out = open(log, "a")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [sys.executable, "-m", "hpo", "storage-proxy", "--port", str(port)],
        cwd=ROOT,
        env={**worker_env(), "HPO_STORAGE": storage, "PGAPPNAME": PROXY_APP},
        stdout=out,
        stderr=subprocess.STDOUT,
    )
