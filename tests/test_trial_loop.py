"""Dying trials, in one process: NaN loss, out of memory, an exception in a block, a signal
mid-trial, a budget shared with other workers, a worker whose every trial fails."""

from __future__ import annotations

import os
import signal
import weakref
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

import hourglass.blocks
import hourglass.train
import hpo.objective
from hourglass.errors import ConfigError
from hpo.preset import load_preset
from hpo.storage import RetryStaleTrial, heartbeat_settings
from hpo.study import prepare_study, run_study
from hpo.trial_loop import Interrupted, SignalGuard, TooManyFailures, study_counts
from tests.workers_support import SPACE, write_preset

BLOCK_SPACE = {**SPACE, "params": {"model.block.name": {"choices": ["multidilated", "bottleneck"]}}}


def _preset(tmp_path, space_doc=BLOCK_SPACE, **fields):
    preset = load_preset(write_preset(tmp_path, space_doc=space_doc, **fields))
    return replace(preset, storage=f"sqlite:///{tmp_path / 'study.db'}")


def _enqueue_blocks(preset, *blocks):
    study, _ = prepare_study(preset)
    for block in blocks:
        study.enqueue_trial({"model.block.name": block})
    return study


def _run(preset, **kwargs):
    return run_study(preset, progress=False, checkpoint_dir=_ckpt(preset), **kwargs)


def _ckpt(preset) -> Path:
    return Path(preset.storage.removeprefix("sqlite:///")).parent / "ckpt"


def test_nan_loss_prunes_the_trial_with_reason_diverged(tmp_path):
    preset = _preset(
        tmp_path, schedule={"epochs": 2, "batch_size": 16, "milestones": [], "augment": False, "lr": 1.0e30}
    )  # an absurd learning rate
    summary = _run(preset, n_trials=1)
    (trial,) = summary.study.trials
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["prune_reason"] == "diverged" and trial.user_attrs["pruned_at_epoch"] == 1
    assert not any(_ckpt(preset).glob("*/last.pt"))  # a pruned trial leaves no checkpoint


@pytest.mark.parametrize(
    "error",
    [  # classes and messages: a raised instance would keep the frames alive
        (torch.cuda.OutOfMemoryError, "CUDA out of memory. Tried to allocate 20.00 GiB (simulated)"),
        (RuntimeError, "cuDNN error: CUDNN_STATUS_ALLOC_FAILED (simulated)"),  # cuDNN's own workspace
        (
            RuntimeError,
            "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)` (simulated)",
        ),
    ],
    ids=["allocator", "cudnn", "cublas"],
)
def test_out_of_memory_fails_the_trial_frees_its_model_and_the_worker_goes_on(tmp_path, monkeypatch, error):
    preset = _preset(tmp_path)
    _enqueue_blocks(preset, "multidilated", "bottleneck")
    victims: list[weakref.ref] = []
    freed: list[bool] = []

    def oom(self, x):  # the multidilated design "does not fit"
        victims.append(weakref.ref(self))
        raise error[0](error[1])

    release = hpo.objective._release_memory

    def spy():
        release()
        freed.append(all(ref() is None for ref in victims))  # the failed trial's model is gone

    monkeypatch.setattr(hourglass.blocks._MultiDilated, "forward", oom)
    monkeypatch.setattr(hpo.objective, "_release_memory", spy)
    summary = _run(preset, n_trials=1)  # one trial must FINISH: the OOM one does not count
    first, second = summary.study.trials
    assert first.state == TrialState.FAIL and first.user_attrs["fail_reason"] == "oom"
    assert "traceback" not in first.user_attrs
    assert freed == [True]
    assert (
        second.state == TrialState.COMPLETE
        and second.user_attrs["config"]["model"]["block"]["name"] == "bottleneck"
    )
    assert summary.new_trials == 2


def test_an_exception_inside_a_block_fails_the_trial_with_its_traceback(tmp_path, monkeypatch):
    preset = _preset(tmp_path)
    _enqueue_blocks(preset, "multidilated", "bottleneck")

    def broken(self, x):
        raise ValueError("boom inside a block")

    monkeypatch.setattr(hourglass.blocks._MultiDilated, "forward", broken)
    summary = _run(preset, n_trials=1)
    first, second = summary.study.trials
    assert first.state == TrialState.FAIL and first.user_attrs["fail_reason"] == "exception"
    assert (
        "boom inside a block" in first.user_attrs["traceback"]
        and "in broken" in first.user_attrs["traceback"]
    )
    assert second.state == TrialState.COMPLETE


def test_a_worker_whose_every_trial_fails_stops_with_one_line(tmp_path, monkeypatch):
    preset = _preset(
        tmp_path, space_doc={**SPACE, "params": {"model.block.name": {"choices": ["multidilated"]}}}
    )

    def broken(self, x):
        raise ValueError("always")

    monkeypatch.setattr(hourglass.blocks._MultiDilated, "forward", broken)
    with pytest.raises(TooManyFailures, match=r"2 trials in a row failed \(last: trial 1, exception\)"):
        _run(preset, n_trials=3, max_failures=2)


def test_a_signal_mid_trial_fails_and_requeues_it_and_the_rerun_resumes_it(tmp_path, monkeypatch):
    """SIGTERM right after epoch 2's checkpoint: the trial is FAIL (not RUNNING), re-queued,
    and the next run resumes it at epoch 3 with the whole curve."""
    preset = _preset(tmp_path, epochs=3)
    _enqueue_blocks(preset, "bottleneck")
    save = hourglass.train.save_checkpoint

    def save_then_die(path, state):
        save(path, state)
        if state["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(hourglass.train, "save_checkpoint", save_then_die)
    with pytest.raises(Interrupted) as info:
        _run(preset, n_trials=1)
    assert info.value.exit_code == 143
    study = optuna.load_study(study_name=preset.name, storage=preset.storage)
    dead, retry = study.trials
    assert (dead.state, dead.user_attrs["fail_reason"]) == (TrialState.FAIL, "interrupted")
    assert retry.state == TrialState.WAITING and retry.system_attrs["failed_trial"] == 0
    assert retry.params == dead.params

    monkeypatch.setattr(hourglass.train, "save_checkpoint", save)
    summary = _run(preset, n_trials=1)
    done = summary.study.trials[1]
    assert done.state == TrialState.COMPLETE and summary.new_trials == 1
    a = done.user_attrs
    assert (a["retry_of"], a["resumed_from_epoch"], a["epochs_trained"]) == (0, 2, 1)
    assert [p["epoch"] for p in dead.user_attrs["curve"]] == [1]  # killed before epoch 2 was recorded
    assert [p["epoch"] for p in a["curve"]] == [1, 2, 3] and a["curve"][0] == dead.user_attrs["curve"][0]
    assert "fail_reason" not in a  # the retry does not inherit how the first attempt ended
    assert not any(_ckpt(preset).iterdir())  # finished: its checkpoint folder is gone


def test_the_budget_counts_trials_finished_by_any_worker(tmp_path):
    preset = _preset(tmp_path, space_doc=SPACE)
    study, _ = prepare_study(preset)
    for pckh in (10.0, 20.0):  # finished by "other workers"
        study.add_trial(optuna.create_trial(values=[pckh, 1000, 1.0]))
    summary = _run(preset, total_trials=3)
    assert summary.new_trials == 1 and study_counts(summary.study).finished == 3


def test_signals_are_deferred_outside_trials_and_raised_inside():
    before = signal.getsignal(signal.SIGTERM)
    with SignalGuard() as guard:
        os.kill(os.getpid(), signal.SIGTERM)  # between trials: remembered, not raised
        assert guard.signum == signal.SIGTERM
        with pytest.raises(Interrupted) as info:
            guard.check()
        assert info.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is before
    with SignalGuard() as guard, pytest.raises(Interrupted) as info:
        with guard.armed():
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
    assert info.value.exit_code == 130


def test_a_retry_keeps_params_and_history_but_not_how_the_attempt_ended(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'r.db'}")
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    study.add_trial(
        optuna.create_trial(
            state=TrialState.FAIL,
            params={"x": 0.5},
            distributions=dist,
            user_attrs={"design": "a", "fail_reason": "interrupted", "curve": [1]},
        )
    )
    RetryStaleTrial(max_retry=1)(study, study.trials[0])
    retry = study.trials[1]
    assert retry.state == TrialState.WAITING and retry.params == {"x": 0.5}
    assert retry.user_attrs == {"design": "a", "curve": [1]} and retry.system_attrs["retry_history"] == [0]


def test_heartbeat_settings_come_from_arguments_or_the_environment(monkeypatch):
    monkeypatch.setenv("HPO_HEARTBEAT_S", "2")
    monkeypatch.setenv("HPO_GRACE_S", "5")
    assert heartbeat_settings() == (2, 5, 3)
    assert heartbeat_settings(heartbeat_s=1, grace_s=2, max_retry=0) == (1, 2, 0)
    monkeypatch.setenv("HPO_GRACE_S", "1")
    with pytest.raises(ConfigError, match="grace period > the interval"):
        heartbeat_settings()
    monkeypatch.setenv("HPO_HEARTBEAT_S", "soon")
    with pytest.raises(ConfigError, match="HPO_HEARTBEAT_S: expected an integer >= 1, but got 'soon'"):
        heartbeat_settings()


def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_failed_and_requeued(tmp_path):
    from hpo.trial_loop import _fail_silent_trials

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    silent = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})  # RUNNING, never started
    started = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    started.set_user_attr("worker", "host:1")  # a live worker's trial
    assert _fail_silent_trials(study, grace_s=60) == 0  # too young to judge
    assert _fail_silent_trials(study, grace_s=0) == 1
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING]
    assert study.trials[2].system_attrs["failed_trial"] == silent.number
    assert study.trials[2].params == study.trials[0].params
