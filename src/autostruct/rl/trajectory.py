"""The actor-learner contract: what an actor sends (:class:`Trajectory`) and what the run logs (:class:`EpisodeRecord`).

A trajectory of ``T`` steps holds ``T + 1`` observations: the last one is only used for the bootstrap value
(V-trace), and it is the first observation of the actor's next unroll. Per observation ``t`` it stores the
policy inputs (obs, previous action and reward, ``first`` flag, step index, mask); per transition ``t < T``
the stored action (pre-squash sample for Box, index for Categorical), reward, done and the behaviour
log-prob. The LSTM state at the unroll's start and the weight version that acted travel with it.
Arrays are NumPy so the trajectory pickles cheaply across processes and Ray.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from autostruct.rl.policy import PolicyInputs


@dataclass
class EpisodeRecord:
    """One finished episode as written to ``episodes.jsonl`` (one JSON object per line)."""

    task_id: int
    episode_index: int  # global, consecutive over the whole run (assigned when logged; -1 before)
    actions: list[Any]  # env actions: list of floats per step (Box) or ints (Categorical)
    reward: float  # undiscounted sum of the episode's rewards
    info: dict[str, Any]  # the env's info dict from the final step
    policy_version: int  # learner version of the weights that finished the episode
    wall_time: float  # seconds since the run first started (summed over resumes) when it was logged
    length: int = 0
    actor_id: int = -1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EpisodeRecord:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass
class Trajectory:
    """One unroll from one env of one actor (see the module docstring for shapes)."""

    actor_id: int
    generation: int  # restart count of the actor that produced it
    task_id: int
    policy_version: int
    obs: np.ndarray  # [T+1, O] float32
    first: np.ndarray  # [T+1] bool
    prev_action: np.ndarray  # [T+1, A] float32
    prev_reward: np.ndarray  # [T+1] float32
    step: np.ndarray  # [T+1] int64
    mask: np.ndarray | None  # [T+1, K] bool (categorical) or None
    action: np.ndarray  # [T, dim] float32 (Box, pre-squash) or [T] int64
    reward: np.ndarray  # [T] float32
    done: np.ndarray  # [T] bool
    behaviour_log_prob: np.ndarray  # [T] float32
    core_state: tuple[np.ndarray, np.ndarray] | None  # (h, c) [H] each at the unroll's start
    episodes: list[EpisodeRecord] = field(default_factory=list)
    #: [T] bool: the env reported ``info["forced"]`` (the action had no effect); None: no step was forced.
    forced: np.ndarray | None = None
    #: Greedy rollouts the actor made between episodes (diagnostics; never learned from, not in the budget).
    greedy: list[EpisodeRecord] = field(default_factory=list)
    env_time: float = 0.0  # seconds in env.reset/step
    policy_time: float = 0.0  # seconds in policy inference
    wall_time: float = 0.0  # seconds since the actor finished its previous unroll (includes send + weight sync)

    @property
    def length(self) -> int:
        return int(self.reward.shape[0])


@dataclass
class Batch:
    """Trajectories stacked time-major; padded to the longest with ``valid`` False (MC episodes differ in length)."""

    inputs: PolicyInputs  # [T+1, B, ...]
    core_state: tuple[torch.Tensor, torch.Tensor] | None  # [B, H] each
    action: torch.Tensor  # [T, B, dim] or [T, B]
    reward: torch.Tensor  # [T, B]
    done: torch.Tensor  # [T, B] bool
    behaviour_log_prob: torch.Tensor  # [T, B]
    valid: torch.Tensor  # [T, B] bool
    forced: torch.Tensor  # [T, B] bool
    task_id: torch.Tensor  # [B]
    policy_version: torch.Tensor  # [B]


def _pad(a: np.ndarray, n: int, value: Any = 0) -> np.ndarray:
    if a.shape[0] == n:
        return a
    pad = np.full((n - a.shape[0], *a.shape[1:]), value, dtype=a.dtype)
    return np.concatenate([a, pad], axis=0)


def collate(trajectories: list[Trajectory]) -> Batch:
    """Stack trajectories into a :class:`Batch` (padding shorter ones at the end)."""
    T = max(tr.length for tr in trajectories)

    def stack(name: str, n: int, value: Any = 0) -> torch.Tensor:
        return torch.from_numpy(np.stack([_pad(getattr(tr, name), n, value) for tr in trajectories], axis=1))

    has_mask = trajectories[0].mask is not None
    inputs = PolicyInputs(
        obs=stack("obs", T + 1),
        prev_action=stack("prev_action", T + 1),
        prev_reward=stack("prev_reward", T + 1),
        # Padding starts fresh "episodes" so the LSTM state of padded steps never leaks anywhere.
        first=stack("first", T + 1, True),
        step=stack("step", T + 1),
        mask=stack("mask", T + 1, True) if has_mask else None,
    )
    core = None
    if trajectories[0].core_state is not None:
        core = (
            torch.from_numpy(np.stack([tr.core_state[0] for tr in trajectories])),  # type: ignore[index]
            torch.from_numpy(np.stack([tr.core_state[1] for tr in trajectories])),  # type: ignore[index]
        )
    valid = torch.from_numpy(np.stack([np.arange(T) < tr.length for tr in trajectories], axis=1))
    forced = torch.from_numpy(np.stack(
        [_pad(tr.forced if tr.forced is not None else np.zeros(tr.length, dtype=bool), T, False) for tr in trajectories],
        axis=1,
    ))
    return Batch(
        inputs=inputs,
        core_state=core,
        action=stack("action", T),
        reward=stack("reward", T),
        done=stack("done", T, True),
        behaviour_log_prob=stack("behaviour_log_prob", T),
        valid=valid,
        forced=forced,
        task_id=torch.tensor([tr.task_id for tr in trajectories]),
        policy_version=torch.tensor([tr.policy_version for tr in trajectories]),
    )
