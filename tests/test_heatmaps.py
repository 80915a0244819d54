import numpy as np
import pytest
import torch

from hourglass.data.heatmaps import decode_heatmaps, heatmap_loss, render_heatmaps


def _reference(kp, present, size, sigma):
    """Direct per-pixel formula, for comparison only."""
    ys, xs = np.mgrid[0:size, 0:size]
    out = np.zeros((*present.shape, size, size))
    for n, j in zip(*np.nonzero(present)):
        out[n, j] = np.exp(-((xs - kp[n, j, 0]) ** 2 + (ys - kp[n, j, 1]) ** 2) / (2 * sigma**2))
    return out


def test_render_matches_gaussian_formula_and_zeroes_missing():
    rng = np.random.default_rng(0)
    kp = rng.uniform(-2, 18, (3, 5, 2))
    present = rng.random((3, 5)) < 0.7
    kp[~present] = np.nan  # missing joints may hold anything
    maps = render_heatmaps(kp, present, 16, sigma=1.5)
    assert maps.shape == (3, 5, 16, 16) and maps.dtype == torch.float32
    np.testing.assert_allclose(maps.numpy(), _reference(np.nan_to_num(kp), present, 16, 1.5), atol=1e-6)
    assert torch.all(maps[torch.from_numpy(~present)] == 0)


def test_peak_is_one_at_integer_position_and_decodes_back():
    kp = torch.tensor([[[3.0, 7.0], [10.0, 2.0]]])
    maps = render_heatmaps(kp, torch.ones(1, 2, dtype=torch.bool), 16)
    assert maps[0, 0, 7, 3] == pytest.approx(1.0) and maps[0, 1, 2, 10] == pytest.approx(1.0)
    torch.testing.assert_close(decode_heatmaps(maps), kp)


def test_subpixel_position_and_sigma_change_the_target():
    kp = torch.tensor([[[5.5, 5.0]]])
    one = torch.ones(1, 1, dtype=torch.bool)
    maps = render_heatmaps(kp, one, 12, sigma=1.0)
    assert maps[0, 0, 5, 5] == pytest.approx(maps[0, 0, 5, 6].item())  # symmetric around 5.5
    wide = render_heatmaps(kp, one, 12, sigma=2.0)
    assert wide.sum() > 3 * maps.sum()


def test_loss_ignores_missing_joints_and_weights_stacks():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 8, 8)
    pred = torch.rand(2, 2, 3, 8, 8)
    present = torch.tensor([[True, False, True], [True, True, False]])
    loss = heatmap_loss(pred, target, present, (0.3, 0.7))
    mse = ((pred - target[:, None]) ** 2).mean(dim=(-2, -1))  # (N, S, J)
    per_stack = [mse[:, s][present].mean() for s in range(2)]
    assert loss.item() == pytest.approx(0.3 * per_stack[0].item() + 0.7 * per_stack[1].item(), rel=1e-6)
    changed = pred.clone()
    changed[0, :, 1] += 5.0  # a missing joint: no effect
    assert heatmap_loss(changed, target, present, (0.3, 0.7)).item() == pytest.approx(loss.item(), rel=1e-6)
    changed[0, :, 0] += 5.0  # a present joint: loss grows
    assert heatmap_loss(changed, target, present, (0.3, 0.7)).item() > loss.item()


def test_loss_with_no_present_joint_is_zero_and_differentiable():
    pred = torch.rand(1, 1, 2, 4, 4, requires_grad=True)
    loss = heatmap_loss(pred, torch.rand(1, 2, 4, 4), torch.zeros(1, 2, dtype=torch.bool), (1.0,))
    loss.backward()
    assert loss.item() == 0 and torch.all(pred.grad == 0)


def test_loss_rejects_wrong_number_of_weights():
    with pytest.raises(ValueError, match="expected"):
        heatmap_loss(
            torch.rand(1, 2, 1, 4, 4), torch.rand(1, 1, 4, 4), torch.ones(1, 1, dtype=torch.bool), (1.0,)
        )
