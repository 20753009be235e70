"""Expand a :class:`~autostruct.config.PruneConfig` into one task per (dataset, classes, ratio)."""

from __future__ import annotations

from dataclasses import dataclass

from autostruct.config import PruneConfig


@dataclass(frozen=True)
class DataKey:
    """A dataset (or class subset of one): the unit that gets its own trained base model."""

    dataset: str
    classes: tuple[int, ...] | None
    root: str | None

    @property
    def label(self) -> str:
        return self.dataset + (f"-c{'.'.join(map(str, self.classes))}" if self.classes else "")


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
