"""The stacked hourglass (Newell et al. 2016), with pluggable block and stem."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hourglass.blocks import BlockConfig, create_block
from hourglass.config import HourglassConfig
from hourglass.stems import Stem

__all__ = ["Hourglass", "StackedHourglass", "build_model"]


class Hourglass(nn.Module):
    """One recursive hourglass: ``up1(x) + upsample(low3(low2(low1(pool(x)))))``."""

    def __init__(self, depth: int, features: int, block: BlockConfig) -> None:
        super().__init__()
        f = features
        self.up1 = create_block(block.name, f, f, block)
        self.low1 = create_block(block.name, f, f, block)
        self.low2 = Hourglass(depth - 1, f, block) if depth > 1 else create_block(block.name, f, f, block)
        self.low3 = create_block(block.name, f, f, block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = self.up1(x)  # (N, f, H, W)
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2))))  # (N, f, H/2, W/2)
        return up + F.interpolate(low, size=up.shape[-2:], mode="nearest")  # (N, f, H, W)


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class StackedHourglass(nn.Module):
    """Stem, then ``stacks`` hourglasses with intermediate heatmaps merged back in."""

    def __init__(self, config: HourglassConfig) -> None:
        super().__init__()
        self.config = config
        f, blk = config.features, config.block
        self.stem = Stem(config.stem, blk, f)
        self.hourglasses = nn.ModuleList(Hourglass(config.depth, f, blk) for _ in range(config.stacks))
        self.features = nn.ModuleList(
            nn.Sequential(create_block(blk.name, f, f, blk), _conv_bn_relu(f, f))
            for _ in range(config.stacks)
        )
        self.heads = nn.ModuleList(nn.Conv2d(f, config.joints, 1) for _ in range(config.stacks))
        # Merges exist only between stacks: the last stack has none (no dead parameters).
        self.merge_features = nn.ModuleList(nn.Conv2d(f, f, 1) for _ in range(config.stacks - 1))
        self.merge_preds = nn.ModuleList(nn.Conv2d(config.joints, f, 1) for _ in range(config.stacks - 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, S, S) -> one output per stack (N, stacks, joints, S/4, S/4).

        The last output is the prediction. ``output_weights`` change the forward pass as
        ``output_mode`` says (equations in :class:`hourglass.config.HourglassConfig`).
        """
        cfg = self.config
        w = cfg.output_weights
        merge = w is not None and cfg.output_mode == "merge"
        x = self.stem(images)  # (N, f, S/4, S/4)
        preds = []
        for s in range(cfg.stacks):
            feat = self.features[s](self.hourglasses[s](x))  # (N, f, S/4, S/4)
            pred = self.heads[s](feat)  # (N, J, S/4, S/4)
            preds.append(pred)
            if s < cfg.stacks - 1:
                passed = self.merge_preds[s](pred) + self.merge_features[s](feat)  # (N, f, S/4, S/4)
                x = w[s] * x + w[s + 1] * passed if merge else x + passed
        if w is not None and cfg.output_mode == "sum":
            # the prediction is the weighted sum of every stack's heatmaps, in the last slot
            preds[-1] = sum(ws * p for ws, p in zip(w, preds))  # (N, J, S/4, S/4)
        return torch.stack(preds, dim=1)  # (N, stacks, J, S/4, S/4)


def build_model(config: HourglassConfig) -> StackedHourglass:
    return StackedHourglass(config)
