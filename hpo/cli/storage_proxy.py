"""``hpo storage-proxy``: one gRPC front for a database, so that many workers share its connections."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app


@app.command("storage-proxy")
def storage_proxy(
    storage: Annotated[str, typer.Option(
        "--storage", envvar="HPO_STORAGE", show_envvar=False,
        help="The database the proxy serves, e.g. postgresql+psycopg://user@host/db "
             "(also read from HPO_STORAGE, which keeps a password out of the process list).", show_default=False)],
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface; there is no authentication).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 13000,
) -> None:
    r"""Serve Optuna's gRPC storage proxy: workers then take --storage grpc://HOST:PORT.

    Hundreds of workers share the proxy's few database connections; heartbeats, retries and resuming from checkpoints work through it as on the database itself. Needs the grpc extra (pip install -e ".\[grpc]").
    """
    from hpo.storage_proxy import serve

    serve(storage, host, port, echo=lambda line: typer.echo(line, err=True))
