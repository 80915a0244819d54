"""Per-step durations without a host sync per step, and a training time that noise does not move.

Why: the ``train_time`` objective used to be the wall time of a trial, and on a machine
shared with other work the same design and seed gave different times and so different
studies. Two things make it robust:

- the clock: on a GPU the marks are CUDA events recorded on the stream (no wait), read
  once when the pass ends: device time, which other processes' CPU load barely moves.
  On a CPU they are the process's CPU time (``time.process_time``), not the wall clock: a
  busy machine takes the core away for a while, it does not make our instructions take
  more CPU time. (With several intra-op threads this counts every thread's time; data
  loader worker processes are not counted, the quickstart has none.)
- the statistic: interference makes steps slower, never faster, so
  :func:`robust_seconds` charges ``fast step x steps``, the fast step being the lower
  decile of the pass's steps, not their sum. Measured on the loaded 2-core CI box
  (load 13, one extra busy process every other run, 6 runs x 120 steps of CPU time): the
  spread (max - min) / mean was 45 % for the median step, 25 % for the lower quartile,
  14 % for the lower decile (6 % without the one run where every step was slower), 14 %
  for the fastest step, which a single lucky step decides.

A mark after every step of a loop over a data loader times the step and its batch
together, data included. The trial keeps the wall time beside it.
"""

from __future__ import annotations

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
            self._marks.append(time.process_time())

    def durations(self) -> list[float]:
        """Seconds between consecutive marks (waits for the last CUDA event: one sync)."""
        if len(self._marks) < 2:
            return []
        if self.cuda:
            self._marks[-1].synchronize()
            return [a.elapsed_time(b) / 1000.0 for a, b in zip(self._marks, self._marks[1:])]
        return [b - a for a, b in zip(self._marks, self._marks[1:])]


ROBUST_QUANTILE = 0.1  # the lower decile of the step durations (see the module doc)


def robust_seconds(durations: list[float], quantile: float = ROBUST_QUANTILE) -> float:
    """``fast step x count`` of a pass's step durations: its time without the interference.
    The fast step is the ``quantile`` of the durations (nearest rank)."""
    if not durations:
        return 0.0
    ordered = sorted(durations)
    return ordered[round(quantile * (len(ordered) - 1))] * len(ordered)
