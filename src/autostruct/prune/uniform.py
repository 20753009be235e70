"""The uniform strategy: one keep ratio for every group, the largest that meets the env's budget (FLOPs or latency).

The pruning search scores it on every task as the report's reference (``uniform`` in results.json), and
:func:`autostruct.baselines.uniform_prune` is the same strategy as a baseline.
"""

from __future__ import annotations

from typing import Any

from autostruct.prune.budget import uniform_counts
from autostruct.prune.env import PruningEnv


def uniform_strategy(env: PruningEnv) -> tuple[float, dict[str, Any]]:
    """Score the uniform strategy in ``env`` (same pruning, recalibration and validation subset as episodes).

    Returns the episode's ``(reward, info)``; ``info["uniform_ratio"]`` holds the ratio found. The ratio is not
    bounded by the env's ``lbound``: it is the plain "prune every layer alike" strategy.
    """
    ratio, counts = uniform_counts(env.cost_model, env.channels, env.allowed, env.decidable, env.target_cost)
    reward, info = env.evaluate_counts(counts)
    info["uniform_ratio"] = ratio
    return reward, info
