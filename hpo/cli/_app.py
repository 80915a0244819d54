"""The root typer app and the one place where user errors become a one-line message.

Every command module registers itself on :data:`app` (or adds a sub-app to it). Library
code raises :class:`hourglass.errors.HourglassError`; :class:`_Group` catches it around
the whole command tree, prints ``error: <message>`` on stderr and exits with code 2.
``hpo --debug ...`` re-raises instead, to show the traceback. An interrupt exits with
128 + the signal number: 130 for Ctrl-C, 143 for SIGTERM (see :mod:`hpo.trial_loop`).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from typer.core import TyperGroup

from hourglass.errors import HourglassError

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations phones home on import

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT


class _Group(TyperGroup):
    def invoke(self, ctx):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            # Ctrl-C: 130; SIGTERM (hpo.trial_loop.Interrupted): 143, the shell convention 128 + signal
            code = getattr(exc, "exit_code", EXIT_INTERRUPTED)
            typer.echo(f"interrupted{f' ({exc})' if str(exc) else ''}", err=True)
            raise typer.Exit(code) from None
        except HourglassError as exc:
            if ctx.params.get("debug"):
                raise
            message = " ".join(str(exc).split())  # always exactly one line
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(getattr(exc, "exit_code", EXIT_USER_ERROR)) from None  # 75: storage gone


app = typer.Typer(
    cls=_Group,
    name="hpo",
    help=(
        "Search stacked-hourglass pose networks with Optuna: accuracy (PCKh@0.5) against "
        "size and training time."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback instead of a one-line error.")
    ] = False,
) -> None:
    """Search stacked-hourglass pose networks with Optuna."""
