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
        stacks=stacks,
        features=16,
        depth=2,
        joints=5,
        input_size=32,
        block=BlockConfig(block, **knobs),
        stem=StemConfig(stem, channels=8),
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


@pytest.mark.parametrize(
    "knobs",
    [
        {"separable": "mid"},
        {"separable": "all"},
        {"dilation": 3},
        {"skip": False},
    ],
)
def test_bottleneck_knobs_change_the_network(knobs):
    plain, varied = (
        build_model(_tiny("bottleneck", "conv7", 1)),
        build_model(_tiny("bottleneck", "conv7", 1, **knobs)),
    )
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
        "baseline",
        "hg_weights_03_07",
        "hg_weights_07_03",
        "dilated",
        "patchify",
        "noskip",
        "dwsep_all",
        "dwsep_mid",
        "dwsep_two",
        "dwsep_two_dilated",
        "conv_two",
    ]
    # the study's network: bearpaw's pytorch-pose HourglassNet (not Newell's HourglassConfig())
    assert designs["baseline"] == HourglassConfig(stem=StemConfig(layout="pytorch_pose"))
    # its weighted stack outputs change the forward pass; the loss keeps weight 1 per stack
    assert designs["hg_weights_03_07"].output_weights == (0.3, 0.7)
    assert designs["hg_weights_03_07"].output_mode == "sum"
    assert designs["hg_weights_03_07"].loss_weights == (1.0, 1.0)
    assert designs["dwsep_two_dilated"].block == BlockConfig("conv2", dilation=2, separable="all")


def test_reference_layout_baseline_is_the_studys_network():
    """bearpaw's HourglassNet(Bottleneck, num_stacks=2, num_blocks=1, num_classes=16)."""
    model = build_model(load_designs()["baseline"])
    assert count_params(model) == 6_730_912
    stem = model.stem
    # (in, out) of each stem residual, read off its last 1x1 conv and its projection
    widths = [
        (b.body[0][0].num_features, b.body[-1][-1].out_channels) for b in (stem.res1, stem.res2, stem.res3)
    ]
    assert widths == [(64, 128), (128, 256), (256, 256)]
    assert [b.body[0][-1].out_channels for b in (stem.res1, stem.res2, stem.res3)] == [64, 128, 128]  # mid
    assert isinstance(stem.res3.skip, torch.nn.Identity) and stem.res2.skip.kernel_size == (1, 1)
    assert stem.conv[0].kernel_size == (7, 7) and stem.conv[0].stride == (2, 2)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.bias is not None for c in convs)  # every conv has a bias
    head = model.features[0][1]  # after the residual: conv -> BN -> ReLU
    assert [type(m).__name__ for m in head] == ["Conv2d", "BatchNorm2d", "ReLU"]
    shapes = []
    for part in (stem.conv, stem.res1, stem.pool, stem.res2, stem.res3):
        part.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
    with torch.no_grad():
        stem.eval()(torch.randn(1, 3, 256, 256))
    assert shapes == [
        (1, 64, 128, 128),
        (1, 128, 128, 128),
        (1, 128, 64, 64),
        (1, 256, 64, 64),
        (1, 256, 64, 64),
    ]


def test_newell_layout_stays_the_default():
    newell = build_model(HourglassConfig())
    assert HourglassConfig().stem.layout == "newell" and count_params(newell) == 6_570_400
    widths = [
        (b.body[0][0].num_features, b.body[-1][-1].out_channels)
        for b in (newell.stem.res1, newell.stem.res2, newell.stem.res3)
    ]
    assert widths == [(64, 128), (128, 128), (128, 256)]


def _twins(**changes):
    """A plain tiny 2-stack model and one with ``changes``, with identical weights."""
    base = HourglassConfig(features=16, depth=2, joints=5, input_size=32, stem=StemConfig(channels=8))
    torch.manual_seed(0)
    plain = build_model(base).eval()
    varied = build_model(base.replace(**changes)).eval()
    varied.load_state_dict(plain.state_dict())
    return plain, varied


def test_forward_weighted_sum_changes_the_prediction_and_loss_weights_do_not():
    x = torch.randn(2, 3, 32, 32)
    plain, summed = _twins(output_weights=(0.3, 0.7))
    _, loss_weighted = _twins(stack_weights=(0.3, 0.7))
    with torch.no_grad():
        h = plain(x)  # (N, 2, J, 8, 8): h_1, h_2
        y = summed(x)
        assert torch.equal(loss_weighted(x), h)  # the loss knob leaves the forward pass alone
    assert not torch.allclose(y[:, -1], h[:, -1])  # the prediction changed ...
    torch.testing.assert_close(y[:, -1], 0.3 * h[:, 0] + 0.7 * h[:, 1])  # ... to 0.3 h_1 + 0.7 h_2
    torch.testing.assert_close(y[:, 0], h[:, 0])  # the first stack's output is still h_1


def test_merge_mode_weights_what_passes_between_hourglasses():
    x = torch.randn(2, 3, 32, 32)
    plain, merged = _twins(output_weights=(0.3, 0.7), output_mode="merge")
    _, ones = _twins(output_weights=(1.0, 1.0), output_mode="merge")
    with torch.no_grad():
        h, m = plain(x), merged(x)
        torch.testing.assert_close(ones(x), h)  # weights 1: Newell's x + F f + P h
    torch.testing.assert_close(m[:, 0], h[:, 0])  # the first hourglass sees the same input
    assert not torch.allclose(m[:, 1], h[:, 1])  # the second gets 0.3 x_1 + 0.7 (F f_1 + P h_1)


@pytest.mark.parametrize("block", list(BLOCKS))
def test_pytorch_pose_layout_trains_with_every_block(block):
    cfg = _tiny(block, "conv7", 2).replace(
        stem=StemConfig(channels=8, layout="pytorch_pose"), output_weights=(0.5, 0.5)
    )
    model = build_model(cfg)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 2, 5, 8, 8)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
