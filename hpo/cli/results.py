"""``hpo pareto``, ``hpo export``, ``hpo dashboard``: a study's results, as table, report,
retrainable configs and a live dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hourglass.errors import ConfigError
from hpo.cli._app import echo_message
from hpo.cli.storage_opt import StorageOpt, warn_password_on_command_line

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app

if TYPE_CHECKING:
    import optuna

    from hpo.pareto import StudySnapshot

StudyArg = Annotated[str, typer.Argument(help="Study name.", show_default=False)]


def open_existing_study(name: str, storage: str | None, *, say: bool = True) -> tuple[optuna.Study, str]:
    """The study and its storage URL (see :mod:`hpo.cli.storage_opt` for where the URL
    comes from); a missing SQLite or journal file is an error, not a new empty study. Says on stderr
    which storage it opened and how many finished trials the study holds (``say=False``:
    the caller says it with :func:`say_opened`, from trials it reads anyway)."""
    from hpo.names import check_study_name
    from hpo.preset import preset_storage
    from hpo.storage import load_study, redact_url, storage_file
    from hpo.study_location import finished_in

    check_study_name(name, "study")
    warn_password_on_command_line(storage)
    url = storage or preset_storage(name)
    path = storage_file(url)
    if path is not None and not path.is_file():
        raise ConfigError(
            f"storage {redact_url(url)}: no such file ({path.resolve()})"
            " (run the study first from the folder that holds studies/, or pass --storage)"
        )
    study = load_study(name, url)
    if say:
        say_opened(name, url, finished_in(study))
    return study, url


def say_opened(name: str, url: str, finished: int) -> None:
    from hpo.study_location import shown_storage

    echo_message(f"study {name!r} in {shown_storage(url)}: {finished} finished trials")


def _reference(text: str | None, study: StudySnapshot) -> list[float] | None:
    if text is None:
        return None
    try:
        ref = [float(v) for v in text.split(",")]
    except ValueError:
        ref = []
    if len(ref) != len(study.directions):
        names = ",".join(study.names)
        raise ConfigError(
            f"--ref: expected {len(study.directions)} comma-separated numbers ({names}), but got {text!r}"
        )
    return ref


WideOpt = Annotated[bool, typer.Option("--wide", help="Show every column of the table, however wide.")]
ColumnsOpt = Annotated[
    str | None,
    typer.Option(
        "--columns",
        help="Comma-separated columns to show besides # and the objectives, e.g. lr,sep,GFLOPs "
        "(headers or config paths such as schedule.lr).",
        show_default=False,
    ),
]


def print_pareto_table(
    study: StudySnapshot, rows: list[dict], *, wide: bool = False, columns: str | None = None
) -> None:
    """The Pareto table within the terminal's width (``COLUMNS``; see :mod:`hpo.pareto_table`)."""
    from rich.console import Console

    from hpo.cli._app import counted
    from hpo.pareto_table import render_pareto_table

    names = [c.strip() for c in (columns or "").split(",") if c.strip()]
    render_pareto_table(
        Console(),
        f"Pareto set of study {study.study_name!r} ({counted(len(rows), 'trial')})",
        rows,
        study.names,
        wide=wide,
        columns=names,
    )


@app.command()
def pareto(
    study: StudyArg,
    storage: StorageOpt = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="Write the rows as CSV.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the rows as JSON.")] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="HTML report path (default: reports/<STUDY>.html; reports/<STUDY>@<storage>.html for "
            "another storage).",
            show_default=False,
        ),
    ] = None,
    all_trials: Annotated[
        bool, typer.Option("--all", help="--csv/--json get every trial, not just the Pareto set.")
    ] = False,
    ref: Annotated[
        str | None,
        typer.Option(
            "--ref",
            help="Hypervolume reference point, one number per objective (e.g. 0,2e7,3600) "
            "(default: 0 for PCKh, 1.1 x the worst COMPLETE value for the others).",
            show_default=False,
        ),
    ] = None,
    wide: WideOpt = False,
    columns: ColumnsOpt = None,
) -> None:
    """Print the Pareto set and write the HTML report: 2-D/3-D fronts, learning curves,
    hypervolume history and the cost model (time vs params/FLOPs/layers, Spearman rho)."""
    from hpo.pareto import StudySnapshot, pareto_rows, trial_rows, write_rows
    from hpo.report import default_report_path, write_report

    opened, url = open_existing_study(study, storage, say=False)
    st = StudySnapshot.of(opened)  # read once for the table, rows and report
    say_opened(study, url, st.counts.get("COMPLETE", 0) + st.counts.get("PRUNED", 0))
    reference = _reference(ref, st)
    rows = pareto_rows(st)
    print_pareto_table(st, rows, wide=wide, columns=columns)
    exported = trial_rows(st) if all_trials else rows
    for path in (csv, json_path):
        if path is not None:
            write_rows(exported, path)
            typer.echo(f"wrote {len(exported)} rows to {path}")
    report = write_report(st, html or default_report_path(study, url), reference, storage=url)
    typer.echo(f"report: {report}")


@app.command()
def export(
    study: Annotated[
        str,
        typer.Argument(
            help="Study name, or a folder written by hpo train --out (with --onnx).", show_default=False
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the trial_<N>.yaml files.", show_default=False)
    ],
    trial: Annotated[
        list[int] | None, typer.Option("--trial", help="Trial number (repeatable).", show_default=False)
    ] = None,
    pareto_set: Annotated[
        bool, typer.Option("--pareto", help="Export every trial of the Pareto set.")
    ] = False,
    storage: StorageOpt = None,
    onnx: Annotated[
        bool,
        typer.Option(
            "--onnx",
            help="Also write trial_<N>.onnx: the architecture, UNTRAINED "
            "(checked against PyTorch; needs the deploy extra). Of a trained folder: "
            "its trained network.",
        ),
    ] = False,
    schedule: Annotated[
        str | None,
        typer.Option(
            "--schedule",
            help="Schedule to retrain with: trial (as trained), reference (20 epochs), or a preset's "
            "retrain: (else schedule:) (default: the study preset's retrain: if any, else trial).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write trials as YAML configs that `hpo train FILE --out DIR` retrains.

    Each file is {model, schedule, data}; --schedule picks the schedule to retrain with.
    With --onnx also the untrained network (1x3xSxS -> last stack's heatmaps, opset 17);
    `hpo export DIR --onnx --out X` exports the trained weights of a `hpo train --out` DIR."""
    run = Path(study)
    if run.is_dir() and (run / "model.pt").is_file():
        if not onnx or trial or pareto_set or schedule:
            raise ConfigError(f"export: {run} is a trained model folder: only --onnx --out apply to it")
        from hourglass.model_file import load_model
        from hourglass.onnx_export import export_onnx

        saved = load_model(run / "model.pt")
        path = export_onnx(saved.model, saved.config.model.input_size, where=str(run / "model.pt")).save(
            out / "model.onnx"
        )
        typer.echo(f"{path}  (trained weights of {run / 'model.pt'}, epoch {saved.epoch})")
        return
    if bool(trial) == pareto_set:
        raise ConfigError("export: expected exactly one of --trial N (repeatable) or --pareto")
    from hpo.export import export_trials

    st, _ = open_existing_study(study, storage)
    paths = export_trials(st, None if pareto_set else trial, out, onnx=onnx, schedule=schedule)
    for path in paths:
        typer.echo(str(path))
    if onnx:
        typer.echo(
            "the .onnx files are UNTRAINED (a study keeps configs, not weights): "
            "hpo train trial_<N>.yaml --out DIR writes the trained DIR/model.onnx",
            err=True,
        )


@app.command()
def dashboard(
    study: StudyArg,
    storage: StorageOpt = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; 0.0.0.0 exposes it to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 = any free one).")] = 8080,
    publish: Annotated[
        bool,
        typer.Option(
            "--publish/--no-publish",
            help="Store learning curves, hypervolume and cost model in the study first.",
        ),
    ] = True,
    allow_writes: Annotated[
        bool,
        typer.Option(
            "--allow-writes",
            help="Let the dashboard change the storage (delete or rename studies, add notes); "
            "read-only by default, since it has no authentication.",
        ),
    ] = False,
) -> None:
    """Serve optuna-dashboard on the study's storage, read-only unless --allow-writes
    (Ctrl-C stops it)."""
    from hpo.dashboard import is_loopback, make_server, publish_figures, study_url
    from hpo.storage import redact_url

    st, url = open_existing_study(study, storage)
    if not is_loopback(host):
        typer.echo(
            f"warning: --host {host} lets anyone who reaches this port see the study"
            f"{' and change it' if allow_writes else ''}: optuna-dashboard has no authentication; "
            "prefer an SSH tunnel (ssh -L 8080:127.0.0.1:8080 ...) or a reverse proxy with auth",
            err=True,
        )
    if publish:
        typer.echo(f"published figures: {', '.join(publish_figures(st))}")
    server = make_server(url, host, port, allow_writes=allow_writes)
    typer.echo(f"optuna-dashboard on {redact_url(url)}{'' if allow_writes else ' (read-only)'}")
    typer.echo(f"open {study_url(server, st, host)}  (Ctrl-C stops it)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
