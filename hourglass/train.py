"""Train and score one design: the loop every trial (and ``hpo train``) runs.

No Optuna here. The caller observes training through ``on_epoch_end(metrics)``, which may
raise to stop it (the study raises ``optuna.TrialPruned``); the loop itself raises
:class:`TrainingDiverged` on a non-finite loss. Each epoch ends with a checkpoint (config,
weights, optimizer, scheduler, RNG states, the metrics so far), written atomically, so a
killed run resumes at the next epoch with the same results it would have had.

PCKh is computed in crop coordinates (the cache's frame): predictions are mapped from
heatmap pixels through the input transform back into the crop, where ground truth and the
PCKh normaliser live. Crop and original image differ by a similarity transform, so the
score is the one the original coordinates would give.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from hourglass._validate import check_choice, check_float, check_int, from_dict, to_dict
from hourglass.config import HourglassConfig
from hourglass.data.augment import AugmentConfig
from hourglass.data.dataset import PoseArrays, PoseDataset, load_pose_data
from hourglass.data.heatmaps import heatmap_loss
from hourglass.errors import ConfigError
from hourglass.gpu_data import GpuPoseData
from hourglass.metrics import PCKhResult, decode_heatmaps, flip_back, pckh, to_image_coords
from hourglass.model import build_model
from hourglass.yamlio import load_yaml

__all__ = [
    "ScheduleConfig", "TrainConfig", "EpochMetrics", "TrainResult", "TrainingDiverged",
    "REFERENCE_SCHEDULE", "train", "evaluate", "pick_device", "load_train_config",
    "make_optimizer", "prepare_model", "train_step", "checkpoint_history",
]

OPTIMIZERS = ("adam", "sgd", "rmsprop")


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

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, low=1)
        check_int("batch_size", self.batch_size, low=1)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_float("lr", self.lr, positive=True)
        check_float("gamma", self.gamma, positive=True)
        check_float("weight_decay", self.weight_decay, low=0.0)
        check_float("sigma", self.sigma, positive=True)
        check_int("num_workers", self.num_workers, low=0)
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


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite (usually a learning rate far too high)."""


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based
    loss: float
    pckh: float  # PCKh@0.5 table Mean, percent, on the validation split
    time_s: float  # cumulative wall time of training and evaluation so far
    epoch_time_s: float
    train_img_s: float
    lr: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class TrainResult:
    config: TrainConfig
    history: list[EpochMetrics]
    final: PCKhResult | None
    params: int
    device: str
    model: torch.nn.Module = field(repr=False)
    resumed_from_epoch: int = 0

    @property
    def wall_time_s(self) -> float:
        return self.history[-1].time_s if self.history else 0.0


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def make_optimizer(params, s: ScheduleConfig) -> torch.optim.Optimizer:
    if s.optimizer == "adam":
        # fused: one kernel per step instead of ~10 per parameter tensor (measured faster on CPU too)
        return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay, fused=True)
    if s.optimizer == "sgd":
        return torch.optim.SGD(params, lr=s.lr, momentum=0.9, weight_decay=s.weight_decay)
    return torch.optim.RMSprop(params, lr=s.lr, weight_decay=s.weight_decay)


def _autocast(device: torch.device):
    # bf16 on GPU halves memory traffic; the CPU path stays fp32 (bf16 is slower there).
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


# --- speed (see `hpo bench`) -------------------------------------------------------------
# channels_last on every device: cuDNN/oneDNN run NHWC convolutions without layout copies;
# on CPU `hpo bench` measured the baseline step ~10-15% faster than NCHW (BN forward and the
# 3x3 convs), for every seed design. Batches come from hourglass.gpu_data on CUDA: the crops
# live in GPU memory and augmentation + targets run there for the whole batch.


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move ``model`` to ``device`` in the memory format the training step is fastest with."""
    return model.to(device).to(memory_format=torch.channels_last)


def _uses_device_data(device: torch.device) -> bool:
    """Whether batches are made on ``device`` itself (CUDA); the CPU keeps the albumentations path."""
    return device.type == "cuda"


def _images(batch: dict[str, torch.Tensor], device: torch.device) -> torch.Tensor:
    return batch["image"].to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
               weights: tuple[float, ...], device: torch.device) -> torch.Tensor:
    """One optimisation step on ``batch`` (PoseDataset keys); returns the loss, not synced.

    The step every trial and ``hpo bench`` time. A non-finite loss still takes its step:
    the caller checks the returned loss and stops the run (the step's weights are dropped).
    """
    images = _images(batch, device)  # (N, 3, S, S)
    target = batch["heatmaps"].to(device, non_blocking=True)  # (N, J, S/4, S/4)
    present = batch["present"].to(device, non_blocking=True)  # (N, J)
    with _autocast(device):
        out = model(images)  # (N, stacks, J, S/4, S/4)
    loss = heatmap_loss(out.float(), target, present, weights)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset: PoseDataset | GpuPoseData, arrays: PoseArrays, *,
             batch_size: int = 64, flip: bool = False, device: torch.device | None = None) -> PCKhResult:
    """PCKh@0.5 of ``model`` on ``dataset`` (unaugmented), scored in crop coordinates."""
    device = device or next(model.parameters()).device
    model.eval()
    preds, rows = [], []
    if isinstance(dataset, GpuPoseData):
        loader = dataset.batches(batch_size)
    else:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for batch in loader:
        images = _images(batch, device)
        with _autocast(device):
            heat = model(images)[:, -1].float()  # (N, J, S/4, S/4): the last stack
            if flip:
                heat = 0.5 * (heat + flip_back(model(images.flip(-1))[:, -1].float()))
        stride = images.shape[-1] / heat.shape[-1]
        # heatmap px -> input px -> crop px, through each sample's (N, 2, 3) input->crop affine
        preds.append(to_image_coords(decode_heatmaps(heat).cpu(), batch["to_crop"].float().cpu(), stride))
        rows.append(batch["index"].cpu())
    idx = torch.cat(rows).numpy()
    return pckh(torch.cat(preds).numpy(), arrays.keypoints[idx], arrays.present[idx].astype(bool), arrays.normalizer[idx])


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a kill mid-write never leaves a half checkpoint


def checkpoint_history(checkpoint_dir: str | Path) -> list[EpochMetrics]:
    """The metrics of the epochs saved in ``checkpoint_dir/last.pt`` (empty if none): what
    :func:`train` will resume after, so a caller can show the whole curve from the start."""
    ckpt = Path(checkpoint_dir) / "last.pt"
    if not ckpt.exists():
        return []
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    return [EpochMetrics(**m) for m in state["history"]]


def train(
    config: TrainConfig,
    arrays: PoseArrays | None = None,
    *,
    device: str | torch.device | None = None,
    on_epoch_end: Callable[[EpochMetrics], None] | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``config`` and evaluate PCKh on the validation split after every epoch.

    ``arrays`` (already loaded pose data) saves re-loading ``config.data`` for every trial.
    With ``checkpoint_dir``, an existing ``last.pt`` there is resumed from.
    """
    s = config.schedule
    device = pick_device(str(device) if device is not None else None)
    arrays = arrays if arrays is not None else load_pose_data(config.data)
    generator = _seed_everything(s.seed)
    model = prepare_model(build_model(config.model), device)
    optimizer = make_optimizer(model.parameters(), s)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(s.milestones), gamma=s.gamma)

    size = config.model.input_size
    aug = AugmentConfig() if s.augment else None
    train_set: PoseDataset | GpuPoseData
    val_set: PoseDataset | GpuPoseData
    if _uses_device_data(device):  # crops resident on the GPU, batches augmented there (hourglass.gpu_data)
        train_set = GpuPoseData(arrays, "train", size, sigma=s.sigma, augment=aug, device=device, seed=s.seed)
        val_set = GpuPoseData(arrays, "val", size, sigma=s.sigma, augment=None, device=device, seed=s.seed)
    else:
        train_set = PoseDataset(arrays, "train", size, sigma=s.sigma, augment=aug, seed=s.seed)
        val_set = PoseDataset(arrays, "val", size, sigma=s.sigma, augment=None, seed=s.seed)
    if len(train_set) == 0 or len(val_set) == 0:
        raise ConfigError(f"data {config.data}: expected train and validation rows, but got {len(train_set)} and {len(val_set)}")
    drop_last = len(train_set) > s.batch_size
    if isinstance(train_set, GpuPoseData):
        loader = train_set.batches(s.batch_size, shuffle=True, drop_last=drop_last, generator=generator)
    else:
        loader = DataLoader(train_set, batch_size=s.batch_size, shuffle=True, drop_last=drop_last,
                            generator=generator, num_workers=s.num_workers)

    history: list[EpochMetrics] = []
    start_epoch, elapsed = 0, 0.0
    ckpt = Path(checkpoint_dir) / "last.pt" if checkpoint_dir else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=True)  # tensors and plain data only: a checkpoint cannot run code
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history = [EpochMetrics(**m) for m in state["history"]]
        start_epoch, elapsed = state["epoch"], history[-1].time_s if history else 0.0
    resumed_from = start_epoch

    weights = config.model.loss_weights
    result: PCKhResult | None = None
    for epoch in range(start_epoch + 1, s.epochs + 1):
        model.train()
        train_set.set_epoch(epoch)
        t0 = time.perf_counter()
        total, seen = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch}/{s.epochs}", leave=False, disable=not progress, unit="batch")
        for batch in bar:
            loss = train_step(model, optimizer, batch, weights, device)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss is {loss.item()} at epoch {epoch} (lr {scheduler.get_last_lr()[0]:g})")
            n = batch["image"].shape[0]
            total += loss.item() * n
            seen += n
            bar.set_postfix(loss=f"{total / seen:.2e}")
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        train_time = time.perf_counter() - t0
        result = evaluate(model, val_set, arrays, batch_size=max(s.batch_size, 32), flip=s.eval_flip, device=device)
        epoch_time = time.perf_counter() - t0
        elapsed += epoch_time
        metrics = EpochMetrics(epoch=epoch, loss=total / max(seen, 1), pckh=result.per_joint["Mean"],
                               time_s=elapsed, epoch_time_s=epoch_time, train_img_s=seen / train_time, lr=lr)
        history.append(metrics)
        if ckpt is not None:
            _save_checkpoint(ckpt, {
                "config": config.to_dict(), "epoch": epoch, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                "history": [m.to_dict() for m in history],
            })
        if on_epoch_end is not None:
            on_epoch_end(metrics)
    if result is None and history:  # resumed after the last epoch: score the restored weights
        result = evaluate(model, val_set, arrays, batch_size=max(s.batch_size, 32), flip=s.eval_flip, device=device)
    params = sum(p.numel() for p in model.parameters())
    return TrainResult(config, history, result, params, str(device), model, resumed_from)
