"""New pruning scenarios from a finished multi-task run: zero episodes, a few, or the nearest solved task.

A run leaves a policy (which proposes strategies for any task features) and every episode it scored (which
fits the screen's surrogate, ``rl/screen.py``). For a new (dataset, budget):

- :func:`propose` (zero-shot): plan many candidate episodes with the policy, no evaluation, put the nearest solved
  tasks' best strategies (rescaled to the new budget) beside them, and take the one the surrogate fitted on the
  run's episodes ranks highest;
- :func:`few_shot`: ``episodes`` real episodes: first the nearest solved tasks' best strategies rescaled (what a
  neighbouring task learned is the strongest prior a few evaluations can check), then each the surrogate's pick
  among planned candidates, the surrogate refitted with every new score (the policy stays as the run left it);
- :func:`nearest_task_counts`: the reference that does not learn: the best strategy of the nearest solved task,
  its keep-ratio profile rescaled to the new budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from autostruct.prune import budget as B
from autostruct.prune.env import PruningEnv, design_of
from autostruct.rl.actor import plan_screened
from autostruct.rl.policy import Policy
from autostruct.rl.screen import ScreenData, choose, screen_inputs
from autostruct.rl.trajectory import EpisodeRecord

#: Candidates planned for a zero-shot proposal: planning costs microseconds per step, an evaluation seconds.
ZERO_SHOT_CANDIDATES = 256
#: Nearest solved tasks whose best strategies a new task starts from. Two: the nearest alone is the
#: non-learning baseline; a second neighbour (another budget or dataset) is a different guess worth checking.
TRANSFERS = 2
#: Per solved task of a run: (task features, design of its best episode).
Solved = dict[int, tuple[np.ndarray, np.ndarray]]


def screen_data(episodes: Iterable[EpisodeRecord]) -> ScreenData:
    """The surrogate's training set from a run's logged episodes (those that carry a design)."""
    data = ScreenData()
    for ep in episodes:
        data.add(ep.task_id, ep.reward, ep.info)
    return data


def _new_task_id(data: ScreenData) -> int:
    return max(data.task_ids, default=-1) + 1


def _play(policy: Policy, env: PruningEnv, actions: torch.Tensor) -> tuple[float, dict[str, Any]]:
    """Play planned pre-squash ``actions`` for real: prune, recalibrate, score (one evaluation)."""
    env.reset()
    reward, info, done = 0.0, {}, False
    for a in actions:
        _, reward, done, info = env.step(policy.to_env_action(a))
        if done:
            break
    return float(reward), info


def propose(policy: Policy, env: PruningEnv, data: ScreenData, candidates: int = ZERO_SHOT_CANDIDATES,
            seed: int = 0, solved: Solved | None = None, transfers: int = TRANSFERS) -> np.ndarray:
    """Kept channels per group for ``env``'s task with no evaluation (zero-shot; see the module docstring).

    The greedy episode is one of the candidates, so the proposal is the policy's own answer unless the
    surrogate ranks a sampled one higher; the ``transfers`` nearest of the ``solved`` tasks' strategies
    (:func:`solved_strategies`) compete with the policy's pick under the surrogate's mean. Without scored
    episodes it is the greedy episode.
    """
    gen = torch.Generator().manual_seed(seed)
    if len(data) == 0:
        actions = plan_screened(policy, env, None, 1, 0.0, gen, greedy_first=True)
        return env.simulate([float(policy.to_env_action(a)[0]) for a in actions])
    surrogate = data.refit()
    actions = plan_screened(policy, env, surrogate, candidates, 0.0, gen, greedy_first=True)
    options = [env.simulate([float(policy.to_env_action(a)[0]) for a in actions])]
    options += transferred_counts(env, solved or {}, transfers)
    features = np.asarray(env.task_features(), dtype=np.float32)
    return options[choose(surrogate, features, [design_of(c, env.channels) for c in options], 0.0)]


def few_shot(policy: Policy, env: PruningEnv, data: ScreenData, episodes: int, candidates: int = 16,
             kappa: float = 1.0, seed: int = 0, solved: Solved | None = None,
             transfers: int = TRANSFERS) -> list[tuple[float, dict[str, Any]]]:
    """``episodes`` episodes in ``env``, warm-started from a run's ``data``: the ``transfers`` nearest ``solved``
    tasks' strategies rescaled first, then screened policy episodes; every (reward, info)."""
    gen = torch.Generator().manual_seed(seed)
    task = _new_task_id(data)
    scored = []
    for counts in transferred_counts(env, solved or {}, min(transfers, episodes)):
        reward, info = env.evaluate_counts(counts)
        scored.append((reward, info))
        data.add(task, reward, info)
    for _ in range(episodes - len(scored)):
        surrogate = data.refit() if len(data) else None
        actions = plan_screened(policy, env, surrogate, candidates if surrogate else 1, kappa, gen)
        reward, info = _play(policy, env, actions)
        scored.append((reward, info))
        data.add(task, reward, info)
    return scored


def solved_strategies(episodes: Iterable[EpisodeRecord]) -> Solved:
    """Per task of a run: (task features, design) of its highest-reward episode."""
    best: dict[int, EpisodeRecord] = {}
    for ep in episodes:
        if screen_inputs(ep.info) is not None and (ep.task_id not in best or ep.reward > best[ep.task_id].reward):
            best[ep.task_id] = ep
    return {t: (np.asarray(ep.info["task_features"], dtype=np.float64), np.asarray(ep.info["design"], dtype=np.float64))
            for t, ep in best.items()}


def nearest_task_counts(env: PruningEnv, solved: Solved) -> np.ndarray:
    """The nearest solved task's best design (task features, Euclidean), rescaled to ``env``'s budget."""
    if not solved:
        raise ValueError("no solved task to transfer from")
    return transferred_counts(env, solved, 1)[0]


def transferred_counts(env: PruningEnv, solved: Solved, k: int) -> list[np.ndarray]:
    """The best designs of the ``k`` solved tasks nearest to ``env``'s (task features, Euclidean), each rescaled
    to ``env``'s budget; a design that lands on the same counts as a nearer one is left out."""
    here = np.asarray(env.task_features(), dtype=np.float64)
    nearest = sorted(solved.values(), key=lambda fd: float(np.linalg.norm(fd[0] - here)))[: max(k, 0)]
    out: list[np.ndarray] = []
    for _, design in nearest:
        counts = counts_toward(env, rescale_design(env, design))
        if not any(np.array_equal(counts, c) for c in out):
            out.append(counts)
    return out


def rescale_design(env: PruningEnv, design: Sequence[float]) -> np.ndarray:
    """``design`` (kept fraction per group) times the one factor, clipped to [lbound, 1], whose FLOPs come
    closest to ``env``'s budget from below."""
    d = np.asarray(design, dtype=np.float64)

    def cost(m: float) -> float:
        counts = np.clip(d * m, env.lbound, 1.0) * env.channels
        return float(env.cost_model(np.maximum(np.round(counts), 1).astype(np.int64)))

    lo, hi = 0.0, 1.0 / max(float(d.min()), 1e-6)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cost(mid) <= env.target_cost else (lo, mid)
    return np.clip(d * lo, env.lbound, 1.0)


def counts_toward(env: PruningEnv, fractions: Sequence[float]) -> np.ndarray:
    """Kept channels per group that follow ``fractions`` (one per group) as closely as the env's walls allow,
    step by step as an episode would, so the result lands on the budget like any episode."""
    counts = env.full.copy()
    for step, g in enumerate(int(x) for x in env.decidable):
        frac = fractions[g]
        lo, hi = env.wall(step, counts)
        allowed = env.allowed[g]
        choices = allowed[(allowed >= lo) & (allowed <= hi)]
        counts[g] = B.nearest_allowed(float(np.clip(frac * env.channels[g], lo, hi)), choices)
    return counts
