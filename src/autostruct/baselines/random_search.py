"""Random search: episodes with uniformly random actions through the env, keep the best."""

from __future__ import annotations

import time

import numpy as np

from autostruct.baselines.common import BestTracker, SearchResult
from autostruct.errors import AutostructError
from autostruct.rl.env import Env


def run_episode(env: Env, policy) -> tuple[float, dict]:
    """Play one episode with ``policy(obs) -> action``; return the final reward and info."""
    obs = env.reset()
    done, reward, info = False, 0.0, {}
    while not done:
        obs, reward, done, info = env.step(policy(obs))
    return reward, info


def random_search(env: Env, episodes: int, seed: int = 0) -> SearchResult:
    """``episodes`` episodes with actions uniform in [0, 1] (the env maps them into its budget walls)."""
    if episodes < 1:
        raise AutostructError(f"episodes must be >= 1, got {episodes}.")
    rng = np.random.default_rng(seed)
    tracker = BestTracker()
    start = time.perf_counter()
    for _ in range(episodes):
        tracker.add(*run_episode(env, lambda _obs: rng.random(1)))
    return tracker.result(time.perf_counter() - start, "random")
