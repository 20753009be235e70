"""Small test-local networks with the structures pruning must handle: residual adds, depthwise and grouped
convs, concatenated branches, squeeze-excitation, a flatten into a linear head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
    )


class ResidualNet(nn.Module):
    """Stem + two residual blocks (one with a strided 1x1 shortcut) + pooled linear head."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 8):
        super().__init__()
        self.stem = conv_bn(in_channels, width)
        self.a1 = conv_bn(width, width)
        self.a2 = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width))
        self.b1 = conv_bn(width, 2 * width, stride=2)
        self.b2 = nn.Sequential(nn.Conv2d(2 * width, 2 * width, 3, 1, 1, bias=False), nn.BatchNorm2d(2 * width))
        self.short = nn.Sequential(nn.Conv2d(width, 2 * width, 1, 2, bias=False), nn.BatchNorm2d(2 * width))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = F.relu(x + self.a2(self.a1(x)))
        x = F.relu(self.short(x) + self.b2(self.b1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class ConcatNet(nn.Module):
    """Two branches concatenated, then a conv on the concat; flatten into a two-layer head."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 8):
        super().__init__()
        self.stem = conv_bn(in_channels, width)
        self.left = conv_bn(width, width, k=1)
        self.right = conv_bn(width, 2 * width, k=3)
        self.mix = conv_bn(3 * width, 2 * width, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 4, 32), nn.ReLU(), nn.Linear(32, num_classes))

    def forward(self, x):
        x = self.stem(x)
        x = torch.cat([self.left(x), self.right(x)], dim=1)
        return self.head(self.pool(self.mix(x)))


class GroupedNet(nn.Module):
    """Grouped 3x3 conv (groups=4) between 1x1 convs, then a depthwise-separable block."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16):
        super().__init__()
        self.stem = conv_bn(in_channels, width)
        self.grouped = conv_bn(width, width, groups=4)
        self.expand = conv_bn(width, 2 * width, k=1)
        self.dw = conv_bn(2 * width, 2 * width, stride=2, groups=2 * width)
        self.project = nn.Sequential(nn.Conv2d(2 * width, width, 1, bias=False), nn.BatchNorm2d(width))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.grouped(x)
        x = self.project(self.dw(self.expand(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class SENet(nn.Module):
    """Squeeze-excitation on a residual stage: the gate multiplies the block's channels."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16):
        super().__init__()
        self.stem = conv_bn(in_channels, width)
        self.conv = conv_bn(width, width)
        self.fc1 = nn.Conv2d(width, width // 4, 1)
        self.fc2 = nn.Conv2d(width // 4, width, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        x = self.stem(x)
        y = self.conv(x)
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(self.pool(y)))))
        x = x + y * gate
        return self.fc(torch.flatten(self.pool(x), 1))


class LinearOnly(nn.Module):
    """No hidden layer at all: nothing to prune."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.fc = nn.Linear(in_channels * 8 * 8, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(x, 1))


LOCAL_NETS = {"residual": ResidualNet, "concat": ConcatNet, "grouped": GroupedNet, "se": SENet}
