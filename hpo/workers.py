"""Many workers on one study: which study a worker joins, its seed, and local worker processes.

A study is shared through its storage. Every worker (``hpo worker``, on any machine that
reaches the database) opens the same study and runs trials until the study holds the
budget's number of finished trials, whoever ran them (:func:`hpo.trial_loop.work`), with
heartbeats on so that a dead worker's trial is failed and retried by another one, resuming
from its checkpoint. SQLite is for one worker at a time (concurrent writers lock each other
out); PostgreSQL is the multi-worker path; the journal file backend is for sites that only
share a file system (it has no heartbeat: a dead worker's trial stays RUNNING there).

``hpo run --workers K`` (default: the preset's ``workers``) is :func:`run_workers`: it
creates the study and enqueues the warm-start designs once, then starts ``python -m hpo
worker`` processes, K on each GPU of ``--gpus`` (default: every visible one; each worker
sees only its own GPU, so its crop cache and its trials land there), or K on the CPU, and
waits for them. The storage URL travels in the environment
(``HPO_STORAGE``), not on the command line, so a password never shows in the process list.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch

from hourglass.errors import ConfigError
from hourglass.validate import from_dict
from hpo import STORAGE_ENV
from hpo import record as rec
from hpo.preset import StudyPreset, find_preset, list_presets, load_preset
from hpo.storage import is_sqlite, open_storage, redact_url
from hpo.study import RunSummary, checkpoint_root, prepare_study, run_study
from hpo.trial_loop import Interrupted, SignalGuard, study_counts

__all__ = [
    "resolve_worker_preset",
    "worker_seed",
    "check_workers",
    "default_workers",
    "worker_devices",
    "run_worker",
    "run_workers",
    "WorkersSummary",
    "STORAGE_ENV",
    "StudyAudit",
    "audit_study",
    "parse_gpus",
    "gpu_device",
]

LINE_WIDTH = 80  # output fits 80 columns, tag included
STOP_WAIT_S = 60.0  # after a signal, how long a worker may take to fail and re-queue its trial


def _preset_from_study(name: str, url: str) -> StudyPreset:
    """The preset stored in study ``name`` (``hpo run``/``hpo worker`` store it on creation)."""
    storage = open_storage(url, wait=True)  # a worker: outlive a restarting server
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        studies = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise ConfigError(
            f"{name!r}: neither a preset ({', '.join(list_presets()) or 'none'}; see hpo presets; or a "
            "YAML path) "
            f"nor a study in {redact_url(url)} (found: {', '.join(studies) or 'none'})"
        ) from None
    stored = rec.study_get(study, rec.STUDY_PRESET)
    if not isinstance(stored, dict):
        raise ConfigError(
            f"study {name!r} in {redact_url(url)}: it has no stored preset (not created by hpo); pass the "
            "preset YAML"
        )
    preset = from_dict(StudyPreset, {**stored, "storage": url}, f"study {name!r}")
    if not Path(preset.space).is_file():
        raise ConfigError(
            f"study {name!r}: its search space {preset.space} is not on this machine; pass the preset YAML "
            "instead"
        )
    return preset


def resolve_worker_preset(ref: str, storage: str | None = None) -> StudyPreset:
    """``ref`` as a preset (a name in ``studies/`` or a YAML path) or, when no such file
    exists and ``storage`` is given, as the name of a study there, whose stored preset is
    used: a worker on another machine then needs only the study name and the URL."""
    is_file = find_preset(ref) is not None
    preset = load_preset(ref) if is_file or storage is None else _preset_from_study(ref, storage)
    return preset.replace(storage=storage) if storage else preset


def worker_seed(preset_seed: int, seed: int | None = None) -> int:
    """The sampler seed of one worker: ``seed`` if given (reproducible), else the preset's
    mixed with host and process id, so that workers started by hand on several machines
    do not all propose the same designs."""
    if seed is not None:
        return seed
    return (preset_seed + zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode())) % 2**31


def check_workers(url: str, workers: int) -> None:
    if workers < 1:
        raise ConfigError(f"--workers: expected an integer >= 1, but got {workers}")
    if workers > 1 and is_sqlite(url):
        raise ConfigError(
            f"--workers {workers}: SQLite ({redact_url(url)}) takes one worker at a time; share the study "
            "through "
            "PostgreSQL (--storage postgresql+psycopg://user@host/db) or a journal file (--storage "
            "journal:///path/x.log)"
        )


def _visible_gpus() -> list[str]:
    """The GPU ids a child may be given in CUDA_VISIBLE_DEVICES (the parent's own list, if set)."""
    if not torch.cuda.is_available():
        return []
    count = torch.cuda.device_count()
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return (listed or [str(i) for i in range(count)])[:count]


def parse_gpus(text: str | None) -> tuple[int, ...] | None:
    """``--gpus 0,1`` -> (0, 1): indices among the visible GPUs (None: all of them)."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() for p in parts) or len(set(parts)) != len(parts):
        raise ConfigError(
            f"--gpus: expected distinct GPU indices separated by commas (0,1,...), but got {text!r}"
        )
    return tuple(int(p) for p in parts)


def _placed_gpus(gpus: tuple[int, ...] | None) -> list[str]:
    """The CUDA_VISIBLE_DEVICES ids of ``gpus`` (visible indices; None: every visible GPU)."""
    visible = _visible_gpus()
    if gpus is None:
        return visible
    missing = [g for g in gpus if g >= len(visible)]
    if missing:
        shown = f"0..{len(visible) - 1}" if visible else "none"
        raise ConfigError(
            f"--gpus: GPU {missing[0]} is not visible (this machine shows {len(visible)}: {shown})"
        )
    return [visible[g] for g in gpus]


def gpu_device(device: str | None, gpus: tuple[int, ...] | None) -> str | None:
    """The device of ONE worker given ``--gpus`` (``hpo worker``): ``cuda:N`` for one index."""
    if gpus is None:
        return device
    if len(gpus) != 1:
        raise ConfigError(
            f"--gpus: one worker uses one GPU, but got {len(gpus)}; start one `hpo worker` per GPU, "
            "or `hpo run --workers K --gpus ...` for K on each"
        )
    if device not in (None, "auto", "cuda"):
        raise ConfigError(f"--gpus: cannot be combined with --device {device}")
    _placed_gpus(gpus)  # visible?
    return f"cuda:{gpus[0]}"


def worker_devices(
    per_gpu: int, device: str | None, gpus: tuple[int, ...] | None = None
) -> list[tuple[str, dict[str, str]]]:
    """(``--device``, extra environment) of each local worker.

    ``device`` None, ``auto`` or ``cuda``: ``per_gpu`` workers on each GPU of ``gpus``
    (visible indices; default: every visible GPU), taken in turn, each seeing only its own
    GPU through CUDA_VISIBLE_DEVICES (a plain ``cuda`` would put them all on GPU 0, crop
    caches included); with no GPU, ``per_gpu`` workers on the CPU. Any other device
    (``cpu``, ``cuda:1``, ``mps``): ``per_gpu`` workers there.
    """
    if device not in (None, "auto", "cuda"):
        if gpus is not None:
            raise ConfigError(f"--gpus: cannot be combined with --device {device}")
        return [(device, {})] * per_gpu
    placed = _placed_gpus(gpus)
    if not placed:
        return [
            ("cuda" if device == "cuda" else "cpu", {})
        ] * per_gpu  # "cuda" without a GPU fails later, named
    return [("cuda", {"CUDA_VISIBLE_DEVICES": gpu}) for _ in range(per_gpu) for gpu in placed]


def default_workers(
    preset: StudyPreset, device: str | None = None, gpus: tuple[int, ...] | None = None
) -> int:
    """The preset's ``workers`` (default 1) on each GPU (of ``gpus``, default every visible
    one), or on the CPU, on a shared storage; one on SQLite (``--storage`` may have put a
    preset of several workers there)."""
    if is_sqlite(preset.storage) and gpus is None:
        return 1
    device = device or (None if preset.device == "auto" else preset.device)
    return len(worker_devices(preset.workers, device, gpus))


def run_worker(
    preset: StudyPreset,
    *,
    n_trials: int | None = None,
    timeout_s: float | None = None,
    device: str | None = None,
    seed: int | None = None,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
    verbose: bool = False,
    announce: bool = True,
) -> RunSummary:
    """One worker: run the study's trials, with heartbeats, until it holds ``n_trials``
    finished ones (default: the preset's budget), counted over all workers; ``verbose``
    adds a line per epoch; ``announce``: see :func:`hpo.study.run_study`."""
    return run_study(
        preset,
        total_trials=n_trials if n_trials is not None else preset.budget.trials,
        timeout_s=timeout_s,
        device=device,
        heartbeat=True,
        seed=worker_seed(preset.seed, seed),
        checkpoint_dir=checkpoint_dir,
        progress=progress,
        verbose=verbose,
        announce=announce,
    )


@dataclass(frozen=True)
class WorkersSummary(RunSummary):
    exit_codes: tuple[int, ...] = ()

    @property
    def failed_workers(self) -> list[int]:
        return [i for i, code in enumerate(self.exit_codes) if code != 0]


def _started(study: optuna.Study) -> int:
    return sum(t.state != optuna.trial.TrialState.WAITING for t in study.get_trials(deepcopy=False))


def _relay(stream, prefix: str, echo: Callable[[str], None]) -> None:
    """Each worker line behind its ``[wN]`` tag; a line the tag pushes past 80 columns is
    wrapped under it (the worker was told its width through ``COLUMNS``, so that is rare)."""
    for line in stream:
        wrapped = textwrap.wrap(
            line.rstrip(), LINE_WIDTH, initial_indent=prefix, subsequent_indent=" " * len(prefix)
        )
        for part in wrapped or [prefix.rstrip()]:
            echo(part)


def _stop(procs: list[subprocess.Popen], signum: int) -> None:
    """Pass the signal on, give each worker time to fail and re-queue its trial, then kill."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signum)
    for p in procs:
        try:
            p.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_workers(
    preset: StudyPreset,
    ref: str,
    count: int,
    *,
    n_trials: int | None = None,
    timeout_s: float | None = None,
    device: str | None = None,
    warm_start: str | None = None,
    checkpoint_dir: Path | None = None,
    echo: Callable[[str], None] = print,
    gpus: tuple[int, ...] | None = None,
    verbose: bool = False,
) -> WorkersSummary:
    """Start local ``hpo worker`` processes on the study of ``preset`` (given as ``ref``, a
    preset name or path), ``count`` on each GPU of ``gpus`` or ``count`` on the CPU (see
    :func:`worker_devices`), until ``n_trials`` more trials (default: the preset's budget)
    have finished, and wait for them (``verbose``: each says every epoch). SIGINT/SIGTERM are
    passed on to the workers."""
    placement = worker_devices(count, device or (None if preset.device == "auto" else preset.device), gpus)
    count = len(placement)
    check_workers(preset.storage, count)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our opening line says it shorter
    try:
        study, enqueued = prepare_study(preset, warm_start=warm_start)
    finally:
        optuna.logging.set_verbosity(verbosity)
    before = _started(study)
    target = study_counts(study).finished + (n_trials if n_trials is not None else preset.budget.trials)
    ckpt = Path(checkpoint_dir or checkpoint_root(preset)).resolve()
    ref = str(Path(ref).resolve()) if Path(ref).is_file() else ref
    package_root = str(Path(__file__).resolve().parent.parent)  # children import this very code
    base_env = {
        **os.environ,
        STORAGE_ENV: preset.storage,
        "PYTHONUNBUFFERED": "1",
        # the [wN] tag takes 5 columns of each line the worker prints
        "COLUMNS": str(LINE_WIDTH - len("[w0] ")),
        "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p),
    }
    procs: list[subprocess.Popen] = []
    relays: list[threading.Thread] = []
    with SignalGuard() as guard:
        try:
            for i, (dev, env) in enumerate(placement):
                cmd = [
                    sys.executable,
                    "-m",
                    "hpo",
                    "worker",
                    ref,
                    "--n-trials",
                    str(target),
                    "--device",
                    dev,
                    "--seed",
                    str(preset.seed + i),
                    "--checkpoint-dir",
                    str(ckpt),
                    "--quiet",
                    "--launched",  # this launcher has said where the study is and whether it is new
                ]
                if timeout_s is not None:
                    cmd += ["--timeout", str(timeout_s)]
                if verbose:
                    cmd.append("--verbose")
                p = subprocess.Popen(
                    cmd,
                    env={**base_env, **env},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    bufsize=1,
                )
                procs.append(p)
                t = threading.Thread(target=_relay, args=(p.stdout, f"[w{i}] ", echo), daemon=True)
                t.start()
                relays.append(t)
            echo(
                f"started {count} workers on {redact_url(preset.storage)} (study {preset.name!r}, "
                f"until {target} finished trials; checkpoints in {ckpt})"
            )
            with guard.armed():
                for p in procs:
                    p.wait()
        except Interrupted as exc:
            _stop(procs, exc.signum)
            raise
        except BaseException:
            _stop(procs, signal.SIGTERM)
            raise
        finally:
            for t in relays:
                t.join(timeout=5)
    return WorkersSummary(study, _started(study) - before, enqueued, tuple(p.returncode for p in procs))


@dataclass(frozen=True)
class StudyAudit:
    """Whether a study lost or double-counted anything (what ``scripts/soak.py`` prints)."""

    finished: int  # COMPLETE + PRUNED
    retried: int  # retry attempts (trials re-queued after their worker died or was stopped)
    resumed: int  # finished retries that started from a checkpoint
    epochs_saved: int  # epochs those retries did not recompute
    failed: int  # FAIL with a reason of the design itself (exception, oom): a result, not a loss
    lost: int  # FAIL without a retry for any other reason, or left RUNNING
    pending: int  # WAITING retries nobody has run yet
    duplicated: int  # extra results in one retry chain (two COMPLETE/PRUNED from one original trial)


def audit_study(study: optuna.Study) -> StudyAudit:
    trials = study.get_trials(deepcopy=False)
    state = optuna.trial.TrialState
    retried_numbers = {n for t in trials for n in rec.system_get(t, rec.RETRY_HISTORY, [])}
    done = [t for t in trials if t.state in (state.COMPLETE, state.PRUNED)]

    def is_retry(t: optuna.trial.FrozenTrial) -> bool:
        return rec.system_get(t, rec.FAILED_TRIAL) is not None

    retries = [t for t in trials if is_retry(t)]
    unretried_fails = [t for t in trials if t.state == state.FAIL and t.number not in retried_numbers]
    design_fails = [t for t in unretried_fails if rec.get(t, rec.FAIL_REASON) in ("exception", "oom")]
    chains: dict[int, int] = {}
    for t in done:
        root = rec.system_get(t, rec.FAILED_TRIAL, t.number)
        chains[root] = chains.get(root, 0) + 1
    resumed = [t for t in done if is_retry(t) and rec.get(t, rec.RESUMED_FROM_EPOCH, 0) > 0]
    return StudyAudit(
        finished=len(done),
        retried=len(retries),
        resumed=len(resumed),
        epochs_saved=sum(rec.get(t, rec.RESUMED_FROM_EPOCH) for t in resumed),
        failed=len(design_fails),
        lost=len(unretried_fails) - len(design_fails) + sum(t.state == state.RUNNING for t in trials),
        pending=sum(t.state == state.WAITING and is_retry(t) for t in trials),
        duplicated=sum(n - 1 for n in chains.values()),
    )
