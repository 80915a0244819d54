import torch

from hourglass.config import HourglassConfig, StemConfig
from hourglass.costs import costs, count_params
from hourglass.designs import load_designs
from hourglass.model import build_model


def test_baseline_costs_match_the_flop_counter():
    c = costs(HourglassConfig())
    assert c.params == 6_570_400
    # 16.7 GFLOP forward at 256x256 per torch's FlopCounter (issue figure), counted on meta.
    assert 16.6e9 < c.flops < 16.7e9
    assert c.layers > 100 and c.ops_per_step > c.layers


def test_costs_of_a_model_do_not_touch_its_weights():
    cfg = HourglassConfig(features=16, depth=1, input_size=16, stem=StemConfig(channels=4))
    model = build_model(cfg)
    before = [p.detach().clone() for p in model.parameters()]
    c = costs(model, time_steps=1)
    assert c.params == count_params(model) and c.step_time_s > 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_separable_designs_are_smaller_but_have_more_layers():
    d = {n: costs(c) for n, c in load_designs(input_size=64).items()}
    assert d["dwsep_all"].params < d["baseline"].params / 2
    assert d["dwsep_all"].layers > d["baseline"].layers
    assert d["dwsep_all"].ops_per_step > d["baseline"].ops_per_step
    assert d["conv_two"].flops > d["baseline"].flops
