"""Channel rounding fitted to a model and its budget: on the FLOP model (every entry point), and by timing the
task's own pruned models (a pruning run's pre-flight).

:func:`fit_round_to` is what ``round_to="auto"`` does everywhere once the host's multiple is known: it halves
the multiple while the budget is out of reach (:func:`reachable`), or while the exact-budget strategies
(:func:`wall_strategies`) cannot land within 3% below it (:func:`landing`) and the host runs the finer multiple
fast. It prices strategies with the FLOP model only: milliseconds. :func:`unreachable_reason` says which limit
(the multiple or ``lbound``) keeps a budget out of reach.

The host sweep (:mod:`autostruct.measure.rounding`) times single conv layers at a few spatial sizes and picks the
multiple that pays on this host (8 on AVX2). What a task's model gains from a coarser multiple also depends on
its input size and its budget: at 8x8 inputs (scikit-learn digits) a ResNet-20's convs run on 8x8, 4x4 and 2x2
maps, per-call costs dominate, and at a FLOPs ratio of 0.5 the strategies an exact-budget episode can end on run
at 0.70-0.79x of the base with multiples of 8 but 0.63-0.71x with multiples of 16 (docs/benchmarks.md, "The
latency floor").

:func:`choose_task_round_to` therefore times, for each candidate multiple, the strategies a search could end on
(the uniform one and walks under the env's exact FLOPs wall) against the base in one process with
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


def _floor(graph: PruningGraph, allowed: list[np.ndarray], decidable: np.ndarray, lbound: float) -> np.ndarray:
    floor = graph.channels.copy()
    for g in decidable:
        floor[g] = B.ceil_to_allowed(lbound, int(graph.channels[g]), allowed[g])
    return floor


def least_ratio(graph: PruningGraph, round_to: int, lbound: float) -> float | None:
    """FLOPs over the base with every decidable group at ``lbound`` (rounded up to ``round_to``); None when
    no group has a choice at that multiple."""
    allowed, decidable = _decidable(graph, round_to)
    if not len(decidable):
        return None
    floor = _floor(graph, allowed, decidable, lbound)
    return float(graph.flop_model(floor)) / float(graph.flop_model(graph.channels))


def reachable(graph: PruningGraph, ratio: float, round_to: int, lbound: float) -> bool:
    """Whether every decidable group at ``lbound`` (rounded up to ``round_to``) fits ``ratio`` of the base FLOPs."""
    least = least_ratio(graph, round_to, lbound)
    return least is not None and least <= ratio * (1 + 1e-9)


def wall_strategies(graph: PruningGraph, ratio: float, round_to: int, n: int, *, lbound: float = 0.2,
                    seed: int = 0) -> list[np.ndarray]:
    """The uniform strategy played under the exact FLOPs wall (:func:`~autostruct.prune.budget.uniform_wall_counts`),
    the walk of mid actions (0.5 at every step) and ``n - 2`` random walks: what ``budget: exact`` episodes end
    on, as kept channels per group; duplicates dropped, order kept."""
    fm = graph.flop_model
    allowed, decidable = _decidable(graph, round_to)
    full = graph.channels.copy()
    floor = _floor(graph, allowed, decidable, lbound)
    walled = [a[a >= f] for a, f in zip(allowed, floor, strict=True)]
    target = ratio * float(fm(full))
    _, uniform = B.uniform_wall_counts(fm, full, allowed, decidable, floor, target)
    found = {tuple(int(v) for v in uniform): np.asarray(uniform, dtype=np.int64)}
    rng = np.random.default_rng(seed)
    for i in range(max(n - 1, 0)):
        counts = full.copy()
        for step, g in enumerate(decidable):
            choices = B.wall_choices(fm, counts, int(g), walled, decidable[step + 1:], floor, full, target)
            lo, hi = float(choices[0]), float(choices[-1])
            counts[g] = B.nearest_allowed(lo + (0.5 if i == 0 else rng.uniform()) * (hi - lo), choices)
        found.setdefault(tuple(int(v) for v in counts), counts)
    return list(found.values())


def halvings(start: int) -> list[int]:
    """``start``, then halved down to 1: the multiples ``round_to: auto`` tries, coarsest first.

    >>> halvings(16)
    [16, 8, 4, 2, 1]
    """
    steps = [max(1, int(start))]
    while steps[-1] > 1:
        steps.append(steps[-1] // 2)
    return steps


def landing(graph: PruningGraph, ratio: float, round_to: int, lbound: float, *, strategies: int = 4,
            seed: int = 0) -> float:
    """The least FLOPs over the budget of the exact-budget strategies of :func:`wall_strategies` (1.0: every one
    spends the whole budget). Assumes the budget is :func:`reachable`."""
    fm = graph.flop_model
    target = ratio * float(fm(graph.channels))
    return min(float(fm(c)) / target for c in wall_strategies(graph, ratio, round_to, strategies, lbound=lbound,
                                                               seed=seed))


def fit_round_to(graph: PruningGraph, ratio: float, start: int, lbound: float,
                 tolerance: float = B.LANDING_TOLERANCE, finest: int = 1) -> RoundingChoice:
    """The coarsest of :func:`halvings` (``start``) with which a FLOPs budget of ``ratio`` is reachable with
    ``lbound`` and episodes land within ``tolerance`` below it (:func:`landing`).

    Landing closer never takes a multiple finer than ``finest`` (:func:`~autostruct.measure.rounding.finest_fast`:
    the host measured finer ones to run slowly, so a model pruned with them can end slower than unpruned); only
    reachability does, and then the first reachable one. When no tried multiple lands that close, the one that
    lands closest (the coarser on a tie). Returns a :class:`RoundingChoice` with ``source="auto"``, ``meta`` =
    ``{"start", "finest", "landing"}`` and each tried multiple's landing as ``scores``. Raises ``ValueError`` when
    no multiple reaches the budget (see :func:`unreachable_reason`).
    """
    tried: dict[int, float] = {}
    for k in halvings(start):
        if k < finest and tried:
            break
        if not reachable(graph, ratio, k, lbound):
            continue
        tried[k] = landing(graph, ratio, k, lbound)
        if tried[k] >= 1 - tolerance:
            break
    if not tried:
        raise ValueError(f"no channel multiple reaches a FLOPs ratio of {ratio:g} with lbound={lbound:g}")
    landed = [k for k, v in tried.items() if v >= 1 - tolerance]
    chosen = landed[0] if landed else max(tried, key=lambda k: (round(tried[k], 6), k))
    return RoundingChoice(chosen, tried, source="auto",
                          meta={"start": int(start), "finest": int(finest), "landing": tried[chosen]})


def unreachable_reason(graph: PruningGraph, ratio: float, round_to: int, lbound: float) -> str:
    """Why a FLOPs ratio cannot be met at ``round_to``, naming the real limit and the fix.

    The limit is the channel multiple when a finer one reaches the budget (groups of a few multiples cannot
    shrink much), else ``lbound`` (every group at ``lbound`` keeps too many FLOPs whatever the multiple).
    """
    finer = next((k for k in halvings(round_to)[1:] if reachable(graph, ratio, k, lbound)), None)
    if finer is None:
        base = float(graph.flop_model(graph.channels))
        return B.unreachable_message(ratio, (least_ratio(graph, 1, lbound) or 1.0) * base, base, lbound)
    least = least_ratio(graph, round_to, lbound)
    at_k = (f"every prunable group at lbound={lbound:g}, rounded up to a multiple of {round_to}, still keeps "
            f"{least:.3f} of the FLOPs" if least is not None else
            f"no prunable group has more than one channel count that is a multiple of {round_to}")
    small = sorted({int(g.channels) for g in graph.groups if g.channels < 4 * round_to})
    which = f"; groups of {', '.join(map(str, small[:4]))} channels can barely shrink" if small else ""
    return (f"FLOPs target ratio {ratio:g} cannot be met with round_to={round_to}: {at_k}{which}. The channel "
            f"multiple is the limit, not lbound: with round_to={finer} the least is "
            f"{least_ratio(graph, finer, lbound):.3f}. Use round_to <= {finer}, or round_to='auto', which lowers "
            "the multiple where a budget needs it.")


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


__all__ = ["TOLERANCE", "TaskRounding", "choose_task_round_to", "decide_task_round_to", "fit_round_to", "halvings",
           "landing", "least_ratio", "reachable", "unreachable_reason", "wall_strategies"]
