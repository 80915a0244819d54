"""Optional dependencies, looked up without importing them.

``onnx`` and ``onnxruntime`` (ONNX export, the ``latency`` objective) are the ``[deploy]``
extra: most searches never need them, so a missing one must fail in one line that says
what to install, at the moment a preset or a CLI flag asks for it, not halfway through
a study. Looking them up costs nothing (no torch, no onnx import), so presets can check.
"""

from __future__ import annotations

import importlib.util

from hourglass.errors import ConfigError

__all__ = ["DEPLOY_MODULES", "require_deploy", "deploy_available"]

DEPLOY_MODULES = ("onnx", "onnxruntime")  # what `pip install -e ".[deploy]"` provides


def require_deploy(what: str = "ONNX export") -> None:
    """Raise a one-line error naming the ``[deploy]`` extra if onnx/onnxruntime are missing."""
    missing = [m for m in DEPLOY_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f'{what} needs the deploy extra (missing: {", ".join(missing)}): pip install -e ".[deploy]"'
        )


def deploy_available() -> bool:
    """Whether onnx and onnxruntime are both installed (for things done only when they are)."""
    return all(importlib.util.find_spec(m) is not None for m in DEPLOY_MODULES)
