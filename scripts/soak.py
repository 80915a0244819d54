"""Soak test: many workers started at the same instant on a fresh PostgreSQL database, directly
and through ``hpo storage-proxy``, through worker and database faults; then a check that no
trial was lost or counted twice.

    python scripts/soak.py [--mode both] [--workers 16] [--minutes 3] [--kill-every 20]
                           [--terminate-every 15] [--server URL]

Each mode (``direct``: every worker on the database; ``proxy``: every worker on one
``hpo storage-proxy``) gets its own new database on the server (dropped at the end unless
``--keep``), and its workers are all started in one burst. Faults, for ``--minutes``:

- a worker SIGKILLed every ~``--kill-every`` s (and a new one started);
- every connection to the database terminated (``pg_terminate_backend``) every
  ~``--terminate-every`` s: what a failover or a restart does;
- in proxy mode, the proxy SIGKILLed once half-way and restarted 3 s later.

Then the workers get SIGTERM (each fails and re-queues its running trial and exits 143)
and one drain worker runs every re-queued trial without starting new ones. Prints trials
finished, retried, resumed (from a checkpoint), lost (FAIL without a retry: must be 0),
duplicated (two results from one retry chain: must be 0), left RUNNING (must be 0), worker
exits other than the soak's own kills (must be 0), and the peak number of connections to
the database (sampled every 0.5 s). Exits 1 if a must-be-0 is not. The designs are tiny
(1 stack, 16 features, 32x32, synthetic data) so that 16 workers fit on a small machine.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a source checkout

import optuna  # noqa: E402
import sqlalchemy  # noqa: E402

from hourglass.yamlio import dump_yaml  # noqa: E402
from hpo.storage import redact_url  # noqa: E402
from hpo.workers import audit_study  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SPACE = {
    "description": "soak designs: 1 stack, 16 features, 32x32",
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


def _write_preset(folder: Path, name: str, epochs: int, rows: int) -> Path:
    dump_yaml(SPACE, folder / "soak_space.yaml")
    return dump_yaml(
        {
            "name": name,
            "objectives": ["pckh", "params", "train_time"],
            "sampler": {"name": "random"},
            "pruner": {"name": "none"},
            "budget": {"trials": 100000},
            "data": f"synthetic:{rows}:32:0",
            "space": "soak_space.yaml",
            "schedule": {"epochs": epochs, "batch_size": 16, "milestones": [], "augment": False},
            "seed": 0,
            "device": "cpu",
        },
        folder / f"{name}.yaml",
    )


class Database:
    """A new database on the server, its connection count, faults and removal."""

    def __init__(self, server: str) -> None:
        self.server, self.name = server, f"soak_{uuid.uuid4().hex[:10]}"
        self.url = sqlalchemy.make_url(server).set(database=self.name).render_as_string(hide_password=False)
        self.peak = 0
        self._sql(f'CREATE DATABASE "{self.name}"')

    def _sql(self, query: str, *, own: bool = False, **params: object) -> list:
        """Run ``query`` on the server's admin database (``own``: on this database)."""
        engine = sqlalchemy.create_engine(
            self.url if own else self.server, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool
        )
        with engine.connect() as conn:
            result = conn.execute(sqlalchemy.text(query), params)
            return result.fetchall() if result.returns_rows else []

    def terminate(self) -> int:
        return len(
            self._sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()",
                db=self.name,
            )
        )

    def sample(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            n = self._sql("SELECT count(*) FROM pg_stat_activity WHERE datname = :db", db=self.name)[0][0]
            self.peak = max(self.peak, n)

    def trials(self) -> int:
        """How many trials the database holds (0 before the schema exists)."""
        try:
            return self._sql("SELECT count(*) FROM trials", own=True)[0][0]
        except sqlalchemy.exc.ProgrammingError:
            return 0

    def drop(self) -> None:
        self._sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Pool:
    """The worker processes, each with its own log and seed."""

    def __init__(self, preset: Path, folder: Path, env: dict[str, str]) -> None:
        self.preset, self.folder, self.env = preset, folder, env
        self.procs: dict[int, subprocess.Popen] = {}
        self.retired: set[int] = set()  # killed or exited, already replaced
        self.started = 0

    def start(self, n_trials: int = 100000) -> subprocess.Popen:
        i = self.started
        self.started += 1
        log = open(self.folder / f"worker{i}.log", "w")  # noqa: SIM115 (lives as long as the process)
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hpo",
                "worker",
                str(self.preset),
                "--quiet",
                "--seed",
                str(i),
                "--n-trials",
                str(n_trials),
                "--checkpoint-dir",
                str(self.folder / "ckpt"),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs[i] = p
        return p

    def alive(self) -> list[int]:
        return [i for i, p in self.procs.items() if p.poll() is None]


class Proxy:
    """``hpo storage-proxy`` on a free port, killed and restarted on demand."""

    def __init__(self, url: str, folder: Path, env: dict[str, str]) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url, self.folder, self.env = url, folder, env
        self.proc = self.start()

    def start(self) -> subprocess.Popen:
        log = open(self.folder / "proxy.log", "a")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hpo", "storage-proxy", "--port", str(self.port)],
            cwd=ROOT,
            env={**self.env, "HPO_STORAGE": self.url},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self.proc

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def soak(mode: str, args: argparse.Namespace, rng: random.Random) -> dict[str, object]:
    db = Database(args.server)
    name = f"soak_{mode}"
    folder = Path(tempfile.mkdtemp(prefix=f"hpo-soak-{mode}-"))
    preset = _write_preset(folder, name, args.epochs, args.rows)
    env = {
        **os.environ,
        "HPO_HEARTBEAT_S": "2",
        "HPO_GRACE_S": "30",
        "PYTHONPATH": str(ROOT),
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    proxy = Proxy(db.url, folder, env) if mode == "proxy" else None
    storage = f"grpc://127.0.0.1:{proxy.port}" if proxy else db.url
    env["HPO_STORAGE"] = storage
    print(
        f"soak {mode}: study {name} on {redact_url(storage)} (database {db.name}), {args.workers} workers; "
        f"logs in {folder}",
        flush=True,
    )
    stop = threading.Event()
    sampler = threading.Thread(target=db.sample, args=(stop,), daemon=True)
    sampler.start()
    pool = Pool(preset, folder, env)
    counts = {"kills": 0, "terminations": 0, "connections_terminated": 0, "proxy_restarts": 0, "exits": 0}
    t0 = time.monotonic()

    def log(text: str) -> None:
        print(f"  {time.monotonic() - t0:6.1f} s  {text}", flush=True)

    try:
        for _ in range(args.workers):  # one burst: every worker meets the fresh database at once
            pool.start()
        while not db.trials() and time.monotonic() - t0 < 600:  # importing torch 16 times takes a while
            time.sleep(0.5)
        log(f"the first trial started; {len(pool.alive())} workers alive; faults from now on")
        t0 = time.monotonic()
        deadline = t0 + 60 * args.minutes
        next_kill = t0 + rng.uniform(0.5, 1.5) * args.kill_every
        next_terminate = t0 + rng.uniform(0.5, 1.5) * args.terminate_every
        proxy_kill = t0 + 30 * args.minutes if proxy else float("inf")
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = time.monotonic()
            for i, p in list(pool.procs.items()):
                if p.poll() is not None and i not in pool.retired:
                    pool.retired.add(i)  # exited by itself (must not happen): replace it, count it
                    counts["exits"] += 1
                    log(f"worker {i} exited with {p.returncode}; replaced")
                    pool.start()
            if now >= next_kill and pool.alive():
                victim = rng.choice(pool.alive())
                pool.procs[victim].send_signal(signal.SIGKILL)
                pool.procs[victim].wait()
                pool.retired.add(victim)
                counts["kills"] += 1
                pool.start()
                log(f"SIGKILL worker {victim}, started worker {pool.started - 1}")
                next_kill = now + rng.uniform(0.5, 1.5) * args.kill_every
            if now >= next_terminate:
                n = db.terminate()
                counts["terminations"] += 1
                counts["connections_terminated"] += n
                log(f"terminated all {n} connections to {db.name}")
                next_terminate = now + rng.uniform(0.5, 1.5) * args.terminate_every
            if proxy and now >= proxy_kill:
                proxy.kill()
                log("SIGKILL the storage proxy; restarting it in 3 s")
                time.sleep(3)
                proxy.start()
                counts["proxy_restarts"] += 1
                proxy_kill = float("inf")
    finally:
        for i in pool.alive():
            pool.procs[i].send_signal(signal.SIGTERM)
        codes = [pool.procs[i].wait(timeout=180) for i in list(pool.procs) if i not in pool.retired]
    log(f"stopped the workers with SIGTERM: exit codes {sorted(codes)}")
    # 143: SIGTERM handled (trial re-queued); -15: SIGTERM before the handler was installed
    counts["exits"] += sum(code not in (0, 143, -signal.SIGTERM) for code in codes)

    study = optuna.load_study(study_name=name, storage=db.url)
    drain = pool.start(n_trials=max(audit_study(study).finished, 1))  # re-queued trials only, then leaves
    drain_code = drain.wait(timeout=900)
    log(f"drain worker exit code {drain_code}")
    stop.set()
    trials = study.get_trials(deepcopy=False)
    audit = audit_study(study)
    if proxy:
        proxy.kill()
    if not args.keep:
        db.drop()
    return {
        "mode": mode,
        "workers started": pool.started,
        **counts,
        "drain exit": drain_code,
        "trials": len(trials),
        "finished": audit.finished,
        "retried": audit.retried,
        "resumed": audit.resumed,
        "epochs not recomputed": audit.epochs_saved,
        "failed (design)": audit.failed,
        "lost": audit.lost,
        "pending": audit.pending,
        "duplicated": audit.duplicated,
        "left RUNNING": sum(t.state == optuna.trial.TrialState.RUNNING for t in trials),
        "peak connections": db.peak,
    }


MUST_BE_ZERO = ("lost", "pending", "duplicated", "left RUNNING", "exits")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=["direct", "proxy", "both"], default="both")
    ap.add_argument(
        "--minutes", type=float, default=3.0, help="how long to inject faults, per mode (default 3)"
    )
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument(
        "--kill-every", type=float, default=20.0, help="mean seconds between SIGKILLs (default 20)"
    )
    ap.add_argument(
        "--terminate-every",
        type=float,
        default=15.0,
        help="mean seconds between terminating every connection (default 15)",
    )
    ap.add_argument("--epochs", type=int, default=3, help="epochs per trial (default 3)")
    ap.add_argument("--rows", type=int, default=96, help="synthetic persons (default 96)")
    ap.add_argument(
        "--server",
        default=os.environ.get("HPO_TEST_POSTGRES_URL") or DEFAULT_URL,
        help="a PostgreSQL URL allowed to CREATE DATABASE (default: $HPO_TEST_POSTGRES_URL)",
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the fault schedule")
    ap.add_argument("--keep", action="store_true", help="keep the databases (default: drop them)")
    args = ap.parse_args()
    if args.workers < 1:
        ap.error("--workers: expected an integer >= 1")
    rng = random.Random(args.seed)
    results = [
        soak(mode, args, rng) for mode in (["direct", "proxy"] if args.mode == "both" else [args.mode])
    ]
    print()
    width = max(len(k) for k in results[0])
    print(f"{'':{width}s}" + "".join(f"{r['mode']:>10s}" for r in results))
    for key in list(results[0])[1:]:
        print(f"{key:{width}s}" + "".join(f"{r[key]!s:>10s}" for r in results))
    ok = all(r[key] == 0 for r in results for key in MUST_BE_ZERO)
    print("soak: OK" if ok else "soak: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
