"""Cross-entropy method (Rubinstein 1999; as a policy search e.g. Szita & Lorincz 2006), single task.

The searched object is the episode's action sequence: one action in [0, 1] per step, drawn from an independent
Gaussian per step, ``a_t ~ N(mean_t, std_t)`` clipped to [0, 1]. Each generation draws ``population`` episodes,
keeps the ``elite_frac`` best by their final reward, and moves the distribution towards the elites::

    mean_t <- (1 - smoothing) * mean_t + smoothing * mean(elite a_t)
    std_t  <- max(std_floor, (1 - smoothing) * std_t + smoothing * std(elite a_t))

Starting at ``mean_init`` 0.5 and ``std_init`` 0.3, the first generation is close to random search; later ones
concentrate where the rewards were high. The env maps each action into its own budget wall (as it does for
random search, DDPG and MTACP), so the search runs on exactly the same MDP and episode budget as the others.
The last generation is cut short when the episode budget runs out.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from autostruct.baselines.common import BestTracker, SearchResult
from autostruct.errors import AutostructError
from autostruct.rl.env import Env


@dataclass(frozen=True)
class CEMConfig:
    """CEM settings (see the module docstring for the update)."""

    population: int = 10
    elite_frac: float = 0.3
    mean_init: float = 0.5
    std_init: float = 0.3
    #: Weight of the elites' statistics in the update (1: replace the distribution by the elites' fit).
    smoothing: float = 0.7
    #: Least per-step standard deviation, so the search never stops exploring.
    std_floor: float = 0.05

    def validate(self) -> None:
        if self.population < 2:
            raise AutostructError(f"CEM population must be >= 2, got {self.population}.")
        if not 0.0 < self.elite_frac <= 1.0:
            raise AutostructError(f"CEM elite_frac must be in (0, 1], got {self.elite_frac}; 0.2-0.3 is usual.")
        if not 0.0 < self.smoothing <= 1.0:
            raise AutostructError(f"CEM smoothing must be in (0, 1], got {self.smoothing}.")
        if self.std_init <= 0 or self.std_floor < 0:
            raise AutostructError(f"CEM std_init must be > 0 and std_floor >= 0, got {self.std_init}, {self.std_floor}.")

    @property
    def num_elites(self) -> int:
        return max(1, math.ceil(self.elite_frac * self.population))


def _episode(env: Env, rng: np.random.Generator, mean: np.ndarray, std: np.ndarray
             ) -> tuple[float, dict, np.ndarray]:
    """Play one episode with actions drawn per step; return reward, info and the actions taken (clipped)."""
    env.reset()
    actions: list[float] = []
    done, reward, info = False, 0.0, {}
    while not done:
        t = len(actions)
        if t >= len(mean):
            raise AutostructError(f"Env ran past its max_episode_steps ({len(mean)}); CEM needs a fixed horizon.")
        a = float(np.clip(rng.normal(mean[t], std[t]), 0.0, 1.0))
        actions.append(a)
        _, reward, done, info = env.step(np.array([a], dtype=np.float32))
    return float(reward), info, np.asarray(actions)


def cem_search(
    env: Env,
    episodes: int,
    seed: int = 0,
    population: int | None = None,
    elite_frac: float | None = None,
    *,
    config: CEMConfig | None = None,
) -> SearchResult:
    """Run CEM over the per-step actions for ``episodes`` episodes in ``env`` and keep the best episode.

    ``population`` and ``elite_frac`` override ``config``'s. Episodes may end before ``env.max_episode_steps``;
    the unused steps of the distribution are then left as they are.
    """
    if episodes < 1:
        raise AutostructError(f"episodes must be >= 1, got {episodes}.")
    cfg = config or CEMConfig()
    overrides = {k: v for k, v in (("population", population), ("elite_frac", elite_frac)) if v is not None}
    if overrides:
        cfg = CEMConfig(**{**cfg.__dict__, **overrides})
    cfg.validate()
    horizon = int(env.max_episode_steps)
    rng = np.random.default_rng(seed)
    mean = np.full(horizon, cfg.mean_init, dtype=np.float64)
    std = np.full(horizon, cfg.std_init, dtype=np.float64)
    tracker = BestTracker()
    start = time.perf_counter()
    done = 0
    while done < episodes:
        generation = []
        for _ in range(min(cfg.population, episodes - done)):
            reward, info, actions = _episode(env, rng, mean, std)
            tracker.add(reward, info)
            generation.append((reward, actions))
            done += 1
        if len(generation) < cfg.population:
            break  # budget spent mid-generation: nothing left to use an update for
        generation.sort(key=lambda p: -p[0])  # stable: the earlier episode wins ties
        elites = [a for _, a in generation[: cfg.num_elites]]
        n = min(len(a) for a in elites)
        stacked = np.stack([a[:n] for a in elites])
        s = cfg.smoothing
        mean[:n] = (1.0 - s) * mean[:n] + s * stacked.mean(0)
        std[:n] = np.maximum(cfg.std_floor, (1.0 - s) * std[:n] + s * stacked.std(0))
    return tracker.result(time.perf_counter() - start, "cem")
