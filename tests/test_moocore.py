"""Hypervolume and non-dominated sorting (moocore underneath) against brute force on random
2-, 3- and 4-objective fronts, mixed directions, ties and duplicates included. (Before the
hand-written code was deleted, these fronts compared moocore with it.)"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from optuna.study import StudyDirection

from hpo.pareto import hypervolume, nondominated
from hpo.pruning import nondominated_ranks

MAX, MIN = StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE


def _front(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    pts = rng.uniform(0, 10, size=(n, d))
    pts[rng.integers(0, n, size=n // 4)] = np.round(pts[rng.integers(0, n, size=n // 4)])  # ties
    return np.vstack([pts, pts[: max(n // 10, 1)]])  # duplicates


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:  # minimized
    return bool((a <= b).all() and (a < b).any())


def _brute_ranks(losses: np.ndarray) -> list[int]:
    ranks, left, rank = [-1] * len(losses), set(range(len(losses))), 0
    while left:
        front = {i for i in left if not any(_dominates(losses[j], losses[i]) for j in left)}
        for i in front:
            ranks[i] = rank
        left, rank = left - front, rank + 1
    return ranks


def _union_volume(points: np.ndarray, ref: np.ndarray) -> float:
    """Inclusion-exclusion over the boxes [p, ref] (minimized): exact, for a few points."""
    total = 0.0
    for k in range(1, len(points) + 1):
        for subset in itertools.combinations(points, k):
            total += (-1) ** (k + 1) * np.prod(np.clip(ref - np.max(subset, axis=0), 0, None))
    return total


@pytest.mark.parametrize("d", [2, 3, 4])
@pytest.mark.parametrize("seed", range(5))
def test_hypervolume_is_exact(d, seed):
    rng = np.random.default_rng(seed)
    pts = _front(rng, 8, d)
    directions = [MAX if rng.random() < 0.5 else MIN for _ in range(d)]
    signs = np.array([-1.0 if x == MAX else 1.0 for x in directions])
    ref = np.array([0.0 if x == MAX else 11.0 for x in directions])
    expected = _union_volume(pts * signs, ref * signs)
    assert expected > 0
    assert hypervolume(pts, ref, directions) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("d", [2, 3, 4])
@pytest.mark.parametrize("seed", range(5))
def test_nondominated_sorting_matches_brute_force(d, seed):
    rng = np.random.default_rng(100 + seed)
    pts = _front(rng, 40, d)
    directions = ["maximize" if rng.random() < 0.5 else "minimize" for _ in range(d)]
    losses = np.where([x == "maximize" for x in directions], -pts, pts)
    ranks = nondominated_ranks(pts.tolist(), directions)
    assert ranks == _brute_ranks(losses) and max(ranks) > 0
    assert list(nondominated(losses)) == [r == 0 for r in ranks]
