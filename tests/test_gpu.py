"""The CUDA path, run by ``scripts/gpu_acceptance.sh`` (``pytest -m gpu``).

The device comes from ``HPO_ACCEPT_DEVICE`` (default ``cuda``; skipped where there is
none); ``--device cpu --quick`` runs the same tests on the CPU, so CI keeps them working.
Small sizes throughout: these check behaviour (equal batches, a finished epoch, an exact
resume, an OOM that fails one trial only), the speed is ``hpo bench``'s job.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace

import pytest
import torch
from optuna.trial import TrialState

import hourglass.blocks
from hourglass.config import HourglassConfig, StemConfig
from hourglass.data.augment import AugmentConfig
from hourglass.data.gpu_data import GpuPoseData, sample_affine
from hourglass.data.synthetic import make_synthetic
from hourglass.train import COMPILE_ENV, train
from hourglass.train_config import ScheduleConfig, TrainConfig
from hpo.preset import load_preset
from hpo.study import prepare_study, run_study
from tests.workers_support import SPACE, write_preset

pytestmark = pytest.mark.gpu

DEVICE = os.environ.get("HPO_ACCEPT_DEVICE", "cuda")
ON_CUDA = DEVICE.startswith("cuda")
QUICK = os.environ.get("HPO_ACCEPT_QUICK") == "1"  # the CI-sized run: the smallest sizes that still train
SIZE, ROWS = (32, 80) if QUICK else (64, 160)
if ON_CUDA and not torch.cuda.is_available():
    pytest.skip("no CUDA device (set HPO_ACCEPT_DEVICE=cpu to run these on the CPU)", allow_module_level=True)


@pytest.fixture(scope="module")
def data():
    return make_synthetic(ROWS, SIZE, seed=5)


def _config(epochs: int, **schedule) -> TrainConfig:
    model = (
        HourglassConfig(stacks=2, features=16, depth=1, input_size=32, stem=StemConfig(channels=8))
        if QUICK
        else HourglassConfig(stacks=2, features=32, depth=2, input_size=64, stem=StemConfig(channels=16))
    )
    base = dict(epochs=epochs, batch_size=16, lr=2e-3, milestones=(), augment=True, seed=11)
    return TrainConfig(model, ScheduleConfig(**{**base, **schedule}), data=f"synthetic:{ROWS}:{SIZE}:5")


def test_device_batches_and_targets_equal_the_cpu_paths(data):
    """The same rows and augmentation parameters give the same batch on the device as on the CPU."""
    aug = AugmentConfig()
    on_dev = GpuPoseData(data, "train", SIZE, augment=aug, device=DEVICE, seed=1)
    on_cpu = GpuPoseData(data, "train", SIZE, augment=aug, device="cpu", seed=1)
    rows = torch.arange(24)
    params = sample_affine(24, aug, torch.Generator().manual_seed(3))
    dev_params = type(params)(*(t.to(on_dev.device) for t in (params.angle, params.scale, params.flip)))
    a = on_dev.make_batch(rows, dev_params, torch.Generator(device=on_dev.device).manual_seed(4))
    b = on_cpu.make_batch(rows, params, torch.Generator().manual_seed(4))
    assert set(a) == set(b)
    for key in ("heatmaps", "keypoints", "normalizer", "to_crop"):
        torch.testing.assert_close(a[key].cpu(), b[key], atol=1e-3, rtol=1e-4, msg=key)
    assert torch.equal(a["present"].cpu(), b["present"]) and torch.equal(a["index"].cpu(), b["index"])
    # colour jitter draws from each device's own generator: compare the plain warp
    plain_dev = GpuPoseData(data, "val", SIZE, device=DEVICE).make_batch(
        rows[:8].to(on_dev.device), sample_affine(8, None, device=on_dev.device)
    )
    plain_cpu = GpuPoseData(data, "val", SIZE, device="cpu").make_batch(rows[:8], sample_affine(8, None))
    torch.testing.assert_close(plain_dev["image"].cpu(), plain_cpu["image"], atol=2e-2, rtol=0)


def test_one_epoch_trains_on_the_device(data):
    result = train(_config(1), data, device=DEVICE, progress=False)
    (m,) = result.history
    assert result.device.startswith(DEVICE) and math.isfinite(m.loss) and m.loss > 0
    assert m.train_img_s > 0 and m.step_s > 0 and m.train_time_s > 0 and 0 <= m.pckh <= 100


def test_resume_on_the_device_equals_the_uninterrupted_run(data, tmp_path):
    """Every retried GPU trial resumes from a checkpoint: it must load (RNG states to the CPU)
    and continue as the uninterrupted run would (within cuDNN's non-determinism)."""
    full = train(_config(2), data, device=DEVICE, progress=False, compile="off")
    train(_config(1), data, device=DEVICE, checkpoint_dir=tmp_path, progress=False, compile="off")
    resumed = train(_config(2), data, device=DEVICE, checkpoint_dir=tmp_path, progress=False, compile="off")
    assert resumed.resumed_from_epoch == 1 and len(resumed.history) == 2
    assert resumed.history[1].loss == pytest.approx(full.history[1].loss, rel=2e-2)


@pytest.mark.skipif(not ON_CUDA, reason="compiling (inductor, CUDA graphs) is the CUDA default only")
def test_compiled_training_runs_and_charges_its_compile_seconds(data):
    eager = train(_config(1), data, device=DEVICE, progress=False, compile="off")
    graphs = train(_config(1), data, device=DEVICE, progress=False, compile="reduce-overhead")
    assert graphs.history[0].compile_s > 0 and eager.history[0].compile_s == 0
    assert graphs.history[0].train_time_s >= graphs.history[0].compile_s
    assert graphs.history[0].loss == pytest.approx(eager.history[0].loss, rel=5e-2)


def test_a_deliberate_out_of_memory_fails_only_its_trial(tmp_path, monkeypatch):
    """A design that cannot fit: FAIL with fail_reason oom, its memory back, the next trial runs."""
    space = {**SPACE, "params": {"model.block.name": {"choices": ["multidilated", "bottleneck"]}}}
    preset = load_preset(write_preset(tmp_path, space_doc=space, trials=1, epochs=1, device=DEVICE))
    preset = replace(preset, storage=f"sqlite:///{tmp_path / 'study.db'}")
    study, _ = prepare_study(preset)
    for block in ("multidilated", "bottleneck"):
        study.enqueue_trial({"model.block.name": block})

    def too_big(self, x):  # a real allocation failure on CUDA; simulated on the CPU (no swap storm)
        if x.is_cuda:
            torch.empty(1 << 50, dtype=torch.uint8, device=x.device)  # 1 PiB
        raise torch.cuda.OutOfMemoryError("out of memory (simulated on the CPU)")

    monkeypatch.setattr(hourglass.blocks._MultiDilated, "forward", too_big)
    before = torch.cuda.memory_allocated() if ON_CUDA else 0
    monkeypatch.setenv(COMPILE_ENV, "off")  # the point is the OOM, not a compile per trial
    summary = run_study(preset, n_trials=1, progress=False, checkpoint_dir=tmp_path / "ckpt")
    first, second = summary.study.trials
    assert first.state == TrialState.FAIL and first.user_attrs["fail_reason"] == "oom"
    assert second.state == TrialState.COMPLETE and second.user_attrs["device"].startswith(DEVICE)
    if ON_CUDA:
        assert torch.cuda.memory_allocated() <= before + 64 * 2**20  # the failed trial's tensors are gone
