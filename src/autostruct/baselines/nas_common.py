"""What every NAS searcher returns, and the helpers they share to play architectures through an env.

All baselines go through the same environment as MTNAS (same masks, same evaluation, same reward), and report
one :class:`NASSearchResult`: the reward of every evaluation (episode) in order, the best so far, and the best
architecture, so "best reward vs number of evaluations" compares like with like. They need only the documented
env protocol (:class:`autostruct.rl.env.Env` with a :class:`~autostruct.rl.env.CategoricalSpec` and
``action_mask()``): :class:`~autostruct.nas.env.NASEnv`, :class:`~autostruct.nas.custom.CustomNASEnv` or any
other. An architecture is the list of actions that built it; ``info["meets_budgets"]`` (default true) says
whether it counts for the best.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from autostruct.rl.env import CategoricalSpec, Env


@dataclass
class NASSearchResult:
    """One search on one task: per-evaluation rewards and records, and the best architecture found."""

    method: str
    task: str
    rewards: list[float] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    best_reward: float = float("-inf")
    #: The best architecture as the actions that built it (a NASEnv's indices; a CustomNASEnv's too).
    best_arch: list[int] | None = None
    best_record: dict[str, Any] | None = None
    episodes_to_best: int = 0
    seconds: float = 0.0

    def add(self, reward: float, record: dict[str, Any], actions: Sequence[int] | None = None) -> None:
        """Log one evaluation; the best is the highest reward among architectures that meet their budgets.

        ``actions``: the episode's actions (the architecture as the env's choices); without them
        ``record["arch"]`` (a NASEnv's indices).
        """
        self.rewards.append(float(reward))
        self.records.append(record)
        if record.get("meets_budgets", True) and reward > self.best_reward:
            self.best_reward = float(reward)
            self.best_arch = [int(a) for a in (actions if actions is not None else record["arch"])]
            self.best_record = record
            self.episodes_to_best = len(self.rewards)

    @property
    def evaluations(self) -> int:
        return len(self.rewards)

    def best_so_far(self) -> list[float]:
        """Best in-budget reward after each evaluation (-inf until one meets its budgets)."""
        out, best = [], float("-inf")
        for r, rec in zip(self.rewards, self.records, strict=True):
            if rec.get("meets_budgets", True):
                best = max(best, r)
            out.append(best)
        return out

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["evaluations"] = self.evaluations
        d["best_so_far"] = self.best_so_far()
        return d


@dataclass
class Episode:
    """One played episode: its reward, the final ``info``, the actions taken and the options allowed at each step."""

    reward: float
    info: dict[str, Any]
    actions: list[int]
    allowed: list[list[int]]


def env_name(env: Env) -> str:
    """The env's ``name`` if it has one, else ``task<task_id>``."""
    return str(getattr(env, "name", f"task{env.task_id}"))


def _allowed(env: Env, step: int) -> list[int]:
    """Options allowed at this step: the env's mask, or every option of the step without one."""
    if not isinstance(env.action_spec, CategoricalSpec):
        raise TypeError(f"NAS baselines need a CategoricalSpec env, got {type(env.action_spec).__name__}")
    mask = env.action_mask()
    if mask is None:
        return list(range(env.action_spec.choices[step]))
    return [int(a) for a in np.flatnonzero(np.asarray(mask)[: env.action_spec.choices[step]])]


def play_with(env: Env, choose: Callable[[int, list[int]], int], max_steps: int | None = None) -> Episode:
    """Play one episode through ``env``, taking ``choose(step, allowed_options)`` at every step.

    Works on any env with a :class:`~autostruct.rl.env.CategoricalSpec` and ``action_mask()`` (the documented
    protocol); ``max_steps`` (default ``env.max_episode_steps``) bounds an env that never ends.
    """
    max_steps = env.max_episode_steps if max_steps is None else max_steps
    env.reset()
    reward, info, done = 0.0, {}, False
    actions: list[int] = []
    allowed: list[list[int]] = []
    while not done:
        t = len(actions)
        if t >= max_steps:
            raise RuntimeError(f"episode did not end within max_episode_steps={max_steps}")
        options = _allowed(env, t)
        a = choose(t, options)
        _, reward, done, info = env.step(a)
        actions.append(a)
        allowed.append(options)
    return Episode(float(reward), dict(info), actions, allowed)


def play(env: Env, desired: Sequence[int], rng: np.random.Generator) -> Episode:
    """Play ``desired`` choices through ``env``; where one is masked (or missing), take a random allowed option.

    On :class:`~autostruct.nas.env.NASEnv` skipped blocks only allow option 0, so they resolve to it, and a
    choice that would break a budget is replaced by a random feasible one (evolution's repair step).
    """

    def choose(t: int, options: list[int]) -> int:
        want = int(desired[t]) if t < len(desired) else -1
        return want if want in options else int(rng.choice(options))

    return play_with(env, choose)


def random_episode(env: Env, rng: np.random.Generator) -> Episode:
    """One architecture drawn uniformly among the allowed options at every step."""
    return play(env, (), rng)


class Stopwatch:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return round(time.perf_counter() - self.t0, 3)
