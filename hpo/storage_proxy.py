"""``grpc://host:port`` storages: Optuna's gRPC storage proxy in front of one database.

At a few hundred workers each holding its own connections, PostgreSQL runs out of them
(``max_connections`` is 100 by default). ``hpo storage-proxy`` (:func:`serve`) holds one
pool for all and serves Optuna's gRPC API (``optuna.storages.run_grpc_proxy_server``);
workers open it with :func:`open_proxy` (``GrpcStorageProxy``). What Optuna's proxy lacks,
and where it is made up for:

- heartbeats (the gRPC API has no heartbeat call): trial system attrs, written and read
  by :class:`hpo.storage_retry.RetryingStorage` on the worker side;
- retries: the proxy's own database calls are wrapped like a worker's, and a worker
  repeats calls while the proxy restarts (gRPC ``UNAVAILABLE``), both for the grace period;
- the journal backend (Optuna's proxy refuses it): a one-line error.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from optuna.storages import BaseStorage

from hourglass.errors import ConfigError
from hpo.storage_retry import HEARTBEAT_ATTR

__all__ = ["open_proxy", "serve", "parse_grpc_url", "GRPC_EXTRA_HINT", "HEARTBEAT_ATTR"]

GRPC_EXTRA_HINT = 'the gRPC storage proxy needs grpcio and protobuf: pip install -e ".[grpc]"'
PROXY_THREADS = 64  # concurrent calls the proxy serves (a worker makes up to two at once)


def parse_grpc_url(url: str) -> tuple[str, int]:
    """``grpc://host:port`` -> (host, port)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "grpc" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ConfigError(f"storage {url!r}: expected grpc://host:port (an hpo storage-proxy)")
    return parts.hostname, port


def _require_grpc() -> None:
    """Optuna imports grpc and protobuf lazily, deep inside the first call; ask here."""
    try:
        import grpc  # noqa: F401
        import google.protobuf  # noqa: F401  (Optuna's proxy messages)
    except ImportError:
        raise ConfigError(GRPC_EXTRA_HINT) from None


def open_proxy(url: str, *, wait_s: float = 0.0) -> BaseStorage:
    """A client of the proxy at ``url``, once it answers (waiting up to ``wait_s`` seconds)."""
    host, port = parse_grpc_url(url)
    _require_grpc()
    from optuna.storages import GrpcStorageProxy

    proxy = GrpcStorageProxy(host=host, port=port)
    try:
        proxy.wait_server_ready(timeout=max(wait_s, 1.0))
    except ConnectionError:
        proxy.close()
        raise ConfigError(f"storage {url}: cannot connect (no hpo storage-proxy answers there "
                          f"within {max(wait_s, 1.0):g} s)") from None
    return proxy


def serve(url: str, host: str, port: int, echo: Callable[[str], None] = print) -> None:
    """Serve the storage at ``url`` on ``host:port`` until interrupted."""
    from hpo.storage import open_storage, redact_url

    if url.startswith(("grpc://", "journal://")):
        raise ConfigError(f"--storage {redact_url(url)}: the proxy serves a database "
                          "(postgresql+psycopg://... or sqlite:///...), not a journal file or another proxy")
    _require_grpc()
    from optuna.storages import run_grpc_proxy_server

    storage = open_storage(url, wait=True)
    echo(f"storage proxy for {redact_url(url)} on grpc://{host}:{port} (Ctrl-C stops it)")
    try:
        run_grpc_proxy_server(storage, host=host, port=port, thread_pool=ThreadPoolExecutor(max_workers=PROXY_THREADS))
    except RuntimeError as exc:  # grpc: the address is taken or not ours
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({exc})") from None
