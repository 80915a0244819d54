"""The recorded table as one replayed study sees it, with the semantics of a live study.

A live study trains a design with the study's one training seed, so every method replayed
against a table gets, per run, **one seed per design, fixed for the whole run**: drawn from
the table's seeds when the design is first proposed and kept for every repeat. A repeat of a
completed design is copied at no cost (as :func:`hpo.objective.completed_twin` does live); a
repeat of a pruned design trains the same curve again, never a re-rolled one.

A complete design has two values: *as trained* (its seed's final PCKh and training time)
and *held out* (the mean of the final PCKh and training time over the table's other seeds),
which carries none of the luck that made a pruner keep it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpo.bench.table import BenchTable, TablePoint, params_key

__all__ = ["TableRun"]


@dataclass
class TableRun:
    """One run's view of ``table``: the per-design seeds, drawn from ``rng`` on first use."""

    table: BenchTable
    rng: np.random.Generator
    points: Mapping[str, TablePoint]  # by params_key of the point's params
    index: Mapping[str, int]  # params_key -> the point's index in the table
    seeds: dict[str, int] = field(default_factory=dict)  # design key -> its training seed

    @classmethod
    def of(cls, table: BenchTable, seed: int) -> TableRun:
        index = {params_key(p.params): i for i, p in enumerate(table.points)}
        return cls(table, np.random.default_rng([seed, 7919]), table.by_params(), index)

    def tag(self, point: TablePoint) -> dict[str, int]:
        """What a run's record says about the design: its index in the table and its seed."""
        return {"point": self.index[params_key(point.params)], "train_seed": self.seed_of(point)}

    def point(self, params: Mapping[str, Any]) -> TablePoint:
        point = self.points.get(params_key(params))
        if point is None:
            raise KeyError(
                f"{self.table.source}: no point for params {dict(params)}"
            )  # a table/space mismatch: a bug
        return point

    def seed_of(self, point: TablePoint) -> int:
        """The design's training seed for this run: drawn once, then kept."""
        key = params_key(point.params)
        if key not in self.seeds:
            self.seeds[key] = self.table.seeds[int(self.rng.integers(len(self.table.seeds)))]
        return self.seeds[key]

    def curve(self, point: TablePoint) -> dict[str, tuple[float, ...]]:
        return point.runs[self.seed_of(point)]

    def at_epoch(self, point: TablePoint, epoch: int) -> list[float]:
        """(PCKh, params, training time) after ``epoch`` epochs under the design's seed."""
        run = self.curve(point)
        return [run["pckh"][epoch - 1], float(point.costs["params"]), run["time_s"][epoch - 1]]

    def heldout(self, point: TablePoint) -> list[float]:
        """Final (PCKh, params, training time), each the mean over the table's seeds other than
        the design's own (all of them if the table has one seed)."""
        own = self.seed_of(point)
        others = [s for s in self.table.seeds if s != own] or [own]
        return [
            float(np.mean([point.runs[s]["pckh"][-1] for s in others])),
            float(point.costs["params"]),
            float(np.mean([point.runs[s]["time_s"][-1] for s in others])),
        ]
