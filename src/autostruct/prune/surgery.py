"""Surgery: apply per-group keep ratios to a copy of a model, which comes out really smaller.

The slow part of structural pruning is tracing the dependency graph; :func:`~autostruct.prune.graph.analyze`
does it once and :func:`prune_counts` only replays the recorded cuts on a deep copy (each layer is cut once,
with the union of its indices over all groups, in the original coordinates). Which channels go is decided by
an importance criterion computed once per model (:func:`channel_importance`): L1 or L2 norm of the filters
that produce the channels (AMC, Li et al. 2017), batch-norm scale (Network Slimming), or first-order Taylor
(Molchanov et al. 2019, needs a few batches).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn

from autostruct.errors import AutostructError, unknown_name
from autostruct.prune.budget import ceil_to_allowed
from autostruct.prune.graph import ExampleInputs, analyze
from autostruct.prune.groups import (
    PrunableGroup,
    PruningGraph,
    group_allowed,
    group_step,
    keep_indices,
    prune_counts,
)
from autostruct.prune.handlers import HeadDims

Importance = Literal["l1", "l2", "bn_scale", "taylor"]
IMPORTANCE_CRITERIA: tuple[str, ...] = ("l1", "l2", "bn_scale", "taylor")

__all__ = [
    "IMPORTANCE_CRITERIA",
    "apply_keep_ratios",
    "channel_importance",
    "counts_from_ratios",
    "group_allowed",
    "group_step",
    "keep_indices",
    "prune_counts",
]


def counts_from_ratios(
    graph: PruningGraph, ratios: float | Sequence[float] | Mapping[str | int, float], round_to: int = 1
) -> np.ndarray:
    """Kept channels per group: ``ceil(ratio * channels)`` rounded up to the group's allowed multiple.

    ``ratios`` is one float for every group, a sequence aligned with ``graph.groups``, or a mapping from group
    name or index to ratio (missing groups keep everything).
    """
    n = len(graph.groups)
    if isinstance(ratios, Mapping):
        values = [1.0] * n
        by_name = {g.name: g.index for g in graph.groups}
        for key, r in ratios.items():
            idx = by_name.get(key, key) if isinstance(key, str) else key
            if not isinstance(idx, int) or not 0 <= idx < n:
                raise unknown_name("pruning group", str(key), by_name)
            values[idx] = float(r)
    elif isinstance(ratios, (int, float)):
        values = [float(ratios)] * n
    else:
        values = [float(r) for r in ratios]
        if len(values) != n:
            raise AutostructError(
                f"Got {len(values)} keep ratios for {n} pruning groups ({', '.join(g.name for g in graph.groups)}). "
                "Pass one ratio per group, in the order of prunable_groups()."
            )
    for g, r in zip(graph.groups, values, strict=True):
        if not (0.0 < r <= 1.0) or math.isnan(r):
            raise AutostructError(f"Keep ratio {r} for group '{g.name}' is outside (0, 1]. Use a value like 0.5.")
    return np.asarray(
        [ceil_to_allowed(r, g.channels, group_allowed(g, round_to)) for g, r in zip(graph.groups, values, strict=True)],
        dtype=np.int64,
    )


def _out_dim(module: nn.Module) -> int:
    return 1 if isinstance(module, nn.modules.conv._ConvNd) and module.transposed else 0


def channel_importance(
    model: nn.Module,
    graph: PruningGraph,
    criterion: str = "l1",
    taylor_batches: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> list[np.ndarray]:
    """Importance of every channel of every group (higher is kept first), from the unpruned ``model``.

    - ``l1`` / ``l2``: norm of each producing filter, summed over the layers that produce the group's channels.
    - ``bn_scale``: ``|gamma|`` of the batch norms on those channels (``l1`` for groups without one).
    - ``taylor``: ``(sum w * dL/dw)^2`` over each producing filter and its batch-norm parameters, summed over
      ``taylor_batches`` (cross-entropy on (x, y) batches); needs ``taylor_batches``.
    """
    if criterion not in IMPORTANCE_CRITERIA:
        raise unknown_name("importance criterion", criterion, IMPORTANCE_CRITERIA)
    modules = dict(model.named_modules())
    grads: dict[str, torch.Tensor] = {}
    if criterion == "taylor":
        grads = _taylor_products(model, taylor_batches)

    scores = []
    for g in graph.groups:
        score = np.zeros(g.channels, dtype=np.float64)
        used = False
        for op in g.ops:
            module = modules[op.module]
            if isinstance(op.handler, HeadDims):  # an attention block's head dimensions: its q, k, v rows
                np.add.at(score, op.roots, _head_dim_norms(module, op.positions, criterion))
                used = True
                continue
            is_filter = isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)) and op.kind in ("out", "io")
            is_bn = isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine
            if criterion in ("l1", "l2") and is_filter:
                w = module.weight.detach().transpose(0, _out_dim(module)).flatten(1)
                w = w[torch.as_tensor(op.positions)]
                per = w.abs().sum(1) if criterion == "l1" else w.pow(2).sum(1).sqrt()
            elif criterion == "bn_scale" and is_bn:
                per = module.weight.detach().abs()[torch.as_tensor(op.positions)]
            elif criterion == "taylor" and (is_filter or is_bn):
                prod = grads[op.module + ".weight"]
                prod = prod.transpose(0, _out_dim(module)).flatten(1) if prod.dim() > 1 else prod[:, None]
                if module.bias is not None and op.module + ".bias" in grads:
                    prod = torch.cat([prod, grads[op.module + ".bias"][:, None]], 1)
                per = prod[torch.as_tensor(op.positions)].sum(1).pow(2)
            else:
                continue
            np.add.at(score, op.roots, per.double().cpu().numpy())
            used = True
        if not used:  # e.g. bn_scale on a group without batch norm
            score = channel_importance_l1(modules, g)
        scores.append(score)
    return scores


def _head_dim_norms(block: nn.Module, positions: np.ndarray, criterion: str) -> np.ndarray:
    """Per head dimension: the norm of its q, k and v rows of ``block.qkv`` (L2 for ``l2``, else L1)."""
    width = block.num_heads * block.head_dim
    w = block.qkv.weight.detach().reshape(3, width, -1).transpose(0, 1).flatten(1)[torch.as_tensor(positions)]
    per = w.pow(2).sum(1).sqrt() if criterion == "l2" else w.abs().sum(1)
    return per.double().cpu().numpy()


def channel_importance_l1(modules: Mapping[str, nn.Module], group: PrunableGroup) -> np.ndarray:
    score = np.zeros(group.channels, dtype=np.float64)
    for op in group.ops:
        module = modules[op.module]
        if isinstance(op.handler, HeadDims):
            np.add.at(score, op.roots, _head_dim_norms(module, op.positions, "l1"))
            continue
        if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)) and op.kind in ("out", "io"):
            w = module.weight.detach().transpose(0, _out_dim(module)).flatten(1)[torch.as_tensor(op.positions)]
            np.add.at(score, op.roots, w.abs().sum(1).double().cpu().numpy())
    return score


def _taylor_products(model: nn.Module, batches) -> dict[str, torch.Tensor]:
    """Per batch ``w * dL/dw``, summed per parameter element (squared per filter later)."""
    if batches is None:
        raise AutostructError("importance='taylor' needs taylor_batches: a few (x, y) training batches.")
    work = copy.deepcopy(model).eval()
    device = next(work.parameters()).device
    totals: dict[str, torch.Tensor] = {}
    n = 0
    for x, y in batches:
        work.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss = nn.functional.cross_entropy(work(x.to(device)), y.to(device))
            loss.backward()
        for name, p in work.named_parameters():
            if p.grad is not None:
                prod = (p.detach() * p.grad.detach())
                totals[name] = totals.get(name, 0) + prod
        n += 1
    if n == 0:
        raise AutostructError("importance='taylor' got no batches; pass at least one (x, y) batch.")
    return totals


def apply_keep_ratios(
    model: nn.Module,
    example_inputs: ExampleInputs,
    ratios: float | Sequence[float] | Mapping[str | int, float],
    importance: str = "l1",
    round_to: int = 1,
    taylor_batches: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
    graph: PruningGraph | None = None,
) -> nn.Module:
    """Return a smaller copy of ``model`` keeping ``ratios`` of each pruning group's channels.

    ``ratios``: one float for all groups, one per group of :func:`~autostruct.prune.graph.prunable_groups`
    (forward order), or ``{group name: ratio}``. Counts are ``ceil(ratio * channels)`` rounded up to a multiple
    of ``round_to`` (never below it, never above the group). Pass a precomputed ``graph`` to skip tracing.

    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    >>> apply_keep_ratios(net, torch.zeros(1, 3, 8, 8), 0.5)[0].out_channels
    4
    """
    graph = graph if graph is not None else analyze(model, example_inputs)
    counts = counts_from_ratios(graph, ratios, round_to)
    scores = channel_importance(model, graph, importance, taylor_batches)
    return prune_counts(model, graph, counts, scores)
