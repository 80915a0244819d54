"""The training job's schema: how to train (:class:`ScheduleConfig`) and one complete job
(:class:`TrainConfig` = model + schedule + data spec), beside the model config.

Kept apart from :mod:`hourglass.train` so that anything needing the schema (presets,
search spaces, exports) does not import the training stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hourglass.config import HourglassConfig
from hourglass.validate import check_choice, check_float, check_int, from_dict, to_dict
from hourglass.yamlio import load_yaml

__all__ = [
    "MAX_EPOCHS",
    "OPTIMIZERS",
    "ScheduleConfig",
    "REFERENCE_SCHEDULE",
    "TrainConfig",
    "load_train_config",
]

OPTIMIZERS = ("adam", "sgd", "rmsprop")


# At most this many epochs: a typo of a few zeros must not start a run of years
MAX_EPOCHS = 10_000


@dataclass(frozen=True)
class ScheduleConfig:
    """How to train. The defaults are the reference study's schedule: 20 epochs, batch 24,
    Adam lr 1e-3 divided by 10 at epochs 15 and 17."""

    epochs: int = 20
    batch_size: int = 24
    optimizer: str = "adam"
    lr: float = 1e-3
    milestones: tuple[int, ...] = (15, 17)
    gamma: float = 0.1
    weight_decay: float = 0.0
    sigma: float = 1.0  # Gaussian sigma of the targets, in heatmap pixels
    augment: bool = True
    seed: int = 0
    eval_flip: bool = False  # average with the horizontally flipped input at evaluation
    num_workers: int = 0
    # Batches per epoch, drawn at random from the training split anew every epoch (None: one
    # pass over the split). Why: a study judges and prunes designs at epoch ends, so shorter
    # epochs let it cut a hopeless design after a fraction of a pass (Keras's steps_per_epoch).
    steps_per_epoch: int | None = None

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, low=1, high=MAX_EPOCHS)
        check_int("batch_size", self.batch_size, low=1)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_float("lr", self.lr, positive=True)
        check_float("gamma", self.gamma, positive=True)
        check_float("weight_decay", self.weight_decay, low=0.0)
        check_float("sigma", self.sigma, positive=True)
        check_int("num_workers", self.num_workers, low=0)
        if self.steps_per_epoch is not None:
            check_int("steps_per_epoch", self.steps_per_epoch, low=1)
        for m in self.milestones:
            check_int("milestones", m, low=1)


REFERENCE_SCHEDULE = ScheduleConfig()


@dataclass(frozen=True)
class TrainConfig:
    """One complete, reproducible training job: what ``hpo export`` writes, ``hpo train`` reads."""

    model: HourglassConfig = field(default_factory=HourglassConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    data: str = "synthetic:2000:64:0"  # a pose-data spec, see hourglass.data.dataset.load_pose_data

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> TrainConfig:
        return from_dict(cls, data, where)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def load_train_config(path: str | Path) -> TrainConfig:
    return TrainConfig.from_dict(load_yaml(path), where=f"{path}:")
