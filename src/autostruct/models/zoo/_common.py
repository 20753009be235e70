"""Building blocks shared by the zoo: width scaling, stride plans, conv-BN-ReLU.

Every zoo model adapts to its input size with :func:`plan_downsampling`: an architecture lists the places
where it may halve the feature map (its "slots"), and a small input uses only the later slots, so early layers
keep their resolution (the usual CIFAR adaptation of ImageNet models drops the stem stride the same way).
"""

from __future__ import annotations

import math

from torch import nn


def scale_channels(channels: int, width: float, divisor: int = 1) -> int:
    """``channels * width`` rounded to a multiple of ``divisor`` (at least ``divisor``, never below 90%).

    ``divisor=1`` is plain rounding to >= 1 (ResNet, VGG); MobileNets use ``divisor=8`` when ``width != 1``
    as their papers do, so scaled layers stay friendly to vector units.
    """
    target = channels * width
    if divisor <= 1:
        return max(1, int(round(target)))
    rounded = max(divisor, int(target + divisor / 2) // divisor * divisor)
    # Rounding down must not remove more than 10% of the channels (MobileNetV2's rule).
    if rounded < 0.9 * target:
        rounded += divisor
    return rounded


def plan_downsampling(image_size: int, slots: int, min_size: int) -> list[bool]:
    """Which of ``slots`` stride-2 places to use so the last feature map stays >= ``min_size``.

    Earlier slots are dropped first: a 32x32 input to MobileNet (5 slots, ``min_size=2``) skips the stem stride
    and ends at 2x2; a 224x224 input uses all five and ends at 7x7; an 8x8 input uses the last two.

    >>> plan_downsampling(32, 5, 2)
    [False, True, True, True, True]
    """
    used = 0
    size = image_size
    while used < slots and math.ceil(size / 2) >= min_size:
        size = math.ceil(size / 2)
        used += 1
    return [False] * (slots - used) + [True] * used


def conv_bn_relu(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    groups: int = 1,
    activation: type[nn.Module] | None = nn.ReLU,
) -> nn.Sequential:
    """Conv (no bias, "same" padding) -> BatchNorm -> activation."""
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
    ]
    if activation is not None:
        layers.append(activation(inplace=True))
    return nn.Sequential(*layers)


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal convs (fan-out), BN at (1, 0), small-normal Linear: the usual CNN init."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
