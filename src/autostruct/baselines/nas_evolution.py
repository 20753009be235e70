"""Regularized (aging) evolution, Real et al. 2019, through the NAS environment.

Start with ``population`` random architectures. Then repeatedly: draw ``sample_size`` members at random, take
the one with the highest reward as parent, mutate one of its decisions that had a choice (more than one allowed
option when the parent was played: on a NASEnv a depth, a kernel or an expand ratio of an existing block) to
another allowed value, evaluate the child, add it, and remove the *oldest* member (not the worst: ageing keeps
the search from clinging to a lucky early evaluation). The child is the parent's action sequence with that one
change, replayed through the env: a later choice the change made invalid (masked) falls back to a random
allowed option (:func:`~autostruct.baselines.nas_common.play`), which also repairs budget breaks. Works on any
env with a ``CategoricalSpec`` and ``action_mask()``.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from autostruct.baselines.nas_common import (
    Episode,
    NASSearchResult,
    Stopwatch,
    env_name,
    play,
    random_episode,
)
from autostruct.rl.env import Env


def mutate(parent: Episode, rng: np.random.Generator) -> list[int]:
    """The parent's actions with one decision that had a choice changed to another option allowed there."""
    child = list(parent.actions)
    free = [t for t, options in enumerate(parent.allowed) if len(options) > 1]
    if not free:
        return child
    t = int(rng.choice(free))
    child[t] = int(rng.choice([o for o in parent.allowed[t] if o != child[t]]))
    return child


def regularized_evolution(
    env: Env,
    evaluations: int,
    *,
    population: int = 10,
    sample_size: int = 3,
    seed: int = 0,
    task: str | None = None,
) -> NASSearchResult:
    """Run ageing evolution for ``evaluations`` evaluations (the initial population included)."""
    if evaluations < 1:
        raise ValueError(f"evaluations must be >= 1, got {evaluations}")
    if population < 1 or not 1 <= sample_size <= population:
        raise ValueError(f"need population >= 1 and 1 <= sample_size <= population; got {population}, {sample_size}")
    rng = np.random.default_rng(seed)
    result = NASSearchResult("evolution", task or env_name(env))
    clock = Stopwatch()
    pop: deque[Episode] = deque()
    while result.evaluations < min(population, evaluations):
        ep = random_episode(env, rng)
        result.add(ep.reward, ep.info, ep.actions)
        pop.append(ep)
    while result.evaluations < evaluations:
        picks = rng.choice(len(pop), size=sample_size, replace=False)
        parent = max((pop[i] for i in picks), key=lambda m: m.reward)
        ep = play(env, mutate(parent, rng), rng)
        result.add(ep.reward, ep.info, ep.actions)
        pop.append(ep)
        pop.popleft()
    result.seconds = clock()
    return result
