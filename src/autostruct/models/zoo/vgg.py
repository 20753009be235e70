"""VGG-11 / VGG-16 with batch norm (Simonyan and Zisserman 2015), in the CIFAR form used by AMC and MTACP:
the convolutional trunk, then global average pooling and one Linear layer.

The five 2x2 max-pools are the downsampling slots; a small input drops the earliest ones so the last map is
at least 1x1 (32x32 -> 1x1 uses all five, 28x28 -> 1x1 too with ceil-mode pooling, 8x8 keeps the last three).
"""

from __future__ import annotations

import torch
from torch import nn

from autostruct.models.registry import register_model
from autostruct.models.zoo._common import conv_bn_relu, init_weights, plan_downsampling, scale_channels

# "M" marks a max-pool (a downsampling slot); numbers are conv widths at width 1.
_CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """A VGG trunk from a config list, global average pooling, and a Linear classifier."""

    def __init__(
        self,
        config: list[int | str],
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        pools = iter(plan_downsampling(image_size, config.count("M"), min_size=1))
        layers: list[nn.Module] = []
        channels = in_channels
        for item in config:
            if item == "M":
                if next(pools):
                    layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
                continue
            out = scale_channels(int(item), width)
            layers.append(conv_bn_relu(channels, out, 3))
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


@register_model("vgg11")
def vgg11(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width: float = 1.0) -> VGG:
    """VGG-11 with BN (8 convs)."""
    return VGG(_CONFIGS["vgg11"], num_classes, in_channels, image_size, width)


@register_model("vgg16")
def vgg16(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width: float = 1.0) -> VGG:
    """VGG-16 with BN (13 convs), the model MTACP and AMC prune on CIFAR-10."""
    return VGG(_CONFIGS["vgg16"], num_classes, in_channels, image_size, width)
