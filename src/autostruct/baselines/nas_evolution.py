"""Regularized (aging) evolution, Real et al. 2019, through the NAS environment.

Start with ``population`` random architectures. Then repeatedly: draw ``sample_size`` members at random, take
the one with the highest reward as parent, mutate one of its active decisions (a depth, a kernel or an expand
ratio) to another value, evaluate the child, add it, and remove the *oldest* member (not the worst: ageing
keeps the search from clinging to a lucky early evaluation). Children that would break a budget are repaired
to a random feasible option at the first offending step (:func:`~autostruct.baselines.nas_common.play`).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from autostruct.baselines.nas_common import NASSearchResult, Stopwatch, play, random_episode
from autostruct.nas.env import NASEnv
from autostruct.nas.space import SearchSpace


def mutate(space: SearchSpace, indices: list[int], rng: np.random.Generator) -> list[int]:
    """Change one active decision of ``indices`` to a different option (uniformly among the others)."""
    active = [t for t in range(space.num_decisions) if space.is_active(t, indices) and len(space.decisions[t].choices) > 1]
    child = list(indices)
    if not active:
        return child
    t = int(rng.choice(active))
    others = [i for i in range(len(space.decisions[t].choices)) if i != child[t]]
    child[t] = int(rng.choice(others))
    return child


def regularized_evolution(
    env: NASEnv,
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
    result = NASSearchResult("evolution", task or env.name)
    clock = Stopwatch()
    pop: deque[tuple[list[int], float]] = deque()
    while result.evaluations < min(population, evaluations):
        reward, info = random_episode(env, rng)
        result.add(reward, info)
        pop.append((info["arch"], reward))
    while result.evaluations < evaluations:
        picks = rng.choice(len(pop), size=sample_size, replace=False)
        parent = max((pop[i] for i in picks), key=lambda m: m[1])
        reward, info = play(env, mutate(env.space, parent[0], rng), rng)
        result.add(reward, info)
        pop.append((info["arch"], reward))
        pop.popleft()
    result.seconds = clock()
    return result
