"""MobileNet v1 (Howard et al. 2017): a 3x3 stem, then 13 depthwise-separable blocks (3x3 depthwise conv-BN-ReLU,
1x1 pointwise conv-BN-ReLU), global average pooling and a Linear classifier.

Downsampling slots are the stem and the four stride-2 blocks; small inputs drop the earliest (32x32 keeps the
last four and ends at 2x2, the usual CIFAR variant; 224x224 uses all five and ends at 7x7).
"""

from __future__ import annotations

import torch
from torch import nn

from autostruct.models.registry import register_model
from autostruct.models.zoo._common import conv_bn_relu, init_weights, plan_downsampling, scale_channels

# (output channels, stride at full resolution) of the 13 separable blocks.
_BLOCKS: list[tuple[int, int]] = [
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
]  # fmt: skip


class DepthwiseSeparable(nn.Module):
    """Depthwise 3x3 conv-BN-ReLU followed by pointwise 1x1 conv-BN-ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.depthwise = conv_bn_relu(in_channels, in_channels, 3, stride=stride, groups=in_channels)
        self.pointwise = conv_bn_relu(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class MobileNet(nn.Module):
    """MobileNet v1 with a width multiplier."""

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width: float = 1.0
    ) -> None:
        super().__init__()
        divisor = 1 if width == 1.0 else 8
        slots = iter(plan_downsampling(image_size, 1 + sum(s == 2 for _, s in _BLOCKS), min_size=2))
        stem_out = scale_channels(32, width, divisor)
        self.stem = conv_bn_relu(in_channels, stem_out, 3, stride=2 if next(slots) else 1)
        blocks: list[nn.Module] = []
        channels = stem_out
        for out, stride in _BLOCKS:
            out = scale_channels(out, width, divisor)
            if stride == 2:
                stride = 2 if next(slots) else 1
            blocks.append(DepthwiseSeparable(channels, out, stride))
            channels = out
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(self.stem(x)))
        return self.classifier(torch.flatten(x, 1))


@register_model("mobilenet")
def mobilenet(
    num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width: float = 1.0
) -> MobileNet:
    """MobileNet v1 (4.2M params at width 1 with 1000 classes; 3.2M with 10)."""
    return MobileNet(num_classes, in_channels, image_size, width)
