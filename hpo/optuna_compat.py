"""The one seam to Optuna's private API.

Some things a worker of a shared study must do have no public API in Optuna: reach the
storage a study was opened on (to fail and re-queue another worker's trial, to read its
heartbeat settings), name a trial by its storage id (the id heartbeats and state changes
use), and tell a storage that runs Optuna's heartbeats from one that does not. Every such
use goes through this module, and ``tests/test_optuna_compat.py`` checks each against the
installed Optuna, pinned to :data:`TESTED_WITH`, so an upgrade that moves one fails there,
loudly, instead of in a worker at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import BaseHeartbeat

__all__ = [
    "TESTED_WITH",
    "BaseHeartbeat",
    "study_storage",
    "study_id",
    "trial_id",
    "runs_heartbeats",
    "grpc_proxy_with_options",
]

TESTED_WITH = "5.0.0"  # the Optuna these private names were checked against (pyproject pins it)


def study_storage(study: optuna.Study) -> BaseStorage:
    """The storage ``study`` was opened on (``Study._storage``)."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """``study``'s id in its storage (``Study._study_id``)."""
    return study._study_id


def trial_id(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """A trial's id in its storage (``_trial_id``; the number is only unique per study)."""
    return trial._trial_id


def runs_heartbeats(storage: Any) -> bool:
    """Whether Optuna runs its heartbeat thread for ``storage``: it does only for
    subclasses of its private ``BaseHeartbeat`` (RDB and journal storages)."""
    return isinstance(storage, BaseHeartbeat)


def grpc_proxy_with_options(options: Sequence[tuple[str, Any]]) -> type[BaseStorage]:
    """Optuna's ``GrpcStorageProxy`` whose channel is built with ``options``: Optuna builds
    it in the private ``_setup`` (from its private ``_grpc`` modules) and takes no options.
    Imported here, late: Optuna's gRPC client needs the grpc extra."""
    import grpc
    from optuna.storages import GrpcStorageProxy
    from optuna.storages._grpc.auto_generated import api_pb2_grpc
    from optuna.storages._grpc.client import GrpcClientCache

    class WithOptions(GrpcStorageProxy):
        def _setup(self) -> None:
            self._channel = grpc.insecure_channel(f"{self._host}:{self._port}", options=list(options))
            self._stub = api_pb2_grpc.StorageServiceStub(self._channel)
            self._cache = GrpcClientCache(self._stub)

    return WithOptions
