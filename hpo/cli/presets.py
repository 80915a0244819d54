"""``hpo presets``: the presets and search spaces a name resolves to, and from where."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app


@app.command()
def presets(
    spaces: Annotated[bool, typer.Option("--spaces", help="Also list the search spaces.")] = False,
) -> None:
    """List the study presets (and with --spaces the search spaces) by name, with the file
    each name resolves to: $HPO_HOME (or hpo --home) first, then ./studies and
    ./search_spaces, then the ones shipped with the package. A name found in several
    places uses the first; the others are marked as shadowed."""
    from hpo.locations import SPACES, STUDIES, listing, search_dirs

    for kind in (STUDIES, SPACES) if spaces else (STUDIES,):
        typer.echo(f"{kind}, looked up in this order:")
        for origin, folder in search_dirs(kind):
            typer.echo(f"  {origin:<8} {folder}")
        for f in listing(kind):
            shadowed = f"  (shadows {len(f.shadows)} further down)" if f.shadows else ""
            typer.echo(f"  {f.name:<24} {f.origin}{shadowed}")
