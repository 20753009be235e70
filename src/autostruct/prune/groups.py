"""A traced model's pruning groups (what :func:`~autostruct.prune.graph.analyze` returns) and the replay of their cuts.

:func:`prune_counts` cuts a deep copy of a model to given kept channels per group by replaying the recorded
:class:`PruneOp` slices; it needs no graph tracing, so the trial surgery inside ``analyze`` and the surgery after it
(:mod:`autostruct.prune.surgery`) both use it without importing each other.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from autostruct.errors import AutostructError
from autostruct.prune.budget import FlopModel, allowed_counts


@dataclass(frozen=True, eq=False)
class PruneOp:
    """One slice of a group: cut ``positions`` of ``module`` with ``handler``; ``roots[i]`` is the group channel
    that ``positions[i]`` carries (a channel can appear several times, e.g. after a flatten)."""

    module: str
    handler: Callable[[nn.Module, list[int]], Any]
    positions: np.ndarray
    roots: np.ndarray
    kind: str  # "out", "in" or "io" (same function for both sides: BN, depthwise conv)


@dataclass(frozen=True, eq=False)
class PrunableGroup:
    """One channel decision of the pruning MDP (fields are JSON-able except ``ops``)."""

    index: int
    name: str  # the leading layer (first producing conv/linear in forward order)
    channels: int
    channel_groups: int  # kept counts must be a multiple (grouped convs keep the same number per group)
    leading: tuple[str, ...]  # layers whose output channels are cut
    consumers: tuple[str, ...]  # layers whose input channels are cut
    c_in: int
    h: int
    w: int
    stride: int
    kernel: int
    flops: int  # base FLOPs that scale with this group (those that vanish if it kept nothing)
    ops: tuple[PruneOp, ...] = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "channels": self.channels,
            "channel_groups": self.channel_groups,
            "leading": list(self.leading),
            "consumers": list(self.consumers),
            "c_in": self.c_in,
            "h": self.h,
            "w": self.w,
            "stride": self.stride,
            "kernel": self.kernel,
            "flops": self.flops,
        }


@dataclass(frozen=True, eq=False)
class PruningGraph:
    """Everything surgery, the budget math and the MDP need, computed once per model."""

    groups: tuple[PrunableGroup, ...]
    skipped: tuple[tuple[str, str], ...]  # (layer, reason) of groups left unpruned
    flop_model: FlopModel
    base_flops: int
    base_params: int
    input_shape: tuple[int, ...]

    @property
    def channels(self) -> np.ndarray:
        return np.asarray([g.channels for g in self.groups], dtype=np.int64)


def group_step(group: PrunableGroup, round_to: int = 1) -> int:
    """Kept channels of ``group`` are multiples of this (``round_to`` and its channel groups)."""
    return math.lcm(max(1, int(round_to)), group.channel_groups)


def group_allowed(group: PrunableGroup, round_to: int = 1) -> np.ndarray:
    """The channel counts ``group`` may keep (never below one channel group, always including all)."""
    return allowed_counts(group.channels, group_step(group, round_to))


def keep_indices(scores: np.ndarray, count: int, channel_groups: int = 1) -> np.ndarray:
    """Channels of a group to keep: the ``count`` most important, the same ones in every channel group.

    >>> keep_indices(np.array([3., 1., 2., 0.]), 2).tolist()
    [0, 2]
    """
    q = channel_groups
    size = len(scores) // q
    per = count // q
    local = scores.reshape(q, size).mean(0)
    # Stable sort so that ties (e.g. all-zero filters) resolve the same way on every run.
    top = np.sort(np.argsort(-local, kind="stable")[:per])
    return np.sort((top[None, :] + size * np.arange(q)[:, None]).ravel())


def prune_counts(
    model: nn.Module,
    graph: PruningGraph,
    counts: Sequence[int] | np.ndarray,
    importance: list[np.ndarray] | None,
) -> nn.Module:
    """A deep copy of ``model`` keeping ``counts[i]`` channels of group ``i`` (chosen by ``importance``;
    None keeps the first ones). The original is untouched; ``model.autostruct_spec`` is kept."""
    counts = np.asarray(counts, dtype=np.int64)
    cuts: dict[tuple[str, object], set[int]] = {}
    for g in graph.groups:
        count = int(counts[g.index])
        if count >= g.channels:
            continue
        if count < 1 or count % g.channel_groups:
            raise AutostructError(
                f"Group '{g.name}' cannot keep {count} of {g.channels} channels: the count must be >= 1 and a "
                f"multiple of its {g.channel_groups} channel groups."
            )
        scores = importance[g.index] if importance is not None else -np.arange(g.channels, dtype=np.float64)
        kept = keep_indices(scores, count, g.channel_groups)
        gone = np.setdiff1d(np.arange(g.channels), kept)
        for op in g.ops:
            positions = op.positions[np.isin(op.roots, gone)]
            if len(positions):
                cuts.setdefault((op.module, op.handler), set()).update(positions.tolist())
    pruned = copy.deepcopy(model)
    modules = dict(pruned.named_modules())
    for (name, handler), positions in cuts.items():
        handler(modules[name], sorted(positions))
    return pruned
