"""Saying where a study is: its storage (password redacted, a relative SQLite path made
absolute) and whether a command creates it or resumes it, before any trial runs.

A default storage is ``sqlite:///studies/<name>.db`` relative to the working directory, so
the same command in another folder opens another study; every command that opens a study
prints :func:`opening_line` so that this is never silent.
"""

from __future__ import annotations

from pathlib import Path

import optuna

from hpo.storage import open_storage, redact_url, storage_file

__all__ = ["shown_storage", "finished_trials", "opening_line"]


def shown_storage(url: str) -> str:
    """``url`` with its password redacted, and a relative SQLite/journal file's full path."""
    shown = redact_url(url)
    # a journal path follows "journal://" (journal:///abs.log is absolute), as in hpo.storage
    for scheme in ("sqlite:///", "journal://"):
        if url.startswith(scheme):
            path = Path(url.removeprefix(scheme))
            if not path.is_absolute():
                shown += f" ({path.resolve()})"
    return shown


def finished_trials(name: str, url: str, *, wait: bool | None = None) -> int | None:
    """Finished (complete or pruned) trials of study ``name`` in ``url``, or None when there
    is no such study; a missing SQLite or journal file is not created."""
    path = storage_file(url)
    if path is not None and not path.is_file():
        return None
    storage = open_storage(url, wait=wait)  # wait: a worker outlives a restarting server
    if name not in {s.study_name for s in storage.get_all_studies()}:
        return None
    return finished_in(optuna.load_study(study_name=name, storage=storage))


def finished_in(study: optuna.Study) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def opening_line(name: str, url: str, finished: int | None) -> str:
    """``study 'x' in URL: created`` / ``...: resumed, N finished trials``."""
    if finished is None:
        return f"study {name!r}: not yet in {shown_storage(url)}: a new one starts there"
    return f"study {name!r} in {shown_storage(url)}: resuming, {finished} finished trials"
