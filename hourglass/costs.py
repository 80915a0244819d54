"""What a design costs: parameters, FLOPs, layers, operator calls per step, step time.

The reference study found that training time follows the number of layers (kernel
launches), not the parameter count, so both are reported. Counting runs on the ``meta``
device (no memory, no arithmetic), so it is cheap even for the full-size network; only
``step_time`` runs real steps, on the requested device.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from hourglass.config import HourglassConfig
from hourglass.model import build_model

__all__ = ["Costs", "costs", "count_params", "count_layers", "measure_step_time"]


@dataclass(frozen=True)
class Costs:
    params: int
    flops: int  # forward FLOPs for one image at input_size (torch FlopCounter convention)
    layers: int  # conv + normalisation layers
    ops_per_step: int  # aten operator calls in one training step's forward + backward
    input_size: int
    step_time_s: float | None = None  # mean measured train-step time, if asked for
    step_batch: int | None = None
    device: str | None = None


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_layers(model: nn.Module) -> int:
    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)
    return sum(isinstance(m, kinds) for m in model.modules())


class _OpCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def _train_step(model: nn.Module, opt: torch.optim.Optimizer, images: torch.Tensor) -> None:
    out = model(images)
    loss = out.float().square().mean()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def _meta_copy(model_or_config: nn.Module | HourglassConfig) -> tuple[HourglassConfig | None, nn.Module]:
    """A copy on the meta device: counting must neither allocate nor touch real weights."""
    if isinstance(model_or_config, HourglassConfig):
        with torch.device("meta"):
            return model_or_config, build_model(model_or_config)
    return getattr(model_or_config, "config", None), copy.deepcopy(model_or_config).to("meta")


def measure_step_time(
    model: nn.Module,
    input_size: int,
    *,
    batch: int = 2,
    steps: int = 3,
    warmup: int = 1,
    device: str | torch.device = "cpu",
) -> float:
    """Mean seconds of one full train step (forward, backward, Adam) after ``warmup`` steps."""
    model = model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.randn(batch, 3, input_size, input_size, device=device)
    dev = torch.device(device)
    # the device's own stream: a bare synchronize() waits for the current device, not cuda:1
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        _train_step(model, opt, images)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        _train_step(model, opt, images)
    sync()
    return (time.perf_counter() - start) / steps


def costs(
    model_or_config: nn.Module | HourglassConfig,
    input_size: int | None = None,
    *,
    time_steps: int = 0,
    batch: int = 2,
    device: str | torch.device = "cpu",
) -> Costs:
    """Count a design's costs; with ``time_steps > 0`` also time real train steps on ``device``."""
    config, meta_model = _meta_copy(model_or_config)
    if input_size is None:
        if config is None:
            raise ValueError("input_size is required for a model without a .config")
        input_size = config.input_size
    x = torch.empty(1, 3, input_size, input_size, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta_model.eval()(x)
    # Batch 2 so that BN's train mode accepts 1x1 maps; the op count does not depend on it.
    # The optimizer is left out: training uses fused Adam (a handful of calls per step, not
    # per layer), which cannot run on the meta device.
    with _OpCounter() as ops:
        meta_model.train()(x.expand(2, -1, -1, -1)).float().square().mean().backward()
    step = None
    if time_steps > 0:
        if isinstance(model_or_config, HourglassConfig):
            real = build_model(model_or_config)
        else:
            real = copy.deepcopy(model_or_config)
        step = measure_step_time(real, input_size, batch=batch, steps=time_steps, device=device)
    return Costs(
        params=count_params(meta_model),
        flops=int(counter.get_total_flops()),
        layers=count_layers(meta_model),
        ops_per_step=ops.calls,
        input_size=input_size,
        step_time_s=step,
        step_batch=batch if step is not None else None,
        device=str(device) if step is not None else None,
    )
