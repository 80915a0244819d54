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

import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler
from tqdm.auto import tqdm

from hourglass.checkpoint import load_checkpoint, save_checkpoint
from hourglass.data.augment import AugmentConfig
from hourglass.data.dataset import PoseArrays, PoseDataset, load_pose_data
from hourglass.data.gpu_data import GpuPoseData
from hourglass.data.heatmaps import decode_heatmaps, flip_back, heatmap_loss, to_image_coords
from hourglass.errors import ConfigError, exception_chain
from hourglass.metrics import PCKhResult, pckh
from hourglass.model import build_model
from hourglass.steptime import StepTimer, robust_seconds
from hourglass.train_config import ScheduleConfig, TrainConfig
from hourglass.validate import check_choice

__all__ = [
    "EpochMetrics",
    "TrainResult",
    "TrainingDiverged",
    "train",
    "evaluate",
    "pick_device",
    "make_optimizer",
    "prepare_model",
    "train_step",
    "checkpoint_history",
    "COMPILE_MODES",
    "COMPILE_ENV",
    "compile_mode",
    "compile_model",
    "set_compile_default",
    "FINITE_CHECK_EVERY",
    "is_out_of_memory",
    "step_begin",
]

# How the training step is compiled: "off" (eager), "default" (torch.compile: fused kernels),
# "reduce-overhead" (fused kernels replayed as CUDA graphs: no per-kernel launch cost).
COMPILE_MODES = ("off", "default", "reduce-overhead")
COMPILE_ENV = "HPO_COMPILE"  # overrides the default of every train() in this process (and its workers)
# Steps between finiteness checks of the loss, each one host sync; the epoch's end checks too.
FINITE_CHECK_EVERY = 100


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
    # cumulative noise-robust time (hourglass.steptime): fast step x steps + fast
    # evaluation batch x batches + compile/capture seconds, summed over the epochs so far
    train_time_s: float = 0.0
    step_s: float = 0.0  # this epoch's fast (lower-decile) training step (data included)
    eval_s: float = 0.0  # this epoch's evaluation, fast batch x batches
    compile_s: float = 0.0  # compile/capture seconds paid in this epoch (first steps over the median)

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

    @property
    def train_time_s(self) -> float:
        """The noise-robust time of all epochs so far (see :class:`EpochMetrics`)."""
        return self.history[-1].train_time_s if self.history else 0.0

    @property
    def compile_s(self) -> float:
        return sum(m.compile_s for m in self.history)


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
        # fused: one kernel per step instead of ~10 per parameter tensor
        return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay, fused=True)
    if s.optimizer == "sgd":
        return torch.optim.SGD(params, lr=s.lr, momentum=0.9, weight_decay=s.weight_decay)
    return torch.optim.RMSprop(params, lr=s.lr, weight_decay=s.weight_decay)


def _autocast(device: torch.device):
    # bf16 on GPU halves memory traffic; the CPU path stays fp32 (bf16 is slower there).
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


# --- speed (see `hpo bench`) -------------------------------------------------------------
# channels_last on every device: cuDNN/oneDNN run NHWC convolutions without layout copies
# (`hpo bench` compares the step time). Batches come from hourglass.data.gpu_data on CUDA: the crops
# live in GPU memory and augmentation + targets run there for the whole batch.


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move ``model`` to ``device`` in the memory format the training step is fastest with."""
    return model.to(device).to(memory_format=torch.channels_last)


def compile_mode(device: torch.device, mode: str | None = None) -> str:
    """The compile mode to train with: ``mode`` if given, else ``$HPO_COMPILE``, else
    ``reduce-overhead`` on CUDA (kernel launches set a small design's step time there) and
    ``off`` elsewhere (on a CPU compiling takes longer than a short trial saves)."""
    mode = mode or os.environ.get(COMPILE_ENV) or ("reduce-overhead" if device.type == "cuda" else "off")
    check_choice("compile", mode, COMPILE_MODES)
    return mode


def set_compile_default(mode: str | None) -> None:
    """Make ``mode`` the default of every later :func:`train` in this process and in the
    worker processes it starts (through ``$HPO_COMPILE``): the CLI's ``--compile``."""
    if mode is not None:
        check_choice("--compile", mode, COMPILE_MODES)
        os.environ[COMPILE_ENV] = mode


def compile_model(model: torch.nn.Module, mode: str) -> torch.nn.Module:
    """``model`` compiled for ``mode`` (the one place the compile call is made; tests swap
    the backend here). Shapes must stay static: a new shape compiles (and captures) again."""
    if mode == "off":
        return model
    # A new trial is a new design: drop the last one's graphs (and CUDA-graph pools) rather
    # than pile up recompiles of one forward until dynamo's cache limit turns compiling off.
    torch._dynamo.reset()
    return torch.compile(model, mode=None if mode == "default" else mode, dynamic=False)


def step_begin(mode: str) -> None:
    """Tell the CUDA-graph trees that a new iteration starts (the last one's outputs are dead)."""
    if mode == "reduce-overhead":
        torch.compiler.cudagraph_mark_step_begin()


_OOM_MARKS = (
    "out of memory",
    "CUDNN_STATUS_ALLOC_FAILED",
    "CUBLAS_STATUS_ALLOC_FAILED",
    "CUDNN_STATUS_NOT_ENOUGH_WORKSPACE",
)  # "out of memory" also covers "CUDA error: out of memory"


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it wraps) is the device running out of memory.

    ``torch.cuda.OutOfMemoryError`` is only the caching allocator's error: cuDNN and cuBLAS
    allocate their own workspaces and report failure as a plain ``RuntimeError`` naming
    their status, and compiled code may wrap either in another exception.
    """
    return any(
        isinstance(e, (torch.cuda.OutOfMemoryError, MemoryError))
        or (isinstance(e, RuntimeError) and any(m in str(e) for m in _OOM_MARKS))
        for e in exception_chain(exc)
    )


def _uses_device_data(device: torch.device) -> bool:
    """Whether batches are made on ``device`` itself (CUDA); the CPU keeps the albumentations path."""
    return device.type == "cuda"


def _images(batch: dict[str, torch.Tensor], device: torch.device) -> torch.Tensor:
    return batch["image"].to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    weights: tuple[float, ...] | torch.Tensor,
    device: torch.device,
) -> torch.Tensor:
    """One optimisation step on ``batch`` (PoseDataset keys); returns the loss, not synced.

    The step every trial and ``hpo bench`` time. ``weights`` (one per stack) should be a
    tensor on ``device``, built once: a tuple is copied to the device on every step. A
    non-finite loss still takes its step: the caller checks the losses now and then and
    stops the run (the weights since the last check are dropped).
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


def _last_stack(model: torch.nn.Module, images: torch.Tensor, mode: str) -> torch.Tensor:
    """The last stack's heatmaps (N, J, S/4, S/4) as a tensor of its own: a CUDA-graph
    replay overwrites its outputs, so they are copied before the next call."""
    step_begin(mode)
    return model(images)[:, -1].float().clone()


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    dataset: PoseDataset | GpuPoseData,
    arrays: PoseArrays,
    *,
    batch_size: int = 64,
    flip: bool = False,
    device: torch.device | None = None,
    compile: str = "off",
    timer: StepTimer | None = None,
) -> PCKhResult:
    """PCKh@0.5 of ``model`` on ``dataset`` (unaugmented), scored in crop coordinates.

    No host sync per batch: decoded predictions stay on the device until the pass ends.
    With a compiled ``model`` (``compile`` not "off") the last, smaller batch is padded to
    ``batch_size``, so that one shape is compiled and captured, not two. ``timer`` gets a
    mark after every batch (the noise-robust evaluation time)."""
    device = device or next(model.parameters()).device
    model.eval()
    preds, rows = [], []
    if isinstance(dataset, GpuPoseData):
        loader = dataset.batches(batch_size)
    else:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    if timer is not None:
        timer.mark()
    for batch in loader:
        images = _images(batch, device)  # (n, 3, S, S)
        n = images.shape[0]
        if compile != "off" and n < batch_size:  # static shape: pad with zeros, drop after
            images = torch.cat([images, images.new_zeros((batch_size - n, *images.shape[1:]))])
            images = images.contiguous(memory_format=torch.channels_last)
        with _autocast(device):
            heat = _last_stack(model, images, compile)  # (N, J, S/4, S/4)
            if flip:
                heat = 0.5 * (heat + flip_back(_last_stack(model, images.flip(-1), compile)))
        heat = heat[:n]
        stride = images.shape[-1] / heat.shape[-1]
        # heatmap px -> input px -> crop px, through each sample's (N, 2, 3) input->crop affine
        to_crop = batch["to_crop"].to(device, non_blocking=True).float()
        preds.append(to_image_coords(decode_heatmaps(heat), to_crop, stride))  # (n, J, 2) on the device
        rows.append(batch["index"].to(device, non_blocking=True))
        if timer is not None:
            timer.mark()
    idx = torch.cat(rows).cpu().numpy()  # one copy per pass, not per batch
    coords = torch.cat(preds).cpu().numpy()
    return pckh(coords, arrays.keypoints[idx], arrays.present[idx].astype(bool), arrays.normalizer[idx])


def checkpoint_history(checkpoint_dir: str | Path) -> list[EpochMetrics]:
    """The metrics of the epochs saved in ``checkpoint_dir/last.pt`` (empty if none, or if
    it is unreadable): what :func:`train` will resume after, so a caller can show the whole
    curve from the start."""
    state = load_checkpoint(Path(checkpoint_dir) / "last.pt")
    return [EpochMetrics(**m) for m in state["history"]] if state is not None else []


def _cpu_bytes(state: torch.Tensor) -> torch.Tensor:
    """An RNG state as the CPU ByteTensor the setters take."""
    return state.to(device="cpu", dtype=torch.uint8)


def _check_finite(total: torch.Tensor, seen: int, epoch: int, lr: float) -> float:
    """The mean loss so far this epoch (one host sync); raise if a step's loss was NaN/Inf."""
    mean = (total / max(seen, 1)).item()
    if not math.isfinite(mean):
        raise TrainingDiverged(f"loss is {mean} at epoch {epoch} (lr {lr:g})")
    return mean


def _warmup_excess(durations: list[float], first: int = 3) -> float:
    """Seconds the first steps took over the median: compilation, CUDA-graph capture and
    cuDNN autotuning happen there, once per shape."""
    if len(durations) <= first:
        return max(sum(durations) - len(durations) * min(durations, default=0.0), 0.0)
    median = sorted(durations)[len(durations) // 2]
    return sum(max(d - median, 0.0) for d in durations[:first])


def train(
    config: TrainConfig,
    arrays: PoseArrays | None = None,
    *,
    device: str | torch.device | None = None,
    on_epoch_end: Callable[[EpochMetrics], None] | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    compile: str | None = None,
    on_epoch_result: Callable[[EpochMetrics, PCKhResult, torch.nn.Module], None] | None = None,
) -> TrainResult:
    """Train ``config`` and evaluate PCKh on the validation split after every epoch.

    ``arrays`` (already loaded pose data) saves re-loading ``config.data`` for every trial.
    With ``checkpoint_dir``, an existing ``last.pt`` there is resumed from. ``compile``: one
    of :data:`COMPILE_MODES` (default: :func:`compile_mode`); its seconds are measured and
    charged in ``train_time_s``. ``on_epoch_result`` gets, after ``on_epoch_end``, the
    epoch's full PCKh and the (uncompiled) model, e.g. to save them (``hpo train --out``).

    The loop makes no host sync per step: losses are summed on the device and checked for
    NaN/Inf every :data:`FINITE_CHECK_EVERY` steps and at the end of every epoch.
    """
    s = config.schedule
    device = pick_device(str(device) if device is not None else None)
    mode = compile_mode(device, compile)
    arrays = arrays if arrays is not None else load_pose_data(config.data)
    generator = _seed_everything(s.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # static shapes: pick the fastest kernels once
    model = prepare_model(build_model(config.model), device)
    optimizer = make_optimizer(model.parameters(), s)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(s.milestones), gamma=s.gamma)

    size = config.model.input_size
    aug = AugmentConfig() if s.augment else None
    train_set: PoseDataset | GpuPoseData
    val_set: PoseDataset | GpuPoseData
    if _uses_device_data(
        device
    ):  # crops resident on the GPU, batches augmented there (hourglass.data.gpu_data)
        train_set = GpuPoseData(arrays, "train", size, sigma=s.sigma, augment=aug, device=device, seed=s.seed)
        val_set = GpuPoseData(arrays, "val", size, sigma=s.sigma, augment=None, device=device, seed=s.seed)
    else:
        train_set = PoseDataset(arrays, "train", size, sigma=s.sigma, augment=aug, seed=s.seed)
        val_set = PoseDataset(arrays, "val", size, sigma=s.sigma, augment=None, seed=s.seed)
    if len(train_set) == 0 or len(val_set) == 0:
        raise ConfigError(
            f"data {config.data}: expected train and validation rows, but got {len(train_set)} and "
            f"{len(val_set)}"
        )
    drop_last = len(train_set) > s.batch_size  # one static batch shape (CUDA graphs, cuDNN autotuning)
    # steps_per_epoch: the first rows of a fresh permutation each epoch (the whole split at most)
    rows = min(s.steps_per_epoch * s.batch_size, len(train_set)) if s.steps_per_epoch else None
    if isinstance(train_set, GpuPoseData):
        loader = train_set.batches(
            s.batch_size, shuffle=True, drop_last=drop_last, generator=generator, rows=rows
        )
    else:
        sampler = RandomSampler(train_set, num_samples=rows, generator=generator)
        # the loader draws its workers' base seed from the generator too: as with shuffle=True
        loader = DataLoader(
            train_set,
            batch_size=s.batch_size,
            sampler=sampler,
            drop_last=drop_last,
            generator=generator,
            num_workers=s.num_workers,
        )

    history: list[EpochMetrics] = []
    start_epoch, elapsed = 0, 0.0
    ckpt = Path(checkpoint_dir) / "last.pt" if checkpoint_dir else None
    state = load_checkpoint(ckpt) if ckpt is not None else None  # None: unreadable, set aside
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(_cpu_bytes(state["generator"]))
        torch.set_rng_state(_cpu_bytes(state["torch_rng"]))
        history = [EpochMetrics(**m) for m in state["history"]]
        start_epoch, elapsed = state["epoch"], history[-1].time_s if history else 0.0
    resumed_from = start_epoch

    weights = torch.tensor(config.model.loss_weights, dtype=torch.float32, device=device)  # (stacks,) once
    net = compile_model(model, mode)  # shares model's parameters; checkpoints save model's
    eval_batch = max(s.batch_size, 32)
    charged = history[-1].train_time_s if history else 0.0
    result: PCKhResult | None = None
    for epoch in range(start_epoch + 1, s.epochs + 1):
        first = epoch == start_epoch + 1  # this process compiles (and captures) in this epoch
        net.train()
        train_set.set_epoch(epoch)
        t0 = time.perf_counter()
        lr = scheduler.get_last_lr()[0]
        total, seen = torch.zeros((), device=device), 0
        timer = StepTimer(device)
        bar = tqdm(loader, desc=f"epoch {epoch}/{s.epochs}", leave=False, disable=not progress, unit="batch")
        timer.mark()
        for i, batch in enumerate(bar, 1):
            step_begin(mode)
            loss = train_step(net, optimizer, batch, weights, device)
            n = batch["image"].shape[0]
            total += loss * n  # on the device: no sync
            seen += n
            timer.mark()
            if i % FINITE_CHECK_EVERY == 0:
                bar.set_postfix(loss=f"{_check_finite(total, seen, epoch, lr):.2e}")
        mean_loss = _check_finite(total, seen, epoch, lr)
        scheduler.step()
        train_time = time.perf_counter() - t0
        eval_timer = StepTimer(device)
        result = evaluate(
            net,
            val_set,
            arrays,
            batch_size=eval_batch,
            flip=s.eval_flip,
            device=device,
            compile=mode,
            timer=eval_timer,
        )
        epoch_time = time.perf_counter() - t0
        elapsed += epoch_time
        steps, evals = timer.durations(), eval_timer.durations()
        step_s, eval_s = robust_seconds(steps), robust_seconds(evals)
        compile_s = _warmup_excess(steps) + _warmup_excess(evals) if first and mode != "off" else 0.0
        charged += step_s + eval_s + compile_s
        metrics = EpochMetrics(
            epoch=epoch,
            loss=mean_loss,
            pckh=result.per_joint["Mean"],
            time_s=elapsed,
            epoch_time_s=epoch_time,
            train_img_s=seen / train_time,
            lr=lr,
            train_time_s=charged,
            step_s=step_s / max(len(steps), 1),
            eval_s=eval_s,
            compile_s=compile_s,
        )
        history.append(metrics)
        if ckpt is not None:
            save_checkpoint(
                ckpt,
                {
                    "config": config.to_dict(),
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "history": [m.to_dict() for m in history],
                },
            )
        if on_epoch_end is not None:
            on_epoch_end(metrics)
        if on_epoch_result is not None:
            on_epoch_result(metrics, result, model)
    if result is None and history:  # resumed after the last epoch: score the restored weights
        result = evaluate(model, val_set, arrays, batch_size=eval_batch, flip=s.eval_flip, device=device)
    params = sum(p.numel() for p in model.parameters())
    return TrainResult(config, history, result, params, str(device), model, resumed_from)
