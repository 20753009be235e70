"""Channel rounding chosen per task by timing the task's own pruned models.

The host sweep (:mod:`autostruct.measure.rounding`) times single conv layers at a few spatial sizes and picks the
multiple that pays on this host (8 on AVX2). What a task's model gains from a coarser multiple also depends on
its input size and its budget: at 8x8 inputs (scikit-learn digits) a ResNet-20's convs run on 8x8, 4x4 and 2x2
maps, per-call costs dominate, and at a FLOPs ratio of 0.5 the strategies an exact-budget episode can end on run
at 0.70-0.79x of the base with multiples of 8 but 0.63-0.71x with multiples of 16 (docs/benchmarks.md, "The
latency floor").

:func:`choose_task_round_to` therefore times, for each candidate multiple, the strategies a search could end on
(the uniform one and random walks under the env's exact FLOPs wall) against the base in one process with
interleaved runs (ONNX Runtime, batch 1), and scores a candidate by the mean of their latency ratios. The
smallest candidate within ``tolerance`` (:data:`TOLERANCE`) of the best score wins (finer steps leave the search
more choices); a
candidate whose every-group-at-``lbound`` strategy misses the budget is out. Latency does not depend on weight
values, so an untrained copy of the architecture is timed; the answer is cached per host, architecture, input
shape and budget.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from autostruct.measure.latency import time_interleaved
from autostruct.measure.rounding import RoundingChoice, host_profile
from autostruct.prune import budget as B
from autostruct.prune.graph import PruningGraph
from autostruct.prune.groups import group_allowed, prune_counts
from autostruct.utils.cache import cache_root, entry_lock
from autostruct.utils.io import write_json_atomic

FORMAT = "autostruct-task-rounding/1"
TOLERANCE = 0.10
"""A coarser multiple must run the task's pruned models more than this much faster (mean latency ratio) to be
chosen: it removes choices from the search (full-width ResNet-20 at 28x28 and a FLOPs ratio of 0.5 has 3 distinct
exact-budget strategies with multiples of 16, hundreds with 8), so it has to buy a clear speed-up. Measured on
full-width ResNet-20 (multiples of 16 vs 8): 6% faster at 28x28 (ratio 0.5 and 0.7: 8 stays), 11-18% at 8x8 (16
is chosen)."""


TaskRounding = RoundingChoice
"""A task's channel multiple and each candidate's score (mean pruned / base latency; lower pays). ``scores``
holds the candidates that can reach the budget; ``source`` is ``measured``, ``cache`` or ``single`` (one
candidate could reach the budget: nothing was timed)."""


def _decidable(graph: PruningGraph, round_to: int) -> tuple[list[np.ndarray], np.ndarray]:
    allowed = [group_allowed(g, round_to) for g in graph.groups]
    return allowed, np.asarray([i for i, a in enumerate(allowed) if len(a) > 1], dtype=np.int64)


def reachable(graph: PruningGraph, ratio: float, round_to: int, lbound: float) -> bool:
    """Whether every decidable group at ``lbound`` (rounded up to ``round_to``) fits ``ratio`` of the base FLOPs."""
    allowed, decidable = _decidable(graph, round_to)
    if not len(decidable):
        return False
    floor = graph.channels.copy()
    for g in decidable:
        floor[g] = B.ceil_to_allowed(lbound, int(graph.channels[g]), allowed[g])
    return float(graph.flop_model(floor)) <= ratio * float(graph.flop_model(graph.channels)) * (1 + 1e-9)


def wall_strategies(graph: PruningGraph, ratio: float, round_to: int, n: int, *, lbound: float = 0.2,
                    seed: int = 0) -> list[np.ndarray]:
    """The uniform strategy and ``n - 1`` random walks under the exact FLOPs wall (what ``budget: exact``
    episodes end on), as kept channels per group; duplicates dropped, order kept."""
    fm = graph.flop_model
    allowed, decidable = _decidable(graph, round_to)
    full = graph.channels.copy()
    floor = full.copy()
    for g in decidable:
        floor[g] = B.ceil_to_allowed(lbound, int(full[g]), allowed[g])
    target = ratio * float(fm(full))
    _, uniform = B.uniform_counts(fm, full, allowed, decidable, target)
    found = {tuple(int(v) for v in uniform): np.asarray(uniform, dtype=np.int64)}
    rng = np.random.default_rng(seed)
    for _ in range(max(n - 1, 0)):
        counts = full.copy()
        for step, g in enumerate(decidable):
            lo, hi = B.exact_wall(fm, counts, int(g), allowed[g], decidable[step + 1:], floor, full, target)
            choices = allowed[g][(allowed[g] >= lo) & (allowed[g] <= hi)]
            counts[g] = B.nearest_allowed(lo + rng.uniform() * (hi - lo), choices)
        found.setdefault(tuple(int(v) for v in counts), counts)
    return list(found.values())


def decide_task_round_to(ratios: dict[int, Sequence[float]], tolerance: float = TOLERANCE) -> tuple[int, dict[int, float]]:
    """The chosen multiple and each candidate's score from the measured pruned / base latency ratios.

    >>> decide_task_round_to({8: [0.72, 0.70], 16: [0.61, 0.60]})
    (16, {8: 0.71, 16: 0.605})
    >>> decide_task_round_to({8: [0.63], 16: [0.60]})[0]
    8
    """
    if not ratios or any(len(v) == 0 for v in ratios.values()):
        raise ValueError("every candidate needs at least one measured ratio")
    scores = {k: float(np.mean(v)) for k, v in sorted(ratios.items())}
    best = min(scores.values())
    return next(k for k, v in scores.items() if v <= best * (1 + tolerance)), scores


def _cache_path(model: nn.Module, example: torch.Tensor, key: dict[str, Any]) -> Any:
    blob = json.dumps({**key, "model": repr(model), "input": list(example.shape)}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return cache_root() / "rounding" / f"task-{host_profile(key['threads'])}-{digest}.json"


def choose_task_round_to(
    model: nn.Module,
    graph: PruningGraph,
    example: torch.Tensor,
    ratio: float,
    candidates: Sequence[int],
    *,
    lbound: float = 0.2,
    threads: int = 1,
    strategies: int = 6,
    runs: int = 60,
    warmup: int = 5,
    tolerance: float = TOLERANCE,
    seed: int = 0,
    use_cache: bool = True,
) -> TaskRounding:
    """The channel multiple among ``candidates`` whose pruned models run fastest for this task (module docstring).

    ``model`` (eval mode) and ``graph`` describe the architecture at the task's input ``example``; ``ratio`` is
    the task's FLOPs ratio. Raises ``ValueError`` when no candidate can reach ``ratio`` with ``lbound``.
    """
    cands = sorted({int(k) for k in candidates})
    if not cands or cands[0] < 1:
        raise ValueError(f"candidates must be positive integers, got {candidates!r}")
    ok = [k for k in cands if reachable(graph, ratio, k, lbound)]
    if not ok:
        raise ValueError(f"no channel multiple of {cands} reaches a FLOPs ratio of {ratio:g} with lbound={lbound:g}")
    if len(ok) == 1:
        return TaskRounding(ok[0], {}, source="single")
    key = {"format": FORMAT, "candidates": ok, "ratio": ratio, "lbound": lbound, "threads": threads,
           "strategies": strategies, "runs": runs, "tolerance": tolerance, "seed": seed}
    path = _cache_path(model, example, key) if use_cache else None
    with entry_lock(path, "measuring a task's channel rounding"):  # concurrent runs measure it once
        if path is not None and path.is_file():
            try:
                rec = json.loads(path.read_text())
                return TaskRounding(int(rec["round_to"]), {int(k): float(v) for k, v in rec["scores"].items()},
                                    source="cache", meta={"path": str(path)})
            except (OSError, ValueError, KeyError, TypeError):
                pass  # a damaged cache file is measured again
        t0 = time.monotonic()
        model = model.eval()
        per_k = {k: wall_strategies(graph, ratio, k, strategies, lbound=lbound, seed=seed) for k in ok}
        pruned = [(k, prune_counts(model, graph, counts, None).eval()) for k in ok for counts in per_k[k]]
        with torch.no_grad():
            stats = time_interleaved([model] + [m for _, m in pruned], example, runs=runs, warmup=warmup,
                                     threads=threads)
        base = stats[0].median_ms
        ratios: dict[int, list[float]] = {k: [] for k in ok}
        for (k, _), st in zip(pruned, stats[1:], strict=True):
            ratios[k].append(st.median_ms / base)
        chosen, scores = decide_task_round_to(ratios, tolerance)
        meta = {"seconds": time.monotonic() - t0, "base_ms": base,
                "ratios": {str(k): v for k, v in ratios.items()},
                "channels": {str(k): [[int(c) for c in s] for s in per_k[k]] for k in ok}}
        if path is not None:
            write_json_atomic(path, {**key, "round_to": chosen, "scores": {str(k): v for k, v in scores.items()}, **meta})
            meta["path"] = str(path)
        return TaskRounding(chosen, scores, source="measured", meta=meta)


__all__ = ["TOLERANCE", "TaskRounding", "choose_task_round_to", "decide_task_round_to", "reachable", "wall_strategies"]
