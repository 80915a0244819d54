"""moocore (hypervolume, non-dominated sorting) against the hand-written code it replaces,
on random 2-, 3- and 4-objective fronts, mixed directions, ties and duplicates included."""

from __future__ import annotations

import moocore
import numpy as np
import pytest
from optuna.study import StudyDirection

from hpo.pareto import hypervolume, nondominated
from hpo.pruning import nondominated_ranks

MAX, MIN = StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE


def _front(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    pts = rng.uniform(0, 10, size=(n, d))
    pts[rng.integers(0, n, size=n // 4)] = np.round(pts[rng.integers(0, n, size=n // 4)])  # ties
    return np.vstack([pts, pts[: n // 10]])  # duplicates


@pytest.mark.parametrize("d", [2, 3, 4])
@pytest.mark.parametrize("seed", range(5))
def test_hypervolume_matches(d, seed):
    rng = np.random.default_rng(seed)
    pts = _front(rng, 40, d)
    directions = [MAX if rng.random() < 0.5 else MIN for _ in range(d)]
    maximise = [x == MAX for x in directions]
    ref = np.array([0.0 if m else 11.0 for m in maximise])
    old = hypervolume(pts, ref, directions)
    assert old > 0
    assert moocore.hypervolume(pts, ref=ref, maximise=maximise) == pytest.approx(old, rel=1e-12)


@pytest.mark.parametrize("d", [2, 3, 4])
@pytest.mark.parametrize("seed", range(5))
def test_nondominated_sorting_matches(d, seed):
    rng = np.random.default_rng(100 + seed)
    pts = _front(rng, 60, d)
    directions = ["maximize" if rng.random() < 0.5 else "minimize" for _ in range(d)]
    maximise = [x == "maximize" for x in directions]
    ranks = moocore.pareto_rank(pts, maximise=maximise)
    assert list(ranks) == nondominated_ranks(pts.tolist(), directions)
    assert ranks.max() > 0
    minimised = np.where(maximise, -pts, pts)
    assert (moocore.is_nondominated(minimised, keep_weakly=True) == nondominated(minimised)).all()
