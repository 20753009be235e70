"""Episode rewards of the pruning MDP (pure functions). The budget itself is enforced by the action walls
(``budget: exact`` / ``amc``), not by the reward; ``budget: none`` uses :func:`over_budget_penalty`."""

from __future__ import annotations

import math

REWARDS: tuple[str, ...] = ("acc", "acc_flops", "acc_latency", "latency")


def accuracy_reward(accuracy: float) -> float:
    """MTACP's reward: validation accuracy of the pruned model (in [0, 1])."""
    return float(accuracy)


def acc_flops_reward(accuracy: float, flops: float) -> float:
    """AMC's resource-aware reward ``-error * log(FLOPs)``: fewer FLOPs at the same error score higher."""
    return -(1.0 - float(accuracy)) * math.log(max(float(flops), 1.0))


def acc_latency_reward(accuracy: float, latency_ms: float) -> float:
    """AMC's resource-aware reward with latency in place of FLOPs: ``-error * log(latency in microseconds)``.

    Microseconds keep the logarithm positive for any model that takes at least 1 us, so a faster model at the
    same error always scores higher (with milliseconds, sub-millisecond models would flip the sign).
    """
    return -(1.0 - float(accuracy)) * math.log(max(float(latency_ms) * 1000.0, 1.0))


def latency_reward(accuracy: float, latency: float, target_latency: float, w: float = -0.07) -> float:
    """MnasNet-style soft latency reward ``acc * (latency / target) ** w`` (``w < 0``: slower scores lower)."""
    if latency <= 0 or target_latency <= 0:
        raise ValueError(f"latencies must be > 0, got {latency} and {target_latency}")
    return float(accuracy) * (latency / target_latency) ** w


def over_budget_penalty(flops: float, target_flops: float, floor: float = 0.0) -> float:
    """Reward of an episode over its FLOPs budget under ``budget: none``: ``floor - flops / target``, where
    ``floor`` is the lowest reward an in-budget episode can get (0 for ``acc``), so any in-budget episode scores
    higher and the penalty grows with the overshoot."""
    return float(floor) - float(flops) / float(target_flops)
