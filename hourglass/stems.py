"""Stems: full-resolution image -> features at heatmap resolution (1/4), in a registry.

All stems are ``conv(k, stride) -> BN -> ReLU -> block -> [maxpool] -> block -> block``; they
differ in the first conv and whether a max-pool follows, and the blocks follow the chosen
block design. Where the stem widens to ``features`` is its *layout* (:data:`LAYOUTS`):

- ``newell``: ``c -> 2c``, pool, ``2c -> 2c``, ``2c -> features`` (Newell et al.'s Torch
  code; 6,570,400 parameters for the 2-stack baseline);
- ``pytorch_pose``: ``c -> 2c``, pool, ``2c -> features``, ``features -> features`` (the
  ``HourglassNet`` of bearpaw's pytorch-pose, the network of the reference study; 6,730,912).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hourglass.blocks import BlockConfig, create_block
from hourglass.validate import check_choice, check_int

__all__ = ["STEMS", "LAYOUTS", "StemSpec", "StemConfig", "Stem", "stem_widths"]


@dataclass(frozen=True)
class StemSpec:
    kernel: int
    stride: int
    pool: bool
    summary: str = ""

    @property
    def padding(self) -> int:
        return (self.kernel - 1) // 2 if self.stride < self.kernel else 0


STEMS: dict[str, StemSpec] = {
    "conv7": StemSpec(7, 2, True, "7x7 stride-2 conv, max-pool (the baseline)"),
    "patch3": StemSpec(3, 2, True, "3x3 stride-2 conv in place of the 7x7 (the study's patchify)"),
    "patch4": StemSpec(4, 4, False, "4x4 stride-4 patchify conv, no max-pool (ConvNeXt)"),
}


# layout -> what it is; the widths themselves are in stem_widths (one place)
LAYOUTS: dict[str, str] = {
    "newell": "c -> 2c, pool, 2c -> 2c, 2c -> f (Newell's Torch code)",
    "pytorch_pose": "c -> 2c, pool, 2c -> f, f -> f (bearpaw's pytorch-pose, the reference study)",
}


@dataclass(frozen=True)
class StemConfig:
    """name: a key of :data:`STEMS`; channels: width of its first conv; layout: where the
    stem widens to ``features``, a key of :data:`LAYOUTS` (``newell``, the default, or
    ``pytorch_pose``, the reference study's network)."""

    name: str = "conv7"
    channels: int = 64
    layout: str = "newell"

    def __post_init__(self) -> None:
        check_choice("name", self.name, STEMS)
        check_choice("layout", self.layout, LAYOUTS)
        check_int("channels", self.channels, low=1)


def stem_widths(layout: str, channels: int, features: int) -> tuple[tuple[int, int], ...]:
    """(in, out) widths of the stem's three blocks for ``layout`` (a key of :data:`LAYOUTS`)."""
    c = channels
    if layout == "pytorch_pose":
        return (c, 2 * c), (2 * c, features), (features, features)
    return (c, 2 * c), (2 * c, 2 * c), (2 * c, features)


class Stem(nn.Module):
    def __init__(self, stem: StemConfig, block: BlockConfig, features: int) -> None:
        super().__init__()
        spec = STEMS[stem.name]
        c = stem.channels
        w1, w2, w3 = stem_widths(stem.layout, c, features)
        self.conv = nn.Sequential(
            nn.Conv2d(3, c, spec.kernel, stride=spec.stride, padding=spec.padding),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
        )
        self.res1 = create_block(block.name, *w1, block)
        self.pool = nn.MaxPool2d(2, 2) if spec.pool else nn.Identity()
        self.res2 = create_block(block.name, *w2, block)
        self.res3 = create_block(block.name, *w3, block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)  # (N, c, H/s, W/s); s = 2 (conv7, patch3) or 4 (patch4)
        x = self.pool(self.res1(x))  # (N, 2c, H/4, W/4)
        x = self.res2(x)  # (N, 2c, H/4, W/4) newell; (N, features, H/4, W/4) pytorch_pose
        return self.res3(x)  # (N, features, H/4, W/4)
