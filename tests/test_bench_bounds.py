"""hpo.bench.bounds: the oracle bounds, on made-up points and a made-up table."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from table_factory import make_table

from hpo.bench import bounds
from hpo.bench.bounds import (
    best_subset_hv,
    fewest_designs,
    final_values,
    random_oracle,
    run_proposals,
    screening_oracle,
)
from hpo.bench.front import front_hv, hv_at, table_reference
from hpo.bench.replay import replay_method
from hpo.bench.settings import DIRECTIONS, SearchBenchSettings
from hpo.bench.table import cached_table
from hpo.pareto import hypervolume


def _hv(points):
    return hypervolume(np.array(points), [0.0, 1.0, 1.0], DIRECTIONS)


@pytest.fixture(scope="module", params=[(0, 1), (0, 1, 2, 3)], ids=["two seeds", "four seeds"])
def table_and_ref(tmp_path_factory, request):
    path = str(make_table(tmp_path_factory.mktemp("table") / "t.json.gz", seeds=request.param))
    assert cached_table(path).seeds == request.param
    return cached_table(path), table_reference(cached_table(path))


def test_best_subset_is_the_best_of_every_subset():
    rng = np.random.default_rng(0)
    pts = np.column_stack(
        [rng.uniform(0.1, 0.9, 9), rng.uniform(0.05, 0.9, 9), rng.uniform(0.05, 0.9, 9)]
    ).tolist()
    for k in (1, 2, 3):
        brute = max(_hv([pts[i] for i in c]) for c in itertools.combinations(range(len(pts)), k))
        assert best_subset_hv(pts, k) == pytest.approx(brute)
    assert best_subset_hv(pts, 20) == pytest.approx(_hv(pts))  # k beyond the front: all of it
    assert best_subset_hv(pts, 0) == 0.0 and best_subset_hv([], 2) == 0.0


def test_greedy_fallback_never_beats_the_exact_search(monkeypatch):
    rng = np.random.default_rng(1)
    pts = np.column_stack(
        [rng.uniform(0.1, 0.9, 12), rng.uniform(0.05, 0.9, 12), rng.uniform(0.05, 0.9, 12)]
    ).tolist()
    exact = best_subset_hv(pts, 3)
    monkeypatch.setattr(bounds, "EXACT_LIMIT", 0)
    greedy = best_subset_hv(pts, 3)
    assert 0 < greedy <= exact + 1e-12


def test_fewest_designs(table_and_ref):
    table, ref = table_and_ref
    mean = np.mean(
        [[final_values(table, i, s, ref) for i in range(len(table.points))] for s in table.seeds], axis=0
    )
    one = best_subset_hv(mean, 1)
    exact, more, unreachable = fewest_designs(table, ref, [one, one * 1.0001, 1.0])
    assert exact == 1 and more >= 2
    assert unreachable is None  # no front fills the whole box


def test_screening_oracle_charges_the_rung_and_the_rest(table_and_ref):
    table, ref = table_and_ref
    e = table.epochs
    s = SearchBenchSettings(table=table.source, seeds=1, budget_epochs=20 * e, methods=("random",))
    proposals = run_proposals(replay_method(s, "random", 5, ref)["records"], ref)
    assert len(proposals) >= 10
    hv_first = _hv([proposals[0]])
    # one full trial's epochs: only the first proposal, screened then completed
    assert screening_oracle(proposals, hv_first, e, e) == e
    assert screening_oracle(proposals, hv_first * 1.0001, e, e) is None
    # more epochs can only help, and what it spends stays within them
    budgets = (2 * e, 3 * e, 5 * e, 8 * e)
    spent = [screening_oracle(proposals, hv_first * 1.0001, b, e) for b in budgets]
    assert all(x is None or x <= b for x, b in zip(spent, budgets))
    reached = [x is not None for x in spent]
    assert reached == sorted(reached) and reached[-1]  # once reached, reached with more
    assert screening_oracle(proposals, 0.9, 3 * e, e) is None
    with pytest.raises(ValueError, match="first_rung"):
        screening_oracle(proposals, 0.1, 30, e, first_rung=e)


def _brute_oracle(proposals, target, epochs, full):
    """The screening oracle by its definition: every subset of every prefix, no shortcut."""
    for n in range(1, len(proposals) + 1):
        k = (epochs - n) // (full - 1)
        if k < 1:
            return None
        best = max(
            _hv([proposals[i] for i in c])
            for j in range(1, min(k, n) + 1)
            for c in itertools.combinations(range(n), j)
        )
        if best >= target - 1e-12:
            return n + k * (full - 1)
    return None


def test_screening_oracle_is_its_definition():
    """The oracle's shortcuts (dominated designs, the whole set short of the target, after a
    search came short only subsets holding the new design) answer as the plain search does."""
    rng = np.random.default_rng(4)
    answers = []
    for _ in range(40):
        n = int(rng.integers(3, 11))
        pts = np.column_stack(
            [rng.uniform(0.1, 0.6, n), rng.uniform(0.01, 1.0, n), rng.uniform(0.01, 1.0, n)]
        ).round(2)
        if rng.random() < 0.3:
            pts[-1] = pts[0]  # a design proposed twice under the same values
        target, epochs = float(rng.uniform(0.15, 0.45)), int(rng.integers(10, 60))
        answers.append(screening_oracle(pts.tolist(), target, epochs, 9))
        assert answers[-1] == _brute_oracle(pts.tolist(), target, epochs, 9)
    assert 5 <= sum(a is not None for a in answers) <= 35  # both outcomes were tried


def test_run_proposals_are_the_random_runs_own_designs_and_draws(table_and_ref):
    table, ref = table_and_ref
    s = SearchBenchSettings(table=table.source, seeds=1, budget_epochs=30 * table.epochs, methods=("random",))
    records = replay_method(s, "random", 3, ref)["records"]
    trained = [r for r in records if r["epochs"] > 0]
    assert any(r["epochs"] == 0 for r in records)  # copies of repeats are left out
    assert run_proposals(records, ref) == [ref.normalise(r["values"]) for r in trained]
    held = run_proposals(records, ref, "heldout_values")
    assert front_hv(held) == pytest.approx(records[-1]["hv_heldout"])


def test_random_oracle_reaches_random_final_front_within_a_third_or_not(table_and_ref):
    table, ref = table_and_ref
    s = SearchBenchSettings(table=table.source, seeds=1, budget_epochs=12 * table.epochs, methods=("random",))
    final = {
        v: hv_at(replay_method(s, "random", 7, ref)["records"], s.budget_epochs, v)
        for v in ("hv", "hv_heldout")
    }
    out = random_oracle(s, 7, ref, final)
    assert set(out) == {"hv", "hv_heldout"}
    for view in out.values():
        third, sixth = view["within_third"], view["within_sixth"]
        assert third is None or third <= s.budget_epochs // 3
        assert sixth is None or (sixth <= s.budget_epochs // 6 and third is not None)  # a sixth is harder
    easy = random_oracle(s, 7, ref, {"hv": 1e-9})["hv"]
    third, rest = s.budget_epochs // 3, table.epochs - 1
    assert (
        easy["within_third"] == 1 + (third - 1) // rest * rest
    )  # the first proposal screened, the most completed
