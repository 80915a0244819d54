import itertools

import numpy as np
import optuna
import pytest
from optuna.study import StudyDirection
from optuna.trial import TrialState

from hourglass.errors import ConfigError
from hpo.pareto import (
    default_reference_point,
    hypervolume,
    hypervolume_history,
    pareto_rows,
    pareto_trials,
    trial_rows,
    write_rows,
)
from tests.study_factory import make_study

MIN, MAX = StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("pareto"))[0]


def _dominates(a, b, dirs):
    better = [(x >= y) if d == MAX else (x <= y) for x, y, d in zip(a, b, dirs)]
    strictly = [(x > y) if d == MAX else (x < y) for x, y, d in zip(a, b, dirs)]
    return all(better) and any(strictly)


def test_pareto_trials_are_exactly_the_nondominated_complete_trials(study):
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    expected = {
        t.number
        for t in complete
        if not any(_dominates(o.values, t.values, study.directions) for o in complete)
    }
    got = pareto_trials(study)
    assert {t.number for t in got} == expected
    assert 5 not in expected  # the dilated variant costs what baseline costs and scores less
    pckh = [t.values[0] for t in got]
    assert pckh == sorted(pckh, reverse=True)


def test_rows_carry_values_costs_and_knobs(study):
    rows = {r["number"]: r for r in pareto_rows(study)}
    base = rows[0]
    trial = study.trials[0]
    assert base["design"] == "baseline" and base["pckh"] == trial.values[0]
    assert base["params"] == trial.user_attrs["params"] and isinstance(base["params"], int)
    assert base["layers"] == trial.user_attrs["layers"] and base["epochs"] == 6
    assert (base["block"], base["separable"], base["stem"], base["features"]) == (
        "bottleneck",
        "none",
        "conv7",
        32,
    )
    assert rows[1]["separable"] == "mid"


def test_sampled_trials_are_named_and_knobs_their_block_lacks_are_empty(study):
    rows = {r["number"]: r for r in trial_rows(study)}
    assert rows[3]["design"] == "bottleneck/conv7 32x2"  # sampled: what it is, as `hpo run` prints it
    assert rows[6]["design"] == "multidilated/conv7 32x1"
    assert (
        rows[0]["model.block.rates"] is None and rows[3]["model.block.rates"] is None
    )  # a bottleneck has none
    assert rows[6]["model.block.rates"] == [1, 2, 3, 4]
    assert rows[6]["dilation"] is rows[6]["separable"] is rows[6]["model.block.separable"] is None
    assert rows[0]["dilation"] == 1 and rows[0]["model.block.separable"] == "none"


def test_all_rows_include_pruned_with_what_they_measured(study, tmp_path):
    rows = {r["number"]: r for r in trial_rows(study)}
    assert len(rows) == len(study.trials)
    pruned = rows[6]
    assert (
        pruned["state"] == "PRUNED" and pruned["prune_reason"] == "mo_rung" and pruned["pruned_at_epoch"] == 2
    )
    assert pruned["pckh"] == study.trials[6].user_attrs["curve"][-1]["pckh"]
    assert pruned["params"] == study.trials[6].user_attrs["params"]
    assert rows[8]["state"] == "FAIL"
    csv_text = write_rows(list(rows.values()), tmp_path / "all.csv").read_text()
    assert csv_text.splitlines()[0].startswith("number,state,design,pckh,params,train_time")
    assert len(csv_text.strip().splitlines()) == 1 + len(rows) and "mo_rung" in csv_text


@pytest.mark.parametrize(
    "points, ref, dirs, expected",
    [
        ([[1, 3], [2, 2], [3, 1]], [4, 4], [MIN, MIN], 6.0),  # staircase: 1*1 + 1*2 + 1*3
        ([[0, 0, 0]], [1, 2, 3], [MIN] * 3, 6.0),
        ([[0, 0, 1], [1, 1, 0]], [2, 2, 2], [MIN] * 3, 5.0),  # 4 + 2 - overlap 1
        ([[1, 0, 0], [0, 1, 0], [0, 0, 1]], [2, 2, 2], [MIN] * 3, 7.0),  # cube minus the unit corner
        ([[80, 10]], [0, 20], [MAX, MIN], 800.0),  # maximized PCKh measured up from 0
        ([[80, 10], [70, 15], [90, 30]], [0, 20], [MAX, MIN], 800.0),  # dominated + outside ref add nothing
        ([[1, 1, 1], [1, 1, 1]], [2, 2, 2], [MIN] * 3, 1.0),  # duplicates count once
    ],
)
def test_hypervolume_of_hand_made_fronts(points, ref, dirs, expected):
    assert hypervolume(np.array(points, float), ref, dirs) == pytest.approx(expected)


def _union_volume(points, ref):
    """Inclusion-exclusion over the boxes [p, ref]: exact, exponential, fine for n <= 7."""
    total = 0.0
    for k in range(1, len(points) + 1):
        for subset in itertools.combinations(points, k):
            corner = np.max(subset, axis=0)
            total += (-1) ** (k + 1) * np.prod(np.clip(ref - corner, 0, None))
    return total


def test_hypervolume_matches_inclusion_exclusion_on_random_sets():
    rng = np.random.default_rng(0)
    ref = np.array([1.0, 1.0, 1.0])
    for _ in range(25):
        pts = rng.uniform(0, 1.2, size=(rng.integers(1, 8), 3))
        inside = pts[(pts < ref).all(1)]
        assert hypervolume(pts, ref, [MIN] * 3) == pytest.approx(_union_volume(inside, ref), abs=1e-12)


def test_hypervolume_history_is_monotone_and_ends_at_the_front(study):
    ref = default_reference_point(study)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    params = [t.values[1] for t in complete]
    assert ref[0] == 0.0 and ref[1] == pytest.approx(1.1 * max(params))
    history = hypervolume_history(study, ref)
    assert len(history) == len(complete)
    assert all(b >= a for a, b in zip(history, history[1:]))
    assert history[0] == pytest.approx(hypervolume(np.array([complete[0].values]), ref, study.directions))
    assert history[-1] == pytest.approx(
        hypervolume(np.array([t.values for t in complete]), ref, study.directions)
    )
    assert history[-1] == history[-2]  # the last complete trial (5) is dominated
    with pytest.raises(ConfigError, match="expected 3 values"):
        hypervolume_history(study, [0.0, 1.0])


def test_no_complete_trials_is_a_one_line_error(tmp_path):
    empty = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    with pytest.raises(ConfigError, match="no trials at all"):
        pareto_trials(empty)
    only_pruned, _ = make_study(
        tmp_path, "pruned", trials=[(None, {}, 10.0, "PRUNED", 1), (None, {}, None, "FAIL", 1)]
    )
    with pytest.raises(ConfigError) as err:
        pareto_rows(only_pruned)
    assert "1 FAIL, 1 PRUNED" in str(err.value) and "\n" not in str(err.value)
