"""Creating/resuming a study from a preset and running its trials.

``run_study`` is what ``hpo run`` and ``hpo worker`` call: open the storage, create or load
the study (so running again resumes it), optionally enqueue the seed designs once, load the
dataset once per process, and run trials (:func:`hpo.trial_loop.work`) with progress bars
until the budget is spent. Trials that fail are recorded as FAIL with their reason and the
study goes on; a worker that dies or is interrupted leaves its trial to be retried.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from tqdm.auto import tqdm

from hourglass.data.dataset import load_pose_data
from hourglass.errors import ConfigError
from hourglass.train import EpochMetrics, pick_device
from hpo import record as rec
from hpo.objective import Objective
from hpo.preset import MAX_TRIALS, StudyPreset
from hpo.storage import creation_lock, open_storage, redact_url
from hpo.strategy import Pruning, create_sampler
from hpo.trial_loop import SignalGuard, StudyCounts, study_counts, work

__all__ = ["open_study", "prepare_study", "run_study", "checkpoint_root", "RunSummary"]


def checkpoint_root(preset: StudyPreset) -> Path:
    """Checkpoints sit next to a file-based study (SQLite, journal), else under ./studies
    (a database server: workers on several machines pass a shared ``checkpoint_dir``)."""
    url = preset.storage
    if url.startswith("sqlite:///"):
        base = Path(url.removeprefix("sqlite:///")).parent
    elif url.startswith("journal://"):
        base = Path(url.removeprefix("journal://")).parent
    else:
        base = Path("studies")
    return base / f"{preset.name}_checkpoints"


def open_study(
    preset: StudyPreset,
    *,
    heartbeat: bool = False,
    seed: int | None = None,
    storage: optuna.storages.BaseStorage | None = None,
) -> optuna.Study:
    """Create the preset's study, or load it if it exists (that is how a study resumes).

    ``seed`` reseeds the sampler (each worker of a study needs its own, or they would all
    propose the same designs)."""
    storage = storage or open_storage(preset.storage, heartbeat=heartbeat)
    study = optuna.create_study(
        study_name=preset.name,
        storage=storage,
        directions=preset.directions,
        sampler=create_sampler(preset, seed),
        load_if_exists=True,
    )
    if study.metric_names is None:
        study.set_metric_names(list(preset.objectives))
        rec.study_put(study, rec.STUDY_OBJECTIVES, list(preset.objectives))
        rec.study_put(study, rec.STUDY_PRESET, {**preset.to_dict(), "storage": redact_url(preset.storage)})
    return study


def prepare_study(
    preset: StudyPreset, *, heartbeat: bool = False, seed: int | None = None, warm_start: str | None = None
) -> tuple[optuna.Study, int]:
    """Open (or create) the study and enqueue the warm-start designs once: what a launcher
    does before starting its workers. Workers started together do it under one lock
    (:func:`hpo.storage.creation_lock`), so that they create and seed one study, once."""
    storage = open_storage(preset.storage, heartbeat=heartbeat)  # creates the schema (under the lock too)
    with creation_lock(preset.storage):
        study = open_study(preset, seed=seed, storage=storage)
        return study, (_warm_start(study, preset, warm_start) if warm_start or preset.warm_start else 0)


def _warm_start(study: optuna.Study, preset: StudyPreset, designs: str | None) -> int:
    """Enqueue the seed designs (``designs``, else the preset's) once per study (a resumed
    study does not enqueue again)."""
    if rec.study_get(study, rec.STUDY_WARM_STARTED):
        return 0
    path = preset.warm_start_file(designs)
    seeds = preset.warm_start_trials(designs)
    for name, params in seeds:
        study.enqueue_trial(params, user_attrs=rec.seed_attrs(name), skip_if_exists=True)
    rec.study_put(study, rec.STUDY_WARM_STARTED, str(path))
    return len(seeds)


def describe_trial(trial: optuna.trial.FrozenTrial, width: int = 80) -> str:
    """One line of at most ``width`` columns per finished trial (Optuna's own log line lists
    every parameter): state, PCKh, parameters, the trial's wall time or the epoch it was cut
    at, then the design. The time is named ``wall``: the ``train_time`` objective (the Pareto
    table's ``train s``) is the charged training time, which leaves out what the clock adds."""
    r = rec.TrialRecord.of(trial)
    design = r.label
    curve = r.curve or [{}]
    head = f"trial {trial.number:3d} {trial.state.name.lower():8s}"
    if trial.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
        return f"{head} {r.fail_reason or 'failed'}  {design}"
    if r.copied_from is not None:  # a repeat of a completed design: its result, not trained again
        when = f"copy of trial {r.copied_from}"
    elif trial.state == optuna.trial.TrialState.COMPLETE:
        when = f"{r.wall_time_s or 0.0:.1f} s wall"
    else:
        reason = r.prune_reason
        at = "?" if r.pruned_at_epoch is None else r.pruned_at_epoch
        when = f"epoch {at!s:<3}" + (f" ({reason})" if reason not in (None, "mo_rung") else "")
    pckh, params = curve[-1].get("pckh", float("nan")), r.params or 0
    line = f"{head} PCKh {pckh:4.1f} {params:>7,} params {when}  {design}"
    if len(line) > width:  # a long design name, a big network: closer, then parameters in k/M
        line = f"{head} PCKh {pckh:4.1f} {_compact(params)} params {when} {design}"
    return line


def _line_width() -> int:
    """80 columns, or fewer where ``COLUMNS`` says so (a launcher tagging each line)."""
    text = os.environ.get("COLUMNS", "")
    return min(int(text), 80) if text.isdigit() and int(text) >= 40 else 80


def _compact(n: int) -> str:
    """``6,730,912`` -> ``6.73M``, ``68,112`` -> ``68.1k``: three figures where room is short."""
    for scale, unit in ((1e6, "M"), (1e3, "k")):
        if n >= scale - scale / 2e3:  # 999,999 is 1M, not 1e+03k
            return f"{n / scale:.3g}{unit}"
    return str(n)


def start_line(name: str, counts: StudyCounts, enqueued: int) -> str:
    """Whether the run starts a study or resumes one, and what it keeps and continues."""
    if not counts.finished and not counts.retries_waiting and not counts.failed:
        return f"study {name!r}: new" + (
            f", {enqueued} warm-start design{'s' * (enqueued != 1)} first" if enqueued else ""
        )
    finished, waiting = counts.finished, counts.retries_waiting
    said = [f"{finished} finished trial{'s' * (finished != 1)} kept"] if finished else []
    said += [f"{waiting} interrupted trial{'s' * (waiting != 1)} to continue"] if waiting else []
    return f"study {name!r} resumed: " + (
        ", ".join(said) or f"no finished trial yet ({counts.failed} failed)"
    )


def _check_device(device: str | None) -> None:
    """A missing GPU is a user error up front, not one failed trial after another."""
    dev = pick_device(device)
    if dev.type == "cuda" and (
        not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()
    ):
        seen = torch.cuda.device_count() if torch.cuda.is_available() else 0
        raise ConfigError(f"device {device}: expected a visible CUDA device, but this machine shows {seen}")


@dataclass(frozen=True)
class RunSummary:
    study: optuna.Study
    new_trials: int  # trials this run ran (complete, pruned or failed; re-queued retries included)
    warm_started: int


def run_study(
    preset: StudyPreset,
    *,
    n_trials: int | None = None,
    timeout_s: float | None = None,
    device: str | None = None,
    warm_start: str | None = None,
    heartbeat: bool = True,
    seed: int | None = None,
    cpu_threads: int = 1,
    progress: bool = True,
    total_trials: int | None = None,
    checkpoint_dir: Path | None = None,
    max_failures: int = 5,
    verbose: bool = False,
    announce: bool = True,
) -> RunSummary:
    """Run trials until ``n_trials`` more have finished (COMPLETE or PRUNED; default: the
    preset's budget), or, with ``total_trials``, until the study holds that many finished
    trials whoever ran them (a worker of a shared study). ``heartbeat`` (RDB storages) lets
    other workers (or a later run) retry this worker's trial if it dies; ``checkpoint_dir`` defaults to
    :func:`checkpoint_root`. Raises :class:`hpo.trial_loop.Interrupted` on SIGINT/SIGTERM
    after failing and re-queueing the running trial. ``progress``: bars (a terminal), else
    one line per finished trial; ``verbose`` adds one line per epoch; ``announce`` (default)
    first says whether the study is new or resumed (a launcher that started this worker has
    said it already)."""
    for flag, value in (("--n-trials", n_trials), ("--n-trials (study total)", total_trials)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TRIALS
        ):
            raise ConfigError(f"{flag}: expected an integer in [1, {MAX_TRIALS}], but got {value!r}")
    if device is not None:
        preset = preset.replace(device=device)  # checks the spelling: cpu, cuda, cuda:N, mps
    device = None if preset.device == "auto" else preset.device
    _check_device(device)
    if pick_device(device).type == "cpu":
        # One intra-op thread per worker: the small CPU-sized models gain little from more,
        # and on a loaded machine OpenMP threads spin and wait for each other.
        torch.set_num_threads(cpu_threads)
    arrays = load_pose_data(preset.data)  # once per process, shared by every trial; before the study exists
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our lines below say it shorter
    try:
        study, enqueued = prepare_study(preset, heartbeat=heartbeat, seed=seed, warm_start=warm_start)
    finally:
        optuna.logging.set_verbosity(verbosity)
    before = study_counts(study)
    space = preset.search_space()
    pruning = Pruning.for_preset(preset)

    def epoch_line(trial: optuna.Trial, m: EpochMetrics) -> None:
        epochs = (
            (rec.get(trial, rec.CONFIG) or {}).get("schedule", {}).get("epochs", "?")
        )  # a space may search it
        echo(
            f"trial {trial.number:3d} epoch {m.epoch:2d}/{epochs}  PCKh {m.pckh:5.1f}  loss {m.loss:.2e}  "
            f"{m.epoch_time_s:6.1f} s wall"
        )

    objective = Objective(
        preset,
        space,
        arrays,
        checkpoint_dir or checkpoint_root(preset),
        device=device,
        pruning=pruning,
        progress=progress,
        on_epoch=epoch_line if verbose else None,
        note=lambda line: echo(line),
    )
    pruning.attach(study)  # single objective: trial.report/should_prune go through Optuna
    n = n_trials if n_trials is not None else preset.budget.trials
    timeout = timeout_s if timeout_s is not None else preset.budget.timeout_s
    finished = study_counts(study).finished
    target = total_trials if total_trials is not None else finished + n
    bar = tqdm(
        total=max(target - finished, 0), desc=f"study {preset.name}", unit="trial", disable=not progress
    )
    echo = bar.write if progress else (lambda line: print(line, flush=True))

    def tick(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        bar.update(1)
        echo(describe_trial(trial, width=_line_width()))

    if announce:
        echo(start_line(preset.name, before, enqueued))
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # describe_trial says it shorter
    try:
        with SignalGuard() as guard:
            ran = work(
                study,
                objective,
                target=target,
                guard=guard,
                timeout_s=timeout,
                callbacks=[tick],
                max_failures=max_failures,
                echo=echo,
            )
    finally:
        bar.close()
        optuna.logging.set_verbosity(verbosity)
    return RunSummary(study, len(ran), enqueued)
