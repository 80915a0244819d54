"""Residual-block designs for the hourglass, in a registry (name -> spec), like timm's byobnet.

Every block maps ``(N, in_ch, H, W) -> (N, out_ch, H, W)`` for any channel pair, and is
pre-activation (BN -> ReLU -> conv), as in Newell et al. Knobs that are orthogonal to the
design (``dilation``, ``separable``, ``skip``) are read from :class:`BlockConfig`; which
knobs a design accepts is declared as data in its :class:`BlockSpec`, so config validation
and the search spaces ask the registry instead of hard-coding names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from hourglass.errors import ConfigError
from hourglass.validate import check_choice

__all__ = ["BLOCKS", "BlockSpec", "BlockConfig", "create_block", "conv_unit", "DILATIONS", "SEPARABLE"]

DILATIONS = (1, 2, 3, 4)
SEPARABLE = ("none", "mid", "all")


@dataclass(frozen=True)
class BlockConfig:
    """Which block design, and its orthogonal knobs.

    name: a key of :data:`BLOCKS`.
    dilation: dilation of the block's (first) 3x3 conv.
    separable: ``none``; ``mid`` = only the 3x3 is depthwise-separable; ``all`` = every
        conv becomes a 3x3 depthwise-separable one.
    skip: residual connection on/off.
    rates: dilation rates of the parallel branches (``multidilated`` only).
    """

    name: str = "bottleneck"
    dilation: int = 1
    separable: str = "none"
    skip: bool = True
    rates: tuple[int, ...] = (1, 2, 3, 4)

    def __post_init__(self) -> None:
        check_choice("name", self.name, BLOCKS)
        spec = BLOCKS[self.name]
        check_choice("dilation", self.dilation, DILATIONS if spec.dilation else (1,))
        check_choice("separable", self.separable, spec.separable)
        if not self.rates:
            raise ConfigError("rates: expected a non-empty list of dilation rates, but got []")
        for r in self.rates:
            check_choice("rates", r, DILATIONS)


def conv_unit(
    in_ch: int, out_ch: int, kernel: int, *, dilation: int = 1, separable: bool = False
) -> nn.Sequential:
    """BN -> ReLU -> conv. ``separable`` makes it a 3x3 depthwise conv followed by a 1x1.

    A separable unit is always 3x3 depthwise, also where the dense conv was 1x1: that is
    how the reference study turned "every conv" of the bottleneck into DW-separable ones.
    """
    layers: list[nn.Module] = [nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True)]
    if separable:
        layers += [
            nn.Conv2d(in_ch, in_ch, 3, padding=dilation, dilation=dilation, groups=in_ch),
            nn.Conv2d(in_ch, out_ch, 1),
        ]
    else:
        pad = dilation * (kernel - 1) // 2
        layers.append(nn.Conv2d(in_ch, out_ch, kernel, padding=pad, dilation=dilation))
    return nn.Sequential(*layers)


class Residual(nn.Module):
    """``body(x) + skip(x)``; skip is identity, a 1x1 projection, or absent (``skip=False``)."""

    def __init__(self, body: nn.Module, in_ch: int, out_ch: int, skip: bool) -> None:
        super().__init__()
        self.body = body
        self.skip: nn.Module | None
        if not skip:
            self.skip = None  # no projection either: no parameter that never gets a gradient
        elif in_ch == out_ch:
            self.skip = nn.Identity()
        else:
            self.skip = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)  # (N, out, H, W)
        return out if self.skip is None else out + self.skip(x)


def bottleneck(in_ch: int, out_ch: int, cfg: BlockConfig) -> nn.Module:
    """Newell's residual: 1x1 (in -> out/2), 3x3 (out/2), 1x1 (out/2 -> out)."""
    mid = out_ch // 2
    every = cfg.separable == "all"
    body = nn.Sequential(
        conv_unit(in_ch, mid, 1, separable=every),
        conv_unit(mid, mid, 3, dilation=cfg.dilation, separable=cfg.separable in ("mid", "all")),
        conv_unit(mid, out_ch, 1, separable=every),
    )
    return Residual(body, in_ch, out_ch, cfg.skip)


def conv2(in_ch: int, out_ch: int, cfg: BlockConfig) -> nn.Module:
    """Two 3x3 convs (in -> out/2 -> out), no 1x1s; ``dilation`` applies to the first one."""
    mid = out_ch // 2
    sep = cfg.separable == "all"
    body = nn.Sequential(
        conv_unit(in_ch, mid, 3, dilation=cfg.dilation, separable=sep),
        conv_unit(mid, out_ch, 3, separable=sep),
    )
    return Residual(body, in_ch, out_ch, cfg.skip)


class _MultiDilated(nn.Module):
    """Parallel depthwise 3x3 branches, one dilation rate per channel group."""

    def __init__(self, channels: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        self.pre = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        group = channels // len(rates)
        self.group = group
        self.branches = nn.ModuleList(
            nn.Conv2d(group, group, 3, padding=r, dilation=r, groups=group) for r in rates
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(self.pre(x), self.group, dim=1)  # G x (N, C/G, H, W)
        return torch.cat([b(p) for b, p in zip(self.branches, parts)], dim=1)  # (N, C, H, W)


def multidilated(in_ch: int, out_ch: int, cfg: BlockConfig) -> nn.Module:
    """Multi-dilated light residual block (Kim & Lee, 2020): 1x1 reduce to out/2, depthwise
    3x3 branches at ``cfg.rates`` over equal channel groups, 1x1 fuse to ``out``."""
    mid = out_ch // 2
    body = nn.Sequential(
        conv_unit(in_ch, mid, 1),
        _MultiDilated(mid, cfg.rates),
        conv_unit(mid, out_ch, 1),
    )
    return Residual(body, in_ch, out_ch, cfg.skip)


@dataclass(frozen=True)
class BlockSpec:
    """A block design and the knobs it understands (declared as data, checked by the config)."""

    factory: Callable[[int, int, BlockConfig], nn.Module]
    separable: tuple[str, ...] = ("none",)
    dilation: bool = True
    rates: bool = False
    summary: str = ""

    @property
    def knobs(self) -> tuple[str, ...]:
        """The :class:`BlockConfig` knobs this design reads; the others keep their defaults
        and change nothing (a bottleneck has no ``rates``)."""
        return (
            ("dilation",) * self.dilation
            + ("separable",) * (len(self.separable) > 1)
            + ("skip",)
            + ("rates",) * self.rates
        )

    def width_multiple(self, cfg: BlockConfig) -> int:
        """Every output width must be a multiple of this (mid = out/2, split into groups)."""
        return 2 * len(cfg.rates) if self.rates else 2


BLOCKS: dict[str, BlockSpec] = {
    "bottleneck": BlockSpec(
        bottleneck,
        separable=("none", "mid", "all"),
        summary="pre-activation 1x1 -> 3x3 -> 1x1 residual (Newell et al. 2016)",
    ),
    "conv2": BlockSpec(
        conv2,
        separable=("none", "all"),
        summary="two 3x3 convs, no bottleneck 1x1s",
    ),
    "multidilated": BlockSpec(
        multidilated,
        dilation=False,
        rates=True,
        summary="1x1 -> depthwise 3x3 at several dilation rates -> 1x1 (Kim & Lee 2020)",
    ),
}


def create_block(
    block: str | Callable[[int, int, BlockConfig], nn.Module], in_ch: int, out_ch: int, cfg: BlockConfig
) -> nn.Module:
    """Build a block by registry name or from a factory callable."""
    factory = BLOCKS[block].factory if isinstance(block, str) else block
    return factory(in_ch, out_ch, cfg)
