"""hpo.bench.bounds: the oracle bounds, on made-up points and a made-up table."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hpo.bench import bounds
from hpo.bench.bounds import best_subset_hv, fewest_designs, final_values, screening_oracle
from hpo.bench.replay import cached_table
from hpo.bench.search import DIRECTIONS, SearchBenchSettings, table_reference_point
from hpo.pareto import hypervolume
from table_factory import make_table


def _hv(points):
    return hypervolume(np.array(points), [0.0, 1.0, 1.0], DIRECTIONS)


@pytest.fixture(scope="module")
def table_and_ref(tmp_path_factory):
    path = str(make_table(tmp_path_factory.mktemp("table") / "t.json.gz"))
    return cached_table(path), table_reference_point(SearchBenchSettings(table=path, methods=("random",)))


def test_best_subset_is_the_best_of_every_subset():
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(0.1, 0.9, 9), rng.uniform(0.05, 0.9, 9), rng.uniform(0.05, 0.9, 9)]).tolist()
    for k in (1, 2, 3):
        brute = max(_hv([pts[i] for i in c]) for c in itertools.combinations(range(len(pts)), k))
        assert best_subset_hv(pts, k) == pytest.approx(brute)
    assert best_subset_hv(pts, 20) == pytest.approx(_hv(pts))  # k beyond the front: all of it
    assert best_subset_hv(pts, 0) == 0.0 and best_subset_hv([], 2) == 0.0


def test_greedy_fallback_never_beats_the_exact_search(monkeypatch):
    rng = np.random.default_rng(1)
    pts = np.column_stack([rng.uniform(0.1, 0.9, 12), rng.uniform(0.05, 0.9, 12), rng.uniform(0.05, 0.9, 12)]).tolist()
    exact = best_subset_hv(pts, 3)
    monkeypatch.setattr(bounds, "EXACT_LIMIT", 0)
    greedy = best_subset_hv(pts, 3)
    assert 0 < greedy <= exact + 1e-12


def test_fewest_designs(table_and_ref):
    table, ref = table_and_ref
    mean = np.mean([[final_values(table, i, s, ref) for i in range(len(table.points))] for s in table.seeds], axis=0)
    one = best_subset_hv(mean, 1)
    exact, more, unreachable = fewest_designs(table, ref, [one, one * 1.0001, 1.0])
    assert exact == 1 and more >= 2
    assert unreachable is None  # no front fills the whole box


def test_screening_oracle_charges_the_rung_and_the_rest(table_and_ref):
    table, ref = table_and_ref
    seed, e = 5, table.epochs
    rng = np.random.default_rng([seed, 4242])  # the oracle's proposal order
    first = int(rng.permutation(len(table.points))[0])
    hv_first = _hv([final_values(table, first, table.seeds[int(rng.integers(len(table.seeds)))], ref)])
    # one full trial's epochs: only the first proposal, screened then completed
    assert screening_oracle(table, ref, hv_first, e, seed) == e
    assert screening_oracle(table, ref, hv_first * 1.0001, e, seed) is None
    # more epochs can only help, and what it spends stays within them
    spent = [screening_oracle(table, ref, hv_first * 1.0001, b, seed) for b in (2 * e, 3 * e, 5 * e, 8 * e)]
    assert all(x is None or x <= b for x, b in zip(spent, (2 * e, 3 * e, 5 * e, 8 * e)))
    reached = [x is not None for x in spent]
    assert reached == sorted(reached) and reached[-1]  # once reached, reached with more
    assert screening_oracle(table, ref, 0.9, 3 * e, seed) is None
    with pytest.raises(ValueError, match="first_rung"):
        screening_oracle(table, ref, 0.1, 30, seed, first_rung=e)
