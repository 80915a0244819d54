"""The textbook yardstick network is the same network as our baseline."""

import torch

from hourglass.config import HourglassConfig, StemConfig
from hourglass.costs import count_params
from hourglass.model import build_model
from hourglass.reference import ReferenceHourglass, reference_train_step


def _shapes(model: torch.nn.Module) -> list[tuple[int, ...]]:
    return sorted(tuple(p.shape) for p in model.parameters())


def test_reference_has_the_baselines_parameters_layer_by_layer():
    ref = ReferenceHourglass()
    ours = build_model(HourglassConfig())
    assert count_params(ref) == 6_570_400 == count_params(ours)
    assert _shapes(ref) == _shapes(ours)  # not only the total: the same set of tensors
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in ref.modules()) == sum(
        isinstance(m, torch.nn.BatchNorm2d) for m in ours.modules()
    )


def test_reference_in_the_pytorch_pose_layout_is_the_seed_baseline():
    ref = ReferenceHourglass(layout="pytorch_pose")
    ours = build_model(HourglassConfig(stem=StemConfig(layout="pytorch_pose")))
    assert count_params(ref) == 6_730_912 == count_params(ours)
    assert _shapes(ref) == _shapes(ours)


def test_reference_output_shape_matches_ours():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    ref = ReferenceHourglass()(x)
    ours = build_model(HourglassConfig(input_size=64))(x)
    assert ref.shape == ours.shape == (2, 2, 16, 16, 16)
    small = ReferenceHourglass(stacks=3, features=32, depth=2, joints=5)
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 3, 5, 8, 8)
    assert count_params(small) == count_params(
        build_model(HourglassConfig(stacks=3, features=32, depth=2, joints=5, input_size=32))
    )


def test_reference_train_step_learns(one_thread):
    torch.manual_seed(0)
    model = ReferenceHourglass(stacks=2, features=16, depth=1, joints=4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, target = torch.randn(4, 3, 16, 16), torch.rand(4, 4, 4, 4)
    losses = [float(reference_train_step(model, opt, x, target)) for _ in range(15)]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < 0.5 * losses[0]
