"""Test-wide settings: one torch thread (2-core CI machines), and a per-session cache directory.

Under pytest-xdist (``make test`` runs ``-n 2``, one worker per core) both workers share the session's cache
directory, so a base model or supernet that two workers need is trained once (cache entries are locked while
they are made), and a test marked ``cores(2)`` (a local Ray cluster: its start alone keeps several processes
busy) runs while the other worker waits. Tests that start actor processes of the ``local`` backend share the
cores instead, so the other worker does not idle while they wait for them; the asynchronous learning tests
among them retry when contention leaves a task unlearned (``tests/rl/test_impala_learning.py``)."""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
# Subprocesses (the CLI through its real entry point, benchmark smoke runs) inherit one thread too: with two
# xdist workers on two cores, a child on torch's default of a thread per core oversubscribes them.
os.environ.setdefault("OMP_NUM_THREADS", "1")

HOST_ROUND_TO = 8
HOST_SCORES = {1: 1.0, 4: 0.856, 8: 0.813, 16: 0.807}
"""What ``round_to="auto"`` starts from in tests: the host answer is written into the session's cache, so every
env built with the default multiple sees the same one on any host (8 and the sweep's scores measured on an AVX2
development host: multiples of 4 still count as fast) and no test pays for the sweep.
``tests/measure/test_measure_rounding.py`` measures the real one."""


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(request, tmp_path_factory):
    # Trained base models are cached across tests of one session, never in the user's real cache.
    if "AUTOSTRUCT_CACHE" not in os.environ:
        os.environ["AUTOSTRUCT_CACHE"] = str(session_dir(request.config, tmp_path_factory) / "autostruct-cache")
        _seed_host_rounding()
    yield


def session_dir(config, tmp_path_factory):
    """A folder of this test session that every xdist worker sees (each worker's basetemp is one below it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if hasattr(config, "workerinput") else base


def _seed_host_rounding() -> None:
    from autostruct.measure import rounding
    from autostruct.utils.io import write_json_atomic

    write_json_atomic(rounding.rounding_cache_path(1), {
        "format": rounding.FORMAT, "round_to": HOST_ROUND_TO, "candidates": list(rounding.CANDIDATES),
        "tolerance": 0.02, "scores": {str(k): v for k, v in HOST_SCORES.items()}, "threads": 1,
        "seeded_by": "tests/conftest.py",
    })


def pytest_collection_modifyitems(config, items):
    """Under xdist (``--dist loadscope --no-loadscope-reorder``: a module's tests stay on one worker, so a
    module's run fixture is made once, and modules go out in this order), modules that hold slow end-to-end runs
    start first, so the two workers finish together, and modules of ``cores`` tests go last: the other worker is
    then among short tests, so the wait for its current one to end is short."""
    if not hasattr(config, "workerinput"):  # xdist's workers collect; without xdist the order stays
        return
    alone = {item.path for item in items if item.get_closest_marker("cores")}
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: (item.path in alone, item.path not in slow_modules))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    workerinput = getattr(item.config, "workerinput", None)
    if workerinput is None:
        yield
        return
    exclusive = item.get_closest_marker("cores") is not None
    # Consecutive ``cores`` tests keep the cores whole between them: released, the other worker would start a
    # test in between that the next one must wait for.
    keep = exclusive and nextitem is not None and nextitem.get_closest_marker("cores") is not None
    _CORES.acquire(workerinput["testrunuid"], exclusive)
    try:
        yield
    finally:
        if not keep:
            _CORES.release()


class _SessionCores:
    """This worker's hold on the session's cores: shared for a one-process test, whole for a ``cores(2)`` test.

    A test that wants them whole holds the gate while it waits, so the other worker's next test queues behind it
    instead of starving it. A hold kept from the previous test (whole) is reused as it is."""

    def __init__(self) -> None:
        self.held: tuple[int, int] | None = None  # (gate, cores) descriptors while held

    def acquire(self, run_id: str, exclusive: bool) -> None:
        if self.held is not None:
            return
        folder = Path(tempfile.gettempdir()) / f"autostruct-tests-{run_id}"
        folder.mkdir(exist_ok=True)
        gate = os.open(folder / "gate", os.O_RDWR | os.O_CREAT, 0o644)
        cores = os.open(folder / "cores", os.O_RDWR | os.O_CREAT, 0o644)
        self.held = (gate, cores)
        fcntl.flock(gate, fcntl.LOCK_EX)
        fcntl.flock(cores, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        fcntl.flock(gate, fcntl.LOCK_UN)

    def release(self) -> None:
        if self.held is not None:
            for fd in self.held:
                os.close(fd)
            self.held = None


_CORES = _SessionCores()
