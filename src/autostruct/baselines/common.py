"""What every searcher returns, so that comparisons read the same for all of them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SearchResult:
    """Outcome of a search through an env.

    ``best_strategy`` is the best episode's keep ratio per pruning group; ``episodes_to_best`` is the 1-based
    episode at which the best reward was first reached; ``seconds`` is the wall-clock time of the whole search.
    """

    best_reward: float
    best_strategy: list[float]
    best_info: dict[str, Any]
    rewards_per_episode: list[float] = field(default_factory=list)
    episodes_to_best: int = 1
    seconds: float = 0.0
    method: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class BestTracker:
    """Keeps the best episode seen so far (first one wins ties)."""

    def __init__(self) -> None:
        self.rewards: list[float] = []
        self.best_reward = float("-inf")
        self.best_info: dict[str, Any] = {}
        self.best_episode = 0

    def add(self, reward: float, info: dict[str, Any]) -> None:
        self.rewards.append(float(reward))
        if reward > self.best_reward:
            self.best_reward, self.best_info, self.best_episode = float(reward), info, len(self.rewards)

    def result(self, seconds: float, method: str) -> SearchResult:
        return SearchResult(
            best_reward=self.best_reward,
            best_strategy=list(self.best_info.get("strategy", [])),
            best_info=self.best_info,
            rewards_per_episode=self.rewards,
            episodes_to_best=self.best_episode,
            seconds=seconds,
            method=method,
        )
