import gzip
import json

import numpy as np
import pytest

from hourglass.data.mpii import JOINT_NAMES
from hourglass.data.synthetic import HEAD_LENGTH, VAL_FRACTION, make_synthetic, normalised_real_poses
from hourglass.errors import ConfigError

R_SHIN, L_SHIN = (1, 0), (4, 5)  # (knee, ankle)


@pytest.fixture(scope="module")
def synth():
    return make_synthetic(200, 64, seed=3)


def test_same_seed_same_bytes_other_seed_differs(synth):
    again = make_synthetic(200, 64, seed=3)
    for name in ("images", "keypoints", "present", "visible", "normalizer", "transform", "is_val"):
        a, b = getattr(synth, name), getattr(again, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    other = make_synthetic(200, 64, seed=4)
    assert not np.array_equal(other.images, synth.images)
    assert not np.array_equal(other.keypoints, synth.keypoints)


def test_layout_split_and_normalizer(synth):
    assert synth.images.shape == (200, 64, 64, 3) and synth.images.dtype == np.uint8
    assert synth.keypoints.shape == (200, 16, 2) and synth.keypoints.dtype == np.float32
    assert synth.present.all() and synth.attrs["joint_names"] == list(JOINT_NAMES)
    assert synth.crop_size == synth.content_size == 64
    assert synth.is_val.sum() == round(VAL_FRACTION * 200) and synth.is_val[-1] and not synth.is_val[0]
    head = np.linalg.norm(synth.keypoints[:, 9] - synth.keypoints[:, 8], axis=1)
    np.testing.assert_allclose(synth.normalizer, 0.75 * head, rtol=1e-5)
    # MPII geometry: the PCKh unit is about a tenth of the box (25 x scale in a 250 x scale box)
    assert 0.07 * 64 < np.median(synth.normalizer) < 0.11 * 64
    inside = ((synth.keypoints >= 0) & (synth.keypoints <= 63)).all(axis=2)
    assert inside.mean() > 0.95


def test_occluded_joints_are_present_but_not_visible(synth):
    hidden = synth.present & ~synth.visible
    assert 0.005 < hidden.mean() < 0.3
    inside = ((synth.keypoints >= 0) & (synth.keypoints <= 63)).all(axis=2)
    assert not synth.visible[~inside].any()


def _colour_at_midpoint(data, joints):
    a, b = joints
    mid = np.rint((data.keypoints[:, a] + data.keypoints[:, b]) / 2).astype(int)
    ok = ((mid >= 0) & (mid < data.crop_size)).all(axis=1) & data.visible[:, a] & data.visible[:, b]
    return np.array([data.images[i, y, x].astype(int) for i, (x, y) in enumerate(mid) if ok[i]])


def test_right_limbs_warm_left_limbs_cool(synth):
    right, left = _colour_at_midpoint(synth, R_SHIN), _colour_at_midpoint(synth, L_SHIN)
    assert (right[:, 0] > right[:, 2]).mean() > 0.7  # red over blue
    assert (left[:, 2] > left[:, 0]).mean() > 0.7


def test_poses_vary(synth):
    rel = np.delete(synth.keypoints - synth.keypoints[:, 6:7], 6, axis=1)
    assert np.linalg.norm(rel.std(axis=0), axis=1).min() > 1.0  # every joint moves around the pelvis


@pytest.fixture
def mpii_subset(mpii_dir, tmp_path):
    with gzip.open(mpii_dir / "mpii_annotations.json.gz", "rt") as f:
        entries = json.load(f)[:400]
    path = tmp_path / "subset.json"
    path.write_text(json.dumps(entries))
    return path


def test_real_mpii_poses(mpii_subset):
    bank = normalised_real_poses(mpii_subset)
    assert bank.shape[1:] == (16, 2) and 50 < len(bank) < 400  # only fully annotated persons
    assert np.allclose(bank[:, 6], 0)
    head = np.linalg.norm(bank[:, 9] - bank[:, 8], axis=1)
    assert np.median(head) == pytest.approx(HEAD_LENGTH, rel=0.01)  # MPII: head length = 33.3 x scale
    data = make_synthetic(40, 64, seed=1, poses=mpii_subset)
    assert data.attrs["poses"] == str(mpii_subset)
    again = make_synthetic(40, 64, seed=1, poses=bank)
    assert data.images.tobytes() == again.images.tobytes()
    kinematic = make_synthetic(40, 64, seed=1)
    assert not np.allclose(data.keypoints, kinematic.keypoints)
    # every figure is a similarity transform of some real pose: joint distance ratios survive
    ratio = np.linalg.norm(data.keypoints[:, 0] - data.keypoints[:, 1], axis=1) / np.linalg.norm(
        data.keypoints[:, 9] - data.keypoints[:, 8], axis=1
    )
    bank_ratio = np.linalg.norm(bank[:, 0] - bank[:, 1], axis=1) / head
    assert all(np.isclose(bank_ratio, r, rtol=1e-4).any() for r in ratio)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="n >= 1"):
        make_synthetic(0, 64, 0)
