"""Selecting a search's strategy without the winner's curse.

The best of N episodes on the one validation subset that scored them is biased upward (measured 0.6-8 pt on
this project's tasks): the search maximizes noise as well as accuracy. :func:`select_strategy` takes the
``top_k`` distinct strategies by their search score, re-scores each on images that never scored an episode
(``PruningEnv``'s re-score split), and selects by that re-score. Every searcher (MTACP and each baseline) goes
through the same function, so comparisons between them read the same number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from autostruct.errors import AutostructError

#: Scores one strategy (kept channels per group) on the re-score split; returns ``(reward, info)``.
RescoreFn = Callable[[Sequence[int]], tuple[float, dict[str, Any]]]


@dataclass
class Candidate:
    """One distinct strategy among the top-k: its search score and re-score."""

    channels: list[int]  # the strategy's decisions: kept channels per group (pruning), choice indices (NAS)
    search_score: float
    rescore: float
    info: dict[str, Any]  # the episode's info (search split)
    rescore_info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"channels": self.channels, "search_score": self.search_score, "rescore": self.rescore,
                "keep_ratios": self.info.get("strategy"), "accuracy": self.info.get("accuracy"),
                "rescore_accuracy": self.rescore_info.get("accuracy")}


@dataclass
class Selection:
    """What :func:`select_strategy` chose and from what."""

    selected: Candidate
    candidates: list[Candidate]  # in search-score order
    top_k: int

    @property
    def info(self) -> dict[str, Any]:
        return self.selected.info

    def to_json(self) -> dict[str, Any]:
        return {"top_k": self.top_k, "selected_rank": self.candidates.index(self.selected) + 1,
                "candidates": [c.to_json() for c in self.candidates]}


def top_k_distinct(scored: Iterable[tuple[float, dict[str, Any]]], k: int, key: str = "channels"
                   ) -> list[tuple[float, dict[str, Any]]]:
    """The ``k`` best ``(score, info)`` pairs by score with distinct ``info[key]`` (first one wins ties)."""
    ranked = sorted(enumerate(scored), key=lambda p: (-p[1][0], p[0]))
    seen: set[tuple[int, ...]] = set()
    out = []
    for _, (score, info) in ranked:
        if key not in info:
            continue  # e.g. an over-budget episode under budget "none" that was never scored
        decisions = tuple(int(c) for c in info[key])
        if decisions in seen:
            continue
        seen.add(decisions)
        out.append((float(score), info))
        if len(out) == k:
            break
    return out


def select_strategy(scored: Iterable[tuple[float, dict[str, Any]]], rescore: RescoreFn | None, top_k: int = 5,
                    key: str = "channels") -> Selection:
    """Re-score the ``top_k`` distinct strategies of ``scored`` (search reward, episode info) and pick the best.

    With ``rescore=None`` or ``top_k=1`` the best search score is selected (the biased choice; kept for
    ablations). Ties in the re-score go to the better search score. ``key`` names the info field holding a
    strategy's decisions (``"channels"`` for pruning, ``"arch"`` for NAS); :attr:`Candidate.channels` holds them.
    """
    if top_k < 1:
        raise AutostructError(f"top_k must be >= 1, got {top_k}.")
    top = top_k_distinct([(s, i) for s, i in scored if i.get("accuracy") is not None or key in i], top_k, key)
    if not top:
        raise AutostructError("No scored strategy to select from: the search produced no episode within budget.")
    candidates = []
    for score, info in top:
        if rescore is None or top_k == 1:
            candidates.append(Candidate([int(c) for c in info[key]], score, score, info))
            continue
        r, r_info = rescore(info[key])
        candidates.append(Candidate([int(c) for c in info[key]], score, float(r), info, r_info))
    best = max(candidates, key=lambda c: (c.rescore, c.search_score))
    return Selection(best, candidates, top_k)


def env_rescore(env: Any) -> RescoreFn | None:
    """The re-score function of a :class:`~autostruct.prune.env.PruningEnv` (None when it has no re-score split)."""
    if getattr(env, "rescore_size", 0) <= 0:
        return None
    return lambda channels: env.evaluate_counts(channels, split="rescore")
