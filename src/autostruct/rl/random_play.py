"""Episodes with uniformly random actions, on any :class:`~autostruct.rl.env.Env` with a box action in [0, 1].

The pruning search plays them as the report's reference (``random_baseline`` in results.json), and
:func:`autostruct.baselines.random_search` keeps the best of them as a baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from autostruct.errors import AutostructError
from autostruct.rl.env import Env


def run_episode(env: Env, policy: Callable[[Any], Any]) -> tuple[float, dict[str, Any]]:
    """Play one episode with ``policy(obs) -> action``; return the final reward and info."""
    obs = env.reset()
    done, reward, info = False, 0.0, {}
    while not done:
        obs, reward, done, info = env.step(policy(obs))
    return reward, info


def random_episodes(env: Env, episodes: int, seed: int = 0) -> Iterator[tuple[float, dict[str, Any]]]:
    """``(reward, info)`` of ``episodes`` episodes with actions uniform in [0, 1] (the env maps them into its walls)."""
    if episodes < 1:
        raise AutostructError(f"episodes must be >= 1, got {episodes}.")
    rng = np.random.default_rng(seed)
    for _ in range(episodes):
        yield run_episode(env, lambda _obs: rng.random(1))
