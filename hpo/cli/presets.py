"""``hpo presets``: the presets and search spaces a name resolves to, and from where."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app


@app.command()
def presets(
    spaces: Annotated[bool, typer.Option("--spaces", help="Also list the search spaces.")] = False,
) -> None:
    """List the study presets (--spaces: and search spaces) and where each comes from.

    A name is looked up in $HPO_HOME (or hpo --home) first, then in ./studies and
    ./search_spaces, then in the package; the first match wins and shadows the others."""
    from hpo.locations import SPACES, STUDIES, listing, search_dirs

    for kind in (STUDIES, SPACES) if spaces else (STUDIES,):
        typer.echo(f"{kind}, looked up in this order:")
        for origin, folder in search_dirs(kind):
            typer.echo(f"  {origin:<8} {folder}")
        for f in listing(kind):
            shadowed = f"  (shadows {len(f.shadows)} further down)" if f.shadows else ""
            typer.echo(f"  {f.name:<24} {f.origin}{shadowed}")
