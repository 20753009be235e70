"""Uniform pruning: one keep ratio for every group, the largest that meets the budget (FLOPs or latency)."""

from __future__ import annotations

import time

from autostruct.baselines.common import SearchResult
from autostruct.prune.env import PruningEnv
from autostruct.prune.uniform import uniform_strategy


def uniform_prune(env: PruningEnv) -> SearchResult:
    """Score the uniform strategy in ``env`` (:func:`~autostruct.prune.uniform.uniform_strategy`) as a search result.

    Every group keeps about the same ratio; the last ones take up what channel rounding left of the budget.
    ``best_info["uniform_ratio"]`` holds the ratio found.
    """
    start = time.perf_counter()
    reward, info = uniform_strategy(env)
    result = SearchResult(reward, list(info["strategy"]), info, [reward], 1, 0.0, "uniform")
    result.seconds = time.perf_counter() - start
    return result
