"""The NAS MDP: one categorical decision per step, the task in the state, a multi-objective reward at the end.

An episode walks the space's decisions in order (:mod:`autostruct.nas.space`). The observation, all in [0, 1]:

==========================  ============================================================================
``num_datasets``            one-hot dataset index of the task
``2 * len(COST_NAMES)``     per cost (flops, params, latency_ms): budgeted?, target's position between the
                            space's smallest and largest architecture (log scale)
``T``                       one-hot of the current step (``T`` = number of decisions)
``T``                       decisions so far, each as ``index / (choices - 1)``; 0 for steps not yet taken
``len(COST_NAMES)``         per budgeted cost: cost of the cheapest completion of the prefix / target
==========================  ============================================================================

Masks (:meth:`NASEnv.action_mask`): options past the decision's count, choices of skipped blocks other than 0,
and (``mask_infeasible``) choices after which even the cheapest completion breaks a budget. Because the prefix
is always feasible, its cheapest choice always is too, so a mask is never empty and every episode ends on an
architecture within budget (the action limiting of AMC/MTACP, for NAS).

The reward, 0 before the last step, is :class:`~autostruct.nas.rewards.RewardSpec` of the accuracy with supernet
weights after BN recalibration (on a fixed validation subset) and the architecture's costs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from autostruct.config import SCORE_SIZE
from autostruct.data import load_dataset
from autostruct.errors import AutostructError
from autostruct.nas.config import MASK_INFEASIBLE, NAS_RECAL_BATCH_SIZE, NAS_RECAL_BATCHES, NAS_REWARD
from autostruct.nas.costs import COST_NAMES
from autostruct.nas.evaluate import ArchEvaluator, TaskCosts, describe
from autostruct.nas.lut import load_profile
from autostruct.nas.rewards import RewardSpec, meets
from autostruct.nas.space import Architecture, SearchSpace, get_space
from autostruct.nas.train_supernet import load_supernet
from autostruct.rl.env import CategoricalSpec


def observation_size(space: SearchSpace, num_datasets: int) -> int:
    """Length of :class:`NASEnv`'s observation (what the policy's input layer takes)."""
    return num_datasets + 2 * len(COST_NAMES) + 2 * space.num_decisions + len(COST_NAMES)


class NASEnv:
    """One task's NAS environment (implements :class:`autostruct.rl.env.Env`)."""

    def __init__(
        self,
        space: SearchSpace,
        evaluator: ArchEvaluator,
        costs: TaskCosts,
        budgets: Mapping[str, float],
        *,
        reward: RewardSpec | None = None,
        task_id: int = 0,
        dataset_index: int = 0,
        num_datasets: int = 1,
        mask_infeasible: bool = MASK_INFEASIBLE,
        name: str = "task",
    ) -> None:
        if not 0 <= dataset_index < num_datasets:
            raise ValueError(f"dataset_index {dataset_index} outside [0, {num_datasets})")
        self.space = space
        self.evaluator = evaluator
        self.costs = costs
        self.budgets = dict(budgets)
        self.reward_fn = reward or RewardSpec()
        self.task_id = task_id
        self.dataset_index = dataset_index
        self.num_datasets = num_datasets
        self.mask_infeasible = mask_infeasible
        self.name = name
        costs.check_budgets(space, self.budgets, where=name)

        self.action_spec = CategoricalSpec(space.choice_counts)
        self.max_episode_steps = space.num_decisions
        self.observation_size = observation_size(space, num_datasets)
        self._min_index = [d.choices.index(min(d.choices)) for d in space.decisions]
        self._task_features = self._encode_task()
        self._prefix: list[int] = []
        self._mask_memo: tuple[int, np.ndarray] | None = None
        self._done = True

    # ------------------------------------------------------------------ Env protocol
    def reset(self, seed: int | None = None) -> np.ndarray:
        self._prefix = []
        self._mask_memo = None
        self._done = False
        return self._observation()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("step() after the episode ended; call reset()")
        a = int(action)
        mask = self.action_mask()
        if not (0 <= a < len(mask) and mask[a]):
            raise ValueError(f"action {a} is masked at step {len(self._prefix)} ('{self.space.decisions[len(self._prefix)].name}')")
        self._prefix.append(a)
        if len(self._prefix) < self.max_episode_steps:
            return self._observation(), 0.0, False, {}
        self._done = True
        info = self.evaluate(self.space.arch(self._prefix))
        obs = np.zeros(self.observation_size, dtype=np.float32)
        obs[: len(self._task_features)] = self._task_features
        return obs, float(info["reward"]), True, info

    def action_mask(self) -> np.ndarray:
        step = len(self._prefix)
        if self._mask_memo is not None and self._mask_memo[0] == step:
            return self._mask_memo[1].copy()
        mask = self.space.action_mask(self._prefix)
        if self.mask_infeasible and self.budgets:
            for choice in np.flatnonzero(mask):
                if not self._feasible([*self._prefix, int(choice)]):
                    mask[choice] = False
        self._mask_memo = (step, mask)
        return mask.copy()

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, arch: Architecture) -> dict[str, Any]:
        """Reward and record of a whole architecture (what the last step returns)."""
        t0 = time.perf_counter()
        acc, cached = self.evaluator.accuracy(arch)
        costs = self.costs(arch)
        reward = self.reward_fn(acc, costs, self.budgets)
        info = describe(arch, acc, costs, reward, meets(costs, self.budgets))
        info.update(task_id=self.task_id, cached=cached, eval_s=round(time.perf_counter() - t0, 4))
        return info

    def cheapest_completion(self, prefix: list[int]) -> Architecture:
        return self.space.arch([*prefix, *self._min_index[len(prefix) :]])

    def _feasible(self, prefix: list[int]) -> bool:
        costs = self.costs(self.cheapest_completion(prefix))
        return meets(costs, self.budgets)

    # ------------------------------------------------------------------ observation
    def _encode_task(self) -> np.ndarray:
        feats = np.zeros(self.num_datasets + 2 * len(COST_NAMES), dtype=np.float32)
        feats[self.dataset_index] = 1.0
        lo, hi = self.costs(self.space.smallest()), self.costs(self.space.largest())
        for i, name in enumerate(COST_NAMES):
            if name in self.budgets:
                j = self.num_datasets + 2 * i
                feats[j] = 1.0
                feats[j + 1] = _log_position(self.budgets[name], lo[name], hi[name])
        return feats

    def _observation(self) -> np.ndarray:
        n = self.space.num_decisions
        t = len(self._prefix)
        obs = np.zeros(self.observation_size, dtype=np.float32)
        k = len(self._task_features)
        obs[:k] = self._task_features
        obs[k + t] = 1.0
        for i, a in enumerate(self._prefix):
            c = len(self.space.decisions[i].choices)
            obs[k + n + i] = a / (c - 1) if c > 1 else 0.0
        if self.budgets:
            costs = self.costs(self.cheapest_completion(self._prefix))
            base = k + 2 * n
            for i, name in enumerate(COST_NAMES):
                if name in self.budgets:
                    obs[base + i] = min(costs[name] / self.budgets[name], 1.0)
        return obs


def _log_position(value: float, lo: float, hi: float) -> float:
    if hi <= lo:
        return 1.0
    pos = (math.log(max(value, 1e-12)) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return float(min(max(pos, 0.0), 1.0))


def run_architecture(env: NASEnv, arch: Architecture) -> tuple[float, dict[str, Any]]:
    """Play ``arch`` through ``env`` step by step (so masks and the reward apply exactly as for a policy)."""
    env.reset()
    reward, info = 0.0, {}
    for a in arch.indices:
        _, reward, done, info = env.step(a)
    if not done:  # pragma: no cover - the episode length equals the number of decisions
        raise RuntimeError("episode did not end")
    return reward, info


# ---------------------------------------------------------------------- factory for actor processes


@dataclass(frozen=True)
class NASEnvFactory:
    """Builds a :class:`NASEnv` inside an actor process from plain, picklable settings.

    Loads the dataset (``autostruct.data.load_dataset``), the trained supernet from ``supernet_path`` and the
    device profile (if the task prices latency); the fixed calibration batches and validation subset are drawn
    with ``seed``, so every process builds the identical environment.
    """

    space: str | dict[str, Any]
    dataset: str
    budgets: dict[str, float]
    supernet_path: str
    classes: tuple[int, ...] | None = None
    root: str | None = None
    width: float = 1.0
    profile_path: str | None = None
    task_id: int = 0
    dataset_index: int = 0
    num_datasets: int = 1
    val_size: int = SCORE_SIZE
    rescore_size: int = 0
    holdout_size: int | None = None  # None: val_size + rescore_size
    recal_batches: int = NAS_RECAL_BATCHES
    recal_batch_size: int = NAS_RECAL_BATCH_SIZE
    reward: str = NAS_REWARD
    reward_alpha: float | None = None
    reward_beta: float | None = None
    mask_infeasible: bool = MASK_INFEASIBLE
    seed: int = 0
    name: str = field(default="task")
    #: "search" scores with the reward's subset; "rescore" with the disjoint re-score subset (selection only).
    split: str = "search"

    def __call__(self) -> NASEnv:
        data = load_dataset(
            self.dataset, root=self.root, seed=self.seed,
            val_size=self.val_size + self.rescore_size if self.holdout_size is None else self.holdout_size,
            classes=list(self.classes) if self.classes else None,
        )
        space = get_space(self.space, data.image_size).scaled(self.width)
        supernet = load_supernet(self.supernet_path, data.num_classes, data.in_channels)
        if supernet.space != space:
            raise AutostructError(f"Supernet '{self.supernet_path}' was trained for another space than '{space.name}'.")
        evaluator = make_evaluator(supernet, data, self.val_size, self.recal_batches, self.recal_batch_size, self.seed,
                                   rescore_size=self.rescore_size, split=self.split)
        profile = load_profile(self.profile_path) if self.profile_path else None
        costs = TaskCosts(data.in_channels, data.image_size, data.num_classes, profile)
        return NASEnv(
            space,
            evaluator,
            costs,
            self.budgets,
            reward=RewardSpec(self.reward, self.reward_alpha, self.reward_beta),
            task_id=self.task_id,
            dataset_index=self.dataset_index,
            num_datasets=self.num_datasets,
            mask_infeasible=self.mask_infeasible,
            name=self.name,
        )


def holdout_indices(n: int, val_size: int, rescore_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted indices into a hold-out of ``n`` images: (the reward's subset, the disjoint re-score subset).

    The reward's subset is drawn exactly as ``Split.subset(val_size, seed)`` draws it, so ``rescore_size=0``
    changes nothing. The re-score subset is the next ``rescore_size`` images of the same permutation; when the
    hold-out is too small the reward's subset keeps its size and the re-score subset gets what is left (possibly
    nothing), so the two never overlap.

    >>> search, rescore = holdout_indices(10, 6, 3, seed=0)
    >>> len(search), len(rescore), set(search.tolist()) & set(rescore.tolist())
    (6, 3, set())
    """
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_search = min(val_size, n)
    return perm[:n_search].sort().values, perm[n_search : n_search + rescore_size].sort().values


def make_evaluator(
    supernet: Any,
    data: Any,
    val_size: int,
    recal_batches: int,
    recal_batch_size: int,
    seed: int,
    *,
    rescore_size: int = 0,
    split: str = "search",
) -> ArchEvaluator:
    """The evaluator of one dataset: fixed validation subset and calibration batches, drawn with ``seed``.

    ``split="search"`` scores on the reward's ``val_size`` images of ``data.val``; ``split="rescore"`` on the
    disjoint ``rescore_size`` images (:func:`holdout_indices`), with the same calibration batches.
    """
    if split not in ("search", "rescore"):
        raise AutostructError(f"split must be 'search' or 'rescore', got '{split}'.")
    calib_split = data.train.subset(recal_batches * recal_batch_size, seed=seed + 2)
    calib = [xb for xb, _ in calib_split.batches(recal_batch_size)][:recal_batches]
    if len(data.val) == 0:
        if split == "rescore":
            raise AutostructError("The dataset has no validation hold-out to re-score on; load it with a val_size.")
        val = data.train.subset(val_size, seed=seed + 1)
        return ArchEvaluator(supernet, val.x, val.y, calib, image_size=data.image_size)
    search_idx, rescore_idx = holdout_indices(len(data.val), val_size, rescore_size, seed)
    idx = search_idx if split == "search" else rescore_idx
    if len(idx) == 0:
        raise AutostructError(
            f"No images left for the re-score split: the hold-out has {len(data.val)} and the reward takes "
            f"{len(search_idx)}. Lower search.val_size or set search.rescore_size: 0."
        )
    return ArchEvaluator(supernet, data.val.x[idx], data.val.y[idx], calib, image_size=data.image_size)
