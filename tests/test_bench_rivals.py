"""hpo.bench.rivals: the peers' own code (Syne Tune, SMAC3) replayed against a made-up table."""

from __future__ import annotations

import pytest
from table_factory import make_table

from hourglass.errors import ConfigError
from hpo.bench import rivals
from hpo.bench.front import table_reference
from hpo.bench.replay import replay_method
from hpo.bench.search import run_search_bench
from hpo.bench.settings import SearchBenchSettings
from hpo.bench.table import cached_table


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    return str(make_table(tmp_path_factory.mktemp("table") / "t.json.gz"))


def test_a_missing_extra_skips_the_method_in_one_line(table_path, monkeypatch):
    monkeypatch.setitem(rivals.RIVAL_PACKAGES, "smac_mf", "no_such_module_for_hpo_tests")
    why = rivals.missing_extra("smac_mf")
    assert (
        why is not None and "\n" not in why and "hourglass-hpo[bench]" in why and why.startswith("smac_mf:")
    )
    assert rivals.missing_extra("random") is None
    lines: list[str] = []
    s = SearchBenchSettings(table=table_path, seeds=1, budget_epochs=20, methods=("random", "smac_mf"))
    out = run_search_bench(s, progress=False, echo=lines.append)
    assert lines == [why] and list(out["methods"]) == ["random"] and out["skipped"] == ["smac_mf"]
    with pytest.raises(ConfigError, match="none of them"):
        run_search_bench(
            SearchBenchSettings(table=table_path, seeds=1, methods=("smac_mf",)),
            progress=False,
            echo=lines.append,
        )


def _check_run(table_path, run, budget):
    table = cached_table(table_path)
    recs = run["records"]
    assert run["spent"] == sum(r["epochs"] for r in recs) >= budget
    assert [r["spent"] for r in recs] == [sum(x["epochs"] for x in recs[: i + 1]) for i in range(len(recs))]
    seeds: dict[int, int] = {}
    for r in recs:
        assert seeds.setdefault(r["point"], r["train_seed"]) == r["train_seed"]  # one seed per design
        if r["state"] == "complete":
            p, run_ = table.points[r["point"]], table.points[r["point"]].runs[r["train_seed"]]
            assert r["values"] == [run_["pckh"][-1], p.costs["params"], run_["time_s"][-1]]
    hvs = [r["hv_heldout"] for r in recs]
    assert hvs == sorted(hvs)
    return recs


@pytest.mark.parametrize("method,module", [("syne_moasha", "syne_tune"), ("smac_mf", "smac")])
def test_rival_replays_are_deterministic_and_charge_the_table(table_path, method, module):
    pytest.importorskip(module)
    budget = 90
    s = SearchBenchSettings(table=table_path, seeds=1, budget_epochs=budget, methods=(method,))
    ref = table_reference(cached_table(table_path))
    a, b = replay_method(s, method, 3, ref), replay_method(s, method, 3, ref)
    strip = [{k: v for k, v in r.items() if k != "wall_s"} for r in a["records"]]
    assert strip == [{k: v for k, v in r.items() if k != "wall_s"} for r in b["records"]]
    recs = _check_run(table_path, a, budget)
    states = {r["state"] for r in recs}
    assert states == {"pruned", "complete"}  # the scheduler stopped some, completed others
    assert min(r["epochs"] for r in recs if r["state"] == "pruned") >= 0


def test_smac_resumes_a_design_it_promotes(table_path):
    """SMAC's Hyperband asks for a design again at a larger budget: charged only the new epochs."""
    pytest.importorskip("smac")
    s = SearchBenchSettings(table=table_path, seeds=1, budget_epochs=120, methods=("smac_mf",))
    recs = replay_method(s, "smac_mf", 0, table_reference(cached_table(table_path)))["records"]
    reached: dict[int, int] = {}
    promoted = 0
    for r in recs:
        before = reached.get(r["point"], 0)
        if before and r["epochs"] > 0:
            promoted += 1
        reached[r["point"]] = before + r["epochs"]
        assert reached[r["point"]] <= cached_table(table_path).epochs  # never charged past the full length
    assert promoted >= 1
