"""Channel pruning: groups from the dependency graph, surgery, BN recalibration, the MDP (see DESIGN.md).

Public names: :func:`prunable_groups`, :func:`analyze`, :func:`apply_keep_ratios`, :func:`recalibrate_bn`,
:class:`PruningEnv`, :class:`PruningEnvFactory`. Imported lazily (torch_pruning is heavy).

The search that runs on them is ``autostruct.prune(config)``, a function of the top-level package (see
:mod:`autostruct`); this package is what ``from autostruct.prune import ...`` reads.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "PrunableGroup": "autostruct.prune.graph",
    "PruningGraph": "autostruct.prune.graph",
    "analyze": "autostruct.prune.graph",
    "prunable_groups": "autostruct.prune.graph",
    "apply_keep_ratios": "autostruct.prune.surgery",
    "channel_importance": "autostruct.prune.surgery",
    "prune_counts": "autostruct.prune.surgery",
    "recalibrate_bn": "autostruct.models.bn",
    "PruningEnv": "autostruct.prune.env",
    "PruningEnvFactory": "autostruct.prune.env",
    "FlopModel": "autostruct.prune.budget",
    "LatencyModel": "autostruct.prune.latency",
    "graph_latency_floor": "autostruct.prune.latency_floor",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'autostruct.prune' has no attribute '{name}'")
