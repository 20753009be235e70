"""Expand a :class:`~autostruct.config.PruneConfig` into one task per (dataset, classes, budget).

A budget is a FLOPs keep ratio (``ratios``) or a latency budget in ms (``latency_ms``); a config task with
both gives one task per value of each, ratios first.
"""

from __future__ import annotations

from dataclasses import dataclass

from autostruct.config import PruneConfig
from autostruct.utils.runs import DataKey

__all__ = ["DataKey", "TaskSpec", "expand_tasks"]


@dataclass(frozen=True)
class TaskSpec:
    """One env of the run: a dataset and either a FLOPs ``ratio`` or a ``latency_ms`` budget (the other is None)."""

    task_id: int
    data: DataKey
    ratio: float | None
    dataset_index: int  # position of ``data`` among the run's datasets: the state's beta feature
    latency_ms: float | None = None

    @property
    def name(self) -> str:
        if self.latency_ms is not None:
            return f"{self.data.label}-l{self.latency_ms:g}ms"
        return f"{self.data.label}-r{self.ratio:g}"

    @property
    def is_latency(self) -> bool:
        return self.latency_ms is not None


def expand_tasks(cfg: PruneConfig) -> tuple[list[DataKey], list[TaskSpec]]:
    """Datasets in first-seen order, and tasks in config order (task ids 0..n-1)."""
    keys: list[DataKey] = []
    tasks: list[TaskSpec] = []
    for t in cfg.tasks:
        key = DataKey(t.dataset, tuple(t.classes) if t.classes else None, t.root)
        if key not in keys:
            keys.append(key)
        for r in t.ratios or []:
            tasks.append(TaskSpec(len(tasks), key, float(r), keys.index(key)))
        for ms in t.latency_ms or []:
            tasks.append(TaskSpec(len(tasks), key, None, keys.index(key), latency_ms=float(ms)))
    return keys, tasks
