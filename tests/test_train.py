import dataclasses

import pytest
import torch

from hourglass.config import HourglassConfig, StemConfig
from hourglass.data.synthetic import VAL_FRACTION, make_synthetic
from hourglass.train import TrainingDiverged, train
from hourglass.train_config import REFERENCE_SCHEDULE, ScheduleConfig, TrainConfig, load_train_config
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
    assert (s.epochs, s.batch_size, s.optimizer, s.lr, s.milestones, s.gamma) == (
        20,
        24,
        "adam",
        1e-3,
        (15, 17),
        0.1,
    )


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
    resumed = train(
        _config(epochs=3),
        arrays,
        device="cpu",
        checkpoint_dir=tmp_path,
        on_epoch_end=lambda m: epochs_run.append(m.epoch),
        progress=False,
    )
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


SYNC_METHODS = ("item", "__bool__", "cpu", "__float__", "tolist")


def _count_syncs(monkeypatch) -> dict[str, int]:
    """Count calls of the Tensor methods that wait for the device (on a GPU, each is a sync)."""
    calls = dict.fromkeys(SYNC_METHODS, 0)
    for name in SYNC_METHODS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


@pytest.mark.parametrize("device_data", [False, True])
def test_an_epoch_makes_a_constant_number_of_host_syncs(monkeypatch, device_data):
    """One epoch of 40 steps (train + evaluation) syncs as often as one of 20: not per step."""
    import hourglass.train as train_module

    monkeypatch.setattr(train_module, "_uses_device_data", lambda device: device_data)
    model = HourglassConfig(stacks=2, features=8, depth=1, input_size=16, stem=StemConfig(channels=8))
    counts = {}
    for steps in (20, 40):
        n = next(n for n in range(2 * steps, 4 * steps) if n - round(VAL_FRACTION * n) == 2 * steps)
        data = make_synthetic(n, 32, seed=1)  # 2 x steps training rows
        config = TrainConfig(
            model,
            ScheduleConfig(epochs=1, batch_size=2, milestones=(), augment=True, seed=0),
            data=f"synthetic:{n}:32:1",
        )
        with monkeypatch.context() as patch:
            calls = _count_syncs(patch)
            result = train(config, data, device="cpu", progress=False)
        assert len(result.history) == 1 and int((~data.is_val).sum()) == 2 * steps
        counts[steps] = dict(calls)
    assert counts[40] == counts[20], counts
    assert sum(counts[40].values()) <= 12, counts[40]  # a handful per epoch, not 40+


def test_a_nan_between_checks_still_stops_the_run_as_diverged(monkeypatch, arrays):
    """The finiteness check runs every N steps and at the epoch's end, so one NaN step is enough."""
    import hourglass.train as train_module

    real_step, calls = train_module.train_step, []

    def one_nan(*args, **kwargs):
        loss = real_step(*args, **kwargs)
        calls.append(1)
        return loss * float("nan") if len(calls) == 2 else loss

    monkeypatch.setattr(train_module, "train_step", one_nan)
    monkeypatch.setattr(train_module, "FINITE_CHECK_EVERY", 1000)
    with pytest.raises(TrainingDiverged, match="loss is nan at epoch 1"):
        train(_config(epochs=2), arrays, device="cpu", progress=False)


def test_resume_reads_the_checkpoint_to_the_cpu(monkeypatch, arrays, tmp_path):
    """RNG states must reach torch.set_rng_state as CPU ByteTensors whatever device trained:
    the checkpoint is read with map_location="cpu" (with "meta", a stand-in for a GPU, the
    setter raises TypeError, which is what every resumed CUDA trial did)."""
    import hourglass.train as train_module

    train(_config(epochs=1), arrays, device="cpu", checkpoint_dir=tmp_path, progress=False)
    state = torch.load(tmp_path / "last.pt", map_location="meta", weights_only=True)
    with pytest.raises(TypeError, match="ByteTensor"):
        torch.set_rng_state(state["torch_rng"])
    real_load, where = torch.load, []

    def load(path, map_location=None, **kwargs):
        where.append(map_location)
        return real_load(path, map_location=map_location, **kwargs)

    monkeypatch.setattr(train_module.torch, "load", load)
    resumed = train(_config(epochs=2), arrays, device="cpu", checkpoint_dir=tmp_path, progress=False)
    assert resumed.resumed_from_epoch == 1 and where and all(m == "cpu" for m in where)


def test_train_time_is_the_fast_step_times_steps_plus_evaluation(arrays):
    result = train(_config(epochs=2), arrays, device="cpu", progress=False)
    first, second = result.history
    assert first.step_s > 0 and first.eval_s > 0 and first.compile_s == 0.0
    assert first.train_time_s == pytest.approx(first.step_s * (80 // 16) + first.eval_s, rel=1e-6)
    assert second.train_time_s == pytest.approx(
        first.train_time_s + second.step_s * 5 + second.eval_s, rel=1e-6
    )
    assert result.train_time_s == second.train_time_s and second.time_s > 0


def test_allocation_failures_of_cudnn_and_cublas_count_as_out_of_memory():
    from hourglass.train import is_out_of_memory

    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert is_out_of_memory(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"))
    wrapped = ValueError("compiled code failed")
    wrapped.__cause__ = RuntimeError("CUDA error: out of memory")
    assert is_out_of_memory(wrapped)
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_out_of_memory(ValueError("boom"))


@pytest.mark.slow
def test_the_compiled_path_trains_pads_evaluation_and_charges_compile_seconds(monkeypatch, arrays):
    """The compile plumbing on a CPU, with dynamo's eager backend (tracing, no code generation):
    same losses as eager, the last evaluation batch padded to one shape, compile seconds charged."""
    import hourglass.train as train_module

    real_compile, real_last_stack, shapes = torch.compile, train_module._last_stack, []
    monkeypatch.setattr(
        train_module.torch,
        "compile",
        lambda model, mode=None, dynamic=None: real_compile(model, backend="eager", dynamic=dynamic),
    )

    def last_stack(model, images, mode):
        shapes.append((mode, images.shape[0]))
        return real_last_stack(model, images, mode)

    monkeypatch.setattr(train_module, "_last_stack", last_stack)
    eager = train(_config(epochs=1), arrays, device="cpu", progress=False)
    compiled = train(_config(epochs=1), arrays, device="cpu", progress=False, compile="default")
    assert compiled.history[0].loss == pytest.approx(eager.history[0].loss, rel=1e-4)
    assert compiled.history[0].compile_s >= 0.0 and eager.history[0].compile_s == 0.0
    assert compiled.history[0].train_time_s >= compiled.history[0].compile_s
    # 14 validation rows, evaluation batch 32: as they are in eager mode, padded when compiled
    assert shapes == [("off", 14), ("default", 32)]


def test_the_exception_chain_is_walked_once_even_when_it_loops():
    from hourglass.errors import exception_chain

    inner, outer = ValueError("inner"), RuntimeError("outer")
    outer.__cause__ = inner
    inner.__context__ = outer  # a loop: each is listed once
    assert exception_chain(outer) == [outer, inner]
    assert exception_chain(None) == []


@pytest.mark.parametrize("device_data", [False, True])
def test_steps_per_epoch_trains_that_many_batches_of_fresh_rows_each_epoch(monkeypatch, arrays, device_data):
    import hourglass.train as train_module

    monkeypatch.setattr(train_module, "_uses_device_data", lambda device: device_data)
    original = train_module.train_step
    seen: list[list[int]] = []

    def counted(model, optimizer, batch, weights, device):
        seen[-1].extend(batch["index"].tolist())
        return original(model, optimizer, batch, weights, device)

    monkeypatch.setattr(train_module, "train_step", counted)
    rows = {}
    for steps in (2, None, 50):  # 50 x 16 is more than the 82 training rows: one pass
        seen.clear()
        seen.append([])
        result = train(
            _config(epochs=2, steps_per_epoch=steps),
            arrays,
            device="cpu",
            progress=False,
            on_epoch_end=lambda m: seen.append([]),
        )
        rows[steps] = [r for r in seen if r]
        assert len(result.history) == 2
    assert [len(r) for r in rows[2]] == [32, 32]  # 2 batches of 16 per epoch
    assert rows[2][0] != rows[2][1]  # a fresh draw each epoch
    assert len(set(rows[2][0])) == 32  # without replacement
    assert [len(r) for r in rows[None]] == [80, 80] == [len(r) for r in rows[50]]  # 5 full batches of 16


def test_steps_per_epoch_must_be_positive():
    with pytest.raises(Exception, match="steps_per_epoch"):
        ScheduleConfig(steps_per_epoch=0)
