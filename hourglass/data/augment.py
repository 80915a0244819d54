"""Training augmentation: one affine warp crop -> input, with keypoints carried through.

Rotation, scale, horizontal flip AND the final crop -> input resize are composed into a
single 2x3 matrix, so every sample is resampled exactly once (two warps would blur twice
and cost twice); only a strong shrink is area-averaged first (see :func:`warp_affine`).
The warp is an albumentations ``DualTransform`` inside an ``albumentations.Compose`` with
``KeypointParams(remove_invisible=False)``: keypoints are transformed with the same matrix
and never dropped, moved or clipped; a joint that ends up outside the input is then marked
not-present here (no target, no loss) instead. A flip mirrors x and swaps the left/right
joint ids (``FLIP_PAIRS``), so "left wrist" still means the person's left wrist. Colour
jitter runs after the warp, on the small image.

Defaults follow the reference stacked-hourglass recipe: scale 0.75-1.25, rotation +-30 deg
applied to 60% of samples, flip with p=0.5.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations phones home on import

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from albumentations.core.transforms_interface import DualTransform  # noqa: E402

from hourglass.data.mpii import FLIP_PAIRS, flip_order  # noqa: E402
from hourglass.errors import ConfigError  # noqa: E402
from hourglass.validate import check_float, from_dict, to_dict  # noqa: E402

__all__ = [
    "AugmentConfig",
    "PoseAugmenter",
    "Augmented",
    "crop_to_input_matrix",
    "invert_affine",
    "compose_affine",
    "warp_affine",
]


@dataclass(frozen=True)
class AugmentConfig:
    """Each augmentation can be switched off: rotate=0, scale_min=scale_max=1, flip_p=0, color=0.

    rotate: maximum |angle| in degrees, applied with probability rotate_p.
    scale_min, scale_max: zoom factor range (>1 = person appears larger).
    flip_p: probability of a horizontal flip (with left/right joint swap).
    color: brightness/contrast/saturation jitter strength (factor in [1-color, 1+color]).
    hue: hue jitter as a fraction of the hue circle (0 = off, the reference recipe).
    """

    rotate: float = 30.0
    rotate_p: float = 0.6
    scale_min: float = 0.75
    scale_max: float = 1.25
    flip_p: float = 0.5
    color: float = 0.2
    hue: float = 0.0

    def __post_init__(self) -> None:
        check_float("rotate", self.rotate, low=0.0)
        for name in ("rotate_p", "flip_p"):
            value = getattr(self, name)
            check_float(name, value, low=0.0)
            if value > 1:
                raise ConfigError(f"{name}: expected a probability in [0, 1], but got {value!r}")
        check_float("scale_min", self.scale_min, positive=True)
        check_float("scale_max", self.scale_max, positive=True)
        if self.scale_max < self.scale_min:
            raise ConfigError(
                f"scale_max: expected >= scale_min ({self.scale_min}), but got {self.scale_max!r}"
            )
        check_float("color", self.color, low=0.0)
        if self.color >= 1:
            raise ConfigError(f"color: expected a jitter strength in [0, 1), but got {self.color!r}")
        check_float("hue", self.hue, low=0.0)
        if self.hue > 0.5:
            raise ConfigError(f"hue: expected a fraction in [0, 0.5], but got {self.hue!r}")

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> AugmentConfig:
        return from_dict(cls, data, where)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def crop_to_input_matrix(
    crop_size: int,
    content_size: int,
    input_size: int,
    angle: float = 0.0,
    scale: float = 1.0,
    flip: bool = False,
) -> np.ndarray:
    """The 2x3 affine crop px -> input px: the content box around the crop centre fills the input.

    Pixel centres are at integer coordinates, so the crop centre is ``(C-1)/2`` and the input
    centre ``(S-1)/2``; with no augmentation this is exactly ``x_in = (x + 0.5) * S/content - 0.5``
    shifted by the margin. Rotation is counter-clockwise on screen for positive ``angle``
    (degrees); the flip mirrors the input about its vertical centre line.
    """
    k = scale * input_size / content_size
    c_in, c_crop = (input_size - 1) / 2, (crop_size - 1) / 2
    a = math.radians(angle)
    cos, sin = math.cos(a) * k, math.sin(a) * k
    lin = np.array([[cos, sin], [-sin, cos]])  # image y points down: this turns counter-clockwise on screen
    if flip:
        lin = np.array([[-1.0, 0.0], [0.0, 1.0]]) @ lin
    offset = np.array([c_in, c_in]) - lin @ np.array([c_crop, c_crop])
    return np.concatenate([lin, offset[:, None]], axis=1)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix (also 2x3)."""
    full = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def compose_affine(outer: Any, inner: Any) -> Any:
    """2x3 affines ``outer o inner`` (inner applied first); numpy or torch, batched ``(..., 2, 3)``.

    E.g. ``compose_affine(cache.transform, sample["to_crop"])`` maps input px to original px.
    """
    lin = outer[..., :2] @ inner[..., :2]  # (..., 2, 2)
    shift = outer[..., :2] @ inner[..., 2:] + outer[..., 2:]  # (..., 2, 1)
    if isinstance(lin, np.ndarray):
        return np.concatenate([lin, shift], axis=-1)
    return torch.cat([lin, shift], dim=-1)


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """``cv2.warpAffine`` to ``size`` x ``size`` (bilinear, black outside) that does not alias.

    A bilinear warp samples only 2x2 source pixels per output pixel, so shrinking by more
    than 2x (a 320 px crop into a 64 px input, a 1000 px person box into a crop) skips
    pixels and aliases. Then the image is first shrunk with area averaging by the warp's
    own scale, and that resize is folded into the matrix, so geometry stays exact.
    """
    k = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if k < 0.5:
        h, w = image.shape[:2]
        sw, sh = max(1, round(w * k)), max(1, round(h * k))
        image = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        sx, sy = sw / w, sh / h  # small px -> image px, pixel centres at integers
        matrix = compose_affine(matrix, np.array([[1 / sx, 0, 0.5 / sx - 0.5], [0, 1 / sy, 0.5 / sy - 0.5]]))
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


class _CropToInput(DualTransform):
    """Samples rotation/scale/flip and warps image + keypoints with ONE composed matrix.

    ``pre`` (set by :class:`PoseAugmenter` per call) maps the given image's pixels to crop
    pixels: identity for a cache crop, the crop transform when augmenting a full JPEG.
    """

    def __init__(
        self, config: AugmentConfig | None, crop_size: int, content_size: int, input_size: int
    ) -> None:
        super().__init__(p=1.0)
        self.config = config
        self.crop_size, self.content_size, self.input_size = crop_size, content_size, input_size
        self.pre: np.ndarray | None = None

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        angle, scale, flip = 0.0, 1.0, False
        cfg = self.config
        if cfg is not None:
            if cfg.rotate > 0 and self.py_random.random() < cfg.rotate_p:
                angle = self.py_random.uniform(-cfg.rotate, cfg.rotate)
            if cfg.scale_max > cfg.scale_min:
                scale = self.py_random.uniform(cfg.scale_min, cfg.scale_max)
            else:
                scale = cfg.scale_min
            flip = cfg.flip_p > 0 and self.py_random.random() < cfg.flip_p
        matrix = crop_to_input_matrix(self.crop_size, self.content_size, self.input_size, angle, scale, flip)
        if self.pre is not None:
            matrix = compose_affine(matrix, self.pre)
        return {"matrix": matrix, "flip": flip, "angle": angle, "zoom": scale}

    def apply(self, img: np.ndarray, matrix: np.ndarray, **params: Any) -> np.ndarray:
        return warp_affine(img, matrix, self.input_size)

    def apply_to_keypoints(self, keypoints: np.ndarray, matrix: np.ndarray, **params: Any) -> np.ndarray:
        out = keypoints.copy()  # (K, 4+): x, y, angle, scale, ...
        out[:, :2] = keypoints[:, :2] @ matrix[:, :2].T + matrix[:, 2]
        return out

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("config", "crop_size", "content_size", "input_size")


@dataclass(frozen=True)
class Augmented:
    image: np.ndarray  # (S, S, 3) uint8
    keypoints: np.ndarray  # (J, 2) float32, input px (joint ids already swapped on a flip)
    present: np.ndarray  # (J,) bool: annotated AND inside the input
    to_crop: np.ndarray  # (2, 3) float32, input px -> crop px
    scale: float  # lengths in crop px times this = lengths in input px


class PoseAugmenter:
    """crop (or full image + ``pre``) -> augmented input image, keypoints, mask, inverse map.

    ``config=None`` gives the deterministic resize only (validation). Randomness comes from
    the albumentations ``Compose`` seed; :meth:`reseed` restarts the stream (the dataset
    reseeds per DataLoader worker and epoch).
    """

    def __init__(
        self,
        config: AugmentConfig | None,
        crop_size: int,
        content_size: int,
        input_size: int,
        flip_pairs: tuple[tuple[int, int], ...] = FLIP_PAIRS,
        seed: int = 0,
    ) -> None:
        self.config = config
        self.input_size = input_size
        self.flip_pairs = flip_pairs
        self._warp = _CropToInput(config, crop_size, content_size, input_size)
        transforms: list[Any] = [self._warp]
        if config is not None and (config.color > 0 or config.hue > 0):
            c = config.color
            transforms.append(A.ColorJitter(brightness=c, contrast=c, saturation=c, hue=config.hue, p=1.0))
        self._pipeline = A.Compose(
            transforms,
            keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
            seed=seed,
            save_applied_params=True,
        )

    def reseed(self, seed: int) -> None:
        self._pipeline.set_random_seed(seed)

    def swap_permutation(self, joints: int) -> np.ndarray:
        return np.array(flip_order(joints, tuple(self.flip_pairs)))

    def __call__(
        self, image: np.ndarray, keypoints: np.ndarray, present: np.ndarray, pre: np.ndarray | None = None
    ) -> Augmented:
        """image (H, W, 3) uint8; keypoints (J, 2) crop px; present (J,) bool; pre: image px -> crop px."""
        present = np.asarray(present, dtype=bool)
        kp = np.where(
            present[:, None], np.asarray(keypoints, dtype=np.float32), 0.0
        )  # no NaN into albumentations
        self._warp.pre = None if pre is None else np.asarray(pre, dtype=np.float64)
        result = self._pipeline(image=image, keypoints=kp)
        params = result["applied_transforms"][0][1]
        out_kp = np.asarray(result["keypoints"], dtype=np.float32)[:, :2]  # (J, 2) input px
        if params["flip"]:
            perm = self.swap_permutation(len(out_kp))
            out_kp, present = out_kp[perm], present[perm]
        s = self.input_size - 1
        inside = (out_kp >= 0).all(axis=1) & (out_kp <= s).all(axis=1)
        crop_to_in = params["matrix"] if pre is None else compose_affine(params["matrix"], invert_affine(pre))
        return Augmented(
            image=result["image"],
            keypoints=out_kp,
            present=present & inside,
            to_crop=invert_affine(crop_to_in).astype(np.float32),
            scale=float(np.sqrt(abs(np.linalg.det(crop_to_in[:, :2])))),
        )
