"""A fair benchmark of the multi-task pruning search (MTACP) against baselines (issue 10, item 7).

Every method searches the same envs (``autostruct.mtacp.run.make_factories``: same base models, scored
validation images, calibration batches and pruning settings) with the same number of episodes per task, and
every method's strategy is chosen the same way: its (search reward, info) of every episode goes through
``autostruct.prune.selection.select_strategy`` (top-k distinct strategies re-scored on a validation split that
never scored an episode). The selected strategy is then measured on the test split, BN recalibrated, without
and after the same fine-tune.

======== ===================================================================================================
mtacp    one multi-task ``run_impala`` over all tasks (V-trace, ``PruneConfig().rl`` defaults), backend
         ``--mtacp-backend`` (inline by default: one core, like the baselines)
random   uniformly random actions through the budget wall, per task
ddpg     AMC's DDPG, one search per task, one after the other (sequential AMC)
cem      cross-entropy method over the per-step actions, per task
single   the same IMPALA agent and RL settings as mtacp, one run per task (inline, 1 actor)
uniform  one keep ratio for every layer (no search)
======== ===================================================================================================

A seed changes the search seeds only (RL, random, DDPG, CEM); base models, scored images and calibration
batches stay those of seed 0, so paired differences compare methods on identical envs. Over ``--seeds`` the
script reports MTACP minus each method in mean test accuracy with 95% Student-t intervals (over the
per-(seed, task) differences and over per-seed means), wall times and their ratios to sequential DDPG, the
learning curves, and (``--zero-shot``) MTACP's policy pruning unseen ratios without search.

Prints one JSON document on stdout (``--out`` also writes it), progress and a summary table on stderr.
See docs/benchmark-mtacp.md.

    python benchmarks/mtacp_vs_baselines.py --preset session --out bench.json   # regime a, 3 seeds, zero-shot: ~1 h
    python benchmarks/mtacp_vs_baselines.py --out bench.json                    # regime a at full size: hours
    python benchmarks/mtacp_vs_baselines.py --quick                                       # smoke run, ~1 min
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from autostruct.baselines import cem_search, ddpg_search, random_search, uniform_prune
from autostruct.config import BackendConfig, PruneConfig, RLConfig, parse_config
from autostruct.errors import AutostructError
from autostruct.measure import host_info
from autostruct.mtacp.run import make_factories, policy_spec, prepare_bases
from autostruct.mtacp.tasks import TaskSpec, expand_tasks
from autostruct.prune.selection import env_rescore, select_strategy
from autostruct.rl import rollout, run_impala
from autostruct.utils.io import write_json_atomic

METHODS = ("mtacp", "random", "ddpg", "cem", "single", "uniform")
SEARCHERS = ("mtacp", "random", "ddpg", "cem", "single")  # methods with an episode budget

#: Regimes of issue 10: data tasks (dataset, classes) x ratios, and episodes per task.
REGIMES: dict[str, dict[str, Any]] = {
    "a": {"data": [("fashion-mnist", None), ("fashion-mnist", [5, 7, 9])], "ratios": [0.3, 0.5, 0.7],
          "episodes_per_task": 100},
    "b": {"data": [("fashion-mnist", None), ("fashion-mnist", [5, 7, 9]), ("fashion-mnist", [0, 2, 4, 6]),
                   ("digits", None)], "ratios": [0.3, 0.5, 0.7], "episodes_per_task": 25},
    "quick": {"data": [("digits", None)], "ratios": [0.5, 0.7], "episodes_per_task": 4},
    # Issue 19: three data tasks of one model family (each its own base model) at ratios where the structure
    # still matters after a short fine-tune and an episode's score (no fine-tune) still tells strategies apart:
    # at 0.2 and 0.3 of width-0.5 ResNet-20's FLOPs every strategy scored near chance; see benchmarks/sharing.py.
    "sharing": {"data": [("fashion-mnist", None), ("fashion-mnist", [5, 7, 9]), ("fashion-mnist", [0, 2, 4, 6])],
                "ratios": [0.4, 0.5, 0.7], "episodes_per_task": 100},
    "sharing-quick": {"data": [("digits", None)], "ratios": [0.3, 0.5], "episodes_per_task": 6},
}

#: Sizes of each preset (explicit flags still win). ``session``: regime a, 3 seeds and zero-shot in about an
#: hour on one core; ``full``: the defaults; ``quick``: the smoke run.
PRESETS: dict[str, dict[str, Any]] = {
    "full": {},
    "session": {"regime": "a", "width": 0.25, "val_size": 500, "rescore_size": 500, "recal_batches": 3,
                "test_size": 2000, "finetune_steps": 0, "seeds": [0, 1, 2], "zero_shot": True},
    "sharing": {"regime": "sharing", "width": 0.5, "val_size": 300, "rescore_size": 500, "recal_batches": 1,
                "test_size": 0, "finetune_steps": 50, "seeds": [0], "new_scenarios": True,
                "methods": ["mtacp", "random", "cem", "ddpg"], "new_ratios": [0.45, 0.6],
                "new_dataset_ratios": [0.4, 0.55],
                "rl": [("screen", 32), ("greedy_every", 0)]},
    "sharing-quick": {"regime": "sharing-quick", "width": 0.5, "val_size": 100, "rescore_size": 100,
                      "recal_batches": 2, "test_size": 0, "finetune_steps": 2, "seeds": [0], "top_k": 2,
                      "new_scenarios": True, "methods": ["mtacp", "random", "cem", "ddpg", "single"],
                      "rl": [("screen", 4), ("greedy_every", 0)], "new_ratios": [0.4], "new_dataset": "digits",
                      "new_classes": [0, 1, 2, 3, 4], "new_dataset_ratios": [0.5], "few_shot": 2, "new_random": [2, 3]},
    "quick": {"regime": "quick", "width": 0.5, "val_size": 100, "rescore_size": 100, "recal_batches": 2,
              "test_size": 0, "finetune_steps": 2, "seeds": [0, 1], "top_k": 2, "zero_shot_ratios": [0.6],
              "zero_shot_random": 3},
}


def _log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# -- what a search leaves behind -----------------------------------------------------------------------------
@dataclass
class Search:
    """One method's search on one task: (reward, info) of every episode in order, and its wall time."""

    scored: list[tuple[float, dict[str, Any]]]
    seconds: float | None  # None: shared by all tasks (multi-task run; see the method's total)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rewards(self) -> list[float]:
        return [r for r, _ in self.scored]


class RecordingEnv:
    """Passes an env through and records each episode's final (reward, info) and when it finished (seconds
    since the wrapper was made); ``task_id`` may be overridden."""

    def __init__(self, env: Any, task_id: int | None = None) -> None:
        self.env = env
        self.observation_size, self.action_spec = env.observation_size, env.action_spec
        self.max_episode_steps = env.max_episode_steps
        self.task_id = env.task_id if task_id is None else task_id
        self.scored: list[tuple[float, dict[str, Any]]] = []
        self.times: list[float] = []
        self.cpu_times: list[float] = []  # this process's CPU seconds: the time on a core of its own under load
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def reset(self, seed: int | None = None) -> np.ndarray:
        return self.env.reset(seed)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        obs, reward, done, info = self.env.step(action)
        if done:
            self.scored.append((float(reward), info))
            self.times.append(time.perf_counter() - self.t0)
            self.cpu_times.append(time.process_time() - self.c0)
        return obs, reward, done, info

    def action_mask(self) -> None:
        return None


def _search_seed(seed: int, task_id: int) -> int:
    return 1000 * seed + task_id  # distinct streams per task, same ones for every single-task method


def run_single_task(method: str, env: Any, task_id: int, episodes: int, seed: int, args: argparse.Namespace,
                    cfg: PruneConfig, run_dir: Path) -> Search:
    """One single-task search of ``method`` in ``env`` (already built)."""
    if method == "uniform":
        t0 = time.perf_counter()
        res = uniform_prune(env)
        return Search([(res.best_reward, res.best_info)], time.perf_counter() - t0)
    rec = RecordingEnv(env, task_id=0 if method == "single" else None)
    s = _search_seed(seed, task_id)
    t0 = time.perf_counter()
    if method == "random":
        random_search(rec, episodes, seed=s)
    elif method == "ddpg":
        ddpg_search(rec, episodes, warmup=args.ddpg_warmup or max(1, episodes // 4), seed=s)
    elif method == "cem":
        cem_search(rec, episodes, seed=s, population=args.cem_population, elite_frac=args.cem_elite_frac)
    elif method == "single":
        # The logged episodes: an actor may finish one past the budget, which the engine drops.
        out = run_impala([lambda: rec], policy_spec(cfg), total_episodes=episodes, run_dir=run_dir,
                   rl=RLConfig(**{**cfg.rl.model_dump(), "actors": 1}), backend=BackendConfig(name="inline"),
                   algorithm="vtrace", seed=s, progress=False, tensorboard=False)
        return Search([(float(ep.reward), ep.info) for ep in out.episodes], time.perf_counter() - t0)
    else:
        raise ValueError(method)
    return Search(rec.scored, time.perf_counter() - t0)


def run_mtacp(cfg: PruneConfig, factories: list[Any], tasks: list[TaskSpec], episodes: int, seed: int,
              run_dir: Path) -> tuple[dict[int, Search], float, Any]:
    """One IMPALA run over all tasks; the first ``episodes`` episodes of each task, the wall time, the policy.

    The engine decides which task each episode goes to. Should a task end up short of ``episodes`` (an engine
    without an equal-per-task scheduler), the run is resumed for the missing episodes until every task has
    them; episodes beyond ``episodes`` of a task are not used (their time is still charged to MTACP), and
    ``episodes_run`` / ``top_up_resumes`` in the task's record say how many ran.
    """
    total = episodes * len(tasks)
    t0 = time.perf_counter()
    out, resumes = None, 0
    for _ in range(20):
        out = run_impala(factories, policy_spec(cfg), total_episodes=total, run_dir=run_dir, rl=cfg.rl,
                         backend=cfg.backend, algorithm="vtrace", seed=seed, resume=out is not None,
                         progress=False, tensorboard=False)
        counts = {t.task_id: sum(ep.task_id == t.task_id for ep in out.episodes) for t in tasks}
        missing = sum(max(0, episodes - n) for n in counts.values())
        if not missing:
            break
        resumes += 1
        total += missing * len(tasks)  # the engine shares new episodes among tasks; every task must advance
    else:
        raise AutostructError(f"MTACP could not give every task {episodes} episodes (per task: {counts}).")
    seconds = time.perf_counter() - t0
    per_task = {}
    for t in tasks:
        eps = [ep for ep in out.episodes if ep.task_id == t.task_id]
        per_task[t.task_id] = Search([(float(ep.reward), ep.info) for ep in eps[:episodes]], None,
                                     {"episodes_run": len(eps), "top_up_resumes": resumes})
    return per_task, seconds, out.policy


# -- measuring a strategy on the test split ------------------------------------------------------------------
class TestScorer:
    """Test accuracy of a strategy (BN recalibrated as in ``autostruct prune``), before and after a fine-tune.

    Cached per (data, channels): the same strategy found by two methods or seeds is measured once (the
    measurement is deterministic).
    """

    def __init__(self, cfg: PruneConfig, args: argparse.Namespace) -> None:
        self.cfg, self.args = cfg, args
        self.data: dict[Any, Any] = {}
        self.cache: dict[tuple[Any, tuple[int, ...]], dict[str, float | None]] = {}

    def _data(self, key: Any) -> Any:
        if key not in self.data:
            from autostruct.data import load_dataset

            data = load_dataset(key.dataset, root=key.root, val_size=5000, seed=self.cfg.seed,
                                classes=list(key.classes) if key.classes else None)
            test = data.test.subset(self.args.test_size, seed=self.cfg.seed) if self.args.test_size else data.test
            self.data[key] = (data, test)
        return self.data[key]

    def __call__(self, env: Any, key: Any, channels: list[int], finetune: bool = True) -> dict[str, float | None]:
        """``finetune=False``: only the accuracy without fine-tune (``test_accuracy_finetuned`` is None)."""
        ck = (key, tuple(int(c) for c in channels))
        steps = self.args.finetune_steps if finetune else 0
        cached = self.cache.get(ck)
        if cached is None or (steps > 0 and cached["test_accuracy_finetuned"] is None):
            self.cache[ck] = cached = self._measure(env, key, channels, steps)
        return cached if finetune else {**cached, "test_accuracy_finetuned": None}

    def _measure(self, env: Any, key: Any, channels: list[int], steps: int) -> dict[str, float | None]:
        from autostruct.models.bn import recalibrate_bn
        from autostruct.models.train import evaluate, fine_tune

        cfg = self.cfg
        data, test = self._data(key)
        model = env.prune(channels)
        if cfg.search.recal_batches:
            batches = [x for x, _ in itertools.islice(data.train.batches(128, shuffle=True, seed=cfg.seed),
                                                      cfg.search.recal_batches)]
            recalibrate_bn(model, batches, len(batches))
        before = evaluate(model, test, device=cfg.device).accuracy
        after = None
        if steps > 0:
            bs = cfg.finetune.batch_size
            subset = SimpleNamespace(train=data.train.subset(min(steps * bs, len(data.train)), seed=cfg.seed),
                                     val=None)
            fine_tune(model, subset, 1, lr=cfg.finetune.lr, batch_size=bs, seed=cfg.seed, device=cfg.device,
                      progress=False)
            after = evaluate(model, test, device=cfg.device).accuracy
        return {"test_accuracy_no_finetune": before, "test_accuracy_finetuned": after}


def select_and_measure(search: Search, env: Any, key: Any, top_k: int, rescore: Callable[..., Any] | None,
                       scorer: TestScorer, finetune: bool = True) -> dict[str, Any]:
    """The common selection (top-k re-scored) and, for contrast, the naive best search score; both tested
    (``finetune=False``: without the fine-tune, ``test_accuracy_finetuned`` None)."""
    sel = select_strategy(search.scored, rescore, top_k)
    naive = select_strategy(search.scored, None, 1)
    chosen, best = sel.selected, naive.selected
    rec = {
        "search_score": chosen.search_score,
        "rescore": chosen.rescore if rescore is not None else None,
        **scorer(env, key, chosen.channels, finetune=finetune),
        "flops_ratio": chosen.info.get("flops_ratio"),
        "keep_ratios": chosen.info.get("strategy"),
        "channels": chosen.channels,
        "selection": sel.to_json(),
        "naive": {"search_score": best.search_score, "channels": best.channels,
                  "test_accuracy_no_finetune": scorer(env, key, best.channels, finetune=False)[
                      "test_accuracy_no_finetune"]},
        "episodes": len(search.scored),
        "best_search_episode": search.rewards.index(max(search.rewards)) + 1,
        "search_seconds": search.seconds,
        **search.extra,
    }
    rec["test_accuracy"] = rec["test_accuracy_finetuned"] if rec["test_accuracy_finetuned"] is not None \
        else rec["test_accuracy_no_finetune"]
    rec["val_minus_test"] = rec["search_score"] - rec["test_accuracy_no_finetune"]
    rec["rescore_minus_test"] = None if rec["rescore"] is None else rec["rescore"] - rec["test_accuracy_no_finetune"]
    return rec


class CachedRescore:
    """``env_rescore(env)`` cached per strategy (re-scoring is deterministic; methods often share strategies)."""

    def __init__(self, env: Any) -> None:
        self.fn = env_rescore(env)
        self.cache: dict[tuple[int, ...], tuple[float, dict[str, Any]]] = {}

    def __call__(self, channels: Any) -> tuple[float, dict[str, Any]]:
        key = tuple(int(c) for c in channels)
        if key not in self.cache:
            assert self.fn is not None
            self.cache[key] = self.fn(channels)
        return self.cache[key]

    @property
    def enabled(self) -> bool:
        return self.fn is not None


# -- statistics ------------------------------------------------------------------------------------------------
def mean_ci(values: list[float], level: float = 0.95) -> dict[str, Any]:
    """Mean and Student-t confidence interval of ``values`` (no interval for fewer than 2 values)."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    out: dict[str, Any] = {"mean": float(x.mean()) if n else None, "n": n, "ci95": None, "sd": None}
    if n >= 2:
        sd = float(x.std(ddof=1))
        half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
        out.update(sd=sd, ci95=[out["mean"] - half, out["mean"] + half])
    return out


def paired(acc: dict[int, dict[str, dict[str, float]]], a: str, b: str) -> dict[str, Any]:
    """``a`` minus ``b`` in points: over per-(seed, task) differences and over per-seed mean differences."""
    diffs, per_seed = [], []
    for by_method in acc.values():
        d = [100.0 * (by_method[a][t] - by_method[b][t]) for t in by_method[a]]
        diffs.extend(d)
        per_seed.append(float(np.mean(d)))
    return {"per_seed_task": mean_ci(diffs), "per_seed": mean_ci(per_seed)}


def expected_best_of_n(rewards: list[float]) -> list[float]:
    """E[max of n episodes drawn without replacement from ``rewards``], n = 1..len (random search's curve)."""
    r = np.sort(np.asarray(rewards, dtype=np.float64))
    big_n = len(r)
    out = []
    for n in range(1, big_n + 1):
        # P(the i-th smallest, 1-based, is the max of n draws) = C(i-1, n-1) / C(N, n)
        w = np.array([math.comb(i - 1, n - 1) for i in range(1, big_n + 1)], dtype=np.float64) / math.comb(big_n, n)
        out.append(float(w @ r))
    return out


def window_means(rewards: list[float], window: int) -> list[float]:
    return [float(np.mean(rewards[i : i + window])) for i in range(0, len(rewards), window)]


# -- settings ----------------------------------------------------------------------------------------------------
def build_config(args: argparse.Namespace, workdir: Path, data: list[tuple[str, list[int] | None]],
                 ratios: list[float]) -> PruneConfig:
    """The PruneConfig all methods share (so the envs are those of a real ``autostruct prune`` run)."""
    tasks = [{"dataset": d, "classes": c, "ratios": ratios} for d, c in data]
    rl: dict[str, Any] = {"threads_per_actor": 1, **dict(args.rl)}
    if args.actors:
        rl["actors"] = args.actors
    return parse_config(PruneConfig, {
        "name": "bench-mtacp-vs-baselines",
        "output_dir": str(workdir),
        "model": args.model,
        "width": args.width,
        "tasks": tasks,
        "base_training": {"epochs": args.base_epochs,
                          **({} if args.base_min_steps is None else {"min_steps": args.base_min_steps})},
        "search": {"episodes": args.episodes_per_task * len(tasks) * len(ratios), "val_size": args.val_size,
                   "rescore_size": args.rescore_size, "top_k": args.top_k, "budget": "exact",
                   "recal_batches": args.recal_batches, "round_to": args.round_to, "reward": "acc",
                   "reward_finetune_steps": args.reward_finetune_steps},
        "rl": rl,
        "finetune": {"epochs": 0},
        "backend": {"name": args.mtacp_backend},
        "latency_runs": 3,
        "device": args.device,
        "seed": 0,
    }, source="benchmark settings")


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got '{text}'")
    return key.strip(), json.loads(value) if value.strip()[:1] in "0123456789-[{tf" else value.strip()


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="full", choices=sorted(PRESETS), help="sizes (see PRESETS); flags win")
    p.add_argument("--quick", action="store_true", help="same as --preset quick: digits, 2 tasks, 2 seeds")
    p.add_argument("--regime", default="a", choices=sorted(REGIMES), help="a: 6 tasks x 100; b: 12 tasks x 25")
    p.add_argument("--episodes-per-task", type=int, default=None, help="override the regime's episodes per task")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=[*METHODS, "mtacp-plain"],
                   help="mtacp-plain (sharing regime only): the multi-task engine without rl.screen")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="search seeds (envs stay seed 0's)")
    p.add_argument("--model", default="resnet20")
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--val-size", type=int, default=1000, help="validation images that score an episode")
    p.add_argument("--rescore-size", type=int, default=1000, help="disjoint validation images for re-scoring")
    p.add_argument("--top-k", type=int, default=5, help="distinct strategies re-scored per task and method")
    p.add_argument("--recal-batches", type=int, default=10)
    p.add_argument("--round-to", type=int, default=1)
    p.add_argument("--base-epochs", type=int, default=3)
    p.add_argument("--base-min-steps", type=int, default=None, dest="base_min_steps",
                   help="base_training.min_steps (default: the config's, 600 SGD steps on small datasets)")
    p.add_argument("--test-size", type=int, default=0, help="test images (seeded subset; 0: the whole split)")
    p.add_argument("--finetune-steps", type=int, default=300, help="SGD steps (batch 128) after pruning; 0: off")
    p.add_argument("--reward-finetune-steps", type=int, default=0, dest="reward_finetune_steps",
                   help="search.reward_finetune_steps: SGD steps before each episode is scored (0: AMC's reward)")
    p.add_argument("--ddpg-warmup", type=int, default=None, help="DDPG random episodes (default: a quarter)")
    p.add_argument("--cem-population", type=int, default=10)
    p.add_argument("--cem-elite-frac", type=float, default=0.3)
    p.add_argument("--mtacp-backend", default="inline", choices=["inline", "local", "ray"])
    p.add_argument("--actors", type=int, default=None, help="MTACP actors (default: PruneConfig's rl.actors)")
    p.add_argument("--rl", nargs="+", type=_key_value, default=[], metavar="KEY=VALUE",
                   help="RL settings of mtacp and single (e.g. screen=16), over PruneConfig().rl's defaults")
    p.add_argument("--zero-shot", action=argparse.BooleanOptionalAction, default=False,
                   help="after the search: MTACP's policy on unseen ratios (on in the session preset)")
    p.add_argument("--zero-shot-ratios", nargs="+", type=float, default=[0.4, 0.6])
    p.add_argument("--zero-shot-random", type=int, default=10, help="random search episodes to compare with")
    p.add_argument("--new-scenarios", action=argparse.BooleanOptionalAction, default=False,
                   help="sharing regime: answer unseen ratios and an unseen dataset from the mtacp run")
    p.add_argument("--new-ratios", nargs="+", type=float, default=[0.25, 0.4], help="unseen ratios of the datasets")
    p.add_argument("--new-dataset", default="fashion-mnist", help="the unseen dataset (its own base model)")
    p.add_argument("--new-classes", nargs="+", type=int, default=[1, 3, 8], help="its class subset")
    p.add_argument("--new-dataset-ratios", nargs="+", type=float, default=[0.3, 0.5])
    p.add_argument("--few-shot", type=int, default=10, help="episodes of the few-shot mode")
    p.add_argument("--new-random", nargs="+", type=int, default=[10, 25], help="random search episodes to compare")
    p.add_argument("--curve-window", type=int, default=10, help="episodes per window of the mean-reward curves")
    p.add_argument("--finetune-at", nargs="+", type=int, default=None,
                   help="sharing regime: more budgets (episodes per task, among the curve's) whose selections are "
                        "fine-tuned and tested too, beside a third of the budget and all of it")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    p.add_argument("--workdir", default=None, help="run folders (default: a temporary folder, removed after)")
    p.add_argument("--out", default=None, help="also write the JSON here")
    known = p.parse_known_args(argv)[0]
    preset = "quick" if known.quick else known.preset
    p.set_defaults(**PRESETS[preset])
    args = p.parse_args(argv)
    args.preset = preset
    if args.episodes_per_task is None:
        args.episodes_per_task = REGIMES[args.regime]["episodes_per_task"]
    if args.episodes_per_task < 1:
        p.error("--episodes-per-task must be >= 1")
    if args.zero_shot and "mtacp" not in args.methods:
        p.error("--zero-shot needs mtacp among --methods")
    args.seeds = list(dict.fromkeys(args.seeds))
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="autostruct-bench-"))
    try:
        if args.regime.startswith("sharing"):
            import sharing

            result = sharing.run(args, workdir, sys.modules[__name__])
        else:
            result = _run(args, workdir)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    result["command"] = " ".join(["python", "benchmarks/mtacp_vs_baselines.py",
                                  *(sys.argv[1:] if argv is None else argv)])
    result["seconds"] = time.perf_counter() - start
    print(json.dumps(result, indent=2))
    if args.out:
        write_json_atomic(args.out, result)
    if "summary" in result:
        print_table(result)
    return result


# -- the run -----------------------------------------------------------------------------------------------------
def _run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    regime = REGIMES[args.regime]
    e = args.episodes_per_task
    cfg = build_config(args, workdir, regime["data"], regime["ratios"])
    keys, tasks = expand_tasks(cfg)
    workdir.mkdir(parents=True, exist_ok=True)
    bases = prepare_bases(cfg, workdir, keys, progress=False)
    factories = make_factories(cfg, tasks, bases)
    _log(f"regime {args.regime}: {len(tasks)} tasks ({', '.join(t.name for t in tasks)}), {e} episodes per task, "
         f"seeds {args.seeds}; building envs")
    searches_dir = workdir / "searches"  # the engine's run folders; base/ (the base model records) is kept
    shutil.rmtree(searches_dir, ignore_errors=True)
    envs = [f() for f in factories]  # one env per task, shared by every method (same scored images)
    rescorers = [CachedRescore(env) for env in envs]
    if not all(r.enabled for r in rescorers):
        _log("warning: no re-score split left (validation hold-out too small): selection falls back to the search score")
    scorer = TestScorer(cfg, args)
    # The inline backend reuses the built envs (when no two actors share a task, so no env is stepped by two
    # actors); process backends build their own from the factories.
    share = args.mtacp_backend == "inline" and cfg.rl.actors <= len(tasks)
    mtacp_factories = [(lambda env=env: env) for env in envs] if share else factories

    runs: dict[int, dict[str, Any]] = {}
    curves: dict[int, dict[str, dict[str, list[float]]]] = {}
    policies: dict[int, Any] = {}
    uniform_cache: dict[int, Search] = {}
    for seed in args.seeds:
        runs[seed], curves[seed] = {}, {}
        for method in args.methods:
            t0 = time.perf_counter()
            if method == "mtacp":
                searches, seconds, policies[seed] = run_mtacp(cfg, mtacp_factories, tasks, e, seed,
                                                               searches_dir / f"seed{seed}" / "mtacp")
            else:
                searches = {}
                for t in tasks:
                    if method == "uniform" and t.task_id in uniform_cache:
                        searches[t.task_id] = uniform_cache[t.task_id]  # no seed in it: computed once
                        continue
                    searches[t.task_id] = run_single_task(method, envs[t.task_id], t.task_id, e, seed, args, cfg,
                                                          searches_dir / f"seed{seed}" / method / t.name)
                    if method == "uniform":
                        uniform_cache[t.task_id] = searches[t.task_id]
                seconds = float(sum(s.seconds or 0.0 for s in searches.values()))
            _log(f"seed {seed} {method}: search {seconds:.1f} s; selecting and testing")
            recs = {t.name: select_and_measure(searches[t.task_id], envs[t.task_id], t.data, args.top_k,
                                               rescorers[t.task_id] if rescorers[t.task_id].enabled else None, scorer)
                    for t in tasks}
            runs[seed][method] = {"search_seconds": seconds, "seconds_with_selection": time.perf_counter() - t0,
                                  "tasks": recs}
            curves[seed][method] = {t.name: searches[t.task_id].rewards for t in tasks}
            _log(f"seed {seed} {method}: mean test accuracy "
                 f"{100 * np.mean([r['test_accuracy'] for r in recs.values()]):.2f}%")

    check = episodes_check(curves, args.methods, e)
    if "mtacp" in args.methods:
        check["mtacp_episodes_run"] = {str(s): {t: r["episodes_run"] for t, r in runs[s]["mtacp"]["tasks"].items()}
                                       for s in args.seeds}
    result: dict[str, Any] = {
        "benchmark": "mtacp_vs_baselines",
        "regime": args.regime,
        "preset": args.preset,
        "sizes": {"model": args.model, "width": args.width, "tasks": len(tasks), "episodes_per_task": e,
                  "seeds": args.seeds, "val_size": cfg.search.val_size, "rescore_size": min(env.rescore_size for env in envs),
                  "top_k": args.top_k, "recal_batches": cfg.search.recal_batches, "base_epochs": args.base_epochs,
                  "test_size": args.test_size or "full", "finetune_steps": args.finetune_steps,
                  "finetune_batch_size": cfg.finetune.batch_size, "finetune_lr": cfg.finetune.lr},
        "seeding": "A seed sets the search seeds (IMPALA, random, DDPG, CEM; per task 1000 * seed + task id for the "
                   "single-task searchers). Base models (trained with seed 0, cached), scored images, re-score "
                   "images, calibration batches and the test subset are seed 0's for every seed.",
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "env": {"budget": cfg.search.budget, "lbound": cfg.search.lbound, "importance": cfg.search.importance,
                "steps_per_episode": {t.name: int(env.max_episode_steps) for t, env in zip(tasks, envs, strict=True)}},
        "rl": cfg.rl.model_dump(),
        "mtacp_backend": cfg.backend.name,
        "host": host_info(),
        "tasks": [{"task": t.name, "dataset": t.data.dataset, "classes": list(t.data.classes) if t.data.classes
                   else None, "ratio": t.ratio, **{k: bases[t.data][k] for k in ("base_accuracy", "base_flops",
                                                                                  "base_params")}} for t in tasks],
        "episodes_check": check,
        "runs": {str(s): r for s, r in runs.items()},
    }
    result.update(summarize(runs, args.methods, tasks))
    result["curves"] = {
        "rewards": {str(s): c for s, c in curves.items()},
        "window": args.curve_window,
        "window_mean_reward": {m: {t.name: np.mean([window_means(curves[s][m][t.name], args.curve_window)
                                                     for s in args.seeds], axis=0).tolist() for t in tasks}
                               for m in args.methods if m in SEARCHERS},
    }
    if "random" in args.methods:
        result["curves"]["random_expected_best_of_n"] = {
            t.name: np.mean([expected_best_of_n(curves[s]["random"][t.name]) for s in args.seeds], axis=0).tolist()
            for t in tasks}
    if args.zero_shot:
        result["zero_shot"] = zero_shot(args, cfg, workdir, bases, policies, scorer)
    return result


def episodes_check(curves: dict[int, dict[str, dict[str, list[float]]]], methods: list[str], e: int) -> dict[str, Any]:
    """Episodes per task of every searcher and seed; raises unless all equal ``e`` (uniform: 1, no search)."""
    per = {m: sorted({len(r) for c in curves.values() for r in c[m].values()}) for m in methods}
    bad = {m: v for m, v in per.items() if m in SEARCHERS and v != [e]}
    if bad:
        raise AutostructError(f"Episodes per task differ from {e}: {bad}. The comparison would not be fair.")
    return {"episodes_per_task": e, "observed": per, "equal": True}


def summarize(runs: dict[int, dict[str, Any]], methods: list[str], tasks: list[TaskSpec]) -> dict[str, Any]:
    """Means per method, paired differences (MTACP minus each other method) with CIs, wall times and ratios."""
    fields = ("test_accuracy", "test_accuracy_no_finetune", "test_accuracy_finetuned", "search_score", "rescore",
              "val_minus_test", "rescore_minus_test")
    summary: dict[str, Any] = {}
    for m in methods:
        recs = [runs[s][m]["tasks"][t.name] for s in runs for t in tasks]
        row: dict[str, Any] = {}
        for f in fields:
            vals = [r[f] for r in recs if r[f] is not None]
            row[f"mean_{f}"] = float(np.mean(vals)) if len(vals) == len(recs) else None
        row["mean_naive_test_accuracy_no_finetune"] = float(np.mean([r["naive"]["test_accuracy_no_finetune"]
                                                                     for r in recs]))
        secs = [runs[s][m]["search_seconds"] for s in runs]
        row["search_seconds_per_seed"] = float(np.mean(secs))
        row["search_seconds_total"] = float(np.sum(secs))
        summary[m] = row
    if "ddpg" in summary:
        for row in summary.values():
            d = summary["ddpg"]["search_seconds_per_seed"]
            row["time_ratio_to_ddpg"] = row["search_seconds_per_seed"] / d if d > 0 else None

    def acc(key: str) -> dict[int, dict[str, dict[str, float]]]:
        return {s: {m: {t.name: runs[s][m]["tasks"][t.name][key] for t in tasks} for m in methods} for s in runs}

    diffs: dict[str, Any] = {}
    if "mtacp" in methods:
        test, raw = acc("test_accuracy"), acc("test_accuracy_no_finetune")
        for m in methods:
            if m != "mtacp":
                diffs[f"mtacp-{m}"] = {"test_accuracy_pt": paired(test, "mtacp", m),
                                       "test_accuracy_no_finetune_pt": paired(raw, "mtacp", m)}
    return {"summary": summary, "paired_differences": diffs}


def zero_shot(args: argparse.Namespace, cfg: PruneConfig, workdir: Path, bases: dict[Any, Any],
              policies: dict[int, Any], scorer: TestScorer) -> dict[str, Any]:
    """MTACP's policy (greedy, no search) on unseen ratios, against uniform and random search's best of n."""
    zcfg = cfg.model_copy(update={"tasks": [t.model_copy(update={"ratios": args.zero_shot_ratios})
                                            for t in cfg.tasks]})
    _, ztasks = expand_tasks(zcfg)  # same datasets in the same order: the same beta feature as in training
    envs = [f() for f in make_factories(zcfg, ztasks, bases)]
    per_seed: dict[str, Any] = {}
    acc: dict[int, dict[str, dict[str, float]]] = {}
    for seed, policy in policies.items():
        per_task: dict[str, Any] = {}
        acc[seed] = {"zero_shot": {}, "uniform": {}, "random": {}}
        for t, env in zip(ztasks, envs, strict=True):
            resc = CachedRescore(env)
            rs = resc if resc.enabled else None
            rec = rollout(policy, env, greedy=True)
            zs = select_and_measure(Search([(float(rec.reward), rec.info)], None), env, t.data, 1, None, scorer)
            uni = run_single_task("uniform", env, t.task_id, 1, seed, args, cfg, workdir / "searches")
            un = select_and_measure(uni, env, t.data, 1, None, scorer)
            rnd = run_single_task("random", env, t.task_id, args.zero_shot_random, seed, args, cfg, workdir / "searches")
            rn = select_and_measure(rnd, env, t.data, args.top_k, rs, scorer)
            per_task[t.name] = {"zero_shot": zs, "uniform": un, f"random_best_of_{args.zero_shot_random}": rn}
            for name, r in (("zero_shot", zs), ("uniform", un), ("random", rn)):
                acc[seed][name][t.name] = r["test_accuracy"]
        per_seed[str(seed)] = per_task
        _log(f"zero-shot seed {seed}: mean test accuracy {100 * np.mean(list(acc[seed]['zero_shot'].values())):.2f}%")
    return {
        "ratios": args.zero_shot_ratios,
        "random_episodes": args.zero_shot_random,
        "tasks": [t.name for t in ztasks],
        "runs": per_seed,
        "mean_test_accuracy": {m: float(np.mean([v for s in acc for v in acc[s][m].values()]))
                               for m in ("zero_shot", "uniform", "random")},
        "paired_differences": {"zero_shot-uniform": paired(acc, "zero_shot", "uniform"),
                               "zero_shot-random": paired(acc, "zero_shot", "random")},
    }


def _ci(p: dict[str, Any]) -> str:
    if p["mean"] is None:
        return "-"
    if p["ci95"] is None:
        return f"{p['mean']:+.2f}"
    return f"{p['mean']:+.2f} [{p['ci95'][0]:+.2f}, {p['ci95'][1]:+.2f}]"


def print_table(result: dict[str, Any]) -> None:
    """The headline on stderr: mean test accuracy per method, paired differences with CIs, times and ratios."""
    s, d = result["summary"], result["paired_differences"]
    ft = result["sizes"]["finetune_steps"] > 0
    lines = [f"regime {result['regime']}, preset {result['preset']}: {result['sizes']['tasks']} tasks x "
             f"{result['sizes']['episodes_per_task']} episodes, seeds {result['sizes']['seeds']}; accuracies in %, "
             f"differences in points (95% CI over (seed, task) pairs | over seeds)",
             f"{'method':<8} {'test' + (' (ft)' if ft else ''):>10} {'test raw':>9} {'naive raw':>9} {'val':>7} "
             f"{'val-test':>8} {'s/seed':>8} {'x ddpg':>7}   mtacp minus method"]
    for m, row in s.items():
        def pct(v: float | None) -> str:
            return "-" if v is None else f"{100 * v:.2f}"
        ratio = row.get("time_ratio_to_ddpg")
        diff = d.get(f"mtacp-{m}", {}).get("test_accuracy_pt")
        dtxt = "" if diff is None else f"{_ci(diff['per_seed_task'])} | {_ci(diff['per_seed'])}"
        lines.append(f"{m:<8} {pct(row['mean_test_accuracy']):>10} {pct(row['mean_test_accuracy_no_finetune']):>9} "
                     f"{pct(row['mean_naive_test_accuracy_no_finetune']):>9} {pct(row['mean_search_score']):>7} "
                     f"{pct(row['mean_val_minus_test']):>8} {row['search_seconds_per_seed']:>8.1f} "
                     f"{'-' if ratio is None else f'{ratio:.2f}':>7}   {dtxt}")
    if "zero_shot" in result:
        z = result["zero_shot"]
        m = z["mean_test_accuracy"]
        lines.append(f"zero-shot ratios {z['ratios']}: test {100 * m['zero_shot']:.2f} vs uniform {100 * m['uniform']:.2f} "
                     f"vs random best-of-{z['random_episodes']} {100 * m['random']:.2f}; zero-shot minus uniform "
                     f"{_ci(z['paired_differences']['zero_shot-uniform']['per_seed_task'])}, minus random "
                     f"{_ci(z['paired_differences']['zero_shot-random']['per_seed_task'])}")
    print("\n".join(lines), file=sys.stderr, flush=True)


if __name__ == "__main__":
    try:
        main()
    except AutostructError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
