"""Uniform pruning: one keep ratio for every group, the largest that meets the budget (FLOPs or latency)."""

from __future__ import annotations

import time

from autostruct.baselines.common import SearchResult
from autostruct.prune.budget import uniform_counts
from autostruct.prune.env import PruningEnv


def uniform_prune(env: PruningEnv) -> SearchResult:
    """Score the uniform strategy in ``env`` (same pruning, recalibration and validation subset as episodes).

    The ratio is not bounded by the env's ``lbound``: it is the plain "prune every layer alike" baseline.
    ``best_info["uniform_ratio"]`` holds the ratio found.
    """
    start = time.perf_counter()
    ratio, counts = uniform_counts(env.cost_model, env.channels, env.allowed, env.decidable, env.target_cost)
    reward, info = env.evaluate_counts(counts)
    info["uniform_ratio"] = ratio
    result = SearchResult(reward, list(info["strategy"]), info, [reward], 1, 0.0, "uniform")
    result.seconds = time.perf_counter() - start
    return result
