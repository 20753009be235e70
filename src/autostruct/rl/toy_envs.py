"""Small multi-task envs with known optima, for tests, benchmarks and trying the engine in seconds.

They follow the same :class:`~autostruct.rl.env.Env` protocol and reward shape as the searches (sparse reward
at the last step, the task id in the observation). Build factories with ``functools.partial(TargetEnv, ...)``,
which pickle, so they run on every backend.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from autostruct.rl.env import BoxSpec, CategoricalSpec, Env


def _one_hot(i: int, n: int) -> np.ndarray:
    v = np.zeros(n, dtype=np.float32)
    v[i] = 1.0
    return v


class TargetEnv:
    """Continuous: hit the task's target value at every step. Optimal episode reward: 1.0.

    Observation: one-hot task id + one-hot step. Reward at the last step: ``1 - 3 * mean_t |a_t - target|``
    (0 before), so a policy that ignores the task id scores at most 0.7. The default targets lie inside the
    greedy range of MTACP's sigmoid mean head, (tanh(mu) + 1) / 2 in [0.5, 0.88].
    """

    def __init__(self, task_id: int, targets: tuple[float, ...] = (0.6, 0.8), length: int = 3) -> None:
        self.task_id, self.targets, self.length = task_id, tuple(targets), length
        self.observation_size = len(self.targets) + length
        self.action_spec = BoxSpec(dim=1)
        self.max_episode_steps = length

    def _obs(self) -> np.ndarray:
        return np.concatenate([_one_hot(self.task_id, len(self.targets)), _one_hot(min(self.t, self.length - 1), self.length)])

    def reset(self, seed: int | None = None) -> np.ndarray:
        self.t, self.errors = 0, []
        return self._obs()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        a = float(np.asarray(action).reshape(-1)[0])
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"TargetEnv got action {a} outside [0, 1]")
        self.errors.append(abs(a - self.targets[self.task_id]))
        self.t += 1
        done = self.t >= self.length
        reward = 1.0 - 2.0 * float(np.mean(self.errors)) if done else 0.0
        return self._obs(), reward, done, ({"mean_error": float(np.mean(self.errors))} if done else {})

    def action_mask(self) -> np.ndarray | None:
        return None


class ChoiceEnv:
    """Categorical: pick the task's best option at each step; some options are masked. Optimal reward: 1.0.

    Step ``t`` has ``choices[t]`` options; the best is ``(task_id + 2 * t) % choices[t]`` and the option after it is
    masked (choosing a masked option raises, which checks that policies respect masks). Reward at the last
    step: the fraction of steps that chose the best option.
    """

    def __init__(self, task_id: int, num_tasks: int = 2, choices: tuple[int, ...] = (3, 4, 3)) -> None:
        self.task_id, self.num_tasks, self.choices = task_id, num_tasks, tuple(choices)
        self.observation_size = num_tasks + len(self.choices)
        self.action_spec = CategoricalSpec(choices=self.choices)
        self.max_episode_steps = len(self.choices)

    def best(self, t: int) -> int:
        return (self.task_id + 2 * t) % self.choices[t]

    def _obs(self) -> np.ndarray:
        t = min(self.t, len(self.choices) - 1)
        return np.concatenate([_one_hot(self.task_id, self.num_tasks), _one_hot(t, len(self.choices))])

    def reset(self, seed: int | None = None) -> np.ndarray:
        self.t, self.hits = 0, 0
        return self._obs()

    def action_mask(self) -> np.ndarray | None:
        k = max(self.choices)
        mask = np.zeros(k, dtype=bool)
        mask[: self.choices[self.t]] = True
        if self.choices[self.t] > 2:
            mask[(self.best(self.t) + 1) % self.choices[self.t]] = False
        return mask

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        a = int(action)
        if not self.action_mask()[a]:
            raise ValueError(f"ChoiceEnv step {self.t}: option {a} is masked")
        self.hits += int(a == self.best(self.t))
        self.t += 1
        done = self.t >= len(self.choices)
        reward = self.hits / len(self.choices) if done else 0.0
        return self._obs(), reward, done, ({"hits": self.hits} if done else {})


class SleepEnv:
    """Benchmark env: each step costs ``step_s`` seconds, sleeping (``mode="sleep"``) or busy on the CPU."""

    def __init__(self, task_id: int = 0, step_s: float = 0.01, length: int = 10, mode: str = "sleep",
                 observation_size: int = 13) -> None:
        self.task_id, self.step_s, self.length, self.mode = task_id, step_s, length, mode
        self.observation_size = observation_size
        self.action_spec = BoxSpec(dim=1)
        self.max_episode_steps = length

    def reset(self, seed: int | None = None) -> np.ndarray:
        self.t = 0
        return np.zeros(self.observation_size, dtype=np.float32)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        if self.mode == "sleep":
            time.sleep(self.step_s)
        else:
            end = time.perf_counter() + self.step_s
            while time.perf_counter() < end:
                pass
        self.t += 1
        done = self.t >= self.length
        obs = np.full(self.observation_size, self.t / self.length, dtype=np.float32)
        return obs, (float(np.asarray(action).reshape(-1)[0]) if done else 0.0), done, {}

    def action_mask(self) -> np.ndarray | None:
        return None


class FailOnceEnv:
    """Wraps an env and raises on its first step if ``marker`` does not exist yet (creating it): for restart tests.

    The marker lives on disk, so exactly one actor process fails once, whichever backend runs it.
    """

    def __init__(self, inner: Env, marker: str | os.PathLike[str]) -> None:
        self.inner, self.marker = inner, Path(marker)
        self.observation_size, self.action_spec = inner.observation_size, inner.action_spec
        self.task_id, self.max_episode_steps = inner.task_id, inner.max_episode_steps

    def reset(self, seed: int | None = None) -> np.ndarray:
        return self.inner.reset(seed)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return self.inner.step(action)
        os.close(fd)
        raise RuntimeError("FailOnceEnv: deliberate failure (first step ever)")

    def action_mask(self) -> np.ndarray | None:
        return self.inner.action_mask()


def fail_once(factory: Any, marker: str) -> FailOnceEnv:
    """Factory body for :class:`FailOnceEnv` (use ``functools.partial(fail_once, inner_factory, marker)``)."""
    return FailOnceEnv(factory(), marker)


class LandscapeEnv:
    """A pruning-shaped multi-task landscape with a known optimum, for learning tests (milliseconds an episode).

    Task = (FLOPs ratio ``ratio``, dataset ``dataset_id``). One step per "layer" ``l`` with FLOPs share ``w_l``
    (summing to 1); the action in [0, 1] is mapped onto the same two-sided budget wall as the pruning env's
    ``budget: exact`` (every episode spends exactly ``ratio`` of the FLOPs; the last step is forced). The
    "accuracy" of keep ratios ``k`` is ``exp(-sum_l s_l (1 - k_l)^2)`` with per-layer sensitivities ``s_l`` that
    depend on the dataset; the reward at the last step adds Gaussian noise of std ``noise`` (as scoring on a
    validation subset does). :meth:`optimum` solves the KKT conditions for the best keep ratios, so a test can
    say how close a searcher got. The observation has the pruning env's 13 features in spirit: layer index,
    ratio, dataset id, FLOPs share, FLOPs reduced so far and still to come, previous keep ratio, the wall.
    """

    OBSERVATION_SIZE = 13

    def __init__(self, task_id: int = 0, ratio: float = 0.5, dataset_id: int = 0, num_datasets: int = 2,
                 layers: int = 12, noise: float = 0.01, lbound: float = 0.2, scale: float = 0.7) -> None:
        self.task_id, self.ratio, self.layers, self.noise, self.lbound = task_id, float(ratio), layers, noise, lbound
        self.beta = dataset_id / max(1, num_datasets - 1)
        rng = np.random.default_rng(1234)  # the landscape itself is fixed; only the dataset picks a pattern
        self.w = rng.uniform(0.5, 2.0, layers)
        self.w /= self.w.sum()
        base = rng.uniform(0.2, 1.0, layers)
        patterns = rng.uniform(0.1, 1.0, (max(2, num_datasets), layers))
        self.s = scale * base * patterns[dataset_id] / layers * 6
        self.observation_size = self.OBSERVATION_SIZE
        self.action_spec = BoxSpec(dim=1)
        self.max_episode_steps = layers
        self.rng = np.random.default_rng(task_id)

    def _wall(self, i: int) -> tuple[float, float]:
        spent = float(self.w[:i] @ self.k[:i])
        later = float(self.w[i + 1 :].sum())
        lo = (self.ratio - spent - later) / self.w[i]
        hi = (self.ratio - spent - later * self.lbound) / self.w[i]
        lo, hi = max(self.lbound, lo), min(1.0, hi)
        return (min(lo, hi), hi)

    def _obs(self) -> np.ndarray:
        i = min(self.t, self.layers - 1)
        lo, hi = self._wall(i)
        spent = float(self.w[:i] @ self.k[:i])
        v = [i / (self.layers - 1), self.ratio, self.beta, self.w[i] * self.layers / 2, float(self.w[:i].sum()) - spent,
             float(self.w[i + 1 :].sum()), self.prev, lo, hi, spent, 0.0, 0.0, 0.0]
        return np.asarray(v, dtype=np.float32)

    def reset(self, seed: int | None = None) -> np.ndarray:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.t, self.prev = 0, 0.0
        self.k = np.ones(self.layers)
        return self._obs()

    def accuracy(self, keep: np.ndarray) -> float:
        """Noise-free 'accuracy' of keep ratios ``keep`` (one per layer)."""
        return float(np.exp(-(self.s * (1.0 - np.asarray(keep)) ** 2).sum()))

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        obs, _, done, info = self.plan_step(action)
        if not done:
            return obs, 0.0, False, info
        acc = self.accuracy(self.k)
        reward = acc + float(self.rng.normal(0.0, self.noise))
        info = {"accuracy": acc, "strategy": [float(x) for x in self.k], "forced": info["forced"],
                "flops_ratio": float(self.w @ self.k), "design": [float(x) for x in self.k],
                "task_features": self.task_features()}
        return obs, reward, True, info

    def plan_step(self, action: Any) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        """As :meth:`step` without the (noisy) score: what the screen of rl/screen.py plans with."""
        a = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], 0.0, 1.0))
        lo, hi = self._wall(self.t)
        forced = hi - lo < 1e-9
        self.k = self.k.copy()  # planned copies (copy.copy) must not share the keep ratios
        self.k[self.t] = lo + a * (hi - lo)
        self.prev = float(self.k[self.t])
        self.t += 1
        done = self.t >= self.layers
        obs = np.zeros(self.observation_size, dtype=np.float32) if done else self._obs()
        return obs, 0.0, done, {"forced": forced}

    def planned_design(self) -> np.ndarray:
        return self.k.astype(np.float32)

    def task_features(self) -> list[float]:
        return [self.ratio, self.beta]

    def action_mask(self) -> np.ndarray | None:
        return None

    def optimum(self) -> tuple[np.ndarray, float]:
        """The best keep ratios under the budget (KKT: ``k_l = clip(1 - lam * w_l / (2 s_l), lbound, 1)``)."""
        def keep(lam: float) -> np.ndarray:
            return np.clip(1.0 - lam * self.w / (2 * self.s), self.lbound, 1.0)

        lo, hi = 0.0, 1e6
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if self.w @ keep(mid) > self.ratio else (lo, mid)
        k = keep(hi)
        return k, self.accuracy(k)


class TableEnv:
    """A NAS-shaped multi-task table with known accuracies, for learning tests (microseconds an episode).

    ``decisions`` categorical steps of ``ops`` options each (a cell space like the public tabular NAS benchmarks:
    6 x 5 = 15,625 architectures). An architecture's accuracy on dataset ``d`` is a sum of per-decision option
    effects shared by both datasets (plus a dataset-specific part scaled by ``own_scale``) and pairwise
    interactions between decisions (neighbours at ``pair_scale``; with ``pair_span > 1`` also decisions up to
    ``pair_span`` apart, at ``pair_scale / distance``), squashed into (0, 1); the reward adds Gaussian noise of
    std ``noise``. ``spread`` < 1 shrinks accuracies towards 0.5 (a supernet's architectures differ by a few points,
    not tens). One option per step is masked at random but fixed per (dataset, step), as infeasible choices
    are in the NAS env. Observation: dataset one-hot, step one-hot, previous choice one-hot.

    The defaults are the table of ``tests/rl/test_learning_table.py``; :data:`HARD_TABLE` is a harder one and
    :data:`FLAT_TABLE` the hard one with a supernet's spread.
    """

    def __init__(self, task_id: int = 0, dataset_id: int = 0, num_datasets: int = 2, decisions: int = 6,
                 ops: int = 5, noise: float = 0.005, seed: int = 7, own_scale: float = 0.5, pair_scale: float = 0.3,
                 pair_span: int = 1, spread: float = 1.0) -> None:
        if pair_span < 1 or decisions < 2:
            raise ValueError(f"TableEnv needs decisions >= 2 and pair_span >= 1, got {decisions}, {pair_span}")
        self.task_id, self.dataset_id, self.num_datasets = task_id, dataset_id, num_datasets
        self.decisions, self.ops, self.noise, self.spread = decisions, ops, noise, spread
        rng = np.random.default_rng(seed)
        shared = rng.normal(0.0, 1.0, (decisions, ops))
        own = rng.normal(0.0, 1.0, (num_datasets, decisions, ops))
        self.effect = shared + own_scale * own[dataset_id]
        # pairs[d - 1][t] couples decisions t and t + d.
        self.pairs = [pair_scale * rng.normal(0.0, 1.0, (decisions - 1, ops, ops))]
        masked = rng.integers(0, ops, (num_datasets, decisions))
        # Drawn after the mask so pair_span=1 keeps the tables it always built.
        for d in range(2, min(pair_span, decisions - 1) + 1):
            self.pairs.append(pair_scale / d * rng.normal(0.0, 1.0, (decisions - d, ops, ops)))
        self.masked = masked[dataset_id]
        self.observation_size = num_datasets + decisions + ops
        self.action_spec = CategoricalSpec(choices=(ops,) * decisions)
        self.max_episode_steps = decisions
        self.rng = np.random.default_rng(task_id)

    def accuracies(self, archs: np.ndarray) -> np.ndarray:
        """Noise-free accuracies of ``archs`` ``[N, decisions]`` (one option index per decision), vectorized."""
        archs = np.asarray(archs, dtype=np.int64)
        steps = np.arange(self.decisions)
        score = self.effect[steps, archs].sum(-1)
        for d, pair in enumerate(self.pairs, start=1):
            t = np.arange(self.decisions - d)
            score = score + pair[t, archs[:, :-d], archs[:, d:]].sum(-1)
        return 0.5 + self.spread * (1.0 / (1.0 + np.exp(-(score / 3.0 + 0.5))) - 0.5)

    def accuracy(self, arch: list[int] | tuple[int, ...]) -> float:
        """Noise-free accuracy of ``arch`` (one option per decision)."""
        return float(self.accuracies(np.asarray(arch)[None, :])[0])

    def feasible(self, arch: list[int] | tuple[int, ...]) -> bool:
        return all(a != self.masked[t] for t, a in enumerate(arch))

    def _obs(self) -> np.ndarray:
        prev = _one_hot(self.arch[-1], self.ops) if self.arch else np.zeros(self.ops, dtype=np.float32)
        return np.concatenate([_one_hot(self.dataset_id, self.num_datasets),
                               _one_hot(min(self.t, self.decisions - 1), self.decisions), prev])

    def reset(self, seed: int | None = None) -> np.ndarray:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.t, self.arch = 0, []
        return self._obs()

    def action_mask(self) -> np.ndarray:
        mask = np.ones(self.ops, dtype=bool)
        mask[self.masked[min(self.t, self.decisions - 1)]] = False
        return mask

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        a = int(action)
        if not self.action_mask()[a]:
            raise ValueError(f"TableEnv step {self.t}: option {a} is masked")
        self.arch.append(a)
        self.t += 1
        if self.t < self.decisions:
            return self._obs(), 0.0, False, {}
        acc = self.accuracy(self.arch)
        reward = acc + float(self.rng.normal(0.0, self.noise))
        return self._obs(), reward, True, {"accuracy": acc, "arch": list(self.arch)}

    def all_feasible(self) -> np.ndarray:
        """Every feasible architecture, ``[N, decisions]`` (``(ops - 1) ** decisions`` rows)."""
        options = [np.flatnonzero(np.arange(self.ops) != m) for m in self.masked]
        grid = np.meshgrid(*options, indexing="ij")
        return np.stack([g.reshape(-1) for g in grid], axis=-1)

    def optimum(self) -> tuple[list[int], float]:
        """The best feasible architecture, by enumeration."""
        archs = self.all_feasible()
        acc = self.accuracies(archs)
        i = int(np.argmax(acc))
        return [int(a) for a in archs[i]], float(acc[i])


#: A harder table than TableEnv's defaults (8 decisions x 5 options, stronger and longer-range interactions,
#: noisier rewards, datasets sharing more of their structure): ``functools.partial(TableEnv, i, i, **HARD_TABLE)``.
HARD_TABLE: dict[str, Any] = {"decisions": 8, "ops": 5, "noise": 0.01, "own_scale": 0.3, "pair_scale": 0.6,
                              "pair_span": 2}
#: HARD_TABLE with a supernet's spread: accuracies 10x closer together (std ~1.8 pt), noise 0.2 pt.
FLAT_TABLE: dict[str, Any] = {**HARD_TABLE, "spread": 0.1, "noise": 0.002}
