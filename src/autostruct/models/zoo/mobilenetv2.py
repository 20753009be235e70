"""MobileNetV2 (Sandler et al. 2018): inverted residual blocks (1x1 expand, 3x3 depthwise, 1x1 linear
projection) with identity skips where shapes match, a 1x1 conv to 1280 channels, pooling and a Linear layer.

Downsampling slots are the stem and the four stride-2 stages; small inputs drop the earliest (32x32 keeps four
and ends at 2x2; 224x224 uses all five and ends at 7x7). Unlike the paper, the width multiplier also scales the
last 1280-channel conv, so narrow models used in tests and pruning searches stay narrow throughout.
"""

from __future__ import annotations

import torch
from torch import nn

from autostruct.models.registry import register_model
from autostruct.models.zoo._common import conv_bn_relu, init_weights, plan_downsampling, scale_channels

# (expansion t, output channels c, repeats n, first stride s) as in Table 2 of the paper.
_STAGES: list[tuple[int, int, int, int]] = [
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
]  # fmt: skip


class InvertedResidual(nn.Module):
    """1x1 expand (skipped when t=1) -> 3x3 depthwise -> 1x1 linear projection, plus identity when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv_bn_relu(in_channels, hidden, 1, activation=nn.ReLU6))
        layers.append(conv_bn_relu(hidden, hidden, 3, stride=stride, groups=hidden, activation=nn.ReLU6))
        layers.append(conv_bn_relu(hidden, out_channels, 1, activation=None))
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_residual:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 with a width multiplier."""

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width: float = 1.0
    ) -> None:
        super().__init__()
        divisor = 1 if width == 1.0 else 8
        slots = iter(plan_downsampling(image_size, 1 + sum(s == 2 for *_, s in _STAGES), min_size=2))
        stem_out = scale_channels(32, width, divisor)
        self.stem = conv_bn_relu(
            in_channels, stem_out, 3, stride=2 if next(slots) else 1, activation=nn.ReLU6
        )
        blocks: list[nn.Module] = []
        channels = stem_out
        for t, c, n, s in _STAGES:
            out = scale_channels(c, width, divisor)
            first_stride = (2 if next(slots) else 1) if s == 2 else 1
            for i in range(n):
                blocks.append(InvertedResidual(channels, out, first_stride if i == 0 else 1, t))
                channels = out
        self.features = nn.Sequential(*blocks)
        last = scale_channels(1280, width, divisor)
        self.head = conv_bn_relu(channels, last, 1, activation=nn.ReLU6)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(last, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.features(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


@register_model("mobilenetv2")
def mobilenetv2(
    num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width: float = 1.0
) -> MobileNetV2:
    """MobileNetV2 (3.5M params at width 1 with 1000 classes; 2.2M with 10)."""
    return MobileNetV2(num_classes, in_channels, image_size, width)
