"""A trained model as one file a user owns: ``model.pt`` = weights + config + metrics.

The file is a plain dict of tensors and plain data (no pickled classes), so
``torch.load(path, weights_only=True)`` reads it safely anywhere; :func:`load_model`
rebuilds the network from the stored config::

    from hourglass.model_file import load_model
    saved = load_model("m/model.pt")          # saved.model: eval mode, on the CPU
    heatmaps = saved.model(images)[:, -1]     # (N, 16, S/4, S/4), images as in training

or by hand::

    state = torch.load("m/model.pt", weights_only=True)
    model = build_model(HourglassConfig.from_dict(state["config"]["model"]))
    model.load_state_dict(state["state_dict"])
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hourglass.errors import DataError
from hourglass.model import build_model
from hourglass.train_config import TrainConfig

__all__ = ["FORMAT", "SavedModel", "save_model", "load_model"]

FORMAT = "hourglass-hpo/model-v1"  # the "format" key of every model.pt


@dataclass(frozen=True)
class SavedModel:
    model: nn.Module  # eval mode
    config: TrainConfig
    metrics: dict[str, Any] = field(default_factory=dict)
    epoch: int = 0


def save_model(
    path: str | Path,
    model: nn.Module,
    config: TrainConfig,
    *,
    metrics: dict[str, Any] | None = None,
    epoch: int = 0,
) -> Path:
    """Write ``model``'s weights (as CPU tensors) with ``config`` and ``metrics`` (plain
    data: numbers, strings, lists, dicts), atomically: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(
        {
            "format": FORMAT,
            "config": config.to_dict(),
            "state_dict": state,
            "metrics": metrics or {},
            "epoch": epoch,
        },
        tmp,
    )
    os.replace(tmp, path)
    return path


def load_model(path: str | Path, device: str | torch.device = "cpu") -> SavedModel:
    """The network of a ``model.pt`` (:func:`save_model`), in eval mode on ``device``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such model file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds on a file that is not a model
        raise DataError(
            f"{path}: not a model file written by hpo train ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        got = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise DataError(f"{path}: format: expected {FORMAT!r}, but got {got!r}")
    config = TrainConfig.from_dict(state["config"], where=f"{path}: config")
    model = build_model(config.model)
    model.load_state_dict(state["state_dict"])
    return SavedModel(
        model.to(device).eval(), config, dict(state.get("metrics") or {}), int(state.get("epoch", 0))
    )
