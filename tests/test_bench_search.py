import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hourglass.config import HourglassConfig
from hourglass.costs import Costs, costs
from hourglass.errors import ConfigError
from hpo.bench.front import Reference, epochs_to_reach, hv_at
from hpo.bench.live import StepCostModel, _corner_models
from hpo.bench.settings import METHODS, method_preset
from hpo.bench.settings import SearchBenchSettings as BenchSettings
from hpo.bench.summary import summarize
from hpo.cli import app
from hpo.preset import load_preset
from hpo.space import SearchSpace

# Two structures (1 or 2 stacks) and a wide lr range: designs of equal cost recur and differ
# in accuracy, so the Pareto-rank pruner has dominated trials to stop within a few trials.
SPACE = """\
description: bench test space
base:
  model: {stacks: 1, features: 16, depth: 2, joints: 16, input_size: 64, block: {name: conv2}, stem: {name: patch4, channels: 8}}
params:
  model.stacks: {choices: [1, 2]}
  schedule.lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
"""
PRESET = """\
objectives: [pckh, params, train_time]
sampler: {name: tpe, kwargs: {n_startup_trials: 2}}
pruner: {name: mo_halving, min_epochs: 1, eta: 2, min_trials: 2}
budget: {trials: 4}
data: synthetic:150:64:0
space: space.yaml
schedule: {epochs: 2, batch_size: 8, milestones: [5], eval_flip: false}
seed: 0
device: cpu
"""
REFERENCE = Reference(
    params=1000.0, time_s=10.0, designs=1, largest_params=900, largest_time_s=9.0, epochs_per_trial=2
)


@pytest.fixture
def preset_file(tmp_path: Path) -> Path:
    (tmp_path / "space.yaml").write_text(SPACE)
    path = tmp_path / "bench.yaml"
    path.write_text(PRESET)
    return path


def _costs(ops: int, flops: int) -> Costs:
    return Costs(params=1, flops=flops, layers=1, ops_per_step=ops, input_size=64)


def test_charged_time_grows_with_epochs_ops_and_flops():
    m = StepCostModel()
    base = m.seconds(_costs(1000, 10**7), 1, n_train=100, n_val=20, batch=8)
    assert base > 0
    assert m.seconds(_costs(1000, 10**7), 3, 100, 20, 8) == pytest.approx(3 * base)
    assert m.seconds(_costs(2000, 10**7), 1, 100, 20, 8) > base
    assert m.seconds(_costs(1000, 2 * 10**7), 1, 100, 20, 8) > base
    # fewer rows than a batch: one (partial) step, not zero
    assert m.seconds(_costs(1000, 10**7), 1, n_train=5, n_val=2, batch=8) > 0


def test_cost_free_knobs_leave_costs_unchanged():
    """The reference point skips dilation and stack weights: they must not change the costs."""
    base = {"stacks": 2, "features": 16, "depth": 2, "input_size": 64, "stem": {"channels": 8}}
    plain = costs(HourglassConfig.from_dict(base))
    dilated = costs(HourglassConfig.from_dict({**base, "block": {"dilation": 2}}))
    weighted = costs(HourglassConfig.from_dict({**base, "stack_weights": [0.3, 0.7]}))
    for other in (dilated, weighted):
        assert (other.params, other.flops, other.ops_per_step) == (
            plain.params,
            plain.flops,
            plain.ops_per_step,
        )


def test_corner_models_enumerate_structure_at_the_largest_widths():
    space = SearchSpace.from_dict(
        {
            "base": {
                "model": {"stacks": 1, "features": 16, "depth": 2, "input_size": 64, "stem": {"channels": 8}}
            },
            "params": {
                "model.block.name": {"choices": ["bottleneck", "conv2"]},
                "model.block.dilation": {"choices": [1, 2]},
                "model.block.skip": {"choices": [True, False]},
                "model.features": {"type": "int", "low": 16, "high": 32, "step": 8},
                "model.stacks": {"choices": [1, 2]},
                "schedule.lr": {"type": "float", "low": 1e-3, "high": 3e-3, "log": True},
            },
        }
    )
    models = _corner_models(space)
    assert len(models) == 4  # block x skip; dilation is cost-free, width and stacks at their max
    assert {(m["block"]["name"], m["block"]["skip"]) for m in models} == {
        ("bottleneck", True),
        ("bottleneck", False),
        ("conv2", True),
        ("conv2", False),
    }
    assert all(m["features"] == 32 and m["stacks"] == 2 and m["block"]["dilation"] == 1 for m in models)


def _records(*points):
    """(state, epochs, hv) -> records with cumulative epochs spent."""
    out, spent = [], 0
    for state, epochs, hv in points:
        spent += epochs
        out.append(
            {
                "trial": len(out),
                "state": state,
                "epochs": epochs,
                "spent": spent,
                "hv": hv,
                "values": [1.0, 2.0, 3.0] if state == "complete" else None,
                "wall_s": 1.0 + spent,
            }
        )
    return out


def test_hv_at_is_a_step_function_of_epochs_spent():
    recs = _records(("complete", 4, 0.1), ("pruned", 1, 0.1), ("complete", 4, 0.3))
    assert [hv_at(recs, e) for e in (0, 3, 4, 8, 9, 100)] == [0.0, 0.0, 0.1, 0.1, 0.3, 0.3]
    assert epochs_to_reach(recs, 0.3, budget=9) == 9
    assert epochs_to_reach(recs, 0.3, budget=8) is None  # reached only past the budget
    assert epochs_to_reach(recs, 0.5, budget=100) is None


def test_summarize_compares_each_seed_with_its_own_random_run():
    s = BenchSettings(budget_epochs=8, seeds=2)
    runs = []
    finals = {  # (method, seed): records
        ("random", 0): _records(("complete", 4, 0.2), ("complete", 4, 0.4)),
        ("random", 1): _records(("complete", 4, 0.5), ("complete", 4, 0.5)),
        ("seed_grid", 0): _records(("complete", 4, 0.1)),
        ("seed_grid", 1): _records(("complete", 4, 0.1)),
        ("nsga2", 0): _records(("complete", 4, 0.3), ("complete", 4, 0.3)),
        ("nsga2", 1): _records(("complete", 4, 0.6), ("complete", 4, 0.6)),
        # reaches seed 0's random final (0.4) after 1 + 4 epochs; the 0.9 lies past the budget
        ("tpe_mopruning", 0): _records(("pruned", 1, 0.0), ("complete", 4, 0.45), ("complete", 4, 0.9)),
        ("tpe_mopruning", 1): _records(("pruned", 1, 0.0), ("pruned", 1, 0.0), ("complete", 4, 0.2)),
        ("nsga2_mopruning", 0): _records(("complete", 4, 0.3), ("complete", 4, 0.3)),
        ("nsga2_mopruning", 1): _records(("complete", 4, 0.3), ("complete", 4, 0.3)),
    }
    for (method, seed), recs in finals.items():
        runs.append(
            {
                "method": method,
                "seed": seed,
                "records": recs,
                "spent": recs[-1]["spent"],
                "wall_s": 1.0,
                **({"designs": ["baseline"]} if method == "seed_grid" else {}),
            }
        )
    out = summarize(runs, s, REFERENCE)
    assert out["seeds"] == 2 and out["budget_epochs"] == 8 and out["seed_list"] == [0, 1]
    assert out["default_method"] == "tpe_mopruning" and out["headline"] == "hv"  # live: no held-out view
    assert set(out["methods"]) == set(METHODS)
    tpe = out["methods"]["tpe_mopruning"]
    view = tpe["as_trained"]
    assert view["hv_per_seed"] == [0.45, 0.2]  # the 0.9 at 9 epochs is past the budget
    assert view["mean_hv"] == pytest.approx(0.325) and view["median_hv"] == pytest.approx(0.325)
    assert view["std_hv"] == pytest.approx(math.sqrt(2 * 0.125**2))  # sample std
    assert view["epochs_to_random_final_per_seed"] == [5, None]
    assert view["reached_random_final"] == 1
    # 5 epochs of 8: not within a third (2.67) nor a sixth
    assert tpe["within_third"]["k"] == 0 and tpe["within_third"]["n"] == 2 and tpe["within_sixth"]["k"] == 0
    assert tpe["seeds"] == [0, 1] and tpe["heldout_median_hv"] is None
    assert tpe["trials_mean"] == 2.5 and tpe["pruned_mean"] == 1.5  # records within the budget only
    assert out["methods"]["random"]["as_trained"]["epochs_to_random_final_per_seed"] == [8, 4]
    assert out["methods"]["seed_grid"]["as_trained"]["reached_random_final"] == 0
    nsga2 = out["methods"]["nsga2"]["as_trained"]["vs_default"]
    assert nsga2["median_diff"] == pytest.approx(0.45 - 0.325)  # medians 0.45 and 0.325
    assert 0.0 < nsga2["p"] <= 1.0
    assert out["seed_grid_designs"] == ["baseline"]
    assert out["curves"]["nsga2"]["1"] == finals[("nsga2", 1)]
    json.dumps(out)  # serialisable as is


def test_rung_predictiveness_ranks_early_pckh_against_final():
    recs = _records(("complete", 3, 0.1), ("complete", 3, 0.2), ("complete", 3, 0.3), ("pruned", 1, 0.3))
    # epoch 1 ranks the trials as the final epoch does, epoch 2 in reverse; the pruned one is left out
    for r, curve in zip(recs, ([1.0, 9.0, 10.0], [2.0, 8.0, 20.0], [3.0, 7.0, 30.0], [0.0])):
        r["pckh_curve"] = curve
    runs = [
        {"method": m, "seed": 0, "records": recs, "spent": 10, "wall_s": 1.0} for m in ("random", "nsga2")
    ]
    out = summarize(runs, BenchSettings(budget_epochs=10, seeds=1, methods=("random", "nsga2")), REFERENCE)
    assert out["rung_predictiveness"]["trials"] == 6 and out["rung_predictiveness"]["final_epoch"] == 3
    assert out["rung_predictiveness"]["spearman_by_epoch"] == {
        "1": pytest.approx(1.0),
        "2": pytest.approx(-1.0),
    }
    assert out["default_method"] is None  # no tpe_mopruning run: nothing to compare against
    assert "vs_default" not in out["methods"]["nsga2"]["as_trained"]


def test_method_preset_sets_sampler_pruner_and_schedule(preset_file: Path):
    base = load_preset(preset_file)
    s = BenchSettings(preset=str(preset_file), epochs_per_trial=3, batch_size=4, eta=3, population_size=5)
    seen = set()
    for method in (*METHODS, "tpe"):
        p = method_preset(base, s, method, 7, f"sqlite:///{method}.db")
        assert (p.schedule["epochs"], p.schedule["batch_size"], p.schedule["seed"], p.seed) == (3, 4, 7, 7)
        assert p.pruner.name == ("mo_halving" if method.endswith("_mopruning") else "none")
        seen.add((p.name, p.storage))
    assert len(seen) == len(METHODS) + 1
    assert (
        method_preset(base, s, "tpe", 0, "sqlite:///x.db").sampler
        == method_preset(base, s, "tpe_mopruning", 0, "sqlite:///x.db").sampler
    )
    tpe = method_preset(base, s, "tpe_mopruning", 0, "sqlite:///x.db")
    assert tpe.sampler.name == "tpe" and dict(tpe.sampler.kwargs) == {"n_startup_trials": 2}
    assert (tpe.pruner.eta, tpe.pruner.min_trials) == (3, 2)  # --eta overrides, the rest from the preset
    nsga = method_preset(base, s, "nsga2", 0, "sqlite:///x.db")
    assert nsga.sampler.name == "nsga2" and dict(nsga.sampler.kwargs) == {"population_size": 5}


@pytest.mark.parametrize("kwargs", [{"methods": ("random", "grid_search")}, {"budget_epochs": 0}, {"eta": 1}])
def test_settings_refuse_bad_values(kwargs):
    with pytest.raises(ConfigError):
        BenchSettings(**kwargs)


def test_cli_refuses_an_unknown_method_in_one_line():
    result = CliRunner().invoke(app, ["bench-search", "--methods", "random,annealing"])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "annealing" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_bench_search_end_to_end(preset_file: Path, tmp_path: Path):
    budget, per_trial = 10, 2
    out_json, out_html = tmp_path / "bench.json", tmp_path / "bench.html"
    result = CliRunner().invoke(
        app,
        [
            "bench-search",
            "--preset",
            str(preset_file),
            "--budget-epochs",
            str(budget),
            "--seeds",
            "1",
            "--json",
            str(out_json),
            "--html",
            str(out_html),
            "--workers",
            "2",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(out_json.read_text())
    assert summary["seeds"] == 1 and summary["budget_epochs"] == budget
    assert list(summary["methods"]) == list(METHODS)
    for name, m in summary["methods"].items():
        assert {"as_trained", "within_third", "within_sixth", "seeds"} <= set(m) and m["seeds"] == [0]
        assert 0.0 <= m["as_trained"]["median_hv"] <= 1.0
        recs = summary["curves"][name]["0"]
        hvs = [r["hv"] for r in recs]
        assert hvs == sorted(hvs), f"{name}: hypervolume must never drop"
        assert [r["spent"] for r in recs] == [
            sum(x["epochs"] for x in recs[: i + 1]) for i in range(len(recs))
        ]
        assert recs[-1]["spent"] <= budget + per_trial
        assert all(1 <= r["epochs"] <= per_trial for r in recs)
        assert m["as_trained"]["hv_per_seed"] == [hv_at(recs, budget)]
    # random's own target is reached by random itself
    assert summary["methods"]["random"]["as_trained"]["reached_random_final"] == 1
    # the grid runs the designs the space can express, in file order, and stops when they run out
    grid = summary["curves"]["seed_grid"]["0"]
    assert summary["seed_grid_designs"] == ["baseline"]  # the others change knobs the space fixes
    assert [r["design"] for r in grid] == ["baseline"]
    # pruning saved epochs: something was pruned, and pruned trials trained fewer epochs
    pruning = [summary["methods"][m] for m in ("tpe_mopruning", "nsga2_mopruning")]
    assert sum(m["pruned_mean"] for m in pruning) > 0
    assert min(m["epochs_per_trial_mean"] for m in pruning) < per_trial
    assert summary["reference"]["designs"] == 1  # the 2-stack design; lr is not structural
    assert summary["reference"]["params"] == pytest.approx(1.1 * summary["reference"]["largest_params"])
    assert "plotly" in out_html.read_text()[:5000].lower() and "tpe_mopruning" in out_html.read_text()


def test_cli_on_a_table_prints_both_views_in_80_columns(tmp_path: Path):
    from table_factory import make_table

    table = make_table(tmp_path / "t.json.gz")
    out_json = tmp_path / "b.json"
    methods = "random,tpe,tpe_mopruning,moasha,bohb_tpe"
    result = CliRunner().invoke(
        app,
        [
            "bench-search",
            "--table",
            str(table),
            "--seeds",
            "3",
            "--seed-offset",
            "100",
            "--budget-epochs",
            "45",
            "--methods",
            methods,
            "--json",
            str(out_json),
            "--html",
            str(tmp_path / "b.html"),
            "--svg",
            str(tmp_path / "b.svg"),
            "--no-curves",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80, [line for line in lines if len(line) > 80]
    assert lines[0].startswith("Held-out hypervolume after 45 training epochs, 3 seeds (100-102)")
    assert any(line.startswith("oracle (bound)") for line in lines)
    summary = json.loads(out_json.read_text())
    assert summary["default_method"] == "tpe_mopruning" and "curves" not in summary
    for name in methods.split(","):
        m = summary["methods"][name]
        assert m["seeds"] == [100, 101, 102]
        assert {"within_sixth", "within_third", "heldout_median_hv"} <= set(m)
        row = next(line for line in lines if line.startswith(name + " "))
        assert f"{m['heldout_median_hv']:.4f}" in row and f"{m['as_trained_median_hv']:.4f}" in row
        if name != "tpe_mopruning":
            assert f"{m['heldout']['vs_default']['p']:.2f}" in row
    assert "Held-out hypervolume" in (tmp_path / "b.svg").read_text()
