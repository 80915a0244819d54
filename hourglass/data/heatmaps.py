"""Heatmap targets and the intermediate-supervision loss.

Targets are unnormalised Gaussians (peak 1 at the exact, sub-pixel joint position) on the
heatmap grid, one channel per joint; a joint that is missing (or was moved out of the input
by augmentation) gets an all-zero channel AND no loss, so the network is never taught
"there is no joint here" for a joint that is merely unannotated.

Coordinates: integer coordinates are pixel centres (OpenCV's ``warpAffine`` convention).
Heatmap pixel ``i`` covers input pixels ``stride*i .. stride*i + stride-1``, so its centre is
at input ``stride*i + (stride-1)/2`` (:func:`heatmap_to_input`, :func:`input_to_heatmap`), and
a decoded peak maps back to the input without bias. With it a horizontal flip of the input is
an exact flip of the heatmap (no one-pixel shift after :func:`flip_back`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hourglass.data.mpii import FLIP_PAIRS, flip_order

__all__ = [
    "render_heatmaps",
    "heatmap_loss",
    "decode_heatmaps",
    "flip_back",
    "heatmap_to_input",
    "input_to_heatmap",
    "to_image_coords",
]


def render_heatmaps(
    keypoints: torch.Tensor | np.ndarray,
    present: torch.Tensor | np.ndarray,
    size: int,
    sigma: float = 1.0,
) -> torch.Tensor:
    """Gaussian targets ``(N, J, size, size)`` for keypoints ``(N, J, 2)`` in heatmap pixels.

    The 2-D Gaussian is separable, so it is the outer product of one row and one column
    profile per joint: ``O(N*J*size)`` exponentials instead of ``O(N*J*size^2)``.
    """
    kp = torch.as_tensor(keypoints, dtype=torch.float32)  # (N, J, 2)
    mask = torch.as_tensor(present, dtype=torch.bool)  # (N, J)
    grid = torch.arange(size, dtype=torch.float32, device=kp.device)  # (size,)
    kp = torch.where(mask[..., None], kp, torch.zeros_like(kp))  # NaN-safe for missing joints
    gx = torch.exp(-((grid - kp[..., 0:1]) ** 2) / (2 * sigma**2))  # (N, J, size) along x
    gy = torch.exp(-((grid - kp[..., 1:2]) ** 2) / (2 * sigma**2))  # (N, J, size) along y
    maps = gy[..., :, None] * gx[..., None, :]  # (N, J, size_y, size_x)
    return maps * mask[..., None, None].to(maps.dtype)


def heatmap_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    present: torch.Tensor,
    weights: Sequence[float] | torch.Tensor,
) -> torch.Tensor:
    """``sum_s w_s * mean over present joints of the per-pixel MSE`` of every stack ``s``.

    pred (N, S, J, H, W), target (N, J, H, W), present (N, J) bool. Missing joints are left
    out of the mean (not counted as zero error), so a batch with many missing joints is not
    down-weighted; a batch with no present joint gives an exact 0 that still has a graph.
    ``weights`` may be a tensor already on ``pred``'s device (the training loop builds it
    once): a Python sequence is copied host-to-device on every call, a blocking copy that
    a CUDA-graph capture does not allow.
    """
    if pred.dim() != 5 or pred.shape[1] != len(weights):
        raise ValueError(f"pred: expected (N, {len(weights)}, J, H, W), but got {tuple(pred.shape)}")
    mask = present.to(pred.dtype)  # (N, J)
    count = mask.sum().clamp_min(1.0)
    per_joint = ((pred - target[:, None]) ** 2).mean(dim=(-2, -1))  # (N, S, J)
    per_stack = (per_joint * mask[:, None]).sum(dim=(0, 2)) / count  # (S,)
    if isinstance(weights, torch.Tensor):
        w = weights.to(pred.dtype)  # (S,) no copy when it already has pred's dtype
    else:
        w = torch.as_tensor(list(weights), dtype=pred.dtype, device=pred.device)  # (S,)
    return (w * per_stack).sum()


# --- decoding ---------------------------------------------------------------------------------


def decode_heatmaps(heatmaps: torch.Tensor) -> torch.Tensor:
    """(N,J,H,W) -> (N,J,2) float (x, y) in heatmap pixels (integer = pixel centre).

    Argmax, then a quarter pixel toward the higher neighbour on each axis (the standard
    hourglass decoding; it halves the quantisation error of the 4x-downsampled heatmap).
    A peak on the border is not shifted along that axis.
    """
    n, j, h, w = heatmaps.shape
    flat = heatmaps.detach().reshape(n, j, h * w)  # (N,J,HW)
    idx = flat.argmax(dim=-1)  # (N,J)
    x, y = idx % w, torch.div(idx, w, rounding_mode="floor")  # (N,J) each

    def value(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return flat.gather(-1, (yy * w + xx).unsqueeze(-1)).squeeze(-1)  # (N,J)

    dx = torch.sign(value(y, (x + 1).clamp(max=w - 1)) - value(y, (x - 1).clamp(min=0)))
    dy = torch.sign(value((y + 1).clamp(max=h - 1), x) - value((y - 1).clamp(min=0), x))
    dx = torch.where((x > 0) & (x < w - 1), dx, torch.zeros_like(dx))
    dy = torch.where((y > 0) & (y < h - 1), dy, torch.zeros_like(dy))
    return torch.stack([x + 0.25 * dx, y + 0.25 * dy], dim=-1).float()  # (N,J,2)


def flip_back(heatmaps: torch.Tensor, pairs: tuple[tuple[int, int], ...] = FLIP_PAIRS) -> torch.Tensor:
    """Heatmaps predicted for a horizontally flipped input, mapped back to the original.

    Flip along W and swap left/right joints. Exact under the pixel-centre convention (module doc),
    so no extra one-pixel shift is needed before averaging with the unflipped heatmaps.
    """
    order = _flip_order(heatmaps.shape[1], tuple(pairs), heatmaps.device)
    return heatmaps.flip(-1).index_select(1, order)  # (N,J,H,W)


@functools.lru_cache(maxsize=16)
def _flip_order(joints: int, pairs: tuple[tuple[int, int], ...], device: torch.device) -> torch.Tensor:
    """The joint order after a flip, as an index tensor made once per device: indexing with
    a Python list copies it to the device (a blocking copy) on every call."""
    return torch.tensor(flip_order(joints, pairs), device=device)


def heatmap_to_input(coords: Any, stride: float) -> Any:
    """Heatmap pixels -> input pixels (pixel centres): ``stride * c + (stride - 1) / 2``."""
    return coords * stride + (stride - 1) / 2


def input_to_heatmap(coords: Any, stride: float) -> Any:
    """Input pixels -> heatmap pixels, the inverse of :func:`heatmap_to_input` (for targets)."""
    return (coords - (stride - 1) / 2) / stride


def to_image_coords(coords_hm: Any, affine: Any, stride: float) -> Any:
    """Decoded heatmap coords (N,J,2) -> original image pixels, given ``affine`` (N,2,3)
    mapping input pixels to original pixels. numpy or torch, returned as given."""
    xy = heatmap_to_input(coords_hm, stride)  # (N,J,2) input px
    return xy @ affine[:, :, :2].mT + affine[:, None, :, 2]  # (N,J,2) original px
