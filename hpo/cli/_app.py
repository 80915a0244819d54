"""The root typer app and the one place where user errors become a one-line message.

Every command module registers itself on :data:`app` (or adds a sub-app to it). Library
code raises :class:`hourglass.errors.HourglassError`; :class:`_Group` catches it around
the whole command tree, prints ``error: <message>`` on stderr and exits with code 2.
``hpo --debug ...`` re-raises instead, to show the traceback. An interrupt exits with
128 + the signal number: 130 for Ctrl-C, 143 for SIGTERM (see :mod:`hpo.trial_loop`).
A message is one line in a log; for a reader (``$COLUMNS`` set, or a terminal) it wraps
at that width, and so do the help texts (:func:`reflow`): everything fits 80 columns.
"""

from __future__ import annotations

import inspect
import os
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperGroup, TyperOption

from hourglass.errors import HourglassError

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations phones home on import

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT
# What to do after Ctrl-C, for the commands that resume where they stopped.
RESUME_HINTS = {
    "run": "run the same command again to resume: finished trials are kept, the interrupted one "
    "continues from its last epoch checkpoint",
    "worker": "start the worker again to resume: the interrupted trial continues from its last epoch "
    "checkpoint",
}


# the training step's compile mode, one option for run, worker and train
CompileOpt = Annotated[
    str | None,
    typer.Option(
        "--compile",
        help="Compile the training step: off, default (fused kernels), reduce-overhead (fused kernels "
        "replayed as CUDA graphs). Default: reduce-overhead on CUDA, off on CPU; also "
        "$HPO_COMPILE.",
        show_default=False,
    ),
]


def message_width() -> int | None:
    """The width messages wrap at: ``$COLUMNS``, else the terminal's; ``None`` (one line per
    message, for grep) when stderr is a file or a pipe and ``COLUMNS`` is not set."""
    text = os.environ.get("COLUMNS", "")
    if text.isdigit() and int(text) >= 20:
        return int(text)
    return shutil.get_terminal_size().columns if sys.stderr.isatty() else None


def echo_message(text: str, err: bool = True) -> None:
    """One message (on stderr unless ``err`` is false), wrapped at :func:`message_width`
    (continuation lines indented)."""
    width = message_width()
    lines = textwrap.wrap(text, width, subsequent_indent="  ", break_on_hyphens=False) if width else [text]
    typer.echo("\n".join(lines), err=err)


def counted(n: int, noun: str) -> str:
    """``1 trial``, ``2 trials``, ``0 trials``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def show_progress(quiet: bool = False) -> bool:
    """Progress bars only on a terminal: redirected to a file, every redraw of a bar would
    be kept (the quickstart wrote 700 KB of them), so a log gets one line per trial instead."""
    return not quiet and sys.stderr.isatty()


def _hide_flag_types() -> None:
    """Flags take no value, so their help shows no type (typer's rich help prints ``<bool>``).

    Typer offers no option class to override, so its one display method is wrapped, once."""
    shown = TyperOption.display_type_rich
    if getattr(shown, "flags_bare", False):
        return

    def display_type_rich(self: TyperOption, ctx: object) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich.flags_bare = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_hide_flag_types()


def reflow(text: str | None) -> str | None:
    """Help text as paragraphs: the line breaks of a docstring joined, so that the help
    wraps at the terminal's width instead of leaving orphan words at each source line end.
    Paragraphs marked ``\\b`` (click's "keep as is") and indented or bulleted lines stay."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    kept = ("\b", " ", "-", "*")
    return "\n\n".join(
        p if any(line.startswith(kept) for line in p.splitlines()) else " ".join(p.split())
        for p in paragraphs
    )


def _reflow_help(command: click.Command) -> None:
    command.help = reflow(command.help)
    for sub in getattr(command, "commands", {}).values():
        _reflow_help(sub)


class _Group(TyperGroup):
    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        _reflow_help(self)

    def invoke(self, ctx):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            # Ctrl-C: 130; SIGTERM (hpo.trial_loop.Interrupted): 143, the shell convention 128 + signal
            code = getattr(exc, "exit_code", EXIT_INTERRUPTED)
            hint = RESUME_HINTS.get(ctx.invoked_subcommand or "")
            echo_message(f"interrupted{f' ({exc})' if str(exc) else ''}{f': {hint}' if hint else ''}")
            raise typer.Exit(code) from None
        except HourglassError as exc:
            if ctx.params.get("debug"):
                raise
            echo_message(f"error: {' '.join(str(exc).split())}")  # one message, wrapped only for a reader
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
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="A folder whose studies/ and search_spaces/ come before "
            "./studies, ./search_spaces and the shipped ones (also $HPO_HOME).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Search stacked-hourglass pose networks with Optuna."""
    if home is not None:
        if not home.is_dir():
            raise HourglassError(f"--home: {home}: no such folder")
        from hpo.locations import HOME_ENV

        os.environ[HOME_ENV] = str(home.resolve())  # worker processes started later inherit it
