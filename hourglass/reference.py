"""A plain, textbook stacked hourglass (Newell et al. 2016), used only as a speed yardstick.

``hpo bench`` times our training step against this one in the same run, so every figure
is also a ratio to "the network as public code writes it": fp32, NCHW, no compile, no
autocast, ``nn.Upsample``, a plain ``MSELoss`` summed over stacks and default Adam. It is
written from the paper's description with its own small modules on purpose, sharing no
code with :mod:`hourglass.model`, so a speed-up in our model cannot leak into the
yardstick. With the defaults it has exactly the 6,570,400 parameters of ``HourglassConfig()``;
with ``layout="pytorch_pose"`` the 6,730,912 of the reference study's baseline design.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Residual", "Hourglass", "ReferenceHourglass", "reference_train_step"]


class Residual(nn.Module):
    """Pre-activation bottleneck: BN-ReLU-conv1x1 (c/2), BN-ReLU-conv3x3, BN-ReLU-conv1x1 + skip."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = cout // 2
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, mid, 1)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, cout, 1)
        self.relu = nn.ReLU()
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu(self.bn1(x)))  # (N, cout/2, H, W)
        out = self.conv2(self.relu(self.bn2(out)))  # (N, cout/2, H, W)
        out = self.conv3(self.relu(self.bn3(out)))  # (N, cout, H, W)
        residual = x if self.skip is None else self.skip(x)
        return out + residual


class Hourglass(nn.Module):
    """``up1(x) + upsample(low3(low2(low1(pool(x)))))``, recursive in ``depth``."""

    def __init__(self, depth: int, f: int) -> None:
        super().__init__()
        self.up1 = Residual(f, f)
        self.pool = nn.MaxPool2d(2, 2)
        self.low1 = Residual(f, f)
        self.low2 = Hourglass(depth - 1, f) if depth > 1 else Residual(f, f)
        self.low3 = Residual(f, f)
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up1 = self.up1(x)  # (N, f, H, W)
        low = self.low3(self.low2(self.low1(self.pool(x))))  # (N, f, H/2, W/2)
        return up1 + self.up2(low)  # (N, f, H, W)


class ReferenceHourglass(nn.Module):
    """The 2-stack, 256-feature, depth-4 network: images (N,3,S,S) -> (N, stacks, J, S/4, S/4)."""

    def __init__(
        self, stacks: int = 2, features: int = 256, depth: int = 4, joints: int = 16, layout: str = "newell"
    ) -> None:
        super().__init__()
        f = features
        # pytorch_pose widens to f one residual earlier: r4 128 -> f, r5 f -> f
        mid = f if layout == "pytorch_pose" else 128
        self.stacks = stacks
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.r1 = Residual(64, 128)
        self.pool = nn.MaxPool2d(2, 2)
        self.r4 = Residual(128, mid)
        self.r5 = Residual(mid, f)
        self.hg = nn.ModuleList([Hourglass(depth, f) for _ in range(stacks)])
        self.res = nn.ModuleList([Residual(f, f) for _ in range(stacks)])
        self.lin = nn.ModuleList([nn.Conv2d(f, f, 1) for _ in range(stacks)])
        self.lin_bn = nn.ModuleList([nn.BatchNorm2d(f) for _ in range(stacks)])
        self.out = nn.ModuleList([nn.Conv2d(f, joints, 1) for _ in range(stacks)])
        self.merge_feat = nn.ModuleList([nn.Conv2d(f, f, 1) for _ in range(stacks - 1)])
        self.merge_pred = nn.ModuleList([nn.Conv2d(joints, f, 1) for _ in range(stacks - 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # (N, 64, S/2, S/2)
        x = self.pool(self.r1(x))  # (N, 128, S/4, S/4)
        x = self.r5(self.r4(x))  # (N, f, S/4, S/4)
        outputs = []
        for i in range(self.stacks):
            y = self.res[i](self.hg[i](x))  # (N, f, S/4, S/4)
            y = self.relu(self.lin_bn[i](self.lin[i](y)))
            pred = self.out[i](y)  # (N, J, S/4, S/4)
            outputs.append(pred)
            if i < self.stacks - 1:
                x = x + self.merge_feat[i](y) + self.merge_pred[i](pred)
        return torch.stack(outputs, dim=1)  # (N, stacks, J, S/4, S/4)


def reference_train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """One textbook step: MSE of every stack against the same target, summed; Adam.

    images (N, 3, S, S), target (N, J, S/4, S/4). Returns the (detached) loss.
    """
    out = model(images)  # (N, stacks, J, S/4, S/4)
    criterion = nn.MSELoss()
    loss = sum(criterion(out[:, s], target) for s in range(out.shape[1]))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()
