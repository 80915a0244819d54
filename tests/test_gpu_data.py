"""The device-side data path against the CPU (albumentations) path, on CPU tensors."""

import math

import numpy as np
import pytest
import torch

from hourglass.data.augment import AugmentConfig, crop_to_input_matrix, invert_affine
from hourglass.data.cache import PoseArrays
from hourglass.data.dataset import PoseDataset
from hourglass.data.gpu_data import (
    AffineParams,
    GpuPoseData,
    color_jitter,
    crop_to_input_matrices,
    flip_permutation,
    sample_affine,
    transform_keypoints,
    warp_images,
)
from hourglass.data.mpii import FLIP_PAIRS
from hourglass.data.synthetic import make_synthetic
from hourglass.errors import ConfigError

S = 32  # input size in these tests (heatmaps 8 x 8)


@pytest.fixture(scope="module")
def synth() -> PoseArrays:
    return make_synthetic(24, 64, seed=3)


def _with_margin(arrays: PoseArrays, margin: int = 8) -> PoseArrays:
    """The same rows as a cache with a black margin around the content (crop > content)."""
    images = np.pad(arrays.images, ((0, 0), (margin, margin), (margin, margin), (0, 0)))
    attrs = {**arrays.attrs, "crop_size": images.shape[1], "content_size": arrays.content_size}
    return PoseArrays(
        images=images,
        keypoints=arrays.keypoints + margin,
        present=arrays.present,
        visible=arrays.visible,
        normalizer=arrays.normalizer,
        transform=arrays.transform,
        is_val=arrays.is_val,
        attrs=attrs,
    )


def _params_from(to_crop: np.ndarray, content: int) -> AffineParams:
    """Recover (angle, scale, flip) from the CPU path's inverse map (input px -> crop px)."""
    lin = invert_affine(to_crop)[:, :2]  # crop px -> input px
    det = np.linalg.det(lin)
    k = math.sqrt(abs(det))
    angle = math.degrees(math.atan2(-lin[1, 0], lin[1, 1]))  # the second row is never mirrored
    return AffineParams(torch.tensor([angle]), torch.tensor([k * content / S]), torch.tensor([det < 0]))


@pytest.mark.parametrize(
    "angle,scale,flip", [(0.0, 1.0, False), (17.0, 0.8, False), (-30.0, 1.25, True), (29.5, 0.75, True)]
)
def test_matrices_are_the_cpu_formula(angle, scale, flip):
    params = AffineParams(torch.tensor([angle]), torch.tensor([scale]), torch.tensor([flip]))
    got = crop_to_input_matrices(params, 80, 64, S)[0].double().numpy()
    np.testing.assert_allclose(got, crop_to_input_matrix(80, 64, S, angle, scale, flip), atol=1e-5)


@pytest.mark.parametrize("margin", [0, 8])
def test_same_parameters_give_the_cpu_paths_sample(synth, margin):
    arrays = _with_margin(synth, margin) if margin else synth
    config = AugmentConfig(rotate_p=1.0, color=0.0)  # colour jitter draws differ by design
    cpu = PoseDataset(arrays, "train", S, augment=config, seed=5)
    gpu = GpuPoseData(arrays, "train", S, augment=config, device="cpu")
    flips = 0
    for i in range(len(cpu)):
        want = cpu[i]
        params = _params_from(want["to_crop"].numpy(), arrays.content_size)
        flips += int(params.flip)
        got = {k: v[0] for k, v in gpu.make_batch(torch.tensor([i]), params).items()}
        assert torch.equal(got["present"], want["present"]), f"sample {i}"
        p = want["present"]
        assert (got["keypoints"][p] - want["keypoints"][p]).abs().max() < 1.0
        torch.testing.assert_close(got["keypoints"][p], want["keypoints"][p], atol=1e-3, rtol=0)
        torch.testing.assert_close(got["heatmaps"], want["heatmaps"], atol=1e-3, rtol=0)
        # rendered peaks at the same heatmap pixel (within one) for every present joint
        w = want["heatmaps"].shape[-1]
        peak_got = got["heatmaps"][p].flatten(1).argmax(1)
        peak_want = want["heatmaps"][p].flatten(1).argmax(1)
        assert ((peak_got % w - peak_want % w).abs() <= 1).all() and (
            (peak_got // w - peak_want // w).abs() <= 1
        ).all()
        torch.testing.assert_close(got["to_crop"], want["to_crop"], atol=1e-3, rtol=0)
        torch.testing.assert_close(got["normalizer"], want["normalizer"], atol=1e-4, rtol=1e-4)
        assert got["index"] == want["index"]
        # bilinear warp = cv2.warpAffine up to its uint8 rounding (1/255 before normalising);
        # a shrink past 2x is area-averaged first on the CPU path only (augment.warp_affine),
        # so there the images agree on average, not pixel for pixel
        shrink = 1 / math.sqrt(abs(float(np.linalg.det(want["to_crop"][:, :2].numpy()))))
        diff = (got["image"] - want["image"]).abs()
        if shrink >= 0.5:
            assert diff.max() < 2.5 / 255 / 0.224
        else:
            assert diff.mean() < 0.25
    assert 0 < flips < len(cpu)  # both branches were compared


def test_validation_batches_are_the_plain_resize(synth):
    cpu = PoseDataset(synth, "val", S)
    gpu = GpuPoseData(synth, "val", S, device="cpu")
    batch = next(iter(gpu.batches(len(gpu))))
    for i in range(len(cpu)):
        want = cpu[i]
        for key in ("keypoints", "heatmaps", "to_crop"):
            torch.testing.assert_close(batch[key][i], want[key], atol=1e-4, rtol=0)
        assert torch.equal(batch["present"][i], want["present"]) and batch["index"][i] == want["index"]


def test_flip_mirrors_and_swaps_joint_ids():
    kp = torch.rand(1, 16, 2) * 40 + 10
    present = torch.ones(1, 16, dtype=torch.bool)
    present[0, 0] = False  # r_ankle missing: after the flip the l_ankle slot (5) is missing
    params = AffineParams(torch.zeros(1), torch.ones(1), torch.ones(1, dtype=torch.bool))
    m = crop_to_input_matrices(params, 64, 64, 64)
    out, out_present = transform_keypoints(kp, present, m, params.flip, flip_permutation(16, FLIP_PAIRS), 64)
    for a, b in FLIP_PAIRS:
        torch.testing.assert_close(out[0, a], torch.stack([63 - kp[0, b, 0], kp[0, b, 1]]))
    torch.testing.assert_close(out[0, 7], torch.stack([63 - kp[0, 7, 0], kp[0, 7, 1]]))  # thorax: no partner
    assert not out_present[0, 5] and out_present[0, 0] and out_present.sum() == 15


def test_joints_leaving_the_input_are_masked_not_clipped(synth):
    gpu = GpuPoseData(synth, "train", S, device="cpu")
    gpu.keypoints[0, 3] = torch.tensor([0.0, 0.0])  # a corner: any rotation about the centre moves it out
    params = AffineParams(torch.tensor([30.0, -30.0]), torch.ones(2), torch.zeros(2, dtype=torch.bool))
    batch = gpu.make_batch(torch.tensor([0, 0]), params)
    for b in range(2):
        x, y = batch["keypoints"][b, 3]
        assert not (0 <= x <= S - 1 and 0 <= y <= S - 1)
        assert not batch["present"][b, 3] and batch["heatmaps"][b, 3].abs().max() == 0
        back = batch["to_crop"][b, :, :2] @ batch["keypoints"][b, 3] + batch["to_crop"][b, :, 2]
        torch.testing.assert_close(back, torch.zeros(2), atol=1e-3, rtol=0)


def test_batches_have_the_dataset_layout(synth):
    cpu = PoseDataset(synth, "train", S, augment=AugmentConfig())
    gpu = GpuPoseData(synth, "train", S, augment=AugmentConfig(), device="cpu")
    loader = gpu.batches(8, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    assert len(batches) == len(loader) == len(gpu) // 8
    sample = cpu[0]
    for batch in batches:
        assert batch.keys() == sample.keys()
        for key, value in sample.items():
            assert batch[key].dtype == value.dtype and batch[key].shape == (8, *value.shape), key
        assert torch.isfinite(batch["image"]).all() and batch["heatmaps"].max() <= 1.0
    seen = torch.cat([b["index"] for b in batches])
    assert len(set(seen.tolist())) == len(seen)  # one epoch: every row at most once


def test_epochs_are_reproducible_from_seed_epoch_and_generator(synth):
    gpu = GpuPoseData(synth, "train", S, augment=AugmentConfig(), device="cpu", seed=4)

    def epoch(number, order_seed=1):
        gpu.set_epoch(number)
        return list(gpu.batches(6, shuffle=True, generator=torch.Generator().manual_seed(order_seed)))

    a, b = epoch(3), epoch(3)
    assert all(
        torch.equal(x["image"], y["image"]) and torch.equal(x["index"], y["index"]) for x, y in zip(a, b)
    )
    other_epoch, other_order = epoch(4), epoch(3, order_seed=2)
    assert torch.equal(a[0]["index"], other_epoch[0]["index"])  # same order, new augmentation
    assert not torch.equal(a[0]["image"], other_epoch[0]["image"])
    assert not torch.equal(a[0]["index"], other_order[0]["index"])


def test_sampled_parameters_follow_the_config():
    cfg = AugmentConfig(rotate=30.0, rotate_p=0.6, scale_min=0.75, scale_max=1.25, flip_p=0.5)
    p = sample_affine(4000, cfg, torch.Generator().manual_seed(0))
    assert p.angle.abs().max() <= 30 and 0.75 <= p.scale.min() and p.scale.max() <= 1.25
    assert abs((p.angle != 0).float().mean() - 0.6) < 0.05 and abs(p.flip.float().mean() - 0.5) < 0.05
    none = sample_affine(5, None)
    assert (none.angle == 0).all() and (none.scale == 1).all() and not none.flip.any()


def test_color_jitter_stays_in_range_and_zero_is_identity():
    x = torch.rand(4, 3, 8, 8)
    assert torch.equal(color_jitter(x, 0.0), x)
    y = color_jitter(x, 0.4, hue=0.1, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1 and not torch.allclose(x, y)
    grey = torch.full((1, 3, 4, 4), 0.5)  # a grey image has no saturation or hue to change
    out = color_jitter(grey, 0.0, hue=0.25, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, grey, atol=1e-4, rtol=0)


def test_warp_accepts_float_crops_and_rejects_bad_sizes(synth):
    crops = torch.from_numpy(synth.images[:2])
    m = crop_to_input_matrices(AffineParams.identity(2), 64, 64, S)
    a = warp_images(crops, m, S)
    b = warp_images(crops.permute(0, 3, 1, 2).float() / 255, m, S)
    torch.testing.assert_close(a, b)
    with pytest.raises(ConfigError, match="input_size"):
        GpuPoseData(synth, "train", 30, device="cpu")


@pytest.mark.parametrize("device_data", [False, True])
def test_training_runs_on_either_data_path(monkeypatch, one_thread, device_data):
    """train() with the device-resident batches (forced on, on the CPU) and with the DataLoader."""
    import hourglass.train as train_module
    from hourglass.config import HourglassConfig, StemConfig
    from hourglass.train import train
    from hourglass.train_config import ScheduleConfig, TrainConfig

    monkeypatch.setattr(train_module, "_uses_device_data", lambda device: device_data)
    model = HourglassConfig(stacks=1, features=16, depth=1, input_size=16, stem=StemConfig(channels=8))
    config = TrainConfig(
        model=model,
        schedule=ScheduleConfig(epochs=2, batch_size=8, milestones=(5,)),
        data="synthetic:40:32:0",
    )
    result = train(config, device="cpu", progress=False)
    assert [m.epoch for m in result.history] == [1, 2]
    assert all(math.isfinite(m.loss) and m.loss > 0 for m in result.history)
    assert result.final is not None and 0 <= result.final.per_joint["Mean"] <= 100


def test_a_split_is_uploaded_once_per_device_and_data_set(synth):
    """Trial after trial on one data set reuses the resident crops; another data set replaces them
    (the meta device stands in for a GPU: same bookkeeping, no memory)."""
    from hourglass.data.gpu_data import _RESIDENT, resident_split
    from hourglass.data.synthetic import make_synthetic

    meta = torch.device("meta")
    first = resident_split(synth, "train", meta)
    assert resident_split(synth, "train", meta) is first and first["images"].device == meta
    assert resident_split(synth, "val", meta) is not first
    other = make_synthetic(12, 32, seed=9)
    resident_split(other, "train", meta)
    assert resident_split(synth, "train", meta) is not first  # replaced by `other`, uploaded again
    assert resident_split(synth, "train", torch.device("cpu")) is not resident_split(
        synth, "train", torch.device("cpu")
    )
    _RESIDENT.clear()
