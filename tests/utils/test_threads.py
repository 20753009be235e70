"""threads: auto: every idle core, at least one; the previous torch setting comes back."""

from __future__ import annotations

import torch

from autostruct.utils import threads


def test_auto_takes_the_idle_cores_and_restores_torchs_setting(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 4)
    for idle, expected in ((3.7, 4), (2.4, 2), (0.2, 1), (None, 4)):
        monkeypatch.setattr(threads, "idle_cores", lambda idle=idle: idle)
        with threads.torch_threads("auto") as n:
            assert n == expected and torch.get_num_threads() == expected
        assert torch.get_num_threads() == before
    with threads.torch_threads(1) as n:
        assert n == 1


def test_idle_cores_is_measured_where_proc_stat_exists():
    idle = threads.idle_cores(0.05)
    assert idle is None or 0 <= idle <= (threads.os.cpu_count() or 1) + 1e-9
