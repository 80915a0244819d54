"""``grpc://host:port`` storages: Optuna's gRPC storage proxy in front of one database.

At a few hundred workers each holding its own connections, PostgreSQL runs out of them
(``max_connections`` is 100 by default). ``hpo storage-proxy`` holds one
pool for all and serves Optuna's gRPC API (``optuna.storages.run_grpc_proxy_server``);
workers open it with :func:`open_proxy` (``GrpcStorageProxy``); the server is started by
the CLI (:mod:`hpo.cli.storage_proxy`). What Optuna's proxy lacks,
and where it is made up for:

- heartbeats (the gRPC API has no heartbeat call): trial system attrs, written and read
  by :class:`hpo.storage_retry.RetryingStorage` on the worker side;
- retries: the proxy's own database calls are wrapped like a worker's, and a worker
  repeats calls while the proxy restarts (gRPC ``UNAVAILABLE``), both for the grace period;
- the journal backend (Optuna's proxy refuses it): a one-line error.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from optuna.storages import BaseStorage

from hourglass.errors import ConfigError
from hpo import optuna_compat as compat
from hpo.storage_retry import HEARTBEAT_ATTR, StorageUnavailable

__all__ = [
    "open_proxy",
    "parse_grpc_url",
    "require_grpc",
    "GRPC_EXTRA_HINT",
    "HEARTBEAT_ATTR",
    "PROXY_THREADS",
]

# gRPC waits up to 120 s between reconnection attempts by default, so a worker could miss a
# restarted proxy for minutes and give up while it is back; try again every 2 s at most.
CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", -1),
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2000),
)
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


def require_grpc() -> None:
    """Optuna imports grpc and protobuf lazily, deep inside the first call; ask here."""
    try:
        import google.protobuf  # noqa: F401  (Optuna's proxy messages)
        import grpc  # noqa: F401
    except ImportError:
        raise ConfigError(GRPC_EXTRA_HINT) from None


def open_proxy(url: str, *, wait_s: float = 0.0) -> BaseStorage:
    """A client of the proxy at ``url``, once it answers (waiting up to ``wait_s`` seconds)."""
    host, port = parse_grpc_url(url)
    require_grpc()
    proxy = _proxy_class()(host=host, port=port)
    try:
        proxy.wait_server_ready(timeout=max(wait_s, 1.0))
    except ConnectionError:
        proxy.close()
        raise StorageUnavailable(
            f"storage {url}: cannot connect, no hpo storage-proxy answered there within "
            f"{max(wait_s, 1.0):g} s (HPO_STORAGE_GRACE_S)"
        ) from None
    return proxy


def _proxy_class() -> type[BaseStorage]:
    """Optuna's GrpcStorageProxy on a channel that reconnects quickly (:data:`CHANNEL_OPTIONS`);
    Optuna builds its channel with no way to pass options (:mod:`hpo.optuna_compat`)."""
    return compat.grpc_proxy_with_options(CHANNEL_OPTIONS)
