"""What every NAS searcher returns, and the helpers they share to play architectures through a :class:`NASEnv`.

All baselines go through the same environment as MTNAS (same masks, same supernet evaluation, same reward), and
report one :class:`NASSearchResult`: the reward of every evaluation (episode) in order, the best so far, and the
best architecture, so "best reward vs number of evaluations" compares like with like.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from autostruct.nas.env import NASEnv


@dataclass
class NASSearchResult:
    """One search on one task: per-evaluation rewards and records, and the best architecture found."""

    method: str
    task: str
    rewards: list[float] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    best_reward: float = float("-inf")
    best_arch: list[int] | None = None
    best_record: dict[str, Any] | None = None
    episodes_to_best: int = 0
    seconds: float = 0.0

    def add(self, reward: float, record: dict[str, Any]) -> None:
        """Log one evaluation; the best is the highest reward among architectures that meet their budgets."""
        self.rewards.append(float(reward))
        self.records.append(record)
        if record.get("meets_budgets", True) and reward > self.best_reward:
            self.best_reward = float(reward)
            self.best_arch = list(record["arch"])
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


def play(env: NASEnv, desired: Sequence[int], rng: np.random.Generator) -> tuple[float, dict[str, Any]]:
    """Play ``desired`` choices through ``env``; where one is masked, take a random allowed option instead.

    Skipped blocks only allow option 0, so they always resolve to it; a choice that would break a budget is
    replaced by a random feasible one (the repair step of evolution's mutations).
    """
    env.reset()
    reward, info, done = 0.0, {}, False
    for want in desired:
        mask = env.action_mask()
        a = int(want) if 0 <= want < len(mask) and mask[want] else int(rng.choice(np.flatnonzero(mask)))
        _, reward, done, info = env.step(a)
    assert done, "desired must give one choice per decision"
    return reward, info


def random_episode(env: NASEnv, rng: np.random.Generator) -> tuple[float, dict[str, Any]]:
    """One architecture drawn uniformly among the allowed options at every step."""
    env.reset()
    reward, info, done = 0.0, {}, False
    while not done:
        _, reward, done, info = env.step(int(rng.choice(np.flatnonzero(env.action_mask()))))
    return reward, info


class Stopwatch:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return round(time.perf_counter() - self.t0, 3)
