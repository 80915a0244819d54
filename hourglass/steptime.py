"""Per-step durations without a host sync per step, and a training time that noise does not move.

Why: the ``train_time`` objective used to be the wall time of a trial, and on a machine
shared with other work the same design and seed gave different times and so different
studies. Interference makes some steps slower, it rarely makes any faster, so the median
step is stable where the sum is not: :func:`robust_seconds` charges
``median step x steps`` (+ evaluation the same way, + compile/capture seconds), and the
wall time is kept beside it.

On a GPU the marks are CUDA events recorded on the stream (no wait), read once when the
pass ends; on a CPU they are ``perf_counter`` readings (the step has finished when the
call returns). A mark after every step of a loop over a data loader times the step and
its batch together, data included.
"""

from __future__ import annotations

import statistics
import time

import torch

__all__ = ["StepTimer", "robust_seconds"]


class StepTimer:
    """Marks between steps; :meth:`durations` are the gaps between consecutive marks."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self._marks: list = []

    def mark(self) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record(torch.cuda.current_stream(self.device))
            self._marks.append(event)
        else:
            self._marks.append(time.perf_counter())

    def durations(self) -> list[float]:
        """Seconds between consecutive marks (waits for the last CUDA event: one sync)."""
        if len(self._marks) < 2:
            return []
        if self.cuda:
            self._marks[-1].synchronize()
            return [a.elapsed_time(b) / 1000.0 for a, b in zip(self._marks, self._marks[1:])]
        return [b - a for a, b in zip(self._marks, self._marks[1:])]


def robust_seconds(durations: list[float]) -> float:
    """``median x count`` of a pass's step durations: its time without the interference."""
    return statistics.median(durations) * len(durations) if durations else 0.0
