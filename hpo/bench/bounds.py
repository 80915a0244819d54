"""What could any pruner do? Oracle bounds on a recorded table.

Why. The benchmark's goal is random search's final hypervolume within a third of the
budget. A pruner can only save epochs on designs its sampler proposes, so two questions
tell whether the goal is a pruning problem or a sampling one:

- :func:`fewest_designs`: how many fully trained designs, chosen knowing every final
  value, reach a target. If a handful do, the goal is possible in principle.
- :func:`screening_oracle`: the random search run's own proposals, in its order and under
  its own seed draws (each design once, repeats copied; :func:`run_proposals`), every one trained for
  ``first_rung`` epochs, then - knowing every screened design's *final* values - the best
  ``k`` of them completed, with ``n`` screened and ``k`` completed fitting the epochs:
  ``n * first_rung + k * (E - first_rung) <= epochs``, for the best ``n``. No pruner over
  the same proposals can do better: it pays at least the first rung for every design it
  looks at and the rest of the schedule for every design it completes, and it chooses
  knowing less. The share of seeds in which the oracle reaches the target is therefore an
  upper bound for every pruning rule over random proposals; what lies above it needs a
  sampler that proposes better designs than random ones from its first few trials.

Subsets are searched exactly over the non-dominated points (dominated ones add no
hypervolume); past :data:`EXACT_LIMIT` subsets the search is greedy, a lower estimate.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from hpo.bench.front import Reference
from hpo.bench.replay import replay_method
from hpo.bench.settings import DIRECTIONS, SearchBenchSettings
from hpo.bench.table import BenchTable, cached_table
from hpo.pareto import SubsetHypervolume, hypervolume
from hpo.pruning import nondominated_ranks

__all__ = [
    "EXACT_LIMIT",
    "best_subset_hv",
    "subset_reaches",
    "fewest_designs",
    "screening_oracle",
    "run_proposals",
    "random_oracle",
    "final_values",
]

EXACT_LIMIT = 20_000  # subsets tried exactly before the greedy fallback
_REF = (0.0, 1.0, 1.0)  # of the normalised (PCKh / 100, params / P_ref, time / T_ref)
_SLACK = 1e-9  # a bound skips a subset only clearly below a target (rounding in the volumes)


def _hv(points: np.ndarray) -> float:
    return hypervolume(points, _REF, DIRECTIONS) if len(points) else 0.0


def best_subset_hv(points: Sequence[Sequence[float]], k: int) -> float:
    """The largest hypervolume of at most ``k`` of the normalised ``points``
    (``(PCKh / 100, params / P_ref, time / T_ref)``, reference ``(0, 1, 1)``)."""
    if k < 1 or not len(points):
        return 0.0
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    front = pts[[r == 0 for r in nondominated_ranks(pts.tolist(), DIRECTIONS)]]
    front = np.unique(front, axis=0)
    if len(front) <= k:
        return _hv(front)
    hv = SubsetHypervolume(front, _REF, DIRECTIONS)
    if math.comb(len(front), k) <= EXACT_LIMIT:
        return max(hv(c) for c in itertools.combinations(range(len(front)), k))
    chosen: list[int] = []  # greedy: a lower estimate
    for _ in range(k):
        rest = [i for i in range(len(front)) if i not in chosen]
        chosen.append(max(rest, key=lambda i: hv(chosen + [i])))
    return hv(chosen)


def subset_reaches(points: Sequence[Sequence[float]], k: int, target: float, *, new: bool = False) -> bool:
    """Whether ``best_subset_hv(points, k) >= target``, stopping at the first subset that
    reaches it. ``new``: only the subsets holding the last point are tried, for a caller
    that knows no subset of the other points reaches ``target`` (:func:`screening_oracle`
    after an exact search came short)."""
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    front = np.unique(pts[[r == 0 for r in nondominated_ranks(pts.tolist(), DIRECTIONS)]], axis=0)
    if k < 1 or len(front) <= k or math.comb(len(front), k) > EXACT_LIMIT:
        return best_subset_hv(points, k) >= target
    hv = SubsetHypervolume(front, _REF, DIRECTIONS)
    subsets = itertools.combinations(range(len(front)), k)
    if new:
        (last,) = np.flatnonzero((front == pts[-1]).all(1))
        subsets = (c for c in subsets if last in c)
    return any(hv(c) >= target for c in subsets)


def _exact(points: Sequence[Sequence[float]], k: int) -> bool:
    """Whether :func:`best_subset_hv` searches ``points`` exactly (else greedily)."""
    m = int(np.count_nonzero(np.asarray(nondominated_ranks(points, DIRECTIONS)) == 0))
    return m <= k or math.comb(m, k) <= EXACT_LIMIT


def final_values(table: BenchTable, point: int, seed: int, reference: Reference) -> list[float]:
    """Point ``point``'s normalised final (PCKh, params, train_time) under training seed ``seed``."""
    p = table.points[point]
    run = p.runs[seed]
    return reference.normalise((run["pckh"][-1], p.costs["params"], run["time_s"][-1]))


def fewest_designs(
    table: BenchTable, reference: Reference, targets: Sequence[float], max_k: int = 6
) -> list[int | None]:
    """Per target hypervolume, the fewest designs whose final values (mean over the table's
    seeds) reach it, or None if ``max_k`` do not. The best front of each size is searched
    once for all targets."""
    pts = np.mean(
        [[final_values(table, i, s, reference) for i in range(len(table.points))] for s in table.seeds],
        axis=0,
    )
    best = [best_subset_hv(pts, k) for k in range(1, max_k + 1)]
    return [
        next((k for k, hv in enumerate(best, start=1) if hv >= target - 1e-12), None) for target in targets
    ]


def screening_oracle(
    proposals: Sequence[Sequence[float]], target: float, epochs: int, full_epochs: int, first_rung: int = 1
) -> int | None:
    """Epochs the screening oracle (module docstring) needs to reach hypervolume ``target``
    within ``epochs``, or None if it cannot. ``proposals``: the normalised final values of the
    designs in the order a run proposed them, each once, under the seed the run gave it (see
    :func:`run_proposals`); ``full_epochs``: a complete trial's length."""
    if not 1 <= first_rung < full_epochs:
        raise ValueError(f"first_rung must be in [1, {full_epochs - 1}], but got {first_rung=}")
    rest = full_epochs - first_rung
    screened: list[list[float]] = []
    proven = True  # no subset of the designs screened so far reaches the target (none yet)
    for n, values in enumerate(proposals, start=1):
        screened.append(list(values))
        k = (epochs - n * first_rung) // rest
        if k < 1:
            return None
        if n > 1 and nondominated_ranks(screened, DIRECTIONS)[-1] != 0:
            continue  # a dominated design leaves the front, and k only shrinks: still short
        if _hv(np.asarray(screened)) < target - 1e-12:
            proven = True
            continue  # not even all of them reach it: no k of them do (the subset search is the cost)
        # k only shrinks, so after an exact search came short only subsets with the new design can reach it
        if subset_reaches(screened, k, target - 1e-12, new=proven and n > 1):
            return n * first_rung + k * rest
        proven = proven and _exact(screened, k)
    return None


def run_proposals(
    records: Sequence[Mapping[str, Any]], reference: Reference, key: str = "values"
) -> list[list[float]]:
    """The designs an unpruned run (random search) trained, in order, as normalised final
    values: ``key`` ``values`` as trained (the run's own seed draws), ``heldout_values`` on
    held-out seeds. Copies of completed designs (no epochs trained) are left out."""
    return [reference.normalise(r[key]) for r in records if r["state"] == "complete" and r["epochs"] > 0]


def random_oracle(
    s: SearchBenchSettings, seed: int, reference: Reference, targets: Mapping[str, float]
) -> dict[str, dict[str, int | None]]:
    """The screening oracle as a reference line for one bench seed: on the proposals and seed
    draws of random search's run with that seed (replayed on past the budget, so that the
    oracle may screen as many designs as a third of the budget allows), per view
    (``targets``: ``hv`` or ``hv_heldout`` -> random's final hypervolume of that seed), the
    epochs it needs within a third and within a sixth of the budget (None: not reached)."""
    table = cached_table(s.table)
    longer = replace(s, budget_epochs=(s.budget_epochs // 3 + 1) * table.epochs, methods=("random",))
    records = replay_method(longer, "random", seed, reference)["records"]
    out: dict[str, dict[str, int | None]] = {}
    for view, target in targets.items():
        proposals = run_proposals(records, reference, "heldout_values" if view == "hv_heldout" else "values")
        out[view] = {
            name: screening_oracle(proposals, target, s.budget_epochs // div, table.epochs)
            for name, div in (("within_third", 3), ("within_sixth", 6))
        }
    return out
