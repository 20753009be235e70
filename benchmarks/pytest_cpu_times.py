"""A pytest plugin that writes each test's wall seconds and CPU seconds (this process, and its children that
ended during the test) as one tab-separated line to ``$CPU_TIMES`` (default ``test-cpu-times.tsv``).

Wall times of a loaded machine say little about a quiet one; CPU seconds do. The processes of a Ray cluster are
not this process's children and are not counted. With pytest-xdist each worker appends its own lines.

    PYTHONPATH=benchmarks CPU_TIMES=benchmarks/results/test-cpu-times.tsv \\
        .venv/bin/python -m pytest -q -n 2 --dist loadscope --no-loadscope-reorder -p pytest_cpu_times \\
        --durations=15 | tee out.txt
    python benchmarks/render_test_durations.py --pytest-output out.txt \\
        --cpu-times benchmarks/results/test-cpu-times.tsv --doc docs/testing.md
"""

from __future__ import annotations

import os
import resource
import time

import pytest


def _cpu() -> tuple[float, float]:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    own0, children0 = _cpu()
    start = time.perf_counter()
    yield
    own1, children1 = _cpu()
    with open(os.environ.get("CPU_TIMES", "test-cpu-times.tsv"), "a") as f:
        f.write(f"{item.nodeid}\t{time.perf_counter() - start:.2f}\t{own1 - own0:.2f}\t{children1 - children0:.2f}\n")
