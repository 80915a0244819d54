"""The project's one domain exception.

Library code raises :class:`HourglassError` (or a subclass) for anything a user can fix:
bad config values, unreadable files, unreachable storage. Only the CLI turns it into a
one-line message and exit code 2; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["HourglassError", "ConfigError", "DataError", "exception_chain"]


class HourglassError(Exception):
    """A problem the user can fix; the message is one line that names what and where."""


class ConfigError(HourglassError, ValueError):
    """A config value (YAML field, CLI option) is not one of the allowed values."""


class DataError(HourglassError):
    """A dataset or annotation file is missing, truncated or in an unexpected layout."""


def exception_chain(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and what it wraps (its ``__cause__``, else its ``__context__``), outermost
    first, each once: a device or storage error often arrives wrapped in another."""
    chain: list[BaseException] = []
    while exc is not None and not any(e is exc for e in chain):
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain
