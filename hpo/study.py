"""Creating/resuming a study from a preset and running its trials.

``run_study`` is what ``hpo run`` and ``hpo worker`` call: open the storage, create or load
the study (so running again resumes it), optionally enqueue the seed designs once, load the
dataset once per process, and optimize with progress bars. Trials that fail are recorded
as FAIL with their reason and the study goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from tqdm.auto import tqdm

from hourglass.data.dataset import load_pose_data
from hourglass.train import pick_device
from hpo.objective import Objective
from hpo.preset import StudyPreset, create_sampler, resolve_file
from hpo.pruning import create_pruner
from hpo.space import SPACES_DIR, SearchSpace, seed_trials
from hpo.storage import open_storage

__all__ = ["open_study", "run_study", "checkpoint_root", "RunSummary"]


def checkpoint_root(preset: StudyPreset) -> Path:
    """Checkpoints sit next to a file-based study, else under ./studies."""
    url = preset.storage
    base = Path(url.removeprefix("sqlite:///")).parent if url.startswith("sqlite:///") else Path("studies")
    return base / f"{preset.name}_checkpoints"


def open_study(preset: StudyPreset, *, heartbeat: bool = False, seed: int | None = None) -> optuna.Study:
    """Create the preset's study, or load it if it exists (that is how a study resumes).

    ``seed`` reseeds the sampler (each worker of a study needs its own, or they would all
    propose the same designs)."""
    storage = open_storage(preset.storage, heartbeat=heartbeat)
    study = optuna.create_study(
        study_name=preset.name, storage=storage, directions=preset.directions,
        sampler=create_sampler(preset, seed), load_if_exists=True,
    )
    if study.metric_names is None:
        study.set_metric_names(list(preset.objectives))
        study.set_user_attr("objectives", list(preset.objectives))
        study.set_user_attr("preset", preset.to_dict())
    return study


def _warm_start(study: optuna.Study, space: SearchSpace, designs: str | Path) -> int:
    """Enqueue the seed designs once per study (a resumed study does not enqueue again)."""
    if study.user_attrs.get("warm_started"):
        return 0
    path = resolve_file(str(designs), near=None, folder=SPACES_DIR, what="warm_start")
    seeds = seed_trials(space, path)
    for name, params in seeds:
        study.enqueue_trial(params, user_attrs={"design": name}, skip_if_exists=True)
    study.set_user_attr("warm_started", str(path))
    return len(seeds)


def describe_trial(trial: optuna.trial.FrozenTrial) -> str:
    """One line per finished trial (Optuna's own log line lists every parameter)."""
    a = trial.user_attrs
    cfg = a.get("config", {}).get("model", {})
    block = cfg.get("block", {})
    design = a.get("design") or f"{block.get('name', '?')}/{cfg.get('stem', {}).get('name', '?')} f{cfg.get('features', '?')}x{cfg.get('stacks', '?')}"
    curve = a.get("curve") or [{}]
    head = f"trial {trial.number:3d} {trial.state.name.lower():8s} {design:28s} params {a.get('params', 0):>9,}"
    if trial.state == optuna.trial.TrialState.COMPLETE:
        return f"{head}  PCKh {curve[-1].get('pckh', float('nan')):5.1f}  {a.get('wall_time_s', 0.0):6.1f} s"
    if trial.state == optuna.trial.TrialState.PRUNED:
        return f"{head}  PCKh {curve[-1].get('pckh', float('nan')):5.1f}  pruned at epoch {a.get('pruned_at_epoch', '?')} ({a.get('prune_reason', '?')})"
    return f"{head}  {a.get('fail_reason', 'failed')}"


@dataclass(frozen=True)
class RunSummary:
    study: optuna.Study
    new_trials: int  # trials this run finished (complete, pruned or failed)
    warm_started: int


def run_study(preset: StudyPreset, *, n_trials: int | None = None, timeout_s: float | None = None,
              device: str | None = None, warm_start: str | None = None, heartbeat: bool = False,
              seed: int | None = None, cpu_threads: int = 1, progress: bool = True) -> RunSummary:
    """Run up to ``n_trials`` more trials (default: the preset's budget) on the study."""
    study = open_study(preset, heartbeat=heartbeat, seed=seed)
    space = preset.search_space()
    device = device or (None if preset.device == "auto" else preset.device)
    if pick_device(device).type == "cpu":
        # One intra-op thread per worker: the small CPU-sized models gain little from more,
        # and on a loaded machine OpenMP spinning made 2 threads ~40x slower than 1 (measured).
        torch.set_num_threads(cpu_threads)
    arrays = load_pose_data(preset.data)  # once per process, shared by every trial
    warm = warm_start or preset.warm_start
    enqueued = _warm_start(study, space, warm) if warm else 0
    pruner = create_pruner(preset)
    objective = Objective(preset, space, arrays, checkpoint_root(preset), device=device,
                          pruner=pruner if preset.multi_objective else None, progress=progress)
    if not preset.multi_objective:
        study.pruner = pruner  # single objective: trial.report/should_prune go through Optuna
    n = n_trials if n_trials is not None else preset.budget.trials
    timeout = timeout_s if timeout_s is not None else preset.budget.timeout_s
    finished = 0
    bar = tqdm(total=n, desc=f"study {preset.name}", unit="trial", disable=not progress)

    def tick(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal finished
        finished += 1
        bar.update(1)
        (bar.write if progress else print)(describe_trial(trial), flush=True)

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # describe_trial says it shorter
    try:
        study.optimize(objective, n_trials=n, timeout=timeout, catch=(Exception,), callbacks=[tick],
                       gc_after_trial=True)
    finally:
        bar.close()
        optuna.logging.set_verbosity(verbosity)
    return RunSummary(study, finished, enqueued)
