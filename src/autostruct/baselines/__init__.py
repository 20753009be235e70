"""What the searches are compared against, run through the same envs.

Pruning: :func:`uniform_prune`, :func:`random_search`, :func:`ddpg_search` (AMC), :func:`cem_search`
(cross-entropy method). NAS baselines live in
``nas_*.py``. Names are imported lazily so that importing this package pulls in neither search.
"""

from __future__ import annotations

import importlib
from typing import Any

# Eager, because the submodule has the function's name: once imported, the submodule would shadow a lazy name.
from autostruct.baselines.random_search import random_search as random_search

_LAZY = {
    "SearchResult": "autostruct.baselines.common",
    "uniform_prune": "autostruct.baselines.uniform",
    "ddpg_search": "autostruct.baselines.ddpg",
    "cem_search": "autostruct.baselines.cem",
    "CEMConfig": "autostruct.baselines.cem",
    "ppo_search": "autostruct.baselines.ppo",
    "PPOConfig": "autostruct.baselines.ppo",
    "DDPGConfig": "autostruct.baselines.ddpg",
}

__all__ = sorted([*_LAZY, "random_search"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'autostruct.baselines' has no attribute '{name}'")
