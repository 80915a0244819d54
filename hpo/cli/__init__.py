"""The ``hpo`` command line: one module per command group, each with its own typer app,
registered on the root app here, explicitly and in help order (typer's ``add_typer``; an
app added without a name contributes its commands directly)."""

from __future__ import annotations

from hpo.cli import (
    bench,
    bench_search,
    bench_table,
    data,
    designs,
    evaluate,
    predict,
    presets,
    results,
    storage_proxy,
    study,
    table,
    train,
    worker,
)
from hpo.cli._app import app

__all__ = ["app", "main"]

for _module in (
    bench,
    designs,
    evaluate,
    results,
    study,
    train,
    predict,
    presets,
    data,
    worker,
    storage_proxy,
    bench_search,
    bench_table,
    table,
):
    app.add_typer(_module.app)


def main() -> None:
    app()
