"""Per-task categorical cross-entropy method for NAS (Rubinstein 1999; de Boer et al. 2005), single task.

The sampling distribution is one independent categorical per decision, ``p_t`` over the step's options,
uniform at the start (so the first generation is random search). Each generation plays ``population``
architectures through the env, drawing step ``t`` from ``p_t`` restricted to the options ``action_mask()``
allows there (renormalized; uniform among them if ``p_t`` puts no mass on any), keeps the ``elite_frac`` best
by their reward and moves each ``p_t`` towards the elites' choices::

    p_t <- (1 - smoothing) * p_t + smoothing * freq_t(elites)
    p_t <- max(p_t, prob_floor), renormalized over the step's options

Only elites that had a choice at step ``t`` (more than one allowed option) count in ``freq_t``: a forced option
(a skipped block's 0 on a NASEnv) says nothing about what to pick when the choice is free. The floor keeps
every option reachable, so the search never stops exploring. Evaluations are episodes, counted exactly as for
the other NAS baselines; the last generation is cut short when the budget runs out. Works on any env with a
``CategoricalSpec`` and ``action_mask()`` (the documented protocol).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autostruct.baselines.nas_common import Episode, NASSearchResult, Stopwatch, env_name, play_with
from autostruct.errors import AutostructError
from autostruct.rl.env import CategoricalSpec, Env


@dataclass(frozen=True)
class CategoricalCEMConfig:
    """Categorical CEM settings (see the module docstring for the update)."""

    #: Architectures per generation.
    population: int = 20
    #: Share of a generation kept as elites (rounded up, at least one).
    elite_frac: float = 0.25
    #: Weight of the elites' choice frequencies in the update (1: replace ``p_t`` by them).
    smoothing: float = 0.5
    #: Least probability of every option of a step after an update.
    prob_floor: float = 0.02

    def validate(self) -> None:
        if self.population < 2:
            raise AutostructError(f"CEM population must be >= 2, got {self.population}.")
        if not 0.0 < self.elite_frac <= 1.0:
            raise AutostructError(f"CEM elite_frac must be in (0, 1], got {self.elite_frac}; 0.2-0.3 is usual.")
        if not 0.0 < self.smoothing <= 1.0:
            raise AutostructError(f"CEM smoothing must be in (0, 1], got {self.smoothing}.")
        if not 0.0 <= self.prob_floor < 0.5:
            raise AutostructError(f"CEM prob_floor must be in [0, 0.5), got {self.prob_floor}; 0.01-0.05 is usual.")

    @property
    def num_elites(self) -> int:
        return max(1, math.ceil(self.elite_frac * self.population))


def _sample(env: Env, probs: list[np.ndarray], rng: np.random.Generator) -> Episode:
    """Play one architecture, each step drawn from ``probs[t]`` within the options the env allows there."""

    def choose(t: int, options: list[int]) -> int:
        w = probs[t][options]
        return int(rng.choice(options, p=w / w.sum())) if w.sum() > 0 else int(rng.choice(options))

    return play_with(env, choose, max_steps=len(probs))


def _update(probs: list[np.ndarray], elites: list[Episode], cfg: CategoricalCEMConfig) -> None:
    """Move every ``p_t`` towards the elites' choices where they had one; floor and renormalize in place."""
    for t, p in enumerate(probs):
        chosen = [e.actions[t] for e in elites if t < len(e.actions) and len(e.allowed[t]) > 1]
        if not chosen:
            continue
        freq = np.bincount(chosen, minlength=len(p)).astype(float) / len(chosen)
        p[:] = (1.0 - cfg.smoothing) * p + cfg.smoothing * freq
        p[:] = np.maximum(p, cfg.prob_floor)
        p /= p.sum()


def categorical_cem_search(
    env: Env,
    evaluations: int,
    *,
    config: CategoricalCEMConfig | None = None,
    seed: int = 0,
    task: str | None = None,
) -> NASSearchResult:
    """Run the categorical CEM for ``evaluations`` architectures in ``env``; return every reward and the best one."""
    if evaluations < 1:
        raise ValueError(f"evaluations must be >= 1, got {evaluations}")
    if not isinstance(env.action_spec, CategoricalSpec):
        raise TypeError(f"categorical_cem_search needs a CategoricalSpec env, got {type(env.action_spec).__name__}")
    cfg = config or CategoricalCEMConfig()
    cfg.validate()
    rng = np.random.default_rng(seed)
    probs = [np.full(n, 1.0 / n) for n in env.action_spec.choices]
    result = NASSearchResult("cem", task or env_name(env))
    clock = Stopwatch()
    while result.evaluations < evaluations:
        generation: list[Episode] = []
        for _ in range(min(cfg.population, evaluations - result.evaluations)):
            ep = _sample(env, probs, rng)
            result.add(ep.reward, ep.info, ep.actions)
            generation.append(ep)
        # Out-of-budget architectures never count for the best, so they never lead the distribution either.
        ranked = sorted((e for e in generation if e.info.get("meets_budgets", True)), key=lambda e: -e.reward)
        _update(probs, ranked[: cfg.num_elites], cfg)
    result.seconds = clock()
    return result


__all__ = ["CategoricalCEMConfig", "categorical_cem_search"]
