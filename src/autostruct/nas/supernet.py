"""Weight-sharing supernet for a :class:`~autostruct.nas.space.SearchSpace`, and standalone child networks.

One set of weights covers every architecture of the space (Once-for-All's elastic dimensions):

- **elastic kernel**: a block stores the largest depthwise kernel; a ``k x k`` choice uses its centre crop;
- **elastic expand**: the 1x1 expand conv, the depthwise conv and their batch norms store ``c_in * max(expand)``
  channels; a smaller ratio uses the first ``c_in * expand`` of them (and the matching input slice of the
  1x1 projection);
- **elastic depth**: a stage stores ``max(depths)`` blocks; depth ``d`` runs the first ``d`` and skips the rest;
- **elastic width**: a stage stores its widest channel count; a narrower choice uses the first ``c`` output
  channels of each block's projection (and the first ``c`` input channels of whatever reads them: the next
  block's expand conv, or the head). The expand ratio applies to the *active* input width.

:func:`extract` copies those slices into a plain :class:`NASNet` (ordinary ``Conv2d``/``BatchNorm2d`` layers,
exportable to ONNX, countable by Torch-Pruning). In eval mode its outputs equal ``Supernet.forward(x, arch)``.
``NASNet`` is registered as model ``nas-mobilenetv2``, so ``autostruct.export.load_model`` rebuilds it from the
spec that :func:`extract` stamps on it (space, architecture indices, classes, input shape).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autostruct.models.registry import create_model, register_model
from autostruct.nas.space import Architecture, SearchSpace, get_space

MODEL_NAME = "nas-mobilenetv2"


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if relu:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand -> kxk depthwise (stride) -> 1x1 project; identity shortcut if shapes match."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, kernel: int, expand: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.expand = _conv_bn(in_ch, mid, 1)
        self.depthwise = _conv_bn(mid, mid, kernel, stride, groups=mid)
        self.project = _conv_bn(mid, out_ch, 1, relu=False)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


class NASNet(nn.Module):
    """A standalone network of a search space (what :func:`extract` returns and what gets exported)."""

    def __init__(self, arch: Architecture, num_classes: int, in_channels: int) -> None:
        super().__init__()
        space = arch.space
        self.stem = _conv_bn(in_channels, space.stem_channels, 3, space.stem_stride)
        blocks = arch.blocks()
        self.stages = nn.ModuleList(
            nn.Sequential(
                *(MBConv(b.in_channels, b.out_channels, b.stride, b.kernel, b.expand) for b in blocks if b.stage == s)
            )
            for s in range(len(space.stages))
        )
        self.head = _conv_bn(arch.head_in_channels, space.head_channels, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(space.head_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        x = self.pool(self.head(x))
        return self.classifier(torch.flatten(x, 1))


def _sliced_bn(bn: nn.BatchNorm2d, x: torch.Tensor, channels: int) -> torch.Tensor:
    # Slices are views, so in training mode the running statistics of the active channels update in place.
    return F.batch_norm(
        x,
        bn.running_mean[:channels],
        bn.running_var[:channels],
        bn.weight[:channels],
        bn.bias[:channels],
        bn.training,
        0.1 if bn.momentum is None else bn.momentum,
        bn.eps,
    )


def _centre(weight: torch.Tensor, kernel: int) -> torch.Tensor:
    start = (weight.shape[-1] - kernel) // 2
    return weight[..., start : start + kernel, start : start + kernel]


class ElasticMBConv(nn.Module):
    """An MBConv block holding the widest input/output, largest kernel and expand ratio; ``forward`` takes the
    active ones (the input width is the width of ``x``).

    Submodule names match :class:`MBConv`, so a child's state dict is a slice of the supernet's.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, max_kernel: int, max_expand: int) -> None:
        super().__init__()
        mid = in_ch * max_expand
        self.in_ch, self.out_ch, self.stride = in_ch, out_ch, stride
        self.expand = _conv_bn(in_ch, mid, 1)
        self.depthwise = _conv_bn(mid, mid, max_kernel, stride, groups=mid)
        self.project = _conv_bn(mid, out_ch, 1, relu=False)

    def forward(self, x: torch.Tensor, kernel: int, expand: int, out_ch: int | None = None) -> torch.Tensor:
        in_ch, out_ch = x.shape[1], self.out_ch if out_ch is None else out_ch
        mid = in_ch * expand
        h = F.conv2d(x, self.expand[0].weight[:mid, :in_ch])
        h = F.relu6(_sliced_bn(self.expand[1], h, mid))
        h = F.conv2d(h, _centre(self.depthwise[0].weight[:mid], kernel), stride=self.stride, padding=kernel // 2, groups=mid)
        h = F.relu6(_sliced_bn(self.depthwise[1], h, mid))
        h = F.conv2d(h, self.project[0].weight[:out_ch, :mid])
        h = _sliced_bn(self.project[1], h, out_ch)
        return x + h if self.stride == 1 and in_ch == out_ch else h


class Supernet(nn.Module):
    """All architectures of ``space`` in one set of weights; ``forward(x, arch)`` runs one of them."""

    def __init__(self, space: SearchSpace, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.space = space
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.stem = _conv_bn(in_channels, space.stem_channels, 3, space.stem_stride)
        stages = []
        in_ch = space.stem_channels
        for st in space.stages:
            blocks = []
            for b in range(st.max_depth):
                blocks.append(
                    ElasticMBConv(in_ch, st.max_channels, st.stride if b == 0 else 1, max(st.kernels), max(st.expands))
                )
                in_ch = st.max_channels
            stages.append(nn.ModuleList(blocks))
        self.stages = nn.ModuleList(stages)
        self.head = _conv_bn(in_ch, space.head_channels, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(space.head_channels, num_classes)

    def forward(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        if arch.space != self.space:
            raise ValueError(f"architecture of space '{arch.space.name}' given to a supernet of '{self.space.name}'")
        x = self.stem(x)
        for b in arch.blocks():
            x = self.stages[b.stage][b.block](x, b.kernel, b.expand, b.out_channels)
        conv, bn = self.head[0], self.head[1]
        x = F.relu6(bn(F.conv2d(x, conv.weight[:, : x.shape[1]])))
        return self.classifier(torch.flatten(self.pool(x), 1))


def _inherit(src: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The part of a supernet tensor a child uses: leading slices, and the centre of 4-D kernels' spatial dims."""
    if src.dim() == 0:
        return src.clone()
    index: list[slice] = []
    for dim, n in enumerate(shape):
        if src.dim() == 4 and dim >= 2:
            start = (src.shape[dim] - n) // 2
            index.append(slice(start, start + n))
        else:
            index.append(slice(0, n))
    return src[tuple(index)].clone()


def extract(supernet: Supernet, arch: Architecture, *, image_size: int = 32) -> NASNet:
    """A standalone :class:`NASNet` for ``arch`` with weights (and BN statistics) inherited from ``supernet``.

    The child's build spec (``autostruct_spec``) stores the full space mapping and the architecture indices, so
    an exported checkpoint rebuilds it without knowing how the space was named or scaled; ``image_size`` is
    recorded for the exporter's example input.
    """
    child = create_model(
        MODEL_NAME,
        num_classes=supernet.num_classes,
        in_channels=supernet.in_channels,
        image_size=image_size,
        arch=list(arch.indices),
        space=arch.space.to_dict(),
    )
    src = supernet.state_dict()
    state = {name: _inherit(src[name], t.shape) for name, t in child.state_dict().items()}
    child.load_state_dict(state)
    child.train(supernet.training)
    return child


@register_model(MODEL_NAME)
def nas_mobilenetv2(
    num_classes: int,
    in_channels: int = 3,
    image_size: int = 32,
    width: float = 1.0,
    *,
    arch: Sequence[int] | Mapping[str, Any],
    space: str | Mapping[str, Any] = "mobilenetv2",
) -> NASNet:
    """A network of a NAS search space: ``arch`` is its JSON form (list of indices or readable mapping),
    ``space`` a space name (adapted to ``image_size``) or mapping; ``width`` scales every channel count."""
    resolved = get_space(space, image_size).scaled(width)
    return NASNet(Architecture.from_json(resolved, arch), num_classes, in_channels)
