"""The ``hpo`` command line: one module per command group, all registered on one app."""

from __future__ import annotations

from hpo.cli._app import app
from hpo.cli import bench  # noqa: F401  (registers commands)
from hpo.cli import designs  # noqa: F401  (registers commands)
from hpo.cli import evaluate  # noqa: F401
from hpo.cli import results  # noqa: F401
from hpo.cli import study  # noqa: F401
from hpo.cli import train  # noqa: F401
from hpo.cli import data  # noqa: F401
from hpo.cli import worker  # noqa: F401
from hpo.cli import storage_proxy  # noqa: F401
from hpo.cli import bench_search  # noqa: F401
from hpo.cli import table  # noqa: F401

__all__ = ["app", "main"]


def main() -> None:
    app()
