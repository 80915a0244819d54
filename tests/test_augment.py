import cv2
import numpy as np
import pytest
import torch

from hourglass.data.augment import (
    AugmentConfig,
    PoseAugmenter,
    compose_affine,
    crop_to_input_matrix,
    invert_affine,
    warp_affine,
)
from hourglass.data.mpii import FLIP_PAIRS
from hourglass.errors import ConfigError

C = 48  # crop size in these tests
STILL = dict(rotate=0.0, scale_min=1.0, scale_max=1.0, flip_p=0.0, color=0.0)


def _keypoints(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(8, C - 8, (16, 2)).astype(np.float32)


def _dot_image(xy: np.ndarray) -> np.ndarray:
    img = np.zeros((C, C, 3), np.uint8)
    cv2.circle(
        img, (int(round(xy[0] * 16)), int(round(xy[1] * 16))), 2 * 16, (255, 255, 255), -1, cv2.LINE_AA, 4
    )
    return img


def test_no_augmentation_is_a_plain_resize():
    kp = _keypoints()
    aug = PoseAugmenter(None, crop_size=C, content_size=C, input_size=32)
    out = aug(np.zeros((C, C, 3), np.uint8), kp, np.ones(16, bool))
    np.testing.assert_allclose(out.keypoints, (kp + 0.5) * 32 / C - 0.5, atol=1e-4)
    assert out.present.all() and out.image.shape == (32, 32, 3)
    assert out.scale == pytest.approx(32 / C)


def test_margin_is_cropped_away_without_augmentation():
    aug = PoseAugmenter(None, crop_size=64, content_size=48, input_size=48)
    out = aug(np.zeros((64, 64, 3), np.uint8), np.array([[8.0, 8.0], [40.0, 30.0]] * 8), np.ones(16, bool))
    np.testing.assert_allclose(out.keypoints[:2], [[0.0, 0.0], [32.0, 22.0]], atol=1e-4)


def test_flip_mirrors_x_and_swaps_left_right_ids():
    kp = _keypoints(1)
    aug = PoseAugmenter(AugmentConfig(**{**STILL, "flip_p": 1.0}), C, C, C)
    present = np.ones(16, bool)
    present[0] = False  # r_ankle missing: after the flip the l_ankle slot (5) is missing
    out = aug(np.zeros((C, C, 3), np.uint8), kp, present)
    for a, b in FLIP_PAIRS:
        np.testing.assert_allclose(out.keypoints[a], [C - 1 - kp[b, 0], kp[b, 1]], atol=1e-4)
        if present[a]:
            np.testing.assert_allclose(out.keypoints[b], [C - 1 - kp[a, 0], kp[a, 1]], atol=1e-4)
    np.testing.assert_allclose(
        out.keypoints[7], [C - 1 - kp[7, 0], kp[7, 1]], atol=1e-4
    )  # thorax: no partner
    assert not out.present[5] and out.present[0] and out.present.sum() == 15


def test_keypoint_rotated_out_of_the_input_becomes_not_present_and_is_not_clipped():
    kp = _keypoints(2)
    kp[3] = (0.0, 0.0)  # a corner: any rotation about the centre moves it outside
    aug = PoseAugmenter(AugmentConfig(**{**STILL, "rotate": 30.0, "rotate_p": 1.0}), C, C, C, seed=1)
    for _ in range(5):
        out = aug(np.zeros((C, C, 3), np.uint8), kp, np.ones(16, bool))
        x, y = out.keypoints[3]
        assert not (0 <= x <= C - 1 and 0 <= y <= C - 1) and not out.present[3]
        back = out.to_crop[:, :2] @ out.keypoints[3] + out.to_crop[:, 2]
        np.testing.assert_allclose(back, [0.0, 0.0], atol=1e-3)  # moved by the rotation only


@pytest.mark.parametrize("seed", range(4))
def test_image_and_keypoints_move_together(seed):
    kp = _keypoints(seed)
    joint = 11  # r_elbow; a flip turns it into slot 14
    aug = PoseAugmenter(AugmentConfig(color=0.0, rotate_p=1.0), C, C, 40, seed=seed)
    for _ in range(3):
        out = aug(_dot_image(kp[joint]), kp, np.ones(16, bool))
        flipped = np.linalg.det(out.to_crop[:, :2]) < 0  # a mirror reverses orientation
        slot = 14 if flipped else joint
        x, y = out.keypoints[slot]
        if not out.present[slot]:
            continue
        grey = out.image[..., 0].astype(float)
        ys, xs = np.nonzero(grey > 0.5 * grey.max())
        w = grey[ys, xs]
        centroid = np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])
        np.testing.assert_allclose(centroid, [x, y], atol=0.6)


def test_to_crop_inverts_the_warp():
    kp = _keypoints(3)
    aug = PoseAugmenter(AugmentConfig(color=0.0, flip_p=0.0, rotate_p=1.0), C, C, 32, seed=4)
    out = aug(np.zeros((C, C, 3), np.uint8), kp, np.ones(16, bool))
    back = out.keypoints @ out.to_crop[:, :2].T + out.to_crop[:, 2]
    np.testing.assert_allclose(back, kp, atol=1e-3)


def test_same_seed_same_augmentation_and_reseed_restarts():
    kp, img = _keypoints(4), np.random.default_rng(0).integers(0, 255, (C, C, 3), dtype=np.uint8)
    a = PoseAugmenter(AugmentConfig(), C, C, 32, seed=7)
    b = PoseAugmenter(AugmentConfig(), C, C, 32, seed=7)
    first = [a(img, kp, np.ones(16, bool)) for _ in range(3)]
    second = [b(img, kp, np.ones(16, bool)) for _ in range(3)]
    for x, y in zip(first, second):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.keypoints, y.keypoints)
    assert not np.array_equal(first[0].keypoints, first[1].keypoints)
    a.reseed(7)
    assert np.array_equal(a(img, kp, np.ones(16, bool)).image, first[0].image)


def test_colour_jitter_changes_pixels_not_geometry():
    kp, img = _keypoints(5), np.full((C, C, 3), 120, np.uint8)
    out = PoseAugmenter(AugmentConfig(**{**STILL, "color": 0.4}), C, C, C, seed=2)(img, kp, np.ones(16, bool))
    np.testing.assert_allclose(out.keypoints, kp, atol=1e-4)
    assert not np.array_equal(out.image, img)


def test_pre_matrix_augments_a_full_image_like_its_crop():
    rng = np.random.default_rng(1)
    full = cv2.GaussianBlur(rng.integers(0, 255, (100, 120, 3), dtype=np.uint8), (0, 0), 3)
    to_crop = np.array([[0.8, 0.0, -20.0], [0.0, 0.8, -10.0]])
    crop = cv2.warpAffine(full, to_crop, (C, C), flags=cv2.INTER_LINEAR)
    kp_full = rng.uniform(30, 70, (16, 2))
    kp_crop = (kp_full @ to_crop[:, :2].T + to_crop[:, 2]).astype(np.float32)
    aug = PoseAugmenter(None, C, C, 32)
    a = aug(crop, kp_crop, np.ones(16, bool))
    b = aug(full, kp_full.astype(np.float32), np.ones(16, bool), pre=to_crop)
    np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-3)
    np.testing.assert_allclose(a.to_crop, b.to_crop, atol=1e-5)
    assert np.abs(a.image.astype(int) - b.image.astype(int))[2:-2, 2:-2].mean() < 4


def test_compose_affine_numpy_and_torch_batched():
    a = crop_to_input_matrix(64, 48, 32, angle=10.0, scale=0.9)
    b = crop_to_input_matrix(40, 40, 64, angle=-25.0, flip=True)
    ab = compose_affine(a, b)
    p = np.array([3.0, 17.0])
    np.testing.assert_allclose(
        ab[:, :2] @ p + ab[:, 2], a[:, :2] @ (b[:, :2] @ p + b[:, 2]) + a[:, 2], atol=1e-9
    )
    batched = compose_affine(torch.tensor(np.stack([a, b])), torch.tensor(np.stack([b, a])))
    np.testing.assert_allclose(batched[0].numpy(), ab, atol=1e-9)
    np.testing.assert_allclose(compose_affine(ab, invert_affine(b)), a, atol=1e-9)


def test_strong_shrink_is_area_averaged_and_keeps_geometry():
    checker = (np.indices((200, 200)).sum(axis=0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, axis=2)
    m = crop_to_input_matrix(200, 200, 32)  # 6.25x smaller
    small = warp_affine(checker, m, 32)
    assert abs(small.mean() - 127.5) < 3 and small[2:-2, 2:-2].std() < 4  # grey, not a moire of 0/255
    dot = np.zeros((200, 200, 3), np.uint8)
    cv2.circle(dot, (130 * 16, 60 * 16), 12 * 16, (255, 255, 255), -1, cv2.LINE_AA, 4)
    grey = warp_affine(dot, m, 32)[..., 0].astype(float)
    ys, xs = np.indices(grey.shape)
    centroid = [(xs * grey).sum() / grey.sum(), (ys * grey).sum() / grey.sum()]
    np.testing.assert_allclose(centroid, m[:, :2] @ [130, 60] + m[:, 2], atol=0.1)


def test_matrix_helpers():
    m = crop_to_input_matrix(64, 48, 32, angle=20.0, scale=1.1, flip=True)
    centre = m[:, :2] @ [31.5, 31.5] + m[:, 2]
    np.testing.assert_allclose(centre, [15.5, 15.5], atol=1e-9)  # crop centre -> input centre
    np.testing.assert_allclose(invert_affine(invert_affine(m)), m, atol=1e-9)


def test_config_validation():
    assert AugmentConfig.from_dict({"rotate": 0, "flip_p": 0}).rotate == 0.0
    with pytest.raises(ConfigError, match="augment.flip_p: expected a probability"):
        AugmentConfig.from_dict({"flip_p": 2}, "augment")
    with pytest.raises(ConfigError, match="scale_max: expected >= scale_min"):
        AugmentConfig(scale_min=1.2, scale_max=1.0)
    with pytest.raises(ConfigError, match="unknown key 'shear'"):
        AugmentConfig.from_dict({"shear": 3})
