"""Study names, which become file names: a short safe alphabet, checked wherever one enters.

A name comes from a preset, the command line or a database (which is not ours to trust),
and becomes ``studies/<name>.db``, ``reports/<name>.html`` and a checkpoint folder. So it
is at most :data:`MAX_NAME_LENGTH` characters of letters, digits, ``_``, ``-`` and ``.``,
starting with a letter or digit (no ``/``, no ``..`` to climb out of a folder, nothing a
file system refuses as too long), and :func:`file_under` makes sure the file it names
stays in its folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from hourglass.errors import ConfigError

__all__ = ["MAX_NAME_LENGTH", "check_study_name", "file_under"]

MAX_NAME_LENGTH = 100
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_study_name(name: object, where: str = "name") -> str:
    """``name`` if it is a safe study name, else a one-line :class:`ConfigError`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        shown = (
            repr(name)
            if not isinstance(name, str) or len(name) <= 60
            else f"{name[:40]!r}... ({len(name)} characters)"
        )
        raise ConfigError(
            f"{where}: expected at most {MAX_NAME_LENGTH} letters, digits, '_', '-', '.' "
            f"(starting with a letter or digit), but got {shown}"
        )
    return name


def file_under(folder: str | Path, name: str, suffix: str) -> Path:
    """``folder/<name><suffix>`` for a checked study name, refused if it would leave ``folder``."""
    check_study_name(name, "study name")
    path = Path(folder) / f"{name}{suffix}"
    if path.resolve().parent != Path(folder).resolve():
        raise ConfigError(f"study name {name!r}: {path} would leave {folder}")
    return path
