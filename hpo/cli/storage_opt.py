"""The ``--storage`` option of every command that opens a study, and where its URL comes from.

Order: ``--storage``, else ``HPO_STORAGE``, else the preset's ``storage:`` key (which may
name an environment variable, ``env:NAME``, or a file holding the URL, ``file:PATH``), else
``sqlite:///studies/<name>.db``. A password belongs in ``HPO_STORAGE`` or a file: on the
command line, ``ps`` shows it to every user of the machine, so the CLI warns.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from hpo import STORAGE_ENV

__all__ = ["StorageOpt", "warn_password_on_command_line"]

StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        envvar=STORAGE_ENV,
        show_envvar=False,
        show_default=False,
        help=f"Storage URL (default: ${STORAGE_ENV}, else the preset's, else sqlite:///studies/<name>.db). "
        f"Put a password in ${STORAGE_ENV}, not here: the process list shows the command line.",
    ),
]


def warn_password_on_command_line(url: str | None) -> None:
    """One line on stderr when ``url`` carries a password and came from the command line."""
    from hpo.storage import redact_url

    if url and redact_url(url) != url and os.environ.get(STORAGE_ENV) != url:
        typer.echo(
            f"warning: --storage holds a password, which `ps` shows to every user here; "
            f"export {STORAGE_ENV}=... instead",
            err=True,
        )
