"""Measured inference latency of a design: ONNX Runtime on the CPU, and PyTorch eager.

Parameters and FLOPs are proxies; depthwise convolutions have few FLOPs and still run
slowly. What a deployment pays is the time of one forward pass on its runtime, so this
measures it: batch 1, a few warm-up runs (allocations, kernel selection), then the
MEDIAN of ``runs`` timed runs, which a loaded machine's occasional stall does not move
the way it moves a mean. One intra-op thread is the reproducible figure (and the one the
``latency`` objective uses); "all threads" is what a dedicated server would see.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hourglass.config import HourglassConfig
from hourglass.onnx_export import INPUT_NAME, LastStack, OnnxModel, export_onnx, ort_session, seeded_model

__all__ = ["Latency", "median_ms", "ort_latency_ms", "torch_latency_ms", "measure_latency", "WARMUP", "RUNS"]

WARMUP = 3
RUNS = 20


@dataclass(frozen=True)
class Latency:
    """Median milliseconds of one batch-1 forward pass; ``None`` where not measured."""

    ort_1t_ms: float
    ort_all_ms: float | None = None
    torch_ms: float | None = None
    torch_device: str | None = None
    runs: int = RUNS


def median_ms(
    fn: Callable[[], object],
    *,
    warmup: int = WARMUP,
    runs: int = RUNS,
    sync: Callable[[], None] = lambda: None,
) -> float:
    """Median wall milliseconds of ``fn()`` over ``runs`` calls after ``warmup`` calls."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, but got {runs=}, {warmup=}")
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def ort_latency_ms(model: OnnxModel, *, threads: int = 1, warmup: int = WARMUP, runs: int = RUNS) -> float:
    """ONNX Runtime CPU, batch 1, ``threads`` intra-op threads (0 = all cores)."""
    session = ort_session(model.data, threads=threads)
    feed = {
        INPUT_NAME: np.random.default_rng(0).standard_normal(
            (1, 3, model.input_size, model.input_size), dtype=np.float32
        )
    }
    return median_ms(lambda: session.run(None, feed), warmup=warmup, runs=runs)


def torch_latency_ms(
    model: nn.Module,
    input_size: int,
    *,
    device: str | torch.device = "cpu",
    warmup: int = WARMUP,
    runs: int = RUNS,
) -> float:
    """PyTorch eager, batch 1, inference mode, on ``device`` (its current thread count)."""
    device = torch.device(device)
    net = LastStack(model).to(device).eval()
    images = torch.randn(1, 3, input_size, input_size, device=device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        return median_ms(lambda: net(images), warmup=warmup, runs=runs, sync=sync)


def measure_latency(
    model: nn.Module | HourglassConfig,
    *,
    onnx_model: OnnxModel | None = None,
    all_threads: bool = True,
    torch_device: str | None = None,
    warmup: int = WARMUP,
    runs: int = RUNS,
    where: str = "",
) -> Latency:
    """Time a design (a config gets seeded random weights): ONNX Runtime with 1 thread, and
    optionally with all threads and PyTorch eager on ``torch_device``. ``onnx_model`` is
    its export if the caller already has one; else it is exported (and checked) here."""
    if isinstance(model, HourglassConfig):
        model = seeded_model(model)
    if onnx_model is None:
        onnx_model = export_onnx(model, where=where)
    kw = {"warmup": warmup, "runs": runs}
    return Latency(
        ort_1t_ms=ort_latency_ms(onnx_model, threads=1, **kw),
        ort_all_ms=ort_latency_ms(onnx_model, threads=0, **kw) if all_threads else None,
        torch_ms=torch_latency_ms(model, onnx_model.input_size, device=torch_device, **kw)
        if torch_device
        else None,
        torch_device=torch_device,
        runs=runs,
    )
