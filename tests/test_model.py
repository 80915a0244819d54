import itertools

import pytest
import torch

from hourglass.blocks import BLOCKS
from hourglass.config import BlockConfig, HourglassConfig, StemConfig
from hourglass.costs import count_params
from hourglass.designs import load_designs
from hourglass.model import build_model
from hourglass.stems import STEMS


def test_canonical_baseline_has_exactly_6570400_parameters():
    assert count_params(build_model(HourglassConfig())) == 6_570_400


def test_every_parameter_gets_a_gradient_in_the_baseline():
    cfg = HourglassConfig(features=32, depth=2, input_size=64, stem=StemConfig(channels=8))
    model = build_model(cfg)
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None]
    assert dead == []


def _tiny(block: str, stem: str, stacks: int, **knobs) -> HourglassConfig:
    return HourglassConfig(
        stacks=stacks, features=16, depth=2, joints=5, input_size=32,
        block=BlockConfig(block, **knobs), stem=StemConfig(stem, channels=8),
    )


@pytest.mark.parametrize("block, stem, stacks", list(itertools.product(BLOCKS, STEMS, (1, 2))))
def test_every_block_stem_and_stack_count_trains(block, stem, stacks):
    torch.manual_seed(0)
    cfg = _tiny(block, stem, stacks)
    model = build_model(cfg)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, stacks, 5, 8, 8)
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("knobs", [
    {"separable": "mid"}, {"separable": "all"}, {"dilation": 3}, {"skip": False},
])
def test_bottleneck_knobs_change_the_network(knobs):
    plain, varied = build_model(_tiny("bottleneck", "conv7", 1)), build_model(_tiny("bottleneck", "conv7", 1, **knobs))
    x = torch.randn(1, 3, 32, 32)
    assert varied(x).shape == plain(x).shape
    if "dilation" in knobs:
        dil = {m.dilation for m in varied.modules() if isinstance(m, torch.nn.Conv2d)}
        assert (3, 3) in dil
    else:
        assert count_params(varied) != count_params(plain)


def test_blocks_work_for_any_channel_pair():
    for name in BLOCKS:
        cfg = BlockConfig(name, rates=(1, 2))
        for cin, cout in [(3, 8), (8, 8), (12, 4)]:
            block = BLOCKS[name].factory(cin, cout, cfg)
            assert block(torch.randn(1, cin, 6, 6)).shape == (1, cout, 6, 6)


def test_seed_designs_are_the_reference_studys():
    designs = load_designs()
    assert list(designs) == [
        "baseline", "hg_weights_03_07", "hg_weights_07_03", "dilated", "patchify", "noskip",
        "dwsep_all", "dwsep_mid", "dwsep_two", "dwsep_two_dilated", "conv_two",
    ]
    assert designs["baseline"] == HourglassConfig()
    assert designs["hg_weights_03_07"].loss_weights == (0.3, 0.7)
    assert designs["dwsep_two_dilated"].block == BlockConfig("conv2", dilation=2, separable="all")
