"""Serving optuna-dashboard in-process, with the figures it cannot draw itself.

optuna-dashboard reads a study's intermediate values for learning curves, but Optuna
cannot store those in a multi-objective study, so the curves (from the ``curve`` user
attr), the hypervolume history and the cost model are pushed in as plotly figures with
``optuna_dashboard.save_plotly_graph_object``. That function stores the figure's JSON in
study system attrs (``dashboard:plot_data:<id>:<chunk>``); a new id every call would pile
up copies, so each figure has a fixed id and republishing overwrites it.

optuna-dashboard has no authentication, and its API deletes and renames studies and
trials. :func:`make_server` therefore serves it read-only unless told otherwise: a
small WSGI wrapper (:class:`ReadOnly`) answers 403 to every method but GET, HEAD and
OPTIONS. It also gives a request without ``Accept-Encoding`` (curl's default) the
identity encoding, which optuna-dashboard's static-file route assumes is always there.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.simple_server import make_server as _wsgiref_server

import optuna
import optuna_dashboard
from optuna.storages import BaseStorage

from hourglass.errors import ConfigError
from hpo import optuna_compat
from hpo.pareto import StudySnapshot
from hpo.report import cost_model_figure, hypervolume_figure, learning_curves_figure
from hpo.storage import open_storage

__all__ = ["make_server", "publish_figures", "study_url", "is_loopback", "ReadOnly", "FIGURE_IDS"]

FIGURE_IDS = ("hpo-learning-curves", "hpo-hypervolume", "hpo-cost-model")


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr (the page polls the API every few seconds)."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        pass

    def address_string(self) -> str:  # no reverse DNS lookup per request
        return self.client_address[0]


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ReadOnly:
    """WSGI middleware: the wrapped app (optuna-dashboard) answers only GET, HEAD and
    OPTIONS unless ``allow_writes``; a request without ``Accept-Encoding`` gets ``identity``."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, allow_writes: bool = False) -> None:
        self.app = app
        self.allow_writes = allow_writes

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ.setdefault("HTTP_ACCEPT_ENCODING", "identity")
        if not self.allow_writes and environ.get("REQUEST_METHOD", "GET").upper() not in _SAFE_METHODS:
            body = b"read-only dashboard: start it with `hpo dashboard --allow-writes` to change studies\n"
            start_response(
                "403 Forbidden",
                [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return self.app(environ, start_response)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine (127.0.0.0/8, ::1, localhost)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def make_server(
    storage: str | BaseStorage, host: str = "127.0.0.1", port: int = 8080, *, allow_writes: bool = False
) -> WSGIServer:
    """A wsgiref server for optuna-dashboard on ``storage`` (a URL or an open storage),
    read-only unless ``allow_writes`` (see the module docstring).

    Not started: call ``serve_forever()`` (in a thread if need be), then ``shutdown()``
    from another thread and ``server_close()``. ``port=0`` picks a free port
    (``server.server_port``).
    """
    if isinstance(storage, str):
        storage = open_storage(storage)
    # optuna-dashboard special-cases RDBStorage (study order, schema migration): unwrap the retries
    storage = getattr(storage, "inner", storage)
    try:
        app = ReadOnly(optuna_dashboard.wsgi(storage), allow_writes=allow_writes)
        return _wsgiref_server(host, port, app, handler_class=_QuietHandler)
    except OSError as exc:
        raise ConfigError(f"dashboard: cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def study_url(server: WSGIServer, study: optuna.Study, host: str | None = None) -> str:
    """The dashboard page of ``study`` on ``server`` (its top page shows the Pareto front)."""
    study_id = optuna_compat.study_id(study)
    return f"http://{host or server.server_address[0]}:{server.server_port}/dashboard/studies/{study_id}"


def publish_figures(study: optuna.Study) -> list[str]:
    """Store the learning curves, hypervolume history and cost model in ``study`` for the
    dashboard; returns the figure ids. Before the first COMPLETE trial there is no
    hypervolume yet, so only the other two are published."""
    # The dashboard draws each figure in a half-width card about 450 px high.
    snap = StudySnapshot.of(study)  # one read of the trials for all three
    figures = {
        "hpo-learning-curves": learning_curves_figure(snap),
        "hpo-cost-model": cost_model_figure(snap, height=450),
    }
    if snap.complete:
        figures["hpo-hypervolume"] = hypervolume_figure(snap)
    for graph_id, fig in figures.items():
        optuna_dashboard.save_plotly_graph_object(study, fig, graph_object_id=graph_id)
    return [g for g in FIGURE_IDS if g in figures]
