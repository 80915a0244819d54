"""``hpo table``: a study's results in the reference study's Table 1 layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hpo.cli.storage_opt import StorageOpt

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app


@app.command()
def table(
    study: Annotated[str, typer.Argument(help="Study name.", show_default=False)],
    storage: StorageOpt = None,
    compare_published: Annotated[
        bool,
        typer.Option(
            "--compare-published",
            help="Put the reference study's published Table 1 beside ours, with Spearman's rho between the "
            "two Mean orders.",
        ),
    ] = False,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Also write the table as CSV.", show_default=False)
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Also write the table as Markdown.", show_default=False)
    ] = None,
) -> None:
    """Print the study's Table 1 in the reference study's layout.

    One row per COMPLETE trial: PCKh@0.5 of Head, Shoulder, Elbow, Wrist, Hip, Knee, Ankle
    and Mean (final epoch, table convention), parameters, and training time, absolute and
    relative to the design named baseline."""
    from hpo.cli.results import open_existing_study
    from hpo.table import format_table, table_rows, write_table

    st, _ = open_existing_study(study, storage)
    rows = table_rows(st, published=compare_published)
    typer.echo(f"Table 1 of study {study!r}: PCKh@0.5 on the validation split")
    typer.echo(format_table(rows))
    if compare_published:
        import textwrap

        from hpo.published import PUBLISHED_SOURCE
        from hpo.table import published_rho

        typer.echo(textwrap.fill(f"published: {PUBLISHED_SOURCE}", width=80, subsequent_indent="  "))
        rho = published_rho(rows)
        typer.echo(
            "Spearman's rho to the published Mean order: "
            + (
                "needs 3 designs with a published Mean and distinct scores"
                if rho is None
                else f"{rho[0]:+.2f} over {rho[2]} designs (p = {rho[1]:.2g})"
            )
        )
    for path, md in ((csv, False), (markdown, True)):
        if path is not None:
            write_table(rows, path, markdown=md)
            typer.echo(f"wrote {len(rows)} rows to {path}")
