"""Soak test: several workers on one PostgreSQL study, one killed (SIGKILL) at random every
~30 s and replaced, then a check that no trial was lost or counted twice.

    python scripts/soak.py [--minutes 3] [--workers 4] [--kill-every 30] [--storage URL]

Stops by itself: after ``--minutes`` the workers get SIGTERM (each fails and re-queues its
running trial and exits 143), then one drain worker runs every re-queued trial (and waits
out the grace period of trials whose SIGKILLed worker never came back) without starting
new ones. Prints trials finished, retried, resumed (from a checkpoint), lost (FAIL without
a retry, or left RUNNING: must be 0) and duplicated (two results from one retry chain: must
be 0); exits 1 if either is not 0. The designs are tiny (1 stack, 16 features, 32x32,
synthetic data) so a trial takes seconds on one CPU thread. The study is deleted at the
end unless ``--keep``. Default storage: $HPO_TEST_POSTGRES_URL, else the local test server.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a source checkout

import optuna  # noqa: E402

from hourglass.yamlio import dump_yaml  # noqa: E402
from hpo.storage import redact_url  # noqa: E402
from hpo.workers import audit_study, check_workers  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SPACE = {
    "description": "soak designs: 1 stack, 16 features, 32x32",
    "base": {"model": {"stacks": 1, "features": 16, "depth": 1, "input_size": 32,
                       "stem": {"name": "conv7", "channels": 8}, "block": {"name": "bottleneck"}}},
    "params": {
        "model.block.name": {"choices": ["bottleneck", "conv2", "multidilated"]},
        "model.depth": {"choices": [1, 2]},
        "schedule.lr": {"type": "float", "low": 3.0e-4, "high": 3.0e-3, "log": True, "default": 1.0e-3},
    },
}


def _write_preset(folder: Path, name: str, epochs: int) -> Path:
    dump_yaml(SPACE, folder / "soak_space.yaml")
    return dump_yaml({
        "name": name, "objectives": ["pckh", "params", "train_time"], "sampler": {"name": "tpe"},
        "pruner": {"name": "none"}, "budget": {"trials": 100000}, "data": "synthetic:240:32:0",
        "space": "soak_space.yaml", "schedule": {"epochs": epochs, "batch_size": 16, "milestones": [], "augment": False},
        "seed": 0, "device": "cpu",
    }, folder / f"{name}.yaml")


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
        p = subprocess.Popen([sys.executable, "-m", "hpo", "worker", str(self.preset), "--quiet", "--seed", str(i),
                              "--n-trials", str(n_trials), "--checkpoint-dir", str(self.folder / "ckpt")],
                             cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs[i] = p
        return p

    def alive(self) -> list[int]:
        return [i for i, p in self.procs.items() if p.poll() is None]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=3.0, help="how long to kill workers (default 3)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--kill-every", type=float, default=30.0, help="mean seconds between kills (default 30)")
    ap.add_argument("--epochs", type=int, default=4, help="epochs per trial (default 4)")
    ap.add_argument("--storage", default=os.environ.get("HPO_TEST_POSTGRES_URL") or DEFAULT_URL)
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill schedule")
    ap.add_argument("--keep", action="store_true", help="keep the study (default: delete it)")
    args = ap.parse_args()
    check_workers(args.storage, args.workers)
    rng = random.Random(args.seed)
    name = f"soak_{uuid.uuid4().hex[:10]}"
    folder = Path(tempfile.mkdtemp(prefix="hpo-soak-"))
    preset = _write_preset(folder, name, args.epochs)
    env = {**os.environ, "HPO_STORAGE": args.storage, "HPO_HEARTBEAT_S": "2", "HPO_GRACE_S": "6",
           "PYTHONPATH": str(ROOT), "NO_ALBUMENTATIONS_UPDATE": "1"}
    print(f"soak: study {name} on {redact_url(args.storage)}, {args.workers} workers, a SIGKILL every "
          f"~{args.kill_every:.0f} s for {args.minutes:g} min; logs in {folder}", flush=True)
    pool = Pool(preset, folder, env)
    kills = exits = 0
    t0 = time.monotonic()
    deadline = t0 + 60 * args.minutes
    try:
        for _ in range(args.workers):
            pool.start()
        next_kill = t0 + rng.uniform(0.5, 1.5) * args.kill_every
        while time.monotonic() < deadline:
            time.sleep(0.5)
            for i, p in list(pool.procs.items()):
                if p.poll() is not None and i not in pool.retired:
                    pool.retired.add(i)  # exited by itself (should not happen): replace it, count it
                    exits += 1
                    print(f"  {time.monotonic() - t0:6.1f} s  worker {i} exited with {p.returncode}; replaced", flush=True)
                    pool.start()
            if time.monotonic() >= next_kill and pool.alive():
                victim = rng.choice(pool.alive())
                pool.procs[victim].send_signal(signal.SIGKILL)
                pool.procs[victim].wait()
                pool.retired.add(victim)
                kills += 1
                pool.start()
                print(f"  {time.monotonic() - t0:6.1f} s  SIGKILL worker {victim}, started worker {pool.started - 1}", flush=True)
                next_kill = time.monotonic() + rng.uniform(0.5, 1.5) * args.kill_every
    finally:
        for i in pool.alive():
            pool.procs[i].send_signal(signal.SIGTERM)
        codes = [pool.procs[i].wait(timeout=120) for i in list(pool.procs) if i not in pool.retired]
    print(f"stopped the workers with SIGTERM after {time.monotonic() - t0:.0f} s: exit codes {sorted(codes)}", flush=True)

    storage_study = optuna.load_study(study_name=name, storage=args.storage)
    finished = audit_study(storage_study).finished
    drain = pool.start(n_trials=max(finished, 1))  # runs re-queued trials only, then leaves
    drain_code = drain.wait(timeout=600)
    print(f"drain worker exit code {drain_code}", flush=True)

    audit = audit_study(optuna.load_study(study_name=name, storage=args.storage))
    total = len(storage_study.get_trials(deepcopy=False))
    print(f"workers started {pool.started} (kills {kills}, unexpected exits {exits}), trials in the study {total}")
    print(f"trials finished   {audit.finished}")
    print(f"trials retried    {audit.retried}  (resumed from a checkpoint: {audit.resumed}, "
          f"epochs not recomputed: {audit.epochs_saved})")
    print(f"failed (design)   {audit.failed}")
    print(f"lost              {audit.lost}  (FAIL without a retry, or left RUNNING)")
    print(f"pending           {audit.pending}  (re-queued, never run)")
    print(f"duplicated        {audit.duplicated}  (two results from one retry chain)")
    if not args.keep:
        optuna.delete_study(study_name=name, storage=args.storage)
    ok = audit.lost == 0 and audit.duplicated == 0 and audit.pending == 0 and exits == 0
    print("soak: OK" if ok else "soak: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
