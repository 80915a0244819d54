"""hpo.savings: epochs trained against training every design to the end, cuts per epoch."""

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from hpo import record as rec
from hpo.savings import PruningSavings, pruning_savings


def _trial(state, epochs_run, schedule_epochs=4, **attrs):
    user = {rec.CONFIG: {"schedule": {"epochs": schedule_epochs}}, rec.EPOCHS_RUN: epochs_run, **attrs}
    values = [50.0, 1000.0, 10.0] if state == TrialState.COMPLETE else None
    return create_trial(
        state=state,
        values=values,
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0, 1)},
        user_attrs=user,
    )


def _study(trials):
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.add_trials(trials)
    return study


def test_counts_epochs_and_cuts_per_epoch():
    study = _study(
        [
            _trial(TrialState.COMPLETE, 4),
            _trial(TrialState.COMPLETE, 6, schedule_epochs=6),  # a space that searches the epochs
            _trial(TrialState.PRUNED, 1, **{rec.PRUNED_AT_EPOCH: 1, rec.PRUNE_REASON: "mo_rung"}),
            _trial(TrialState.PRUNED, 1, **{rec.PRUNED_AT_EPOCH: 1, rec.PRUNE_REASON: "mo_rung"}),
            _trial(TrialState.PRUNED, 3, **{rec.PRUNED_AT_EPOCH: 3, rec.PRUNE_REASON: "mo_rung"}),
            _trial(TrialState.PRUNED, 1, **{rec.PRUNED_AT_EPOCH: 2, rec.PRUNE_REASON: "diverged"}),
            _trial(TrialState.COMPLETE, 4, **{rec.COPIED_FROM: 0}),  # a repeat: copied, trained nothing
            _trial(TrialState.FAIL, 2),  # not finished: its retry is counted when it finishes
        ]
    )
    s = pruning_savings(study.get_trials(deepcopy=False))
    assert (s.designs, s.copies) == (6, 1)
    assert s.trained == 4 + 6 + 1 + 1 + 3 + 1
    assert s.full == 4 + 6 + 4 + 4 + 4 + 4
    assert s.saved == s.full - s.trained == 10
    assert s.cut_at == {1: 2, 3: 1} and s.cut == 3 and s.diverged == 1


def test_lines_say_what_pruning_bought_within_80_columns():
    s = PruningSavings(designs=12, copies=2, trained=41, full=96, cut_at={3: 2, 1: 5}, diverged=1)
    lines = s.lines()
    text = " ".join(" ".join(lines).split())
    assert lines[0].startswith("pruning:   7 of 12 designs cut: 5 at epoch 1, 2 at epoch 3")
    assert "1 stopped on a diverged loss" in text and "2 repeated designs copied" in text
    assert lines[-1] == "epochs:    41 trained, 55 (57 %) saved of 96 for every design to the end"
    assert all(len(line) <= 80 for line in lines), lines


def test_no_pruning_says_so():
    study = _study([_trial(TrialState.COMPLETE, 4), _trial(TrialState.COMPLETE, 4)])
    s = pruning_savings(study.trials)
    assert (s.trained, s.full, s.saved, s.cut) == (8, 8, 0, 0)
    assert s.lines()[0] == "pruning:   0 of 2 designs cut"
    assert s.lines()[1] == "epochs:    8 trained, 0 (0 %) saved of 8 for every design to the end"


def test_trials_without_a_config_count_the_epochs_they_ran():
    trial = create_trial(
        state=TrialState.PRUNED,
        values=None,
        user_attrs={
            rec.CURVE: [{"epoch": 1, "pckh": 1.0, "time_s": 1.0}, {"epoch": 2, "pckh": 2.0, "time_s": 2.0}],
            rec.PRUNED_AT_EPOCH: 2,
            rec.PRUNE_REASON: "mo_rung",
        },
    )
    s = pruning_savings([trial])
    assert (s.trained, s.full, s.cut_at) == (2, 2, {2: 1})
