"""Small steps both searches take the same way: pick a task's best episode, time a finished model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from autostruct.measure import measure_latency


def task_episodes(episodes: Sequence[Any], task_id: int) -> list[Any]:
    """The episodes of one task, in the order they were logged."""
    return [e for e in episodes if e.task_id == task_id]


def best_episode(
    episodes: Sequence[Any], task_id: int, accept: Callable[[Any], bool] | None = None
) -> tuple[Any, int, int] | None:
    """(the highest-reward episode of ``task_id`` among those ``accept`` passes, its 1-based index among the task's
    episodes, the task's episode count); None when none passes. Ties keep the earliest."""
    task_eps = task_episodes(episodes, task_id)
    best, best_i = None, 0
    for i, e in enumerate(task_eps, start=1):
        if (accept is None or accept(e)) and (best is None or e.reward > best.reward):
            best, best_i = e, i
    return (best, best_i, len(task_eps)) if best is not None else None


def onnx_latency_ms(model: torch.nn.Module, x: torch.Tensor, runs: int) -> float:
    """Median latency of ``model`` on ``x`` with onnxruntime, one thread, 5 warm-up runs (results.json's timings)."""
    return float(measure_latency(model, x, backend="onnxruntime", runs=runs, warmup=5, threads=1).median_ms)
