"""``hpo storage-proxy``: one gRPC front for a database, so that many workers share its connections."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

import typer

from hourglass.errors import ConfigError
from hpo import STORAGE_ENV
from hpo.cli.storage_opt import warn_password_on_command_line

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app


def serve(url: str, host: str, port: int, echo: Callable[[str], None] = print) -> None:
    """Serve the storage at ``url`` on ``host:port`` until interrupted."""
    from optuna.storages import run_grpc_proxy_server

    from hpo.storage import open_storage, redact_url
    from hpo.storage_proxy import PROXY_THREADS, require_grpc

    if url.startswith(("grpc://", "journal://")):
        raise ConfigError(
            f"--storage {redact_url(url)}: the proxy serves a database "
            "(postgresql+psycopg://... or sqlite:///...), not a journal file or another proxy"
        )
    require_grpc()
    storage = open_storage(url, wait=True)
    echo(f"storage proxy for {redact_url(url)} on grpc://{host}:{port} (Ctrl-C stops it)")
    try:
        run_grpc_proxy_server(
            storage, host=host, port=port, thread_pool=ThreadPoolExecutor(max_workers=PROXY_THREADS)
        )
    except RuntimeError as exc:  # grpc: the address is taken or not ours
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({exc})") from None


@app.command("storage-proxy")
def storage_proxy(
    storage: Annotated[
        str,
        typer.Option(
            "--storage",
            envvar=STORAGE_ENV,
            show_envvar=False,
            help="The database the proxy serves, e.g. postgresql+psycopg://user@host/db "
            f"(also read from {STORAGE_ENV}, which keeps a password out of the process list).",
            show_default=False,
        ),
    ],
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0: every interface; there is no authentication).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 13000,
) -> None:
    r"""Serve Optuna's gRPC storage proxy: workers then take --storage grpc://HOST:PORT.

    Hundreds of workers share the proxy's few database connections; heartbeats, retries and resuming
    from checkpoints work through it as on the database itself. Needs the grpc extra (pip install -e
    ".\[grpc]").
    """
    warn_password_on_command_line(storage)
    serve(storage, host, port, echo=lambda line: typer.echo(line, err=True))
