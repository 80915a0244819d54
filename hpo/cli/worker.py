"""``hpo worker``: one of many processes (machines, GPUs) working on one shared study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hpo import STORAGE_ENV
from hpo.cli._app import CompileOpt, echo_message, show_progress
from hpo.cli.storage_opt import warn_password_on_command_line

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app


@app.command()
def worker(
    study: Annotated[
        str,
        typer.Argument(
            help="Preset name in studies/ (quickstart, ...), a preset YAML, or the name of a study in "
            "--storage.",
            show_default=False,
        ),
    ],
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            envvar=STORAGE_ENV,
            show_envvar=False,
            help="Storage URL shared by all workers, e.g. postgresql+psycopg://user@host/db (default: the "
            "preset's). "
            f"Also read from {STORAGE_ENV}, which keeps a password out of the process list.",
            show_default=False,
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: the preset's).", show_default=False)
    ] = None,
    n_trials: Annotated[
        int | None,
        typer.Option(
            "--n-trials",
            help="Finished (complete or pruned) trials the STUDY should hold, counted over all workers "
            "(default: the preset's budget).",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            help="Stop starting new trials after this many seconds (default: the preset's).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Sampler seed of this worker (default: the preset's seed mixed with host and pid).",
            show_default=False,
        ),
    ] = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint-dir",
            help="Per-epoch checkpoints, on a file system every worker sees (default: next to a "
            "SQLite/journal file, else studies/<name>_checkpoints).",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="No progress bars (one line per finished trial).")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Also one line per epoch of every trial.")
    ] = False,
    launched: Annotated[
        bool,
        typer.Option(
            "--launched",
            hidden=True,
            help="Started by `hpo run --workers`, which has said where the study is.",
        ),
    ] = False,
    compile_: CompileOpt = None,
    gpus: Annotated[
        str | None,
        typer.Option(
            "--gpus",
            help="The GPU of this worker, a visible index (same as --device cuda:N).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Join the study (creating it if needed) and run its trials until it holds --n-trials
    finished ones, whoever ran them. Start one per GPU or machine on a PostgreSQL storage.

    A worker that dies has its trial failed and re-queued by another one (heartbeats), which
    resumes it from its last epoch checkpoint. Ctrl-C or SIGTERM fail and re-queue the
    running trial, then exit with 130 or 143; starting a worker again resumes it.
    """
    from hpo.storage import probe_storage, redact_url, single_runner

    warn_password_on_command_line(storage)
    if storage:  # a permanent error in seconds, before torch and the data load
        probe_storage(storage)
    from hourglass.train import set_compile_default
    from hpo.trial_loop import study_counts
    from hpo.workers import gpu_device, parse_gpus, resolve_worker_preset, run_worker

    set_compile_default(compile_)
    cfg = resolve_worker_preset(study, storage)
    from hpo.study_location import finished_trials, opening_line

    if not launched:
        echo_message(
            opening_line(cfg.name, cfg.storage, finished_trials(cfg.name, cfg.storage, wait=True)), err=False
        )
    with single_runner(cfg.storage):  # SQLite: one process at a time
        summary = run_worker(
            cfg,
            n_trials=n_trials,
            timeout_s=timeout,
            device=gpu_device(device, parse_gpus(gpus)),
            seed=seed,
            checkpoint_dir=checkpoint_dir,
            progress=show_progress(quiet),
            verbose=verbose,
            announce=not launched,
        )
    c = study_counts(summary.study)
    typer.echo(
        f"worker done: {summary.new_trials} trials here; study {cfg.name!r} on {redact_url(cfg.storage)}: "
        f"{c.finished} finished, {c.running} running, {c.failed} failed, {c.retries_waiting} retries waiting"
    )
