"""Test-wide settings: one torch thread (2-core CI machines), and a per-session cache directory."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    # Trained base models are cached across tests of one session, never in the user's real cache.
    if "AUTOSTRUCT_CACHE" not in os.environ:
        os.environ["AUTOSTRUCT_CACHE"] = str(tmp_path_factory.mktemp("autostruct-cache"))
    yield
