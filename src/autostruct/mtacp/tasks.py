"""Expand a :class:`~autostruct.config.PruneConfig` into one task per (dataset, classes, ratio)."""

from __future__ import annotations

from dataclasses import dataclass

from autostruct.config import PruneConfig
from autostruct.utils.runs import DataKey

__all__ = ["DataKey", "TaskSpec", "expand_tasks"]


@dataclass(frozen=True)
class TaskSpec:
    task_id: int
    data: DataKey
    ratio: float
    dataset_index: int  # position of ``data`` among the run's datasets: the state's beta feature

    @property
    def name(self) -> str:
        return f"{self.data.label}-r{self.ratio:g}"


def expand_tasks(cfg: PruneConfig) -> tuple[list[DataKey], list[TaskSpec]]:
    """Datasets in first-seen order, and tasks in config order (task ids 0..n-1)."""
    keys: list[DataKey] = []
    tasks: list[TaskSpec] = []
    for t in cfg.tasks:
        key = DataKey(t.dataset, tuple(t.classes) if t.classes else None, t.root)
        if key not in keys:
            keys.append(key)
        for r in t.ratios:
            tasks.append(TaskSpec(len(tasks), key, float(r), keys.index(key)))
    return keys, tasks
