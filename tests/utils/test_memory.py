"""release_free_memory: freed heap pages that glibc keeps are given back to the operating system."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from autostruct.utils.memory import release_free_memory


def _heap_rss_kb() -> int:
    total, in_heap = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            in_heap = line.endswith("[heap]")
        elif in_heap and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


def test_freed_heap_pages_are_returned():
    if not Path("/proc/self/smaps").exists() or not release_free_memory():
        pytest.skip("needs Linux with glibc")
    # 64 KiB blocks stay below glibc's mmap threshold, so they live in the heap; a small survivor after each
    # keeps the heap from shrinking at its top, as the long-lived objects of a real process do.
    blocks, survivors = [], []
    for _ in range(1600):
        blocks.append(bytearray(b"x" * 65536))
        survivors.append(bytearray(b"y" * 600))
    del blocks
    before = _heap_rss_kb()
    assert release_free_memory()
    after = _heap_rss_kb()
    assert before - after > 50 * 1024, (before, after)  # most of the ~100 MiB freed
    assert len(survivors) == 1600
