"""Models a user brings: plain factories (``custom_models:small_cnn``) and one ``@register_model`` architecture.

Not a test module: tests import it by name (pytest puts this folder on ``sys.path``; subprocesses get it through
``PYTHONPATH`` or ``--import tests/mtacp/custom_models.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from autostruct.models import register_model


def small_cnn(num_classes: int, in_channels: int, depth: int = 2, channels: int = 16) -> nn.Module:
    """Conv-BN-ReLU blocks, global average pooling, one Linear: takes any input size."""
    layers: list[nn.Module] = []
    c = in_channels
    for i in range(depth):
        layers += [nn.Conv2d(c, channels * (i + 1), 3, padding=1, bias=False), nn.BatchNorm2d(channels * (i + 1)),
                   nn.ReLU(inplace=True)]
        c = channels * (i + 1)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))


def fixed_32px(num_classes: int) -> nn.Module:
    """Built for 3x32x32 inputs only (a Linear on the flattened map): refused on 8x8 digits."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 32 * 32, num_classes))


def not_a_model(num_classes: int) -> dict:
    return {"num_classes": num_classes}


@register_model("custom-tiny")
def custom_tiny(num_classes: int, in_channels: int, image_size: int, width: float = 1.0) -> nn.Module:
    """A registered architecture (the ``imports:`` route)."""
    return small_cnn(num_classes, in_channels, depth=2, channels=max(4, int(8 * width)))



class FixedWidthHead(nn.Module):
    """Its forward reads a hard-coded width of ``hidden``'s output (``view(-1, 4, 4)``): cutting those channels
    breaks the forward pass, so that group stays at full width."""

    def __init__(self, num_classes: int, in_channels: int):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.hidden = nn.Linear(8, 16)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        h = torch.relu(self.hidden(self.features(x))).view(-1, 4, 4)
        return self.fc(h.flatten(1))


def fixed_width_head(num_classes: int, in_channels: int) -> nn.Module:
    """One group prunes (the conv), one cannot (``hidden``): the run reports it in ``skipped_groups``."""
    return FixedWidthHead(num_classes, in_channels)


def declared_32px(num_classes: int, in_channels: int) -> nn.Module:
    """timm style: the model records the input it was built for (``default_cfg['input_size']``); with global
    pooling it also runs on 8x8 digits, so only the declaration shows the mismatch."""
    model = small_cnn(num_classes, in_channels)
    model.default_cfg = {"input_size": (in_channels, 32, 32)}
    return model
