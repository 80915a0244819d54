import math

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState, create_trial

from hpo import record as rec
from hpo.pruning import (
    PRUNERS,
    ParetoHalvingPruner,
    PrunerConfig,
    crowding_distance,
    nondominated_ranks,
    rung_population,
    survives,
    survivors,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

OBJ = ("pckh", "params", "train_time")
DIRS = ["maximize", "minimize", "minimize"]


def curve(points):
    """[(pckh, time_s) per epoch from 1] -> the objective's user attr."""
    return [{"epoch": e, "pckh": p, "loss": 1.0 / e, "time_s": t} for e, (p, t) in enumerate(points, start=1)]


def add(study, state, points, params=1000, flops=None, values=None):
    attrs = {"curve": curve(points), "params": params}
    if flops is not None:
        attrs["flops"] = flops
    study.add_trial(create_trial(state=state, values=values, user_attrs=attrs))


def new_study(storage=None):
    study = optuna.create_study(directions=DIRS, storage=storage)
    study.set_user_attr("objectives", list(OBJ))
    return study


# ---------------------------------------------------------------- pure functions
def test_nondominated_ranks_on_a_hand_made_front():
    # (pckh max, params min)
    points = [[90, 10], [80, 5], [70, 20], [95, 30], [60, 40], [80, 5]]
    assert nondominated_ranks(points, ["maximize", "minimize"]) == [
        0,
        0,
        1,
        0,
        2,
        0,
    ]  # equal points share a front
    # the same points with both directions flipped reverse the order of dominance
    assert nondominated_ranks(points, ["minimize", "maximize"]) == [2, 2, 1, 1, 0, 2]
    assert nondominated_ranks([], ["minimize"]) == []


def test_nan_is_worst_whatever_the_direction():
    assert nondominated_ranks([[math.nan, 1.0], [50.0, 1.0]], ["maximize", "minimize"]) == [1, 0]
    assert nondominated_ranks([[math.nan], [50.0]], ["minimize"]) == [1, 0]


def test_crowding_distance_by_hand():
    front = [[1, 5], [2, 3], [4, 2], [5, 1]]
    # interior: (4-1)/4 + (5-2)/4 = 1.5 and (5-2)/4 + (3-1)/4 = 1.25; extremes infinite
    assert crowding_distance(front) == [math.inf, 1.5, 1.25, math.inf]
    assert crowding_distance([[3, 1], [3, 2], [3, 4]]) == [math.inf, 1.0, math.inf]  # tied objective adds 0
    assert crowding_distance([[1, 1]]) == [0.0]
    assert crowding_distance([]) == []


def test_survivors_take_whole_fronts_then_the_most_spread_of_the_cut_front():
    dirs = ["minimize", "minimize"]
    front0 = [[1, 5], [2, 3], [4, 2], [5, 1]]
    worse = [[6, 6], [7, 7]]
    pts = front0 + worse
    assert survivors(pts, dirs, 4) == {0, 1, 2, 3}
    assert survivors(pts, dirs, 5) == {0, 1, 2, 3, 4}
    assert survivors(pts, dirs, 3) == {0, 3, 1}  # the two extremes, then the larger gap (1.5 > 1.25)
    assert survivors(pts, dirs, 2) == {0, 3}


def test_survives_breaks_exact_ties_for_the_asking_trial():
    # three identical points, keep 1 of 3: whoever asks is kept (pruning cannot be undone)
    assert survives([1.0, 1.0], [[1.0, 1.0], [1.0, 1.0]], ["minimize", "minimize"], eta=3)


def _better(v, d, by):
    return v + by if d == "maximize" else v - by


objective_values = st.floats(-1e3, 1e3, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    dirs=st.lists(st.sampled_from(["maximize", "minimize"]), min_size=1, max_size=3),
    data=st.data(),
    eta=st.integers(2, 5),
)
def test_a_trial_that_dominates_everything_is_never_pruned(dirs, data, eta):
    others = data.draw(
        st.lists(st.lists(objective_values, min_size=len(dirs), max_size=len(dirs)), max_size=25)
    )
    own = [
        _better(max(o[k] for o in others) if d == "maximize" else min(o[k] for o in others), d, 1.0)
        if others
        else 0.0
        for k, d in enumerate(dirs)
    ]
    assert survives(own, others, dirs, eta)


@settings(max_examples=200, deadline=None)
@given(
    dirs=st.lists(st.sampled_from(["maximize", "minimize"]), min_size=1, max_size=3),
    data=st.data(),
    eta=st.integers(2, 5),
)
def test_a_trial_dominated_by_most_of_its_rung_is_pruned(dirs, data, eta):
    m = len(dirs)
    own = data.draw(st.lists(objective_values, min_size=m, max_size=m))
    rest = data.draw(st.lists(st.lists(objective_values, min_size=m, max_size=m), max_size=6))
    # dominators: at least as good everywhere, strictly better somewhere
    n_dom = (eta - 1) * (len(rest) + 1) + data.draw(st.integers(0, 3))  # >= (1 - 1/eta) * n
    dominators = []
    gains = data.draw(
        st.lists(
            st.lists(st.floats(0, 10, allow_nan=False), min_size=m, max_size=m),
            min_size=n_dom,
            max_size=n_dom,
        )
    )
    for i, g in enumerate(gains):
        g = list(g)
        g[i % m] += 1.0  # strictly better in one objective
        dominators.append([_better(v, d, x) for v, d, x in zip(own, dirs, g)])
    n = 1 + len(rest) + n_dom
    assert n_dom * eta >= (eta - 1) * n  # dominated by >= (1 - 1/eta) n others
    assert not survives(own, dominators + rest, dirs, eta)


# ---------------------------------------------------------------- the pruner
@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"min_epochs": 0}, "min_epochs: expected an integer >= 1, but got 0"),
        ({"eta": 1}, "eta: expected an integer >= 2, but got 1"),
        ({"eta": 2.5}, "eta: expected an integer >= 2, but got 2.5"),
        ({"min_trials_at_rung": 0}, "min_trials: expected an integer >= 1, but got 0"),
        ({"min_gain": True}, "min_gain: expected a share in [0, 1), but got True"),
        ({"objectives": ["pckh", "accuracy"]}, "unknown objective 'accuracy'"),
    ],
)
def test_constructor_validation(kwargs, needle):
    """The constructor checks what PrunerConfig checks, with the same words."""
    with pytest.raises(ValueError) as err:
        ParetoHalvingPruner(**kwargs)
    assert needle in str(err.value)


def test_rungs_are_min_epochs_times_powers_of_eta():
    p = ParetoHalvingPruner(min_epochs=2, eta=3)
    assert p.rungs(60) == [2, 6, 18, 54]
    assert [e for e in range(1, 60) if p.is_rung(e)] == [2, 6, 18, 54]
    assert ParetoHalvingPruner(1, 2).rungs(10) == [1, 2, 4, 8]


@pytest.mark.parametrize("name", sorted(PRUNERS))
def test_every_registered_pruner_is_built_from_its_config(name):
    """The registry is the one table: each entry builds an Optuna pruner, and only the
    multi-objective ones may prune a study of several objectives."""
    cfg = PrunerConfig(name, min_epochs=2, eta=3, min_trials=4)
    pruner = cfg.create(("pckh", "params") if cfg.multi_objective else ("pckh",), epochs=9)
    assert isinstance(pruner, optuna.pruners.BasePruner)
    assert cfg.multi_objective == (name in ("mo_halving", "planned", "none"))
    with pytest.raises(ValueError, match="name: expected one of 'mo_halving'"):
        PrunerConfig("asha")


def _population(study):
    """Five trials that reached epoch 3 (complete, pruned, running) plus one that did not,
    and one failed trial: params equal, so the rung is decided by PCKh and time."""
    add(study, TrialState.COMPLETE, [(40, 10), (60, 20), (70, 30), (75, 40)], values=[75, 1000, 40])
    add(study, TrialState.COMPLETE, [(42, 10), (62, 20), (72, 30), (74, 40)], values=[74, 1000, 40])
    add(study, TrialState.PRUNED, [(41, 10), (61, 20), (71, 30)])
    add(study, TrialState.RUNNING, [(43, 10), (63, 20), (73, 30)])
    add(study, TrialState.PRUNED, [(5, 10)])  # pruned at epoch 1: not at rung 3
    add(study, TrialState.FAIL, [(99, 1), (99, 2), (99, 3)])  # failed trials never count


@pytest.mark.parametrize("storage", ["memory", "sqlite"])
def test_should_prune_against_a_real_study(tmp_path, storage):
    study = new_study(None if storage == "memory" else f"sqlite:///{tmp_path / 's.db'}")
    _population(study)
    pruner = ParetoHalvingPruner(min_epochs=1, eta=3, min_trials_at_rung=5)
    me = study.ask()  # our own trial is in the study too, running, with its own curve
    me.set_user_attr("curve", curve([(1, 10), (2, 20), (20, 30)]))
    me.set_user_attr("params", 1000)
    others = rung_population(study, me.number, 3, OBJ)
    assert sorted(o[0] for o in others) == [
        70,
        71,
        72,
        73,
    ]  # complete, pruned and running count; FAIL and short ones not
    # n = 5 at the rung: keep ceil(5/3) = 2
    assert pruner.should_prune(study, me.number, 3, [20, 1000, 30], DIRS)  # worst PCKh at equal cost
    assert not pruner.should_prune(study, me.number, 3, [80, 1000, 30], DIRS)  # dominates the rung
    assert not pruner.should_prune(study, me.number, 3, [20, 500, 30], DIRS)  # smallest: on the front's end
    assert not pruner.should_prune(study, me.number, 2, [0, 1000, 30], DIRS)  # 2 is not a rung
    assert pruner.should_prune(study, me.number, 3, [20, 1000, 30])  # directions default to the study's


def test_no_pruning_before_enough_trials_reached_the_rung():
    study = new_study()
    _population(study)  # 4 others at rung 3, 5 at rung 1
    dead_last = [0, 10**9, 10**9]
    assert not ParetoHalvingPruner(1, 3, min_trials_at_rung=6).should_prune(study, 999, 3, dead_last, DIRS)
    assert ParetoHalvingPruner(1, 3, min_trials_at_rung=5).should_prune(study, 999, 3, dead_last, DIRS)
    assert ParetoHalvingPruner(1, 3, min_trials_at_rung=6).should_prune(study, 999, 1, dead_last, DIRS)


def test_objective_names_come_from_the_study_or_the_pruner():
    study = optuna.create_study(directions=["maximize", "minimize"])
    for p in (70, 71, 72):
        add(study, TrialState.COMPLETE, [(p, 1.0)], flops=10, values=[p, 10])
    with pytest.raises(Exception, match="objective names"):
        ParetoHalvingPruner(1, 3, 1).should_prune(study, 99, 1, [0, 10])
    pruner = ParetoHalvingPruner(1, 3, 1, objectives=("pckh", "flops"))
    assert pruner.should_prune(study, 99, 1, [0, 10])
    assert not pruner.should_prune(study, 99, 1, [80, 10])


def test_pruner_in_a_multi_objective_optimize_loop():
    """The objective's side of the contract: store the curve, ask at each epoch, raise
    TrialPruned. Quality q makes PCKh q*epoch at a cost that grows with q: the cheap poor
    trials and the expensive good ones both survive, the dominated middle is pruned."""
    study = new_study()
    pruner = ParetoHalvingPruner(min_epochs=1, eta=3, min_trials_at_rung=3)
    qualities = [5, 9, 1, 7, 3, 8, 2, 6, 4, 9.5, 0.5, 8.5]

    def objective(trial):
        q = qualities[trial.number]
        params = 1000 if q not in (1, 0.5) else 10  # two tiny models
        trial.set_user_attr("params", params)
        points = []
        for epoch in range(1, 10):
            points.append((q * epoch, 1.0 * epoch))
            trial.set_user_attr("curve", curve(points))
            values = [q * epoch, params, 1.0 * epoch]
            if pruner.should_prune(study, trial.number, epoch, values, study.directions):
                trial.set_user_attr("pruned_at_epoch", epoch)
                raise optuna.TrialPruned()
        return values

    study.optimize(objective, n_trials=len(qualities))
    state = {qualities[t.number]: t.state for t in study.trials}
    assert state[9.5] == state[9] == TrialState.COMPLETE  # the best PCKh always goes on
    assert state[1] == TrialState.COMPLETE or state[0.5] == TrialState.COMPLETE  # so does the cheap end
    pruned = [q for q, s in state.items() if s == TrialState.PRUNED]
    assert pruned and all(q < 9 for q in pruned)
    assert all(
        t.user_attrs["pruned_at_epoch"] in (1, 3, 9) for t in study.trials if t.state == TrialState.PRUNED
    )


def test_single_objective_study_uses_it_as_an_optuna_pruner():
    """trial.report + trial.should_prune go through prune(): values come from the curve."""
    study = optuna.create_study(
        direction="maximize", pruner=ParetoHalvingPruner(1, 3, 3, objectives=("pckh",))
    )
    qualities = [5, 9, 1, 7, 3, 8]

    def objective(trial):
        q = qualities[trial.number]
        points = []
        for epoch in range(1, 5):
            points.append((q * epoch, float(epoch)))
            trial.set_user_attr("curve", curve(points))
            trial.report(q * epoch, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return q * 4

    study.optimize(objective, n_trials=len(qualities))
    state = {qualities[t.number]: t.state for t in study.trials}
    # trial 2 (q=1) is the worst of 3 at rung 1: cut; q=3 then is worst of 5 at rung 1
    assert state[1] == state[3] == TrialState.PRUNED
    assert state[9] == state[8] == state[5] == TrialState.COMPLETE


# ----------------------------------------------------------------------------- min_gain
def _complete_study(rows, epochs=3):
    """rows: (pckh curve, params, time per epoch); complete trials with those curves."""
    from optuna.trial import create_trial

    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    for curve, n_params, per_epoch in rows:
        points = [
            {"epoch": e + 1, "pckh": p, "time_s": per_epoch * (e + 1), "loss": 0.0}
            for e, p in enumerate(curve)
        ]
        study.add_trial(
            create_trial(
                state=TrialState.COMPLETE,
                values=[curve[-1], n_params, per_epoch * len(curve)],
                user_attrs={rec.CURVE: points, rec.PARAMS: n_params},
            )
        )
    return study


def test_predict_final_fits_the_completed_curves():
    from hpo.pruning import predict_final

    rows = [([10.0, 20.0, 30.0], 100, 1.0), ([20.0, 30.0, 50.0], 200, 2.0), ([30.0, 40.0, 70.0], 300, 3.0)]
    study = _complete_study(rows)
    pred = predict_final(study.trials, 1, [25.0, 150, 1.5], ("pckh", "params", "train_time"))
    assert pred[0] == pytest.approx(60.0, abs=1e-6)  # final = 2 x pckh@1 - 10 exactly, no residual
    assert pred[1] == 150 and pred[2] == pytest.approx(4.5)  # static as is; time x 3 (final/epoch-1 ratio)


def test_predict_final_of_copies_falls_back_without_a_rank_deficient_fit():
    # copies of one design agree at the rung to rounding: no line through them (numpy would
    # warn on the user's terminal), the median step instead
    import warnings

    from hpo.pruning import OPTIMISM_FALLBACK, predict_final

    q = 62.916666666666664
    rows = [([q, 70.0], 100, 1.0), ([q + 4e-15, 72.0], 100, 1.0), ([q - 4e-15, 74.0], 100, 1.0)]
    study = _complete_study(rows, epochs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pred = predict_final(study.trials, 1, [50.0, 100, 1.0], ("pckh", "params", "train_time"))
    assert pred[0] == pytest.approx(50.0 + (72.0 - q) + OPTIMISM_FALLBACK)


def test_front_gain_prunes_what_cannot_move_the_front():
    from hpo.pruning import ParetoHalvingPruner, front_gain

    rows = [([10.0, 20.0, 30.0], 100, 1.0), ([20.0, 30.0, 50.0], 200, 2.0), ([30.0, 40.0, 70.0], 300, 3.0)]
    study = _complete_study(rows)
    objectives, directions = ("pckh", "params", "train_time"), ["maximize", "minimize", "minimize"]
    dominated = [10.0, 400, 4.0]  # predicted final 10 PCKh at the largest cost
    better = [40.0, 100, 1.0]  # predicted final 70 PCKh at the smallest cost
    assert front_gain(study.trials, 1, dominated, objectives, directions) == 0.0
    assert front_gain(study.trials, 1, better, objectives, directions) > 0.5
    pruner = ParetoHalvingPruner(1, 3, 1, objectives=objectives, min_gain=0.01)
    assert pruner.should_prune(study, 99, 1, dominated, directions)
    assert not pruner.should_prune(study, 99, 1, better, directions)
    assert not pruner.should_prune(study, 99, 2, dominated, directions)  # not a rung
    with pytest.raises(ValueError, match="min_gain"):
        ParetoHalvingPruner(min_gain=1.5)


def test_min_gain_waits_for_completed_trials_and_halves_before():
    from hpo.pruning import ParetoHalvingPruner

    study = _complete_study([([10.0, 20.0, 30.0], 100, 1.0)])  # one complete trial: not enough for the rule
    pruner = ParetoHalvingPruner(1, 3, 5, objectives=("pckh", "params", "train_time"), min_gain=0.01)
    assert not pruner.should_prune(study, 99, 1, [0.0, 10**6, 100.0], ["maximize", "minimize", "minimize"])
