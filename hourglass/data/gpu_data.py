"""The training data on the accelerator: uint8 crops resident in device memory, whole-batch
augmentation and heatmap targets rendered there.

Why: public hourglass code starves GPUs on data loading. A per-sample CPU pipeline
(albumentations warp, colour jitter, Gaussian targets) does a few hundred images/s per
core, while one GPU step of the 2-stack net wants thousands. MPII crops are ~5 GB as uint8
(25k x 3 x 288^2), a few percent of an H200, so they are uploaded once and every batch is
gathered, warped, jittered and turned into targets on the device with a handful of kernels:
``affine_grid`` + ``grid_sample`` for the warp, a joint permutation for the flip, the data
helper's vectorised :func:`render_heatmaps` for the targets.

The geometry is the CPU path's (:mod:`hourglass.data.augment`), not an approximation of it:
the same composed crop -> input matrix (:func:`crop_to_input_matrices` is the batched
:func:`~hourglass.data.augment.crop_to_input_matrix`), the same pixel-centre convention
(OpenCV's ``warpAffine`` = ``grid_sample(align_corners=False)`` after the normalisation
below), the same flip swap and the same "outside the input = not present" rule. Batches
have exactly :class:`~hourglass.data.dataset.PoseDataset`'s keys, dtypes and shapes, so
the training loop and the evaluation do not know which path made them. Only the colour
jitter differs in detail (fixed order brightness, contrast, saturation, hue; albumentations
shuffles the order): the same distribution of factors, not the same bytes.

Randomness, as in PoseDataset: the order comes from the caller's CPU generator (whose state
the training checkpoint saves) and the augmentation from one ``torch.Generator`` on the
device per epoch, seeded by ``seed`` and the epoch (:meth:`GpuPoseData.set_epoch`), so a
resumed run draws the same batches as an uninterrupted one on the same device.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hourglass.data.augment import AugmentConfig
from hourglass.data.cache import PoseArrays
from hourglass.data.dataset import IMAGE_MEAN, IMAGE_STD, STRIDE
from hourglass.data.heatmaps import input_to_heatmap, render_heatmaps
from hourglass.data.mpii import FLIP_PAIRS, flip_order
from hourglass.errors import ConfigError

__all__ = [
    "AffineParams",
    "GpuPoseData",
    "GpuBatches",
    "sample_affine",
    "crop_to_input_matrices",
    "warp_images",
    "transform_keypoints",
    "color_jitter",
    "invert_affines",
    "flip_permutation",
]


@dataclass(frozen=True)
class AffineParams:
    """Per-sample augmentation parameters of a batch, all (B,) tensors on one device."""

    angle: torch.Tensor  # degrees, counter-clockwise on screen
    scale: torch.Tensor  # zoom (>1 = the person appears larger)
    flip: torch.Tensor  # bool, horizontal flip (with left/right joint swap)

    @classmethod
    def identity(cls, n: int, device: torch.device | str = "cpu") -> AffineParams:
        return cls(
            torch.zeros(n, device=device),
            torch.ones(n, device=device),
            torch.zeros(n, dtype=torch.bool, device=device),
        )


def sample_affine(
    n: int,
    config: AugmentConfig | None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> AffineParams:
    """Draw ``n`` samples' rotation/scale/flip with the distributions of the CPU path:
    rotation uniform in +-``rotate`` with probability ``rotate_p`` (else 0), scale uniform in
    [scale_min, scale_max], flip with probability ``flip_p``."""
    if config is None:
        return AffineParams.identity(n, device)
    u = torch.rand(4, n, generator=generator, device=device)  # one draw per knob and sample
    rotate = u[0] < config.rotate_p if config.rotate > 0 else torch.zeros(n, dtype=torch.bool, device=device)
    angle = torch.where(rotate, (2 * u[1] - 1) * config.rotate, torch.zeros_like(u[1]))
    scale = config.scale_min + (config.scale_max - config.scale_min) * u[2]
    flip = u[3] < config.flip_p if config.flip_p > 0 else torch.zeros(n, dtype=torch.bool, device=device)
    return AffineParams(angle, scale, flip)


def crop_to_input_matrices(
    params: AffineParams, crop_size: int, content_size: int, input_size: int
) -> torch.Tensor:
    """(B, 2, 3) float32 affine maps crop px -> input px; the batched twin of
    :func:`hourglass.data.augment.crop_to_input_matrix` (same formula, pixel centres at integers)."""
    k = params.scale.float() * (input_size / content_size)  # (B,)
    a = torch.deg2rad(params.angle.float())
    cos, sin = torch.cos(a) * k, torch.sin(a) * k
    sign = torch.where(params.flip, -1.0, 1.0).to(k)  # the flip mirrors the first output row
    lin = torch.stack(
        [torch.stack([sign * cos, sign * sin], -1), torch.stack([-sin, cos], -1)], -2
    )  # (B, 2, 2)
    c_in, c_crop = (input_size - 1) / 2, (crop_size - 1) / 2
    offset = c_in - lin.sum(-1) * c_crop  # (B, 2): c_in - lin @ (c_crop, c_crop)
    return torch.cat([lin, offset[..., None]], dim=-1)


def _det2(lin: torch.Tensor) -> torch.Tensor:
    return lin[..., 0, 0] * lin[..., 1, 1] - lin[..., 0, 1] * lin[..., 1, 0]


def invert_affines(matrices: torch.Tensor) -> torch.Tensor:
    """Inverse of every (2, 3) affine in a (B, 2, 3) batch.

    Closed form: ``torch.linalg.inv`` checks for singular input, which on CUDA waits for
    the device every batch; these matrices are similarities with scale > 0, never singular.
    """
    lin, off = matrices[..., :2], matrices[..., 2:]  # (B, 2, 2), (B, 2, 1)
    a, b, c, d = lin[..., 0, 0], lin[..., 0, 1], lin[..., 1, 0], lin[..., 1, 1]
    inv = torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2) / _det2(lin)[..., None, None]
    return torch.cat([inv, -inv @ off], dim=-1)


def _grid_theta(to_crop: torch.Tensor, crop_size: int, input_size: int) -> torch.Tensor:
    """``affine_grid``'s theta for input px -> crop px maps (B, 2, 3).

    grid_sample (align_corners=False) works in ``n = (2x + 1) / size - 1``, so theta is
    ``N_crop . to_crop . N_input^-1`` with ``N_input^-1: n -> (S n + S - 1) / 2``. Written out
    instead of as 3x3 products so that no constant is copied to the device per batch (a
    blocking host-to-device copy waits for the training step still running there).
    """
    c, s = float(crop_size), float(input_size)
    lin = to_crop[..., :2]  # (B, 2, 2)
    offset = (2.0 / c) * (lin.sum(-1) * ((s - 1) / 2) + to_crop[..., 2]) + (1.0 / c - 1.0)  # (B, 2)
    return torch.cat([lin * (s / c), offset[..., None]], dim=-1)


def warp_images(
    crops: torch.Tensor, matrices: torch.Tensor, input_size: int, to_crop: torch.Tensor | None = None
) -> torch.Tensor:
    """Warp a batch of crops through their crop -> input matrices (bilinear, zero border).

    crops (B, C, C, 3) uint8 (the cache layout) or (B, 3, C, C) float; returns (B, 3, S, S)
    float32 in [0, 1]. Equivalent to ``cv2.warpAffine(crop, matrix, (S, S), INTER_LINEAR,
    BORDER_CONSTANT 0)`` per sample. ``to_crop``: the inverse matrices, if the caller has
    them already (one inversion per batch instead of two: each is a dozen tiny kernels).
    """
    if crops.dtype == torch.uint8:
        crops = crops.permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, C, C)
    b, crop = crops.shape[0], crops.shape[-1]
    inverse = to_crop if to_crop is not None else invert_affines(matrices.float())
    theta = _grid_theta(inverse, crop, input_size)  # (B, 2, 3)
    grid = F.affine_grid(theta, [b, 3, input_size, input_size], align_corners=False)  # (B, S, S, 2)
    return F.grid_sample(crops, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def flip_permutation(joints: int, flip_pairs: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """Joint ids after a horizontal flip: left and right partners exchange slots."""
    return torch.tensor(flip_order(joints, tuple(flip_pairs)))


def transform_keypoints(
    keypoints: torch.Tensor,
    present: torch.Tensor,
    matrices: torch.Tensor,
    flip: torch.Tensor,
    perm: torch.Tensor,
    input_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop-px keypoints (B, J, 2) -> input px, with the flip's id swap and the visibility rule.

    Missing joints are zeroed first (as on the CPU path). A joint that lands outside
    ``[0, S-1]`` keeps its (unclipped) coordinates but becomes not present: no target, no loss.
    """
    present = present.bool()
    kp = torch.where(present[..., None], keypoints.float(), torch.zeros((), device=keypoints.device))
    kp = kp @ matrices[:, :, :2].transpose(1, 2) + matrices[:, None, :, 2]  # (B, J, 2)
    perm = perm.to(kp.device)
    kp = torch.where(flip[:, None, None], kp[:, perm], kp)
    present = torch.where(flip[:, None], present[:, perm], present)
    inside = ((kp >= 0) & (kp <= input_size - 1)).all(dim=-1)  # (B, J)
    return kp, present & inside


def _grey(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma (OpenCV's RGB -> grey) of (B, 3, H, W) -> (B, 1, H, W); no constant tensor
    is copied to the device."""
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def color_jitter(
    images: torch.Tensor, strength: float, hue: float = 0.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Brightness, contrast, saturation factors uniform in [1-s, 1+s] per sample, then a hue
    rotation uniform in +-``hue`` of the circle (YIQ rotation); images (B, 3, H, W) in [0, 1]."""
    if strength <= 0 and hue <= 0:
        return images
    b, dev = images.shape[0], images.device
    f = 1 + strength * (2 * torch.rand(3, b, 1, 1, 1, generator=generator, device=dev) - 1)  # (3, B, 1, 1, 1)
    x = (images * f[0]).clamp_(0, 1)  # brightness
    mean = _grey(x).mean(dim=(2, 3), keepdim=True)  # (B, 1, 1, 1) mean grey
    x = (mean + f[1] * (x - mean)).clamp_(0, 1)  # contrast
    grey = _grey(x)  # (B, 1, H, W)
    x = (grey + f[2] * (x - grey)).clamp_(0, 1)  # saturation
    if hue > 0:
        theta = (2 * torch.rand(b, generator=generator, device=dev) - 1) * (hue * 2 * math.pi)
        x = _rotate_hue(x, theta)
    return x


_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64
)
_FROM_YIQ = torch.linalg.inv(_TO_YIQ)  # constants, inverted once on the CPU
_YIQ_ON: dict[
    tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]
] = {}  # copied once per device


def _rotate_hue(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    key = (x.device, x.dtype)
    if key not in _YIQ_ON:
        _YIQ_ON[key] = (_TO_YIQ.to(x), _FROM_YIQ.to(x))
    to_yiq, from_yiq = _YIQ_ON[key]
    c, s = torch.cos(theta), torch.sin(theta)  # (B,)
    one, zero = torch.ones_like(c), torch.zeros_like(c)
    rot = torch.stack(
        [torch.stack([one, zero, zero], -1), torch.stack([zero, c, -s], -1), torch.stack([zero, s, c], -1)],
        -2,
    )  # (B, 3, 3)
    m = from_yiq @ rot @ to_yiq  # (B, 3, 3) RGB -> RGB
    return torch.einsum("bij,bjhw->bihw", m, x).clamp_(0, 1)


# Uploaded splits, per (data set, split, device): a worker runs trial after trial on one
# data set, and re-splitting and re-uploading the whole crop cache for each (a host copy of
# the images plus a device upload, ~15 GB for MPII) cost seconds and doubled the host
# memory. One data set per device stays resident; a different one replaces it.
_RESIDENT: dict[tuple[int, str, str], tuple[weakref.ref, dict[str, torch.Tensor]]] = {}


def _upload(arrays: PoseArrays, split: str, device: torch.device) -> dict[str, torch.Tensor]:
    rows = arrays.split(split)
    images = rows.arrays()["images"] if not isinstance(rows.images, np.ndarray) else rows.images
    return {
        "images": torch.from_numpy(np.ascontiguousarray(images)).to(device),  # (N, C, C, 3) uint8
        "keypoints": torch.from_numpy(rows.keypoints).float().to(device),  # (N, J, 2) crop px
        "present": torch.from_numpy(rows.present).bool().to(device),  # (N, J)
        "normalizer": torch.from_numpy(rows.normalizer).float().to(device),  # (N,) crop px
        "index": torch.from_numpy(rows.index).long().to(device),  # (N,) row in the file
    }


def resident_split(arrays: PoseArrays, split: str, device: torch.device) -> dict[str, torch.Tensor]:
    """``split`` of ``arrays`` on ``device``, uploaded once per process (on the CPU every
    call makes its own copy: nothing to save there)."""
    if device.type == "cpu":
        return _upload(arrays, split, device)
    key = (id(arrays), split, str(device))
    hit = _RESIDENT.get(key)
    if hit is not None and hit[0]() is arrays:
        return hit[1]
    for k in [k for k, (ref, _) in _RESIDENT.items() if k[2] == str(device) and ref() is not arrays]:
        del _RESIDENT[k]  # another data set on this device (or a dead one): free it first
    tensors = _upload(arrays, split, device)
    _RESIDENT[key] = (weakref.ref(arrays), tensors)
    return tensors


class GpuPoseData:
    """One split of a pose cache, resident on ``device``; :meth:`batches` yields training or
    evaluation batches with :class:`~hourglass.data.dataset.PoseDataset`'s keys.

    ``augment=None`` is the deterministic resize (validation). Works on any device; on the
    CPU it exists for tests and the benchmark, training there keeps the albumentations path.
    """

    def __init__(
        self,
        arrays: PoseArrays,
        split: str,
        input_size: int,
        *,
        sigma: float = 1.0,
        augment: AugmentConfig | None = None,
        device: torch.device | str = "cuda",
        flip_pairs: tuple[tuple[int, int], ...] | None = None,
        seed: int = 0,
    ) -> None:
        if input_size < STRIDE or input_size % STRIDE:
            raise ConfigError(f"input_size: expected a positive multiple of {STRIDE}, but got {input_size!r}")
        if not sigma > 0:
            raise ConfigError(f"sigma: expected a number > 0, but got {sigma!r}")
        if flip_pairs is None:
            flip_pairs = FLIP_PAIRS
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:  # generators need the exact device
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.split, self.input_size, self.sigma, self.augment = split, input_size, float(sigma), augment
        self.seed, self.epoch = seed, 0
        self.heatmap_size = input_size // STRIDE
        self.crop_size, self.content_size = arrays.crop_size, arrays.content_size
        dev = self.device
        t = resident_split(arrays, split, dev)
        self.images, self.keypoints, self.present = t["images"], t["keypoints"], t["present"]
        self.normalizer, self.index = t["normalizer"], t["index"]
        self.perm = flip_permutation(arrays.joints, tuple(flip_pairs)).to(dev)
        self.mean = torch.from_numpy(IMAGE_MEAN).to(dev).view(1, 3, 1, 1)
        self.std = torch.from_numpy(IMAGE_STD).to(dev).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    def set_epoch(self, epoch: int) -> None:
        """Give every epoch its own augmentation stream (exact resume from a checkpoint)."""
        self.epoch = epoch

    def make_batch(
        self, rows: torch.Tensor, params: AffineParams, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """The batch of ``rows`` (B,) warped with ``params``; colour jitter draws from ``generator``."""
        rows = rows.to(self.device)
        matrices = crop_to_input_matrices(
            params, self.crop_size, self.content_size, self.input_size
        )  # (B, 2, 3)
        to_crop = invert_affines(matrices)  # (B, 2, 3) input px -> crop px
        image = warp_images(self.images[rows], matrices, self.input_size, to_crop)  # (B, 3, S, S) in [0, 1]
        if self.augment is not None:
            image = color_jitter(image, self.augment.color, self.augment.hue, generator)
        kp, present = transform_keypoints(
            self.keypoints[rows], self.present[rows], matrices, params.flip, self.perm, self.input_size
        )  # (B, J, 2) input px, (B, J)
        heatmaps = render_heatmaps(input_to_heatmap(kp, STRIDE), present, self.heatmap_size, self.sigma)
        scale = torch.sqrt(_det2(matrices[:, :, :2]).abs())  # (B,) crop px -> input px lengths
        return {
            "image": (image - self.mean) / self.std,  # (B, 3, S, S) normalised
            "heatmaps": heatmaps,  # (B, J, S/4, S/4)
            "present": present,
            "keypoints": kp,
            "normalizer": self.normalizer[rows] * scale,
            "index": self.index[rows],
            "to_crop": to_crop,
        }

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
        rows: int | None = None,
    ) -> GpuBatches:
        """One epoch of batches; ``generator`` (CPU) drives the order, (seed, epoch) the
        augmentation; ``rows``: only the first rows of the order (None: all)."""
        return GpuBatches(
            self, batch_size, shuffle=shuffle, drop_last=drop_last, generator=generator, rows=rows
        )


class GpuBatches:
    """An epoch over a :class:`GpuPoseData`, with ``len`` (for progress bars) like a DataLoader."""

    def __init__(
        self,
        data: GpuPoseData,
        batch_size: int,
        *,
        shuffle: bool,
        drop_last: bool,
        generator: torch.Generator | None,
        rows: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size: expected an integer >= 1, but got {batch_size!r}")
        self.data, self.batch_size, self.shuffle, self.drop_last = data, batch_size, shuffle, drop_last
        self.generator = generator
        self.rows = len(data) if rows is None else min(rows, len(data))

    def __len__(self) -> int:
        n = self.rows
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        d, n = self.data, len(self.data)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order[: self.rows].to(d.device)
        aug_gen = None
        if d.augment is not None:
            aug_gen = torch.Generator(device=d.device).manual_seed((d.seed * 1_000_003 + d.epoch) % 2**62)
        for b in range(len(self)):
            rows = order[b * self.batch_size : (b + 1) * self.batch_size]
            params = sample_affine(len(rows), d.augment, aug_gen, d.device)
            yield d.make_batch(rows, params, aug_gen)
