"""Random search with weight sharing: a strong NAS baseline (Li and Talwalkar 2019; Yu et al. 2020).

Every evaluation draws an architecture uniformly among the environment's allowed options, step by step within
``action_mask()`` (so it meets the task's budgets when the env masks infeasible choices), and scores it with
the env's evaluation. Works on any env with a ``CategoricalSpec`` and ``action_mask()``.
"""

from __future__ import annotations

import numpy as np

from autostruct.baselines.nas_common import NASSearchResult, Stopwatch, env_name, random_episode
from autostruct.rl.env import Env


def random_search(env: Env, evaluations: int, *, seed: int = 0, task: str | None = None) -> NASSearchResult:
    """Evaluate ``evaluations`` random architectures in ``env``; return every reward and the best one."""
    if evaluations < 1:
        raise ValueError(f"evaluations must be >= 1, got {evaluations}")
    rng = np.random.default_rng(seed)
    result = NASSearchResult("random", task or env_name(env))
    clock = Stopwatch()
    for _ in range(evaluations):
        ep = random_episode(env, rng)
        result.add(ep.reward, ep.info, ep.actions)
    result.seconds = clock()
    return result
