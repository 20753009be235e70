"""Random search: episodes with uniformly random actions through the env, keep the best."""

from __future__ import annotations

import time

from autostruct.baselines.common import BestTracker, SearchResult
from autostruct.rl.env import Env
from autostruct.rl.random_play import random_episodes, run_episode


def random_search(env: Env, episodes: int, seed: int = 0) -> SearchResult:
    """``episodes`` episodes with actions uniform in [0, 1] (:func:`~autostruct.rl.random_play.random_episodes`)."""
    tracker = BestTracker()
    start = time.perf_counter()
    for reward, info in random_episodes(env, episodes, seed):
        tracker.add(reward, info)
    return tracker.result(time.perf_counter() - start, "random")


__all__ = ["random_search", "run_episode"]
