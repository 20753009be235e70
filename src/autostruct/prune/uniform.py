"""The uniform strategy: one keep ratio for every group, played as an exact-budget episode (FLOPs or latency).

The ratio is the largest that fits the budget when every group keeps it; then, group after group, the walls
of an exact-budget episode (:func:`~autostruct.prune.budget.uniform_wall_counts`) let the last groups take up
what channel rounding left, so the strategy spends the budget as a searched one does and the two compare at
equal cost. The pruning search scores it on every task as the report's reference (``uniform`` in results.json),
and :func:`autostruct.baselines.uniform_prune` is the same strategy as a baseline.
"""

from __future__ import annotations

from typing import Any

from autostruct.prune.budget import uniform_wall_counts
from autostruct.prune.env import PruningEnv


def uniform_strategy(env: PruningEnv) -> tuple[float, dict[str, Any]]:
    """Score the uniform strategy in ``env`` (same pruning, recalibration and validation subset as episodes).

    Returns the episode's ``(reward, info)``; ``info["uniform_ratio"]`` holds the ratio found. Like an episode,
    no group keeps less than the env's ``lbound``.
    """
    ratio, counts = uniform_wall_counts(env.cost_model, env.channels, env.allowed, env.decidable, env.floor,
                                        env.target_cost)
    reward, info = env.evaluate_counts(counts)
    info["uniform_ratio"] = ratio
    return reward, info
