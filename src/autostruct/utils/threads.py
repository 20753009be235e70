"""How many torch threads the main process uses for its own work (base training, fine-tuning, evaluation).

Two threads on a quiet 2-core host train a full-width ResNet-20 faster than one; on a host whose cores other
processes already keep busy, two threads spin-wait on each other and the same work takes several times longer
than on one. ``threads: auto`` therefore looks at how idle the cores are right now (over a tenth of a second,
from ``/proc/stat``: ten clock ticks per core, enough to round to whole cores; not the load average, which still
counts the run's own actors a minute after they stopped). A run looks once per phase (base models, each task's
finish).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Literal

import torch


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all cores since boot, or None where ``/proc/stat`` is missing."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields[:8])


def idle_cores(window: float = 0.1) -> float | None:
    """How many cores were idle over the last ``window`` seconds (None where it cannot be measured)."""
    first = _cpu_times()
    if first is None:
        return None
    time.sleep(window)
    second = _cpu_times()
    if second is None or second[1] <= first[1]:
        return None
    return (os.cpu_count() or 1) * (second[0] - first[0]) / (second[1] - first[1])


def choose_threads(cores: int, idle: float | None) -> int:
    """All ``cores`` where they are idle (``idle`` None: not measured), else the idle ones, rounded, at least 1.

    >>> choose_threads(2, 1.9), choose_threads(2, 0.3), choose_threads(8, 5.6), choose_threads(2, None)
    (2, 1, 6, 2)
    """
    if idle is None:
        return cores
    return max(1, min(cores, round(idle)))


def resolve_threads(threads: int | Literal["auto"]) -> int:
    """``threads`` as a number: ``'auto'`` is :func:`choose_threads` over this host's cores as they are now."""
    if threads != "auto":
        return int(threads)
    return choose_threads(os.cpu_count() or 1, idle_cores())


@contextlib.contextmanager
def torch_threads(threads: int | Literal["auto"]) -> Iterator[int]:
    """Run the block with ``resolve_threads(threads)`` torch threads, then restore the previous number."""
    old = torch.get_num_threads()
    n = resolve_threads(threads)
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(old)
