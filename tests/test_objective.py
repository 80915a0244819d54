"""hpo.objective: a repeat of a completed design is copied, not trained again."""

from __future__ import annotations

import optuna

from hourglass.costs import Costs
from hourglass.train import EpochMetrics, TrainResult
from hpo import objective as objective_module
from hpo import record as rec
from hpo.objective import Objective, completed_twin
from hpo.preset import load_preset
from hpo.strategy import Pruning


def test_a_repeated_design_copies_the_completed_one(tmp_path, monkeypatch):
    calls = []

    def fake_train(
        config, arrays, *, device=None, on_epoch_end=None, checkpoint_dir=None, progress=True, compile=None
    ):
        calls.append(config.model.features)
        history = []
        for e in range(1, config.schedule.epochs + 1):
            m = EpochMetrics(
                epoch=e,
                loss=0.1,
                pckh=10.0 * e + config.model.features,
                time_s=float(e),
                epoch_time_s=1.0,
                train_img_s=1.0,
                lr=1e-3,
                train_time_s=float(e),
            )
            history.append(m)
            on_epoch_end(m)
        return TrainResult(config, history, None, 1234, "cpu", model=None)

    monkeypatch.setattr(objective_module, "train", fake_train)
    monkeypatch.setattr(
        objective_module, "costs", lambda model, **_: Costs(1234 * model.features, 10, 5, 50, 64)
    )
    preset = load_preset("quickstart").replace(storage=f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(directions=preset.directions)
    objective = Objective(
        preset,
        preset.search_space(),
        None,
        tmp_path / "ckpt",
        device="cpu",
        pruning=Pruning.for_preset(preset),
        progress=False,
    )
    params = dict(preset.warm_start_trials()[0][1])
    for features in (16, 24, 16):
        study.enqueue_trial({**params, "model.features": features})
    study.optimize(objective, n_trials=3)
    first, other, repeat = study.trials
    assert calls == [16, 24]  # the repeat trained nothing
    assert repeat.state == optuna.trial.TrialState.COMPLETE and repeat.values == first.values
    assert rec.get(repeat, rec.COPIED_FROM) == first.number and rec.get(repeat, rec.EPOCHS_TRAINED) == 0
    assert rec.get(repeat, rec.CURVE) == rec.get(first, rec.CURVE)
    assert completed_twin(study, rec.get(first, rec.CONFIG_HASH)).number == first.number
    assert completed_twin(study, "no such hash") is None
