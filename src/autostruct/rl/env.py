"""The environment protocol the RL engine consumes.

The engine knows nothing about pruning or NAS: an environment is anything with this shape. Both searches
(``autostruct.prune.env.PruningEnv``, ``autostruct.nas.env.NASEnv``) implement it, and so do the small test envs.

Episodes are finite and the reward is typically sparse (0 until the last step). The ``info`` dict of the
final step is written to the episode log, so it must hold JSON-serializable values only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class BoxSpec:
    """A continuous action of ``dim`` values, each in [low, high].

    Policies emit values in [0, 1] (squashed Gaussian, as MTACP); the env maps them to its own range
    (e.g. a keep ratio inside the FLOPs-budget wall).
    """

    dim: int = 1
    low: float = 0.0
    high: float = 1.0


@dataclass(frozen=True)
class CategoricalSpec:
    """One categorical decision per step; ``choices[t]`` is the number of options at step ``t``.

    The policy's logits have ``max(choices)`` entries; options beyond ``choices[t]`` and those masked by
    :meth:`Env.action_mask` are never sampled.
    """

    choices: tuple[int, ...]

    @property
    def max_choices(self) -> int:
        return max(self.choices)


ActionSpec = BoxSpec | CategoricalSpec


@runtime_checkable
class Env(Protocol):
    """What an actor needs from an environment (one task per env instance)."""

    observation_size: int
    action_spec: ActionSpec
    #: Which task this env solves (an index into the run's task list); tags trajectories and episode logs.
    task_id: int
    #: Upper bound on episode length (pruning: number of groups; NAS: number of decisions).
    max_episode_steps: int

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode; return the first observation (float32, shape ``(observation_size,)``)."""
        ...

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        """Apply ``action`` (float array in [0, 1] for Box, int for Categorical); return (obs, reward, done, info)."""
        ...

    def action_mask(self) -> np.ndarray | None:
        """Boolean mask over ``max_choices`` options for the current step (Categorical), or None."""
        ...


#: A picklable zero-argument callable that builds an env inside an actor process (e.g. functools.partial of a
#: module-level function, or a frozen dataclass with ``__call__``). Envs are never pickled themselves.
EnvFactory = Callable[[], Env]
