"""Heatmap targets and the intermediate-supervision loss.

Targets are unnormalised Gaussians (peak 1 at the exact, sub-pixel joint position) on the
heatmap grid, one channel per joint; a joint that is missing (or was moved out of the input
by augmentation) gets an all-zero channel AND no loss, so the network is never taught
"there is no joint here" for a joint that is merely unannotated.

Coordinates are heatmap pixels with pixel centres at integers, the convention of
:func:`hourglass.metrics.input_to_heatmap` / ``heatmap_to_input`` (input pixel ``x`` lies
at heatmap pixel ``(x + 0.5) / stride - 0.5``), so a decoded peak maps back to the input
without bias.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["render_heatmaps", "heatmap_loss"]


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
