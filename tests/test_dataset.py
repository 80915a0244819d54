import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hourglass.config import HourglassConfig, StemConfig
from hourglass.data.augment import AugmentConfig
from hourglass.data.dataset import IMAGE_MEAN, IMAGE_STD, PoseDataset, load_pose_data
from hourglass.data.heatmaps import decode_heatmaps, heatmap_loss, heatmap_to_input
from hourglass.data.synthetic import make_synthetic
from hourglass.errors import ConfigError, DataError
from hourglass.model import build_model


@pytest.fixture(scope="module")
def data():
    return make_synthetic(40, 64, seed=2)


def test_sample_layout_matches_the_contract(data):
    ds = PoseDataset(data, "train", 32, augment=AugmentConfig())
    s = ds[0]
    assert s["image"].shape == (3, 32, 32) and s["image"].dtype == torch.float32
    assert s["heatmaps"].shape == (16, 8, 8) and s["heatmaps"].dtype == torch.float32
    assert s["present"].shape == (16,) and s["present"].dtype == torch.bool
    assert s["keypoints"].shape == (16, 2) and s["keypoints"].dtype == torch.float32
    assert s["normalizer"].shape == () and s["index"].dtype == torch.int64 and s["to_crop"].shape == (2, 3)
    assert len(ds) == int((~data.is_val).sum())


def test_val_sample_is_the_resized_row(data):
    ds = PoseDataset(data, "val", 32)
    rows = np.flatnonzero(data.is_val)
    s = ds[1]
    row = rows[1]
    assert s["index"].item() == row
    np.testing.assert_allclose(s["keypoints"], (data.keypoints[row] + 0.5) * 0.5 - 0.5, atol=1e-4)
    assert s["normalizer"].item() == pytest.approx(data.normalizer[row] * 0.5, rel=1e-5)
    image = s["image"].numpy().transpose(1, 2, 0) * IMAGE_STD + IMAGE_MEAN
    small = data.images[row].reshape(32, 2, 32, 2, 3).mean(axis=(1, 3)) / 255
    assert np.abs(image - small).mean() < 0.03  # the same picture, at half size
    # the target peaks decode back to the keypoints
    decoded = heatmap_to_input(decode_heatmaps(s["heatmaps"][None]), 4)[0]
    err = (decoded - s["keypoints"]).norm(dim=-1)[s["present"]]
    assert err.max() < 2.0
    back = s["keypoints"] @ s["to_crop"][:, :2].T + s["to_crop"][:, 2]
    np.testing.assert_allclose(back, data.keypoints[row], atol=1e-3)


def test_joints_pushed_out_by_augmentation_get_no_target(data):
    ds = PoseDataset(
        data, "train", 32, augment=AugmentConfig(scale_min=2.0, scale_max=2.0, rotate=0, flip_p=0)
    )
    s = ds[0]
    kp = s["keypoints"]
    outside = ((kp < 0) | (kp > 31)).any(dim=1)
    assert outside.any() and not s["present"][outside].any()
    assert torch.all(s["heatmaps"][outside] == 0)


def test_augmentation_is_reproducible_per_seed(data):
    a = PoseDataset(data, "train", 32, augment=AugmentConfig(), seed=1)
    b = PoseDataset(data, "train", 32, augment=AugmentConfig(), seed=1)
    c = PoseDataset(data, "train", 32, augment=AugmentConfig(), seed=2)
    assert torch.equal(a[3]["image"], b[3]["image"])
    assert not torch.equal(a[4]["keypoints"], c[4]["keypoints"])


def test_loader_workers_are_reproducible_and_do_not_repeat_each_other(data):
    ds = PoseDataset(data, "train", 32, augment=AugmentConfig(), seed=3)

    def run():
        torch.manual_seed(0)
        loader = DataLoader(ds, batch_size=1, num_workers=2, shuffle=False)
        return [b for b, _ in zip(loader, range(4))]

    first, second = run(), run()
    for a, b in zip(first, second):
        assert torch.equal(a["keypoints"], b["keypoints"])
    # rows 0 and 1 go to different workers; both start their stream fresh, yet differ from
    # the single-process stream, so workers do not replay one sequence
    single = [ds[i]["keypoints"] for i in range(2)]
    assert not all(torch.equal(first[i]["keypoints"][0], single[i]) for i in range(2))


def test_batches_train_a_tiny_model(data):
    torch.manual_seed(0)
    ds = PoseDataset(data, "train", 32, augment=None)
    batch = next(iter(DataLoader(ds, batch_size=8)))
    cfg = HourglassConfig(stacks=2, features=16, depth=1, input_size=32, stem=StemConfig(channels=8))
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        loss = heatmap_loss(model(batch["image"]), batch["heatmaps"], batch["present"], cfg.loss_weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bad_arguments(data):
    with pytest.raises(ConfigError, match="input_size: expected a positive multiple of 4"):
        PoseDataset(data, "train", 30)
    with pytest.raises(ConfigError, match="sigma"):
        PoseDataset(data, "train", 32, sigma=0)


def test_load_pose_data_specs(tmp_path, data):
    made = load_pose_data("synthetic:40:64:2")
    assert made.images.tobytes() == data.images.tobytes()
    assert load_pose_data("synthetic:10").crop_size == 64
    path = data.save(tmp_path / "d.h5")
    assert np.array_equal(load_pose_data(path).keypoints, data.keypoints)
    assert np.array_equal(load_pose_data(str(path)).keypoints, data.keypoints)
    for bad in ("synthetic", "synthetic:x", "synthetic:10:64:0:9", "synthetic:1"):
        with pytest.raises(ConfigError, match="synthetic:N"):
            load_pose_data(bad)
    with pytest.raises(DataError, match="missing.h5: pose cache not found"):
        load_pose_data(tmp_path / "missing.h5")
    with pytest.raises(DataError, match="expected a pose cache .h5"):
        load_pose_data(tmp_path / "d.json")
