"""Exact FLOPs and parameters of an architecture, from the space alone (no model is built).

The formula mirrors :func:`autostruct.measure.count_flops` (autostruct's counter, equal to Torch-Pruning's on
these layers) layer by layer, so
``arch_cost(arch, ...) == count_flops(extract(supernet, arch), x)`` exactly (the tests check it):

- conv ``k x k``, ``c_in -> c_out``, ``groups``: ``k*k * c_in/groups * c_out * h_out*w_out`` MACs (no bias);
- batch norm: 2 per element; ReLU6: 1 per element; adaptive average pooling: 1 per *input* element;
- linear: ``in * out + out``; residual additions and flatten: 0.

FLOPs are multiply-accumulates (MACs) per image, the autostruct convention. The network is split into
*blocks* (stem, each active MBConv, head) whose keys name their shapes; the latency lookup table
(:mod:`autostruct.nas.lut`) stores one measurement per key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autostruct.nas.space import Architecture, SearchSpace, feature_sizes

COST_NAMES = ("flops", "params", "latency_ms")


@dataclass(frozen=True)
class BlockCost:
    """One block of a network: its lookup-table ``key`` and exact FLOPs (MACs) and parameters."""

    key: str
    flops: int
    params: int


@dataclass(frozen=True)
class ArchCost:
    """FLOPs (MACs per image) and parameters of a whole architecture."""

    flops: int
    params: int


def _conv_bn(c_in: int, c_out: int, kernel: int, h_in: int, stride: int, groups: int, relu: bool) -> tuple[int, int, int]:
    """(flops, params, h_out) of conv (no bias) -> BN -> optional ReLU6, as count_flops counts them."""
    h_out = math.ceil(h_in / stride)
    elems = c_out * h_out * h_out
    flops = kernel * kernel * (c_in // groups) * elems + 2 * elems + (elems if relu else 0)
    params = kernel * kernel * (c_in // groups) * c_out + 2 * c_out
    return flops, params, h_out


def stem_key(in_channels: int, out_channels: int, stride: int, size: int) -> str:
    return f"stem_i{in_channels}_o{out_channels}_s{stride}_r{size}"


def block_key(in_channels: int, out_channels: int, stride: int, kernel: int, expand: int, size: int) -> str:
    return f"mbconv_i{in_channels}_o{out_channels}_s{stride}_k{kernel}_e{expand}_r{size}"


def head_key(in_channels: int, out_channels: int, num_classes: int, size: int) -> str:
    return f"head_i{in_channels}_o{out_channels}_n{num_classes}_r{size}"


def stem_cost(space: SearchSpace, in_channels: int, image_size: int) -> BlockCost:
    f, p, _ = _conv_bn(in_channels, space.stem_channels, 3, image_size, space.stem_stride, 1, True)
    return BlockCost(stem_key(in_channels, space.stem_channels, space.stem_stride, image_size), f, p)


def mbconv_cost(c_in: int, c_out: int, stride: int, kernel: int, expand: int, size: int) -> BlockCost:
    mid = c_in * expand
    f1, p1, h = _conv_bn(c_in, mid, 1, size, 1, 1, True)
    f2, p2, h = _conv_bn(mid, mid, kernel, h, stride, mid, True)
    f3, p3, _ = _conv_bn(mid, c_out, 1, h, 1, 1, False)
    return BlockCost(block_key(c_in, c_out, stride, kernel, expand, size), f1 + f2 + f3, p1 + p2 + p3)


def head_cost(space: SearchSpace, num_classes: int, size: int, c_in: int | None = None) -> BlockCost:
    """The head after a last stage of ``c_in`` channels (default: the stage's full width)."""
    c_in = space.stages[-1].channels if c_in is None else c_in
    f, p, _ = _conv_bn(c_in, space.head_channels, 1, size, 1, 1, True)
    pool = space.head_channels * size * size
    linear = space.head_channels * num_classes + num_classes
    return BlockCost(head_key(c_in, space.head_channels, num_classes, size), f + pool + linear, p + linear)


def block_costs(arch: Architecture, in_channels: int, image_size: int, num_classes: int) -> list[BlockCost]:
    """Stem, every active MBConv block and the head of ``arch``, in network order."""
    space = arch.space
    sizes = feature_sizes(space, image_size)
    out = [stem_cost(space, in_channels, image_size)]
    size = sizes[0]
    for b in arch.blocks():
        out.append(mbconv_cost(b.in_channels, b.out_channels, b.stride, b.kernel, b.expand, size))
        size = math.ceil(size / b.stride)
    out.append(head_cost(space, num_classes, size, arch.head_in_channels))
    return out


def arch_cost(arch: Architecture, in_channels: int, image_size: int, num_classes: int) -> ArchCost:
    """Exact FLOPs (MACs per image) and parameters of ``arch`` on ``in_channels x image_size^2`` inputs."""
    blocks = block_costs(arch, in_channels, image_size, num_classes)
    return ArchCost(flops=sum(b.flops for b in blocks), params=sum(b.params for b in blocks))


def all_block_shapes(space: SearchSpace, in_channels: int, image_size: int, num_classes: int) -> list[BlockCost]:
    """Every distinct block any architecture of ``space`` can contain (what a latency table must cover)."""
    sizes = feature_sizes(space, image_size)
    seen: dict[str, BlockCost] = {}
    first = stem_cost(space, in_channels, image_size)
    seen[first.key] = first
    c_ins: tuple[int, ...] = (space.stem_channels,)
    for s, st in enumerate(space.stages):
        for c_out in st.channel_choices:
            for b in range(min(st.max_depth, 2)):  # blocks 2..d of a stage share one shape
                stride = st.stride if b == 0 else 1
                size = sizes[s] if b == 0 else sizes[s + 1]
                for cin in c_ins if b == 0 else (c_out,):
                    for k in st.kernels:
                        for e in st.expands:
                            bc = mbconv_cost(cin, c_out, stride, k, e, size)
                            seen.setdefault(bc.key, bc)
        c_ins = st.channel_choices
    for c_in in c_ins:
        last = head_cost(space, num_classes, sizes[-1], c_in)
        seen[last.key] = last
    return list(seen.values())
