"""Expand a :class:`~autostruct.config.PruneConfig` into one task per (dataset, classes, budget).

A budget is a FLOPs keep ratio (``ratios``), a latency budget in ms (``latency_ms``) or relative to the base
model's latency (``latency_ratios``); a config task with several gives one task per value of each, in that order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from autostruct.config import PruneConfig
from autostruct.utils.runs import DataKey

__all__ = ["DataKey", "TaskSpec", "expand_tasks"]


@dataclass(frozen=True)
class TaskSpec:
    """One env of the run: a dataset and either a FLOPs ``ratio`` or a latency budget (the other is None).

    A latency budget is ``latency_ms``, or ``latency_ratio`` (a fraction of the base model's latency) whose
    ``latency_ms`` the pre-flight fills in from the latency table (:func:`with_latency_ms`); ``name`` does not
    change when it does.
    """

    task_id: int
    data: DataKey
    ratio: float | None
    dataset_index: int  # position of ``data`` among the run's datasets: the state's beta feature
    latency_ms: float | None = None
    latency_ratio: float | None = None

    @property
    def name(self) -> str:
        if self.latency_ratio is not None:
            return f"{self.data.label}-lr{self.latency_ratio:g}"
        if self.latency_ms is not None:
            return f"{self.data.label}-l{self.latency_ms:g}ms"
        return f"{self.data.label}-r{self.ratio:g}"

    @property
    def is_latency(self) -> bool:
        return self.latency_ms is not None or self.latency_ratio is not None

    def with_latency_ms(self, ms: float) -> TaskSpec:
        """This task with its latency budget in ms (a ``latency_ratio`` task priced by the table)."""
        return replace(self, latency_ms=float(ms))


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
        for r in t.latency_ratios or []:
            tasks.append(TaskSpec(len(tasks), key, None, keys.index(key), latency_ratio=float(r)))
    return keys, tasks
