"""The channel-pruning MDP (MTACP / AMC), one step per pruning group.

State: the 13 features of :mod:`autostruct.prune.features`. Action: a value in [0, 1] from the policy, mapped
onto the keep-ratio range the budget mode allows at this step:

- ``exact`` (default, issue 7): the two-sided wall ``[lo_l, hi_l]`` of :func:`~autostruct.prune.budget.exact_wall`,
  so every episode ends on the FLOPs budget (within channel rounding, never over), narrowed near the end of an
  episode to the counts from which it can still land close to the budget
  (:func:`~autostruct.prune.budget.wall_choices`);
- ``amc``: ``[lbound, hi_l]`` with AMC's cap ``hi_l`` (budget always reachable, usually undershot);
- ``none``: ``[lbound, 1]``; an episode over budget gets :func:`~autostruct.prune.rewards.over_budget_penalty`.

The budget is FLOPs (``target_ratio`` of the base) or, with ``latency_budget_ms``, latency predicted by a
per-layer table (:mod:`autostruct.prune.latency_table`): the walls are the same functions, given the
:class:`~autostruct.prune.latency.LatencyModel` in place of the :class:`~autostruct.prune.budget.FlopModel`
(``env.cost_model``, ``env.target_cost``).

The reward is 0 until the last step; then the model is pruned, its batch norms recalibrated on a few fixed
training batches, and it is evaluated on a fixed validation subset. Everything that does not depend on the
actions (graph, FLOP model, importance, features, data subsets) is computed once in the constructor, so the
env is deterministic: the same actions give the same reward.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from autostruct.config import (
    BATCH_SIZE,
    LATENCY_MARGIN,
    LBOUND,
    PRUNE_RECAL_BATCHES,
    RESCORE_SIZE,
    SCORE_SIZE,
    PruneSearchConfig,
)
from autostruct.data import load_dataset
from autostruct.errors import AutostructError, unknown_name
from autostruct.measure import measure_latency
from autostruct.measure.rounding import RoundingChoice, finest_fast, host_rounding
from autostruct.models.bn import recalibrate_bn
from autostruct.models.cache import get_or_train
from autostruct.models.checkpoint import load_model
from autostruct.models.train import fine_tune
from autostruct.prune import budget as B
from autostruct.prune.features import (
    NUM_FEATURES,
    normalized_dataset_id,
    observation,
    observations,
    static_features,
)
from autostruct.prune.graph import analyze
from autostruct.prune.latency_table import latency_model, layer_specs, load_table
from autostruct.prune.rewards import (
    REWARDS,
    acc_flops_reward,
    acc_latency_reward,
    accuracy_reward,
    latency_reward,
    over_budget_penalty,
)
from autostruct.prune.surgery import (
    IMPORTANCE_CRITERIA,
    channel_importance,
    counts_from_ratios,
    group_allowed,
    prune_counts,
)
from autostruct.prune.task_rounding import fit_round_to, reachable, unreachable_reason
from autostruct.rl.env import BoxSpec
from autostruct.utils.device import resolve_device

BUDGETS: tuple[str, ...] = ("exact", "amc", "none")


def _xy(split: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensors of a Split-like object (``.x``, ``.y``) or an ``(x, y)`` pair."""
    if hasattr(split, "x") and hasattr(split, "y"):
        return split.x, split.y
    if isinstance(split, (tuple, list)) and len(split) == 2:
        return split[0], split[1]
    raise AutostructError(f"The {what} data must be a Split (with .x and .y) or an (x, y) pair of tensors.")


def _splits(data: Any) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """(train, val) tensors from a Dataset (``.train``, ``.val``), a mapping, or a (train, val) pair."""
    if hasattr(data, "train") and hasattr(data, "val"):
        return _xy(data.train, "train"), _xy(data.val, "validation")
    if isinstance(data, Mapping):
        return _xy(data["train"], "train"), _xy(data["val"], "validation")
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return _xy(data[0], "train"), _xy(data[1], "validation")
    raise AutostructError(
        "PruningEnv needs data with a training and a validation split: an autostruct.data Dataset, "
        "{'train': split, 'val': split}, or (train, val) where each is a Split or an (x, y) pair."
    )


class PruningEnv:
    """Channel pruning of one model for one task (dataset, FLOPs ratio ``target_ratio``).

    Implements :class:`autostruct.rl.env.Env` with ``BoxSpec(dim=1)``. See the module docstring for the MDP.

    Args:
        model: the trained base model (not modified).
        data: training and validation data (Dataset, mapping or pair; see :func:`_splits`).
        target_ratio: FLOPs budget as a fraction of the base model's FLOPs, in (0, 1].
        lbound: the least keep ratio of any group, in (0, 1].
        budget: ``exact`` | ``amc`` | ``none``.
        reward: ``acc`` | ``acc_flops`` | ``acc_latency`` | ``latency``.
        val_size: validation images scored per episode (a fixed, seeded subset: the search split).
        rescore_size: validation images, disjoint from the search split, that re-score the top strategies
            (:mod:`autostruct.prune.selection`); fewer when the hold-out is too small (0 turns it off).
        recal_batches: training batches for batch-norm recalibration (0 turns it off).
        batch_size: size of those batches.
        round_to: kept channels are multiples of this. ``"auto"`` (the default): the multiple that pays on this
            host (:func:`autostruct.measure.rounding.host_rounding`, measured once and cached), halved while the
            FLOPs budget is out of reach with ``lbound``, or while episodes cannot land within
            :data:`~autostruct.prune.budget.LANDING_TOLERANCE` below it and the host measured the finer multiple
            to be fast (:func:`~autostruct.prune.task_rounding.fit_round_to`); a latency table's own multiple when
            ``latency_table`` is given. An integer is used as given. ``env.rounding`` says what was chosen and why.
        importance: channel criterion, ``l1`` | ``l2`` | ``bn_scale`` | ``taylor``.
        seed: picks the validation subset and the calibration batches.
        task_id: which task of the run this env solves (tags trajectories).
        dataset_index, num_datasets: the dataset's place in the run, for the ``beta`` feature; or pass ``beta``.
        device: where the model runs.
        latency_fn: ``latency_fn(model) -> ms`` for ``reward="latency"`` (e.g. a device lookup table); by default
            the host latency of :func:`autostruct.measure.measure_latency`.
        latency_weight: the exponent ``w`` of the latency reward.
        latency_table: path of a pruning latency table (:func:`autostruct.prune.latency_table.load_table`); the
            latency rewards then use its prediction instead of timing each episode's model.
        latency_budget_ms: a latency budget (needs ``latency_table``): it replaces the FLOPs budget, and
            ``target_ratio`` (the state's alpha) becomes the budget over the base model's predicted latency.
        latency_margin: the wall aims at ``(1 - latency_margin) * latency_budget_ms``: a measured latency scatters
            around the table's prediction (by the calibration error), and the budget is a ceiling.
    """

    def __init__(
        self,
        model: nn.Module,
        data: Any,
        target_ratio: float,
        *,
        lbound: float = LBOUND,
        budget: str = "exact",
        reward: str = "acc",
        val_size: int = SCORE_SIZE,
        rescore_size: int = RESCORE_SIZE,
        recal_batches: int = PRUNE_RECAL_BATCHES,
        batch_size: int = BATCH_SIZE,
        round_to: int | Literal["auto"] = "auto",
        importance: str = "l1",
        seed: int = 0,
        task_id: int = 0,
        dataset_index: int = 0,
        num_datasets: int = 1,
        beta: float | None = None,
        device: str | torch.device = "cpu",
        latency_fn: Callable[[nn.Module], float] | None = None,
        latency_weight: float = -0.07,
        eval_batch_size: int = 1000,
        latency_table: str | None = None,
        latency_budget_ms: float | None = None,
        latency_margin: float = LATENCY_MARGIN,
        finetune_steps: int = 0,
        finetune_lr: float = 0.01,
    ):
        if not isinstance(target_ratio, numbers.Real) or not 0.0 < target_ratio <= 1.0:
            raise AutostructError(f"FLOPs target ratio {target_ratio!r} is outside (0, 1]. Use e.g. 0.5 for half the FLOPs.")
        if not isinstance(lbound, numbers.Real) or not 0.0 < lbound <= 1.0:
            raise AutostructError(f"lbound {lbound!r} is outside (0, 1]. It is the least keep ratio per group; MTACP uses 0.2.")
        if budget not in BUDGETS:
            raise unknown_name("budget mode", budget, BUDGETS)
        if reward not in REWARDS:
            raise unknown_name("reward", reward, REWARDS)
        if importance not in IMPORTANCE_CRITERIA:
            raise unknown_name("importance criterion", importance, IMPORTANCE_CRITERIA)
        for name, value, least in (("val_size", val_size, 1), ("rescore_size", rescore_size, 0),
                                   ("recal_batches", recal_batches, 0), ("finetune_steps", finetune_steps, 0),
                                   ("batch_size", batch_size, 1), ("round_to", round_to, 1)):
            if name == "round_to" and value == "auto":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise AutostructError(f"{name} must be an integer >= {least}, got {value!r}.")

        self.target_ratio = float(target_ratio)
        self.lbound = float(lbound)
        self.budget = budget
        self.reward_name = reward
        self.task_id = int(task_id)
        self.beta = float(beta) if beta is not None else normalized_dataset_id(dataset_index, num_datasets)
        self.device = resolve_device(device)
        self.importance = importance
        self.eval_batch_size = eval_batch_size
        self.latency_weight = latency_weight

        (train_x, train_y), (val_x, val_y) = _splits(data)
        gen = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(val_x), generator=gen)
        n_search = min(val_size, len(val_x))
        pick, rest = perm[:n_search], perm[n_search : n_search + rescore_size]
        self._val_x, self._val_y = val_x[pick].to(self.device), val_y[pick].to(self.device)
        # The re-score split never scores an episode, so selecting on it is free of the search's winner's curse.
        self._rescore_x, self._rescore_y = val_x[rest].to(self.device), val_y[rest].to(self.device)
        n_cal = min(recal_batches * batch_size, len(train_x))
        cal = torch.randperm(len(train_x), generator=gen)[:n_cal]
        self._calib = [
            (train_x[cal[i : i + batch_size]].to(self.device), train_y[cal[i : i + batch_size]].to(self.device))
            for i in range(0, n_cal, batch_size)
        ]

        if not isinstance(finetune_lr, numbers.Real) or not finetune_lr > 0:
            raise AutostructError(f"finetune_lr must be a number > 0, got {finetune_lr!r}.")
        # The reward's short fine-tune trains every strategy on the same images in the same order, so two
        # strategies differ only by their structure.
        self.finetune_steps, self.finetune_lr, self.batch_size = finetune_steps, float(finetune_lr), batch_size
        ft = torch.randperm(len(train_x), generator=gen)[: finetune_steps * batch_size] if finetune_steps else []
        self._ft_train = SimpleNamespace(x=train_x[ft], y=train_y[ft])

        self.model = model.to(self.device).eval()
        self.example_inputs = self._val_x[:1]
        self.graph = analyze(self.model, self.example_inputs)
        self.scores = channel_importance(self.model, self.graph, importance, self._calib or None)

        self.channels = self.graph.channels
        self.rounding = self._resolve_rounding(round_to, latency_table, latency_budget_ms is not None)
        self.round_to = round_to = self.rounding.round_to
        self.allowed = [group_allowed(g, round_to) for g in self.graph.groups]
        # Groups with a single allowed count (fewer channels than round_to) are not decisions.
        self.decidable = np.asarray([i for i, a in enumerate(self.allowed) if len(a) > 1], dtype=np.int64)
        if len(self.decidable) == 0:
            raise AutostructError(
                f"No pruning group of {type(model).__name__} has more than one channel count to choose with "
                f"round_to={round_to}. Use a smaller round_to, or round_to='auto'."
            )
        self.full = self.channels.copy()
        self.floor = self.full.copy()
        for g in self.decidable:
            self.floor[g] = B.ceil_to_allowed(self.lbound, int(self.channels[g]), self.allowed[g])
        self._walled = [a[a >= f] for a, f in zip(self.allowed, self.floor, strict=True)]
        self.base_flops = float(self.graph.flop_model(self.full))
        self.latency_model = None
        if latency_table is not None:
            specs = layer_specs(self.model, self.graph, self.example_inputs, round_to)
            self.latency_model = latency_model(specs, load_table(latency_table))
        self.latency_budget_ms = None if latency_budget_ms is None else float(latency_budget_ms)
        if self.latency_budget_ms is not None:
            if self.latency_model is None:
                raise AutostructError("latency_budget_ms needs latency_table (the per-layer table that prices it).")
            self.base_latency_ms = self.latency_model.latency_ms(self.full)
            least = self.latency_model.latency_ms(self.floor)
            if least > self.latency_budget_ms * (1 + 1e-12):
                raise AutostructError(
                    f"Latency budget {self.latency_budget_ms:g} ms cannot be met: with every prunable group at "
                    f"lbound={self.lbound:g} the table predicts {least:.4f} ms. Use a budget >= "
                    f"{math.ceil(least * 1e4) / 1e4:g} ms or a smaller lbound."
                )
            self.target_ratio = min(1.0, self.latency_budget_ms / self.base_latency_ms)
            if not 0.0 <= latency_margin < 1.0:
                raise AutostructError(f"latency_margin must be in [0, 1), got {latency_margin!r}.")
            # Reachability is checked on the budget itself; the aim falls back to it when the margin is out of reach.
            self._latency_aim = max(self.latency_budget_ms * (1.0 - latency_margin), least)
            self.target_flops = self.base_flops  # no FLOPs budget: latency is the budget
        else:
            self.target_flops = self.target_ratio * self.base_flops
            if not reachable(self.graph, self.target_ratio, round_to, self.lbound):
                raise AutostructError(unreachable_reason(self.graph, self.target_ratio, round_to, self.lbound))
        self.base_cost = float(self.cost_model(self.full))

        groups = [self.graph.groups[g] for g in self.decidable]
        self._static = static_features(groups, self.base_flops)
        self.observation_size = NUM_FEATURES
        self.action_spec = BoxSpec(dim=1)
        self.max_episode_steps = len(self.decidable)
        self._latency_fn = latency_fn
        self._target_latency: float | None = None
        if reward == "latency":
            self._target_latency = (self.latency_budget_ms if self.latency_budget_ms is not None
                                    else self.target_ratio * self._latency(self.model, self.full))
        self.episodes = 0
        self._step = 0
        self._counts = self.full.copy()
        self._prev = 0.0

    # -- Env protocol ---------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode (the env has no randomness of its own; ``seed`` is accepted for the protocol)."""
        self._step = 0
        self._counts = self.full.copy()
        self._prev = 0.0
        return self._observe()

    def action_mask(self) -> None:
        return None

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        forced = self._advance(action)
        # ``forced``: the wall left one allowed count, so the action changed nothing; the learner keeps such
        # steps out of the policy loss (they only add noise to the gradient).
        if self._step < self.max_episode_steps:
            return self._observe(), 0.0, False, {"forced": forced}
        reward, info = self.evaluate_counts(self._counts)
        info["forced"] = forced
        return np.zeros(self.observation_size, dtype=np.float32), reward, True, info

    # -- planning (rl/screen.py): the same steps, no evaluation -----------------------------------------------
    def plan_step(self, action: Any) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        """As :meth:`step`, but the last step does not prune or evaluate (reward 0, empty info)."""
        forced = self._advance(action)
        if self._step < self.max_episode_steps:
            return self._observe(), 0.0, False, {"forced": forced}
        return np.zeros(self.observation_size, dtype=np.float32), 0.0, True, {}

    def planned_design(self) -> np.ndarray:
        """Kept fraction of every group in the episode so far (what the surrogate scores)."""
        return design_of(self._counts, self.channels)

    def plan_batch(self, n: int) -> PlannedEpisodes:
        """``n`` planned episodes played together: the same steps as ``n`` copies' :meth:`plan_step`, with each
        step's walls priced for all of them at once."""
        return PlannedEpisodes(self, n)

    def task_features(self) -> list[float]:
        """What tells tasks apart to the surrogate: the budget (FLOPs ratio) and the dataset feature."""
        return [float(self.target_ratio), float(self.beta)]

    def _advance(self, action: Any) -> bool:
        """Apply one step's action to the planned counts; True when the wall left no choice."""
        if self._step >= self.max_episode_steps:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        a = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        g = int(self.decidable[self._step])
        count, forced = self._count_for(self._step, a, self._counts, with_forced=True)
        self._counts[g] = count
        self._prev = count / float(self.channels[g])
        self._step += 1
        return bool(forced)

    # -- budget -------------------------------------------------------------------------------------------
    @property
    def cost_model(self) -> Any:
        """What the budget is on: the latency model of a latency task, else the FLOP model (same interface)."""
        return self.latency_model if self.latency_budget_ms is not None else self.graph.flop_model

    @property
    def target_cost(self) -> float:
        """The wall's target in ``cost_model`` units: ``(1 - latency_margin) x`` the latency budget, or FLOPs."""
        return self._latency_aim if self.latency_budget_ms is not None else self.target_flops

    def wall(self, step: int, counts: np.ndarray | None = None) -> tuple[int, int]:
        """Allowed channel range ``(lo, hi)`` of the group decided at ``step``, given the decided ``counts``."""
        counts = self._counts if counts is None else counts
        g = int(self.decidable[step])
        later = self.decidable[step + 1 :]
        # The walls search every allowed count; below the floor they would break lbound (exact's lower wall did).
        allowed = self.allowed[g][self.allowed[g] >= self.floor[g]]
        cm = self.cost_model
        if self.budget == "exact":
            return B.exact_wall(cm, counts, g, allowed, later, self.floor, self.full, self.target_cost)
        if self.budget == "amc":
            return int(self.floor[g]), B.amc_cap(cm, counts, g, allowed, later, self.floor, self.target_cost)
        return int(self.floor[g]), int(self.full[g])

    def simulate(self, actions: Sequence[float]) -> np.ndarray:
        """Kept channels per group that ``actions`` (one per step) lead to, without pruning or evaluating.

        Uses the same walls and rounding as :meth:`step`; for budget studies and tests.
        """
        if len(actions) != self.max_episode_steps:
            raise ValueError(f"need {self.max_episode_steps} actions, got {len(actions)}")
        counts = self.full.copy()
        for step, action in enumerate(actions):
            counts[int(self.decidable[step])] = self._count_for(step, float(action), counts)
        return counts

    def choices(self, step: int, counts: np.ndarray | None = None) -> np.ndarray:
        """The counts the group decided at ``step`` may keep: inside :meth:`wall`, and with ``budget: exact`` only
        those from which the later groups can still land close to the budget
        (:func:`~autostruct.prune.budget.wall_choices`)."""
        counts = self._counts if counts is None else counts
        return self.choices_rows(step, np.asarray(counts)[None, :])[0]

    def choices_rows(self, step: int, counts: np.ndarray) -> list[np.ndarray]:
        """:meth:`choices` for every row of ``counts`` (``[n, groups]``), the walls priced for all rows at once."""
        g = int(self.decidable[step])
        if self.budget == "exact":
            return B.wall_choices_rows(self.cost_model, counts, g, self._walled, self.decidable[step + 1 :],
                                       self.floor, self.full, self.target_cost)
        allowed = self.allowed[g]
        return [allowed[(allowed >= lo) & (allowed <= hi)] for lo, hi in (self.wall(step, c) for c in counts)]

    def _count_for(self, step: int, action: float, counts: np.ndarray, with_forced: bool = False) -> Any:
        choices = self.choices(step, counts)
        count = count_in(choices, action)
        return (count, len(choices) <= 1) if with_forced else count

    # -- scoring a strategy ---------------------------------------------------------------------------------
    def evaluate_ratios(self, ratios: float | Sequence[float]) -> tuple[float, dict[str, Any]]:
        """Score keep ratios (one per group of ``self.graph``, or one for all) exactly as an episode would."""
        return self.evaluate_counts(counts_from_ratios(self.graph, ratios, self.round_to))

    def evaluate_counts(self, counts: Sequence[int] | np.ndarray, split: str = "search") -> tuple[float, dict[str, Any]]:
        """Prune to ``counts`` kept channels per group, recalibrate, evaluate; return ``(reward, info)``.

        ``split="search"`` scores on the images every episode is scored on (and counts as an episode);
        ``split="rescore"`` on the disjoint re-score images (selection; not counted as an episode).
        """
        if split not in ("search", "rescore"):
            raise AutostructError(f"split must be 'search' or 'rescore', got '{split}'.")
        if split == "rescore" and len(self._rescore_y) == 0:
            raise AutostructError(
                "This env has no re-score images: its validation hold-out is used up by val_size. Lower "
                "search.val_size or set search.rescore_size > 0 with a larger hold-out."
            )
        counts = np.asarray(counts, dtype=np.int64)
        t0 = time.perf_counter()
        pruned = prune_counts(self.model, self.graph, counts, self.scores)
        t1 = time.perf_counter()
        flops = self.graph.flop_model.flops(counts)
        cost = float(self.cost_model(counts))
        # Over the budget itself (a latency task's wall aims lower, at target_cost).
        over = cost > (self.latency_budget_ms or self.target_flops) * (1 + 1e-9)
        accuracy: float | None = None
        t2 = t3 = t1
        latency = None
        if over and self.budget == "none":
            floor = 0.0  # the lowest reward an in-budget episode can get
            if self.reward_name == "acc_flops":
                floor = -math.log(max(self.base_flops, 1.0))
            elif self.reward_name == "acc_latency":
                floor = -math.log(max(self._latency(self.model, self.full) * 1000.0, 1.0))
            reward = over_budget_penalty(cost, self.target_cost, floor)
        else:
            if self._calib:
                recalibrate_bn(pruned, [x for x, _ in self._calib], len(self._calib))
            if self.finetune_steps:
                self._short_finetune(pruned)
            t2 = time.perf_counter()
            accuracy = self._accuracy(pruned, split)
            t3 = time.perf_counter()
            if self.reward_name == "acc":
                reward = accuracy_reward(accuracy)
            elif self.reward_name == "acc_flops":
                reward = acc_flops_reward(accuracy, flops)
            elif self.reward_name == "acc_latency":
                latency = self._latency(pruned, counts)
                reward = acc_latency_reward(accuracy, latency)
            else:
                latency = self._latency(pruned, counts)
                reward = latency_reward(accuracy, latency, self._target_latency, self.latency_weight)
        if split == "search":
            self.episodes += 1
        info = {
            "task_id": self.task_id,
            "episode": self.episodes,
            "split": split,
            "reward": float(reward),
            "accuracy": accuracy,
            "strategy": [round(float(c) / float(n), 6) for c, n in zip(counts, self.channels, strict=True)],
            "channels": [int(c) for c in counts],
            "flops": int(flops),
            "params": int(sum(p.numel() for p in pruned.parameters())),
            "base_flops": int(round(self.base_flops)),
            "target_flops": int(round(self.target_flops)),
            "flops_ratio": flops / self.base_flops,
            "design": [round(float(v), 6) for v in design_of(counts, self.channels)],
            "task_features": self.task_features(),
            "flops_over_target": flops / self.target_flops,
            "over_budget": bool(over),
            "budget": self.budget,
            "seconds": {"prune": t1 - t0, "recal": t2 - t1, "eval": t3 - t2},
            "finetune_steps": self.finetune_steps,
        }
        if latency is not None:
            info["latency_ms"] = latency
        if self.latency_budget_ms is not None:
            info["latency_budget_ms"] = self.latency_budget_ms
            info["predicted_latency_ms"] = cost
        return float(reward), info

    def base_accuracy(self) -> float:
        """Accuracy of the unpruned model on the same validation subset (no recalibration)."""
        return self._accuracy(self.model)

    def prune(self, counts: Sequence[int] | np.ndarray) -> nn.Module:
        """The pruned (not recalibrated) model for ``counts``, e.g. the best strategy of a search."""
        return prune_counts(self.model, self.graph, np.asarray(counts, dtype=np.int64), self.scores)

    # -- internals ------------------------------------------------------------------------------------------
    def _resolve_rounding(self, round_to: int | str, latency_table: str | None, latency_budget: bool) -> RoundingChoice:
        """The channel multiple (see ``round_to`` in the class docstring), with where it comes from."""
        if round_to != "auto":
            return RoundingChoice(int(round_to), {}, source="config")
        if latency_table is not None:
            # The table's cells are priced at its own multiple; another one would miss cells.
            table_k = load_table(latency_table).meta.get("round_to")
            if isinstance(table_k, int) and not isinstance(table_k, bool) and table_k >= 1:
                return RoundingChoice(table_k, {}, source="table")
        host = host_rounding()
        if latency_budget:
            return RoundingChoice(host.round_to, {}, source="host")
        try:
            return fit_round_to(self.graph, self.target_ratio, host.round_to, self.lbound, finest=finest_fast(host))
        except ValueError:
            return RoundingChoice(1, {}, source="auto")  # out of reach at any multiple: the budget check says why

    def _observe(self) -> np.ndarray:
        reduced = 1.0 - float(self.cost_model(self._counts)) / self.base_cost
        return observation(self._static, self._step, self.target_ratio, self.beta, reduced, self._prev)

    @property
    def rescore_size(self) -> int:
        """Images of the re-score split (0 when the hold-out had none left)."""
        return int(len(self._rescore_y))

    def _short_finetune(self, model: nn.Module) -> None:
        """``finetune_steps`` SGD steps (the fine-tune's recipe: cosine from ``finetune_lr``, one pass over the
        env's fixed training images, seeded), so the reward sees how far a structure recovers, not only where it
        starts: at low ratios the accuracy before any training ranks strategies against their fine-tuned
        accuracy (benchmarks/regime_probe.py)."""
        fine_tune(model, SimpleNamespace(train=self._ft_train, val=None), 1, lr=self.finetune_lr,
                  batch_size=self.batch_size, seed=0, device=str(self.device), progress=False)

    def _accuracy(self, model: nn.Module, split: str = "search") -> float:
        xs, ys = (self._val_x, self._val_y) if split == "search" else (self._rescore_x, self._rescore_y)
        model.eval()
        correct = 0
        with torch.inference_mode():
            for i in range(0, len(xs), self.eval_batch_size):
                out = model(xs[i : i + self.eval_batch_size])
                correct += int((out.argmax(1) == ys[i : i + self.eval_batch_size]).sum())
        return correct / len(xs)

    def _latency(self, model: nn.Module, counts: np.ndarray) -> float:
        if self._latency_fn is not None:
            return float(self._latency_fn(model))
        if self.latency_model is not None:
            return self.latency_model.latency_ms(counts)
        return float(measure_latency(model, self.example_inputs, backend="torch", threads=1).median_ms)


def count_in(choices: np.ndarray, action: float) -> int:
    """The count an action in [0, 1] (clipped) keeps among ``choices`` (increasing): the nearest to its point
    between the first and the last."""
    lo, hi = float(choices[0]), float(choices[-1])
    return B.nearest_allowed(lo + float(np.clip(action, 0.0, 1.0)) * (hi - lo), choices)


class PlannedEpisodes:
    """``n`` planned episodes of one :class:`PruningEnv` stepped together (rl.screen's candidates, see
    ``rl/actor.plan_screened``): what ``n`` copies' :meth:`~PruningEnv.plan_step` would do, with the walls and
    the observations of a step computed for all of them in one call."""

    def __init__(self, env: PruningEnv, n: int) -> None:
        self.env, self.n = env, int(n)
        self._start()

    def reset(self) -> np.ndarray:
        """Start all ``n`` episodes; their first observations ``[n, 13]``."""
        self._start()
        return self._observe()

    def _start(self) -> None:
        self.counts = np.repeat(self.env.full[None, :], self.n, axis=0)
        self.step_index = 0
        self.prev = np.zeros(self.n)

    def step(self, actions: Sequence[Any]) -> tuple[np.ndarray | None, bool]:
        """Apply one action per episode; the next observations (None after the last step) and whether it was."""
        env, t = self.env, self.step_index
        if t >= env.max_episode_steps:
            raise RuntimeError("step() called after the planned episodes ended; call reset() first")
        g = int(env.decidable[t])
        rows = env.choices_rows(t, self.counts)
        # count_in for every row at once: each row's choices padded with inf, which is never the nearest.
        padded = np.full((self.n, max(len(c) for c in rows)), np.inf)
        for i, c in enumerate(rows):
            padded[i, : len(c)] = c
        lo, hi = padded[:, 0], np.array([c[-1] for c in rows], dtype=np.float64)
        a = np.clip([float(np.asarray(x, dtype=np.float64).reshape(-1)[0]) for x in actions], 0.0, 1.0)
        pick = np.argmin(np.abs(padded - (lo + a * (hi - lo))[:, None] + 1e-9), axis=1)
        self.counts[:, g] = padded[np.arange(self.n), pick]
        self.prev = self.counts[:, g] / float(env.channels[g])
        self.step_index += 1
        done = self.step_index >= env.max_episode_steps
        return (None if done else self._observe()), done

    def designs(self) -> list[np.ndarray]:
        """Each planned episode's design (:meth:`PruningEnv.planned_design`)."""
        return [design_of(c, self.env.channels) for c in self.counts]

    def _observe(self) -> np.ndarray:
        env = self.env
        reduced = 1.0 - np.asarray(env.cost_model(self.counts), dtype=np.float64) / env.base_cost
        return observations(env._static, self.step_index, env.target_ratio, env.beta, reduced, self.prev)


def design_of(counts: np.ndarray, channels: np.ndarray) -> np.ndarray:
    """Kept fraction of every group: one length for every task of a model, whatever each task's walls decide."""
    return (np.asarray(counts, dtype=np.float64) / np.asarray(channels, dtype=np.float64)).astype(np.float32)


def env_settings(search: PruneSearchConfig) -> dict[str, Any]:
    """The :class:`PruningEnv` keyword arguments that come from the run's typed ``search`` settings.

    ``search.round_to`` must be resolved to a number first (``autostruct.measure.rounding.resolve_round_to``):
    'auto' is measured once per host, never inside an actor.
    """
    if not isinstance(search.round_to, int):
        raise AutostructError(f"search.round_to must be resolved to a number before the envs are built, got "
                              f"{search.round_to!r} (autostruct.measure.rounding.resolve_round_to).")
    return {
        "lbound": search.lbound,
        "budget": search.budget,
        "reward": search.reward,
        "val_size": search.val_size,
        "rescore_size": search.rescore_size,
        "recal_batches": search.recal_batches,
        "round_to": search.round_to,
        "importance": search.importance,
        "finetune_steps": search.reward_finetune_steps,
        "finetune_lr": search.reward_finetune_lr,
    }


@dataclass(frozen=True)
class PruningEnvFactory:
    """Builds a :class:`PruningEnv` inside an actor process (picklable under ``spawn``).

    ``model`` is a zoo name (the trained base model comes from :func:`autostruct.models.cache.get_or_train`)
    or the path of a saved model (``model.pt`` or its folder, loaded with
    :func:`autostruct.models.checkpoint.load_model`).
    ``dataset``/``classes``/``data_root`` go to :func:`autostruct.data.load_dataset`; ``val_split`` is the
    validation hold-out (``search.holdout``). ``search`` is the run's typed search settings (:func:`env_settings`;
    None: :class:`PruningEnv`'s defaults); a latency task adds ``latency_budget_ms`` (aimed at with
    ``search.latency_margin``) and ``latency_table``. ``env`` holds any other :class:`PruningEnv` keyword
    arguments (what :meth:`create` is given beyond the fields), and wins over ``search``.
    """

    model: str
    dataset: str
    target_ratio: float
    classes: tuple[int, ...] | None = None
    width: float = 1.0
    epochs: int = 3
    seed: int = 0
    val_split: int = 5000  # images the dataset carves from its training set for validation
    data_root: str | None = None
    device: str = "cpu"
    task_id: int = 0
    dataset_index: int = 0
    num_datasets: int = 1
    env: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    model_kwargs: tuple[tuple[str, Any], ...] = ()  # the builder's extra arguments (a zoo or factory name)
    search: PruneSearchConfig | None = field(default=None, hash=False)  # pydantic models do not hash
    latency_budget_ms: float | None = None
    latency_table: str | None = None

    @classmethod
    def create(cls, model: str, dataset: str, target_ratio: float, **kwargs: Any) -> PruningEnvFactory:
        """Like the constructor, but extra keyword arguments go to :class:`PruningEnv`."""
        own = {k: kwargs.pop(k) for k in list(kwargs) if k in cls.__dataclass_fields__}
        if "classes" in own and own["classes"] is not None:
            own["classes"] = tuple(own["classes"])
        if isinstance(own.get("model_kwargs"), Mapping):
            own["model_kwargs"] = tuple(sorted(own["model_kwargs"].items()))
        return cls(model, dataset, target_ratio, env=tuple(sorted(kwargs.items())), **own)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["env"] = dict(self.env)
        d["model_kwargs"] = dict(self.model_kwargs)
        d["search"] = None if self.search is None else self.search.model_dump(mode="json")
        return d

    def env_kwargs(self) -> dict[str, Any]:
        """Every :class:`PruningEnv` keyword argument this factory sets beyond the task's identity."""
        kwargs = {} if self.search is None else env_settings(self.search)
        if self.latency_table is not None:
            kwargs["latency_table"] = self.latency_table
        if self.latency_budget_ms is not None:
            kwargs["latency_budget_ms"] = self.latency_budget_ms
            if self.search is not None:
                kwargs["latency_margin"] = self.search.latency_margin
        return {**kwargs, **dict(self.env)}

    def __call__(self) -> PruningEnv:
        classes = list(self.classes) if self.classes is not None else None
        dataset = load_dataset(self.dataset, root=self.data_root, val_size=self.val_split, seed=self.seed,
                               classes=classes)
        model = self._load_model(dataset)
        kwargs = self.env_kwargs()
        return PruningEnv(
            model, dataset, self.target_ratio, seed=self.seed, device=self.device, task_id=self.task_id,
            dataset_index=self.dataset_index, num_datasets=self.num_datasets, **kwargs,
        )

    def _load_model(self, dataset: Any) -> nn.Module:
        path = Path(self.model)
        if path.suffix == ".pt" or path.is_dir():
            if not path.exists():
                raise AutostructError(f"Model checkpoint '{path}' does not exist. Pass a zoo name or a saved model.pt.")
            model, _ = load_model(path)
            return model
        model, _ = get_or_train(
            self.model, self.dataset, classes=list(self.classes) if self.classes is not None else None,
            width=self.width, epochs=self.epochs, seed=self.seed, root=self.data_root, val_size=self.val_split,
            device=self.device, progress=False, dataset=dataset, model_kwargs=dict(self.model_kwargs),
        )
        return model
