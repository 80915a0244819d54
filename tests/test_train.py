import dataclasses

import pytest
import torch

from hourglass.config import HourglassConfig, StemConfig
from hourglass.data.synthetic import make_synthetic
from hourglass.train import (
    REFERENCE_SCHEDULE, ScheduleConfig, TrainConfig, TrainingDiverged, load_train_config, train,
)
from hourglass.yamlio import dump_yaml


@pytest.fixture(scope="module")
def arrays():
    return make_synthetic(96, 64, seed=3)


def _config(**schedule) -> TrainConfig:
    model = HourglassConfig(stacks=1, features=16, depth=2, input_size=32, stem=StemConfig(channels=8))
    base = dict(epochs=2, batch_size=16, lr=2e-3, milestones=(), augment=True, seed=7)
    return TrainConfig(model, ScheduleConfig(**{**base, **schedule}), data="synthetic:96:64:3")


def test_reference_schedule_is_the_studys():
    s = REFERENCE_SCHEDULE
    assert (s.epochs, s.batch_size, s.optimizer, s.lr, s.milestones, s.gamma) == (20, 24, "adam", 1e-3, (15, 17), 0.1)


def test_train_reports_every_epoch_and_is_deterministic(arrays):
    seen = []
    a = train(_config(), arrays, device="cpu", on_epoch_end=seen.append, progress=False)
    b = train(_config(), arrays, device="cpu", progress=False)
    assert [m.epoch for m in seen] == [1, 2] and len(a.history) == 2
    assert all(0.0 <= m.pckh <= 100.0 and m.train_img_s > 0 for m in a.history)
    assert a.history[1].time_s > a.history[0].time_s
    assert [m.loss for m in a.history] == [m.loss for m in b.history]
    assert a.final is not None and set(a.final.per_joint) >= {"Head", "Mean"}


def test_resume_from_checkpoint_recomputes_nothing(arrays, tmp_path):
    full = train(_config(epochs=3), arrays, device="cpu", progress=False)
    first = train(_config(epochs=2), arrays, device="cpu", checkpoint_dir=tmp_path, progress=False)
    assert (tmp_path / "last.pt").exists()
    epochs_run = []
    resumed = train(_config(epochs=3), arrays, device="cpu", checkpoint_dir=tmp_path,
                    on_epoch_end=lambda m: epochs_run.append(m.epoch), progress=False)
    assert resumed.resumed_from_epoch == 2 and epochs_run == [3]
    assert [m.loss for m in resumed.history[:2]] == [m.loss for m in first.history]
    # the resumed run continues exactly as the uninterrupted one would have
    assert resumed.history[2].loss == pytest.approx(full.history[2].loss, rel=1e-5)


def test_callback_can_stop_training(arrays):
    class Stop(Exception):
        pass

    def stop(m):
        raise Stop

    with pytest.raises(Stop):
        train(_config(epochs=5), arrays, device="cpu", on_epoch_end=stop, progress=False)


def test_absurd_learning_rate_diverges(arrays):
    with pytest.raises(TrainingDiverged, match="loss is"):
        train(_config(lr=1e12, optimizer="sgd", epochs=3), arrays, device="cpu", progress=False)


def test_train_config_round_trips_through_yaml(tmp_path):
    cfg = _config()
    path = dump_yaml(cfg.to_dict(), tmp_path / "job.yaml")
    assert load_train_config(path) == cfg
    assert dataclasses.replace(cfg.schedule, epochs=4).epochs == 4
