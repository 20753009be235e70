"""CIFAR-style ResNets (He et al. 2016, section 4.2): 3 stages of BasicBlocks, 16/32/64 channels, depth 6n+2.

Shortcuts are identity when shapes match and a 1x1 conv + BN ("option B") when the stride or width changes,
so Torch-Pruning sees ordinary layers on every residual path. Inputs larger than 32x32 are first halved in the
stem (strided conv, then max-pools) until they are at most 32x32, so ResNet-56 at 224x224 costs about what it
costs at 28x28; small inputs (down to 8x8) keep both stage strides while the map stays >= 2x2.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from autostruct.models.registry import register_model
from autostruct.models.zoo._common import init_weights, plan_downsampling, scale_channels

_NATURAL_SIZE = 32


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU(inplace=True)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet with ``blocks_per_stage`` BasicBlocks in each of three stages."""

    def __init__(
        self,
        blocks_per_stage: int,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        c1, c2, c3 = (scale_channels(c, width) for c in (16, 32, 64))
        stem_halvings = (
            max(0, math.ceil(math.log2(image_size / _NATURAL_SIZE))) if image_size > _NATURAL_SIZE else 0
        )
        stem: list[nn.Module] = [
            nn.Conv2d(in_channels, c1, 3, stride=2 if stem_halvings else 1, padding=1, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(inplace=True),
        ]
        stem += [nn.MaxPool2d(3, stride=2, padding=1) for _ in range(stem_halvings - 1)]
        self.stem = nn.Sequential(*stem)
        size = math.ceil(image_size / 2**stem_halvings)
        down2, down3 = plan_downsampling(size, 2, min_size=2)
        self.layer1 = self._stage(c1, c1, blocks_per_stage, 1)
        self.layer2 = self._stage(c1, c2, blocks_per_stage, 2 if down2 else 1)
        self.layer3 = self._stage(c2, c3, blocks_per_stage, 2 if down3 else 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c3, num_classes)
        init_weights(self)

    @staticmethod
    def _stage(in_channels: int, out_channels: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [BasicBlock(in_channels, out_channels, stride)]
        layers += [BasicBlock(out_channels, out_channels, 1) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


@register_model("resnet20")
def resnet20(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width: float = 1.0) -> ResNet:
    """ResNet-20 (3 blocks per stage, 0.27M params and 41M MACs at 32x32x3, width 1)."""
    return ResNet(3, num_classes, in_channels, image_size, width)


@register_model("resnet32")
def resnet32(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width: float = 1.0) -> ResNet:
    """ResNet-32 (5 blocks per stage)."""
    return ResNet(5, num_classes, in_channels, image_size, width)


@register_model("resnet56")
def resnet56(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width: float = 1.0) -> ResNet:
    """ResNet-56 (9 blocks per stage, 0.86M params and 127M MACs at 32x32x3, width 1)."""
    return ResNet(9, num_classes, in_channels, image_size, width)
