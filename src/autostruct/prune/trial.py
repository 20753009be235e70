"""The trial surgery of :func:`autostruct.prune.graph.analyze`: which pruning groups can really be cut.

A group can be cut when the model still runs, with outputs of the same shapes, after cutting it to about half
(:func:`trial_counts`) alone and together with the others, and after cutting one channel group less (a forward
that splits channels into heads needs multiples of the head count). The kept groups' trial cut also gives the
FLOP model the cost of every counted call at a second width (:data:`Trial`), and :func:`check_flop_model` compares
the finished FLOP model with :func:`autostruct.measure.count_flops` at random widths.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from autostruct.errors import AutostructError
from autostruct.measure.flops import run_counted
from autostruct.prune.groups import PruningGraph, group_allowed, prune_counts

log = logging.getLogger("autostruct.prune.graph")

Trial = tuple[np.ndarray, list]  # kept counts of the trial surgery (per kept group) and its counted calls


def flatten_outputs(out: Any) -> list[Any]:
    """The leaves of a model output (tensors in nested tuples, lists and dicts)."""
    if isinstance(out, (tuple, list)):
        return [y for x in out for y in flatten_outputs(x)]
    if isinstance(out, dict):
        return [y for x in out.values() for y in flatten_outputs(x)]
    return [out]


def trial_counts(graph: PruningGraph) -> np.ndarray:
    """About half of every group, respecting channel groups (used to validate surgery)."""
    counts = []
    for g in graph.groups:
        q = g.channel_groups
        counts.append(max(q, (g.channels // 2) // q * q))
    return np.asarray(counts, dtype=np.int64)


def attempt_cut(model: nn.Module, graph: PruningGraph, counts: np.ndarray, inputs, ref_out) -> tuple[str | None, list | None]:
    """Cut ``counts`` and run: ``(None, counted calls)``, or ``(why it fails, None)``."""
    try:
        pruned = prune_counts(model, graph, counts, importance=None).eval()
        with torch.no_grad():
            out, rec = run_counted(pruned, inputs)
    except Exception as exc:  # any failure means this group cannot be cut safely
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"surgery breaks the forward pass ({type(exc).__name__}: {first})", None
    ref = [o.shape for o in flatten_outputs(ref_out) if isinstance(o, torch.Tensor)]
    got = [o.shape for o in flatten_outputs(out) if isinstance(o, torch.Tensor)]
    return (None, rec.calls) if ref == got else (f"surgery changes the output shape {ref} -> {got}", None)


def run_trial(model: nn.Module, graph: PruningGraph, inputs, ref_out, validate: bool):
    """The trial surgery. Returns the groups that can be cut, the reasons of those that cannot, the channel
    multiple some groups need (``{group: step}``), and the kept groups' trial counts with the counted calls.

    1. Every group at about half: all at once, else one by one, then together (two cuts may clash).
    2. Granularity (with ``validate``): every group one channel group smaller must work too. A forward that splits
       the channels into heads (``reshape(b, n, heads, -1)``) only works with multiples of the head count: the
       smallest channel multiple that works becomes the group's ``channel_groups``.
    3. The half cut again with those multiples; its counted calls calibrate the FLOP model.
    """

    def attempt(graph: PruningGraph, counts: np.ndarray) -> tuple[str | None, list | None]:
        return attempt_cut(model, graph, counts, inputs, ref_out)

    def together(graph: PruningGraph, candidates: list[int], skipped: list) -> tuple[list[int], list | None]:
        half, full = trial_counts(graph), graph.channels
        keep: list[int] = []
        calls = None
        for i in candidates:
            counts = full.copy()
            counts[keep + [i]] = half[keep + [i]]
            reason, got = attempt(graph, counts)
            if reason is None:
                keep.append(i)
                calls = got
            else:
                skipped.append((graph.groups[i].name, f"{reason}, together with the other groups"))
        return keep, calls

    half, full = trial_counts(graph), graph.channels
    keep = list(range(len(graph.groups)))
    skipped = list(graph.skipped)
    reason, calls = attempt(graph, half)
    if reason is not None:
        if not validate:
            return keep, skipped, {}, None
        alone = []
        for i, g in enumerate(graph.groups):
            counts = full.copy()
            counts[i] = half[i]
            reason, _ = attempt(graph, counts)
            if reason is None:
                alone.append(i)
            else:
                log.info("layer %s left unpruned: %s", g.name, reason)
                skipped.append((g.name, reason))
        keep, calls = together(graph, alone, skipped)
    steps: dict[int, int] = {}
    if validate and keep:
        one = full.copy()
        for i in keep:
            one[i] -= graph.groups[i].channel_groups
        if attempt(graph, one)[0] is not None:
            for i in list(keep):
                g = graph.groups[i]
                q = g.channel_groups
                for step in (d for d in range(q, g.channels // 2 + 1, q) if g.channels % d == 0):
                    counts = full.copy()
                    counts[i] = g.channels - step
                    if attempt(graph, counts)[0] is None:
                        if step != q:
                            steps[i] = step
                        break
                else:
                    keep.remove(i)
                    skipped.append((g.name, "no channel multiple below half of the channels keeps the forward pass "
                                            "working"))
            graph = regroup(graph, steps)
            half = trial_counts(graph)
            counts = full.copy()
            counts[keep] = half[keep]
            reason, calls = attempt(graph, counts)
            if reason is not None:
                keep, calls = together(graph, keep, skipped)
    if not keep:
        raise AutostructError(
            f"{type(model).__name__} has no prunable channel group: "
            + "; ".join(f"{n}: {r}" for n, r in skipped)
        )
    return keep, skipped, steps, (half[keep].astype(np.float64), calls)


def regroup(graph: PruningGraph, steps: dict[int, int]) -> PruningGraph:
    """``graph`` with the channel multiples of ``steps`` (group index -> multiple)."""
    if not steps:
        return graph
    groups = tuple(dataclasses.replace(g, channel_groups=steps.get(i, g.channel_groups))
                   for i, g in enumerate(graph.groups))
    return dataclasses.replace(graph, groups=groups)


def check_flop_model(model: nn.Module, graph: PruningGraph, inputs) -> None:
    """Warn if the FLOP model disagrees with :func:`count_flops` at random kept channels (a pattern it misses)."""
    rng = np.random.default_rng(0)
    counts = np.asarray([rng.choice(group_allowed(g)) for g in graph.groups], dtype=np.int64)
    try:
        pruned = prune_counts(model, graph, counts, importance=None).eval()
        with torch.no_grad():
            real = run_counted(pruned, inputs)[1].total
    except Exception:  # noqa: BLE001  (random counts may break a clash the half-width trial missed)
        return
    if real != graph.flop_model.flops(counts):
        log.warning(
            "FLOP model of %s is approximate (%d vs %d counted at random widths); budgets use the model",
            type(model).__name__, graph.flop_model.flops(counts), real,
        )
