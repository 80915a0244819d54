"""``hpo bench-table``: the recorded benchmark, every point of a discrete space trained once per seed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hpo.cli._app import show_progress

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app


@app.command("bench-table")
def bench_table(
    preset: Annotated[
        str, typer.Argument(help="Study preset whose space has only choices and a schedule.seed param.")
    ] = "bench_table_tiny",
    out: Annotated[
        Path, typer.Option(help="The table file (gzipped JSON) written when the grid is done.")
    ] = Path("benchmarks/tiny_table.json.gz"),
    storage: Annotated[
        str | None,
        typer.Option(
            help="Storage URL (default: the preset's); several workers need journal:///path.log or "
            "PostgreSQL.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Local worker processes training the grid at once.")] = 1,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, cuda:N (default: the preset's).", show_default=False)
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option(
            help="Add these training seeds (comma-separated, e.g. 2,3) to the table --out: trains every "
            "point under each in its own study (resumable: run again with the same seeds and "
            "storage), then writes the table with all its seeds.",
            show_default=False,
        ),
    ] = None,
    export_only: Annotated[
        bool,
        typer.Option("--export-only", help="Write the table from the trials finished so far; train nothing."),
    ] = False,
    check_transfer: Annotated[
        int | None,
        typer.Option(
            "--check-transfer",
            help="Instead: retrain this many random points of the table (--out) live with a new seed and "
            "compare their final PCKh with the table's.",
            show_default=False,
        ),
    ] = None,
    check_json: Annotated[
        Path, typer.Option("--check-json", help="Where --check-transfer writes its result.")
    ] = Path("benchmarks/tiny_table_transfer.json"),
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Train every point of the preset's space under each of its training seeds for the
    preset's epochs, with no pruning, and write the table that `hpo bench-search --table`
    replays: per point its params, full config (for `hpo train`), counted costs, and per
    seed PCKh, loss and training time after every epoch.

    The grid runs as a study on the preset's storage: run the command again to resume, or
    start more workers (`hpo worker PRESET`) on a shared storage. With --seeds, the new seeds
    run as their own study and are merged into the existing table when every point has them.
    """
    from hpo.bench.table import check_transfer as check
    from hpo.bench.table import export_table, generate_table, load_table, write_table
    from hpo.preset import load_preset
    from hpo.study import open_study

    if seeds is not None:
        _add_seeds(
            preset, _seed_list(seeds), out, storage, workers, device, export_only, show_progress(quiet)
        )
        return

    if check_transfer is not None:
        result = check(
            load_table(out), check_transfer, device=device, progress=show_progress(quiet), echo=typer.echo
        )
        check_json.parent.mkdir(parents=True, exist_ok=True)
        check_json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        typer.echo(
            f"transfer: Spearman {result['spearman']:.2f} over {result['n']} points, {result['within']} "
            "within "
            f"their seeds' range +- 3 PCKh; {check_json}"
        )
        return

    p = load_preset(preset)
    if storage is not None:
        p = p.replace(storage=storage)
    if export_only:
        study = open_study(p)
    else:
        study = generate_table(
            p, preset, workers=workers, device=device, progress=show_progress(quiet), echo=typer.echo
        )
    doc = export_table(study, p, p.search_space())
    path = write_table(doc, out)
    typer.echo(
        f"table: {path} ({len(doc['points'])} of {doc['grid_points']} points complete, "
        f"{len(doc['seeds'])} seeds, {doc['epochs']} epochs, {path.stat().st_size / 1e3:.0f} kB)"
    )


def _seed_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        from hourglass.errors import ConfigError

        raise ConfigError(f"--seeds: expected comma-separated integers, e.g. 2,3, but got {text!r}") from None


def _add_seeds(
    preset: str,
    seeds: list[int],
    out: Path,
    storage: str | None,
    workers: int,
    device: str | None,
    export_only: bool,
    progress: bool,
) -> None:
    """Train ``seeds`` for every point of the table ``out`` and merge them into it."""
    import tempfile

    from hourglass.errors import ConfigError
    from hpo.bench.table import (
        export_table,
        generate_table,
        load_table,
        merge_tables,
        read_table_doc,
        seeds_preset,
        write_table,
    )
    from hpo.preset import load_preset
    from hpo.study import open_study

    old = read_table_doc(out)  # fails in one line before any training if the table is not there
    held = sorted(set(seeds) & set(old.get("seeds") or []))
    if held:
        raise ConfigError(f"--seeds: {out} already holds seeds {held}")
    with tempfile.TemporaryDirectory(prefix="hpo_bench_seeds_") as tmp:
        ref = seeds_preset(preset, seeds, tmp)
        p = load_preset(ref)
        if storage is not None:
            p = p.replace(storage=storage)
        study = (
            open_study(p)
            if export_only
            else generate_table(
                p, str(ref), workers=workers, device=device, progress=progress, echo=typer.echo
            )
        )
        new = export_table(study, p, p.search_space())
    if new["missing"]:
        typer.echo(
            f"seeds {seeds}: {new['grid_points'] - new['missing']} of {new['grid_points']} points done; "
            f"run again (same --seeds and --storage) to resume; {out} unchanged"
        )
        return
    path = write_table(merge_tables(old, new, where=str(out)), out)
    table = load_table(path)
    typer.echo(
        f"table: {path} ({len(table.points)} points, seeds {list(table.seeds)}, {table.epochs} epochs, "
        f"{path.stat().st_size / 1e3:.0f} kB)"
    )
