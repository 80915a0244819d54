"""The model config: one frozen dataclass tree, validated once, round-tripping to plain dicts.

The block's and the stem's configs live beside their registries (:mod:`hourglass.blocks`,
:mod:`hourglass.stems`). ``HourglassConfig.from_dict(yaml_dict)`` is the only way user
input becomes a model config; every range and cross-field rule is checked in
``__post_init__`` and reported as a :class:`ConfigError` naming the field and the allowed
values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from hourglass.blocks import BLOCKS, BlockConfig
from hourglass.errors import ConfigError
from hourglass.stems import StemConfig
from hourglass.validate import check_choice, check_float, check_int, from_dict, to_dict

__all__ = ["HourglassConfig", "OUTPUT_MODES", "without_unused_knobs"]

# How ``output_weights`` enter the forward pass (equations in HourglassConfig's docstring).
OUTPUT_MODES = ("sum", "merge")


@dataclass(frozen=True)
class HourglassConfig:
    """A stacked hourglass. The defaults are the canonical 2-stack baseline (6,570,400 params).

    stack_weights: one weight per stack for the intermediate-supervision loss,
        ``loss = sum_s lambda_s * MSE(o_s, target)`` over the model's outputs ``o_s``. They
        apply to the loss only: the forward pass and the evaluated output (the last output)
        do not change. ``None`` means 1.0 for every stack.
    output_weights: one weight ``w_s`` per stack that changes the forward pass, read by
        ``output_mode``; ``None`` (default) is Newell's network. With hourglass ``s``
        giving heatmaps ``h_s`` and features ``f_s`` from input ``x_s``:

        - ``sum``: the prediction is ``y = sum_s w_s * h_s``; the outputs are
          ``(h_1, ..., h_{S-1}, y)``, so ``y`` is what is supervised last and evaluated.
        - ``merge``: what passes to the next hourglass is
          ``x_{s+1} = w_s * x_s + w_{s+1} * (F_s f_s + P_s h_s)`` (Newell: all weights 1);
          the outputs are ``(h_1, ..., h_S)``.
    """

    stacks: int = 2
    features: int = 256
    depth: int = 4
    joints: int = 16
    input_size: int = 256
    block: BlockConfig = field(default_factory=BlockConfig)
    stem: StemConfig = field(default_factory=StemConfig)
    stack_weights: tuple[float, ...] | None = None
    output_weights: tuple[float, ...] | None = None
    output_mode: str = "sum"

    def __post_init__(self) -> None:
        check_int("stacks", self.stacks, low=1, high=16)
        check_int("depth", self.depth, low=1, high=8)
        check_int("joints", self.joints, low=1)
        check_int("features", self.features, low=2)
        check_int("input_size", self.input_size, low=8)
        spec = BLOCKS[self.block.name]
        multiple = spec.width_multiple(self.block)
        if self.features % multiple:
            raise ConfigError(
                f"features: expected a multiple of {multiple} for block {self.block.name!r}, but got "
                f"{self.features}"
            )
        if (2 * self.stem.channels) % multiple:
            raise ConfigError(
                f"stem.channels: expected a multiple of {multiple // 2} for block {self.block.name!r}, but "
                f"got {self.stem.channels}"
            )
        step = 4 * 2**self.depth  # stem downsamples 4x, every hourglass level 2x
        if self.input_size % step:
            raise ConfigError(
                f"input_size: expected a multiple of {step} (4 * 2^depth for depth {self.depth}), but got "
                f"{self.input_size}"
            )
        if self.stack_weights is not None:
            if len(self.stack_weights) != self.stacks:
                raise ConfigError(
                    f"stack_weights: expected {self.stacks} weights (one per stack), but got "
                    f"{list(self.stack_weights)}"
                )
            for w in self.stack_weights:
                check_float("stack_weights", w, low=0.0)
        check_choice("output_mode", self.output_mode, OUTPUT_MODES)
        if self.output_weights is not None:
            if len(self.output_weights) != self.stacks:
                raise ConfigError(
                    f"output_weights: expected {self.stacks} weights (one per stack), but got "
                    f"{list(self.output_weights)}"
                )
            for w in self.output_weights:
                check_float("output_weights", w)

    @property
    def heatmap_size(self) -> int:
        return self.input_size // 4

    @property
    def loss_weights(self) -> tuple[float, ...]:
        return self.stack_weights if self.stack_weights is not None else (1.0,) * self.stacks

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> HourglassConfig:
        return from_dict(cls, data, where)

    def to_dict(self, *, drop_unused: bool = False) -> dict[str, Any]:
        """Plain data; ``drop_unused`` leaves out the block knobs its design does not read
        (what an export or a table shows: loading it back gives the same network)."""
        out = to_dict(self)
        return without_unused_knobs(out) if drop_unused else out

    def replace(self, **changes: Any) -> HourglassConfig:
        return replace(self, **changes)


def without_unused_knobs(model: dict[str, Any]) -> dict[str, Any]:
    """A model dict (as stored on a trial) without the block knobs its design does not read
    (:attr:`hourglass.blocks.BlockSpec.knobs`); an unknown block is left as it is."""
    block = model.get("block")
    spec = BLOCKS.get(block.get("name")) if isinstance(block, dict) else None
    if spec is None:
        return dict(model)
    unused = {f.name for f in fields(BlockConfig)} - {"name", *spec.knobs}
    return {**model, "block": {k: v for k, v in block.items() if k not in unused}}
