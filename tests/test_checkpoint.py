"""Checkpoints through faults: torn or emptied files, flipped bits, a full disk (issue 27)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import replace

import optuna
import pytest
import torch
from optuna.trial import TrialState

import hourglass.train
from hourglass.checkpoint import EXIT_DISK_FULL, DiskFull, load_checkpoint, save_checkpoint
from hpo.preset import load_preset
from hpo.study import prepare_study, run_study
from hpo.trial_loop import Interrupted
from hpo.workers import audit_study
from tests.workers_support import write_preset


def _state(epoch: int = 1) -> dict:
    return {
        "epoch": epoch,
        "history": [{"epoch": epoch}],
        "model": {"w": torch.arange(1000.0)},
        "torch_rng": torch.get_rng_state(),
    }


def test_a_saved_checkpoint_loads_back_whole(tmp_path):
    save_checkpoint(tmp_path / "last.pt", _state(3))
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 3 and torch.equal(state["model"]["w"], torch.arange(1000.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no .tmp left behind


@pytest.mark.parametrize("damage", ["half", "empty", "flipped byte"])
def test_a_damaged_checkpoint_is_set_aside_and_reads_as_none(tmp_path, damage, caplog):
    path = tmp_path / "last.pt"
    save_checkpoint(path, _state())
    data = bytearray(path.read_bytes())
    if damage == "half":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = bytearray()
    else:  # inside the weights: the file still loads, only the checksum can tell
        offset = bytes(data).find(torch.arange(1000.0)[500:502].numpy().tobytes())
        assert offset > 0
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    assert load_checkpoint(path) is None
    assert not path.exists() and len(list(tmp_path.glob("last.pt.corrupt-*"))) == 1
    assert "set aside" in caplog.text and "starting from scratch" in caplog.text


def _preset(tmp_path, **fields):
    preset = load_preset(write_preset(tmp_path, **fields))
    return replace(preset, storage=f"sqlite:///{tmp_path / 'study.db'}")


@pytest.mark.slow
@pytest.mark.parametrize("cut", ["half", "zero bytes"])
def test_a_truncated_checkpoint_between_kill_and_retry_loses_nothing(tmp_path, monkeypatch, cut, caplog):
    """Killed right after epoch 2's checkpoint, which is then cut (a full disk, a crashed file
    system): the retry sets it aside, trains from scratch and completes; nothing is lost."""
    preset = _preset(tmp_path, epochs=3, trials=1)
    prepare_study(preset)[0].enqueue_trial({"model.block.name": "bottleneck"})
    ckpt = tmp_path / "ckpt"
    save = hourglass.train.save_checkpoint

    def save_then_die(path, state):
        save(path, state)
        if state["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(hourglass.train, "save_checkpoint", save_then_die)
    with pytest.raises(Interrupted):
        run_study(preset, n_trials=1, progress=False, checkpoint_dir=ckpt)
    monkeypatch.setattr(hourglass.train, "save_checkpoint", save)
    (last,) = ckpt.glob("*/last.pt")
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2] if cut == "half" else b"")

    summary = run_study(preset, n_trials=1, progress=False, checkpoint_dir=ckpt)
    dead, retry = summary.study.trials
    assert dead.state == TrialState.FAIL and retry.state == TrialState.COMPLETE
    assert retry.user_attrs["resumed_from_epoch"] == 0 and retry.user_attrs["epochs_trained"] == 3
    audit = audit_study(summary.study)
    assert (audit.lost, audit.duplicated, audit.finished) == (0, 0, 1)
    assert "is unreadable" in caplog.text and "set aside as last.pt.corrupt-" in caplog.text


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MiB tmpfs (root only, as a full disk is made for real)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a 2 MiB tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_checkpoint_that_does_not_fit_is_disk_full_with_no_partial_file(tiny_disk):
    (tiny_disk / "filler").write_bytes(b"\0" * (2 * 1024 * 1024 - 64 * 1024))
    with pytest.raises(
        DiskFull, match=rf"checkpoint folder {tiny_disk}/t: no space left on device \(.* free"
    ):
        save_checkpoint(tiny_disk / "t" / "last.pt", {"epoch": 1, "history": [], "w": torch.zeros(100_000)})
    assert list((tiny_disk / "t").iterdir()) == []  # the partial last.tmp is gone
    assert DiskFull.exit_code == EXIT_DISK_FULL == 74


@pytest.mark.slow
def test_a_full_checkpoint_disk_fails_the_trial_disk_full_requeues_it_and_stops(tmp_path, tiny_disk):
    preset = _preset(tmp_path, epochs=2, trials=3)
    (tiny_disk / "filler").write_bytes(b"\0" * (2 * 1024 * 1024 - 32 * 1024))
    with pytest.raises(
        DiskFull, match=rf"checkpoint folder {tiny_disk}/\S+: no space left on device.*re-queued"
    ):
        run_study(preset, n_trials=3, progress=False, checkpoint_dir=tiny_disk)
    study = optuna.load_study(study_name=preset.name, storage=preset.storage)
    failed, waiting = study.trials  # stopped at once: no second design tried on a full disk
    assert failed.state == TrialState.FAIL and failed.user_attrs["fail_reason"] == "disk_full"
    assert (
        "No space left" in failed.user_attrs["traceback"] or "no space left" in failed.user_attrs["traceback"]
    )
    assert waiting.state == TrialState.WAITING and waiting.system_attrs["failed_trial"] == failed.number
    assert not list(tiny_disk.rglob("*.tmp"))
    (tiny_disk / "filler").unlink()  # room again: the re-queued trial completes
    summary = run_study(preset, n_trials=1, progress=False, checkpoint_dir=tiny_disk)
    assert summary.study.trials[1].state == TrialState.COMPLETE
    assert audit_study(summary.study).lost == 0
