"""Random search with weight sharing: a strong NAS baseline (Li and Talwalkar 2019; Yu et al. 2020).

Every evaluation draws an architecture uniformly among the environment's allowed options (so it meets the
task's budgets when the env masks infeasible choices) and scores it with the shared supernet weights.
"""

from __future__ import annotations

import numpy as np

from autostruct.baselines.nas_common import NASSearchResult, Stopwatch, random_episode
from autostruct.nas.env import NASEnv


def random_search(env: NASEnv, evaluations: int, *, seed: int = 0, task: str | None = None) -> NASSearchResult:
    """Evaluate ``evaluations`` random architectures in ``env``; return every reward and the best one."""
    if evaluations < 1:
        raise ValueError(f"evaluations must be >= 1, got {evaluations}")
    rng = np.random.default_rng(seed)
    result = NASSearchResult("random", task or env.name)
    clock = Stopwatch()
    for _ in range(evaluations):
        reward, info = random_episode(env, rng)
        result.add(reward, info)
    result.seconds = clock()
    return result
