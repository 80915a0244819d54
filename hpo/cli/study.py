"""``hpo run``: run (or resume) a study preset, then show its Pareto set and report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from hpo import STORAGE_ENV
from hpo.cli._app import CompileOpt, counted, echo_message, show_progress
from hpo.cli.results import ColumnsOpt, WideOpt, print_pareto_table
from hpo.cli.storage_opt import StorageOpt, warn_password_on_command_line

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app

# Where `hpo export` puts a study's files unless told otherwise (README: "A study, start to finish").
EXPORT_DIR = "exported"


@app.command()
def run(
    preset: Annotated[
        str, typer.Argument(help="Preset name in studies/ (quickstart, mpii_pareto, ...) or a YAML path.")
    ] = "quickstart",
    n_trials: Annotated[
        int | None,
        typer.Option(
            "--n-trials", help="Trials to add in this run (default: the preset's budget).", show_default=False
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Stop starting new trials after this many seconds.", show_default=False),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: the preset's).", show_default=False)
    ] = None,
    warm_start: Annotated[
        str | None,
        typer.Option(
            "--warm-start",
            help="Enqueue a designs file first, e.g. seed_designs (once per study).",
            show_default=False,
        ),
    ] = None,
    storage: StorageOpt = None,
    report: Annotated[
        Path | None,
        typer.Option(
            help="HTML report path (default: reports/<name>.html; reports/<name>@<storage>.html for "
            "another storage).",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", help="No progress bars (without a terminal there are none anyway: one line per trial)."
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Also one line per epoch of every trial.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Local worker processes sharing the study, K on each GPU (or K on the CPU); more than one "
            "needs PostgreSQL or a journal file (default: the preset's workers, else 1; 1 on SQLite).",
            show_default=False,
        ),
    ] = None,
    compile_: CompileOpt = None,
    gpus: Annotated[
        str | None,
        typer.Option(
            "--gpus",
            help="GPUs to place workers on, visible indices such as 0,1 (default: all visible).",
            show_default=False,
        ),
    ] = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint-dir",
            help="Per-epoch checkpoints (default: next to a SQLite/journal file, else "
            "studies/<name>_checkpoints).",
            show_default=False,
        ),
    ] = None,
    wide: WideOpt = False,
    columns: ColumnsOpt = None,
) -> None:
    """Run the study PRESET: sample designs, train each briefly, prune the hopeless ones at
    Pareto-rank rungs, and keep every result in the study's storage.

    Running the same preset again resumes the study: finished trials are kept, new ones are
    added, an interrupted trial resumes from its last epoch. With --workers K, K worker
    processes share the study. At the end the Pareto set is printed and the HTML report written.
    """
    from hpo.storage import probe_storage

    warn_password_on_command_line(storage)
    if storage:  # a permanent error in seconds, before torch and the data load
        probe_storage(storage)
    from hpo.pareto import StudySnapshot, pareto_rows
    from hpo.preset import home_storage, load_preset
    from hpo.report import default_report_path, write_report
    from hpo.savings import pruning_savings
    from hpo.storage import redact_url, single_runner
    from hpo.study import run_study
    from hpo.workers import (
        check_workers,
        default_workers,
        gpu_device,
        parse_gpus,
        run_workers,
        worker_devices,
    )

    cfg = load_preset(preset)
    if storage is not None:
        cfg = cfg.replace(storage=storage)
    from hourglass.train import set_compile_default

    set_compile_default(compile_)  # the workers started below inherit it
    gpu_ids = parse_gpus(gpus)
    if workers is None:
        count = default_workers(cfg, device, gpu_ids)
    else:
        check_workers(cfg.storage, workers)
        count = len(
            worker_devices(workers, device or (None if cfg.device == "auto" else cfg.device), gpu_ids)
        )
    check_workers(cfg.storage, count)
    from hpo.study_location import finished_trials, opening_line

    probe_storage(cfg.storage, wait=False)  # the preset's own storage too, before saying where it is
    echo_message(opening_line(cfg.name, cfg.storage, finished_trials(cfg.name, cfg.storage)), err=False)
    if count > 1:
        summary = run_workers(
            cfg,
            preset,
            workers or cfg.workers,
            n_trials=n_trials,
            timeout_s=timeout,
            device=device,
            warm_start=warm_start,
            checkpoint_dir=checkpoint_dir,
            echo=typer.echo,
            gpus=gpu_ids,
            verbose=verbose,
        )
    else:
        with single_runner(cfg.storage):  # a second process on one SQLite study is refused
            summary = run_study(
                cfg,
                n_trials=n_trials,
                timeout_s=timeout,
                device=gpu_device(device, gpu_ids),
                warm_start=warm_start,
                heartbeat=True,
                checkpoint_dir=checkpoint_dir,
                progress=show_progress(quiet),
                verbose=verbose,
            )
    study = StudySnapshot.of(summary.study)  # the results below read the trials once
    counts = study.counts
    head = f"study {cfg.name!r} on {redact_url(cfg.storage)}:"
    tail = f"{counted(summary.new_trials, 'new trial')}, " + ", ".join(
        f"{n} {k.lower()}" for k, n in sorted(counts.items())
    )
    typer.echo(f"{head} {tail}" if len(head) + len(tail) < 80 else f"{head}\n  {tail}")  # 80 columns
    failed = getattr(summary, "failed_workers", [])
    if failed:
        codes = ", ".join(f"w{i}: {summary.exit_codes[i]}" for i in failed)
        typer.echo(
            f"{len(failed)} of {count} workers exited with an error ({codes}); their output is above",
            err=True,
        )
    if not counts.get("COMPLETE"):
        typer.echo("no complete trial yet: run again to continue the study")
        raise typer.Exit(1 if failed else 0)
    print_pareto_table(study, pareto_rows(study), wide=wide, columns=columns)
    for line in pruning_savings(study.trials).lines():
        typer.echo(line)
    path = write_report(study, report or default_report_path(cfg.name, cfg.storage), storage=cfg.storage)
    typer.echo(f"report:    {path}")
    implied = storage == os.environ.get(STORAGE_ENV) if storage else cfg.storage == home_storage(cfg.name)
    storage_opt = (
        "" if implied else f" --storage '{redact_url(cfg.storage)}'"
    )  # HPO_STORAGE: they read it too
    typer.echo(f"dashboard: hpo dashboard {cfg.name}{storage_opt}")
    typer.echo(f"export:    hpo export {cfg.name} --pareto --out {EXPORT_DIR}/{storage_opt}")
    if failed:
        raise typer.Exit(1)
