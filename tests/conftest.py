"""Test-wide settings: one torch thread (2-core CI machines), and a per-session cache directory."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(1)

HOST_ROUND_TO = 8
HOST_SCORES = {1: 1.0, 4: 0.856, 8: 0.813, 16: 0.807}
"""What ``round_to="auto"`` starts from in tests: the host answer is written into the session's cache, so every
env built with the default multiple sees the same one on any host (8 and the sweep's scores measured on an AVX2
development host: multiples of 4 still count as fast) and no test pays for the sweep.
``tests/measure/test_measure_rounding.py`` measures the real one."""


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    # Trained base models are cached across tests of one session, never in the user's real cache.
    if "AUTOSTRUCT_CACHE" not in os.environ:
        os.environ["AUTOSTRUCT_CACHE"] = str(tmp_path_factory.mktemp("autostruct-cache"))
        _seed_host_rounding()
    yield


def _seed_host_rounding() -> None:
    from autostruct.measure import rounding
    from autostruct.utils.io import write_json_atomic

    write_json_atomic(rounding.rounding_cache_path(1), {
        "format": rounding.FORMAT, "round_to": HOST_ROUND_TO, "candidates": list(rounding.CANDIDATES),
        "tolerance": 0.02, "scores": {str(k): v for k, v in HOST_SCORES.items()}, "threads": 1,
        "seeded_by": "tests/conftest.py",
    })
