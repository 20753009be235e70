"""MTNAS vs single-task NAS searches at equal evaluations per task, over seeds, on a table and on supernet tasks.

    python benchmarks/mtnas_vs_baselines.py --preset table --out runs/bench-nas-table.json      # ~2 min
    python benchmarks/mtnas_vs_baselines.py --preset table-hard --out runs/bench-nas-hard.json  # ~2 min
    python benchmarks/mtnas_vs_baselines.py --preset supernet --out runs/bench-nas-sn.json     # ~25 min, 1 core
    python benchmarks/mtnas_vs_baselines.py --preset supernet-fidelity --methods mtnas,random,evolution \
        --out runs/bench-nas-supernet-fidelity.json                                          # ~50 min, 1 core
    python benchmarks/mtnas_vs_baselines.py --experts-from runs/bench-nas-sn.json --out runs/experts.json
    python benchmarks/mtnas_vs_baselines.py --markdown runs/bench-nas-sn.json                 # the tables
    python benchmarks/mtnas_vs_baselines.py --quick              # 3 Digits supernet tasks (issue 6's preset)
    python benchmarks/mtnas_vs_baselines.py --evals 150          # Fashion-MNIST x2 + Digits (hours)

Methods, each with exactly ``--evals`` evaluations (episodes) per task and seed (asserted):

- ``mtnas``: one controller for all tasks (``run_impala(..., algorithm="mc")`` with the NAS defaults of
  :class:`~autostruct.nas.config.NASRLConfig`; only ``actors`` is set, to one per task);
- ``random``, ``evolution`` (regularized), ``reinforce`` (single-task ENAS-style), ``cem`` (categorical CEM):
  one search per task with their default settings.

Every method selects, per task, the architecture with its best (noisy) reward; what is scored is that
selection's *true* accuracy: on the table the noise-free accuracy, on supernet tasks the selected
architecture re-scored on a disjoint test split (the reward used a validation subset). With
``--rescore-top-k K --rescore-size N`` (``supernet-fidelity``, ``full``: 5 and 1000) every method's selection is
instead the best re-score among its K best architectures by reward, re-scored on N hold-out images disjoint from
the reward's, the supernet's training images and the test split (``autostruct nas``' rule: ``select_strategy``
with ``env_rescorer``); both selections are recorded, the re-scored one is what the tables lead with. Reported per task:
best-found at 50/100/200 evaluations (mean and 95% CI over seeds), paired differences vs random search and vs
regularized evolution with 95% t-intervals over seeds, and the evaluations a method needs until its
selection is at least as good as random search's final selection (same seed; mean over seeds, a seed that
never gets there counts as the whole budget and is flagged). Learning curves (per seed: the true accuracy
of the selection after every evaluation, and the sampled reward averaged over a sliding window) go into the
JSON. ``--experts`` (default on for ``quick``/``full``) also trains MTNAS' found architectures and MobileNetV2 /
ResNet-20 width-scaled to the task's FLOPs budget from scratch, identically, and compares test accuracy.

``--methods`` runs a subset; ``--reuse JSON`` takes the other methods' runs from an earlier JSON with identical
settings (e.g. the baselines, when only the controller's defaults changed). Prints JSON lines as it goes and
writes one JSON document to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

METHODS = ("mtnas", "random", "evolution", "reinforce", "cem")
CHECKPOINTS = (50, 100, 200)


@dataclasses.dataclass(frozen=True)
class Preset:
    """One benchmark setting; command-line options override its fields."""

    space: str  # "table" or "supernet"
    evals: int
    seeds: tuple[int, ...]
    tasks: tuple[tuple[str, float], ...] = ()  # supernet: (dataset, FLOPs budget)
    width: float = 1.0
    val_size: int = 1000
    test_size: int | None = None  # None: the whole test split
    recal_batches: int = 4
    supernet_epochs: int = 5
    supernet_train_size: int | None = None
    supernet_batch_size: int = 128
    experts: bool = False
    train_epochs: int = 3
    train_size: int | None = None
    table: str = "default"  # table: TableEnv's defaults, or "hard" (autostruct.rl.toy_envs.HARD_TABLE)
    #: Selection rule of every method (supernet spaces): the ``rescore_top_k`` distinct best architectures by
    #: search reward are re-scored on ``rescore_size`` hold-out images that never scored an episode, and the best
    #: re-score is selected (autostruct.prune.selection.select_strategy, as ``autostruct nas`` selects). The
    #: hold-out carved from the training images is ``val_size + rescore_size`` (as search.rescore_size carves it).
    #: 1 / 0: select by the search reward (the presets recorded before the re-score existed).
    rescore_top_k: int = 1
    rescore_size: int = 0
    #: The supernet tasks' space (a name of autostruct.nas.space.SPACES) and how its supernet is trained.
    space_name: str = "mobilenetv2"
    supernet_sampling: str = "uniform"
    supernet_distill: bool = False
    supernet_min_steps: int = 300


PRESETS = {
    "table": Preset("table", evals=200, seeds=tuple(range(10))),
    "table-hard": Preset("table", evals=200, seeds=tuple(range(10)), table="hard"),
    # Sized to ~20 min on one loaded core; docs/benchmarks.md lists what this cuts from the full run.
    "supernet": Preset("supernet", evals=100, seeds=tuple(range(5)),
                       tasks=(("fashion-mnist", 2.5e6), ("fashion-mnist", 4.5e6)), width=0.35, val_size=250,
                       test_size=1000, recal_batches=2, supernet_epochs=4, supernet_train_size=10000,
                       train_epochs=3, train_size=10000),
    # The supernet tasks with the reward that ranked architectures best in benchmarks/nas_reward_fidelity.py
    # (2,000 images: Spearman 0.58 with test accuracy, against 0.31 at the 250 above; the 8-epoch, 20k-image
    # supernet ranked worse), every method's selection re-scored on 1,000 disjoint hold-out images, and 2,000 test
    # images behind the true accuracy. Its hold-out (3,000) is the calibration's, so its supernet is that one.
    "supernet-fidelity": Preset("supernet", evals=100, seeds=tuple(range(5)),
                                tasks=(("fashion-mnist", 2.5e6), ("fashion-mnist", 4.5e6)), width=0.35, val_size=2000,
                                test_size=2000, recal_batches=2, supernet_epochs=4, supernet_train_size=10000,
                                train_epochs=3, train_size=10000, rescore_top_k=5, rescore_size=1000),
    "quick": Preset("supernet", evals=60, seeds=tuple(range(5)),
                    tasks=(("digits", 0.8e6), ("digits", 1.2e6), ("digits", 1.8e6)), val_size=300,
                    supernet_epochs=10, supernet_batch_size=64, experts=True, train_epochs=15),
    "full": Preset("supernet", evals=150, seeds=tuple(range(5)),
                   tasks=(("fashion-mnist", 12e6), ("fashion-mnist", 20e6), ("digits", 1.2e6)),
                   supernet_train_size=10000, experts=True, train_size=10000, rescore_top_k=5, rescore_size=1000),
}


# ---------------------------------------------------------------------------------------------- statistics


def evals_to_reach(curve: Sequence[float], target: float) -> int | None:
    """1-based number of evaluations after which ``curve`` first reaches ``target`` (None: never)."""
    for i, v in enumerate(curve, start=1):
        if v >= target - 1e-12:
            return i
    return None


def selections(rewards: Sequence[float], records: Sequence[dict[str, Any]]) -> list[int]:
    """Index of the selected evaluation (best in-budget reward so far, first on ties) after each one; -1: none."""
    out, best, pick = [], -math.inf, -1
    for i, (r, rec) in enumerate(zip(rewards, records, strict=True)):
        if rec.get("meets_budgets", True) and r > best:
            best, pick = r, i
        out.append(pick)
    return out


def rescored_selections(rewards: Sequence[float], records: Sequence[dict[str, Any]], rescore: Any, top_k: int
                        ) -> list[int]:
    """Index of the re-scored selection after each evaluation (-1: none in budget yet).

    After ``n`` evaluations the selection is :func:`autostruct.prune.selection.select_strategy` over the first
    ``n`` in-budget records: the ``top_k`` distinct architectures by search reward, re-scored with ``rescore``
    (``arch -> (reward, info)`` on images that never scored an episode), the best re-score wins. It is recomputed
    only when the top ``k`` changes; ``rescore`` should memoize (re-scores are not evaluations of the search).
    """
    from autostruct.prune.selection import select_strategy, top_k_distinct

    out, pick, top = [], -1, None
    for n in range(1, len(rewards) + 1):
        scored = [(float(r), rec) for r, rec in zip(rewards[:n], records[:n], strict=True)
                  if rec.get("meets_budgets", True)]
        now = tuple(tuple(rec["arch"]) for _, rec in top_k_distinct(scored, top_k, key="arch"))
        if now and now != top:
            chosen = select_strategy(scored, rescore, top_k, key="arch").info
            pick = next(i for i, rec in enumerate(records) if rec is chosen)
            top = now
        out.append(pick)
    return out


def windowed(values: Sequence[float], window: int) -> list[float]:
    """Mean of the last ``window`` values (fewer at the start) after each one."""
    c = np.cumsum(np.asarray(values, dtype=float))
    return [float((c[i] - (c[i - window] if i >= window else 0.0)) / min(i + 1, window)) for i in range(len(c))]


def mean_ci(values: Sequence[float]) -> dict[str, Any]:
    """Mean and 95% t-interval half-width over seeds."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    return {"mean": float(v.mean()), "ci95": half}


def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Paired difference ``a - b`` over seeds: mean, 95% t-interval, and seeds where ``a`` is better / worse."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    m = mean_ci(d)
    return {"mean_diff": m["mean"], "ci95": [m["mean"] - m["ci95"], m["mean"] + m["ci95"]],
            "better": int((d > 1e-12).sum()), "worse": int((d < -1e-12).sum()), "seeds": len(d)}


# ---------------------------------------------------------------------------------------------- spaces


@dataclasses.dataclass
class Space:
    """The tasks of one benchmark space, as the methods need them."""

    names: list[str]
    #: Builds task ``i``'s env for a method's run with ``seed`` (a fresh env, or one sharing an evaluator).
    make_env: Callable[[int, int], Any]
    #: Factories for run_impala (task ``i`` at index ``i``).
    factories: Callable[[int], list[Callable[[], Any]]]
    #: True accuracy of an evaluated record of task ``i`` (noise-free, or re-scored on the test split).
    true_accuracy: Callable[[int, dict[str, Any]], float]
    info: dict[str, Any]
    backend: str = "inline"
    #: Re-score function of task ``i`` (``arch -> (reward, info)`` on hold-out images disjoint from the reward's,
    #: memoized), or None where the space has no such hold-out (tables).
    rescorer: Callable[[int], Any] | None = None
    #: Supernet spaces only (for --experts): per dataset its data, search space and evaluator.
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    spaces: dict[str, Any] = dataclasses.field(default_factory=dict)
    evaluators: dict[str, Any] = dataclasses.field(default_factory=dict)


def table_space(table: str, table_kwargs: dict[str, Any]) -> Space:
    """Two "datasets" of :class:`~autostruct.rl.toy_envs.TableEnv`: its defaults or ``HARD_TABLE``, plus ``table_kwargs``."""
    from autostruct.rl import toy_envs
    from autostruct.rl.toy_envs import TableEnv

    if table == "hard" and not hasattr(toy_envs, "HARD_TABLE"):
        raise SystemExit("this checkout's autostruct.rl.toy_envs has no HARD_TABLE; use --preset table")
    table_kwargs = {**(toy_envs.HARD_TABLE if table == "hard" else {}), **table_kwargs}
    tasks = [functools.partial(TableEnv, i, i, **table_kwargs) for i in range(2)]

    def make_env(i: int, seed: int) -> Any:
        env = tasks[i]()
        env.reset(seed=10_000 + 100 * seed + i)  # seeds the reward noise, different per method run
        return env

    info = {"table_kwargs": table_kwargs, "optimum": [], "random_arch_mean_accuracy": []}
    for f in tasks:
        env = f()
        info["optimum"].append(env.optimum()[1])
        rng = np.random.default_rng(0)
        info["random_arch_mean_accuracy"].append(float(np.mean([
            env.accuracy([int(rng.choice(np.flatnonzero(np.arange(env.ops) != m))) for m in env.masked])
            for _ in range(2000)])))
    return Space([f"table-d{i}" for i in range(2)], make_env, lambda seed: list(tasks),
                 lambda i, rec: float(rec["accuracy"]), info)


def supernet_space(p: Preset, seed: int, backend: str, cache: Path | None = None) -> Space:
    """FLOPs-budgeted tasks on cached (or freshly trained) supernets; test accuracy re-scored on the test split."""
    from autostruct.data import load_dataset
    from autostruct.nas.config import SupernetConfig
    from autostruct.nas.env import NASEnv, NASEnvFactory, holdout_indices, make_evaluator
    from autostruct.nas.evaluate import TaskCosts
    from autostruct.nas.rewards import RewardSpec
    from autostruct.nas.search import env_rescorer
    from autostruct.nas.space import get_space
    from autostruct.nas.train_supernet import get_or_train_supernet

    datasets = list(dict.fromkeys(d for d, _ in p.tasks))
    sn_cfg = SupernetConfig(epochs=p.supernet_epochs, train_size=p.supernet_train_size,
                            batch_size=p.supernet_batch_size, sampling=p.supernet_sampling,
                            distill=p.supernet_distill, min_steps=p.supernet_min_steps)
    data, spaces, evaluators, costs, sn_info, test = {}, {}, {}, {}, {}, {}
    holdout = p.val_size + p.rescore_size  # carved from training: the supernet never sees these images
    for name in datasets:
        d = data[name] = load_dataset(name, val_size=holdout, seed=seed)
        n_rescore = len(holdout_indices(len(d.val), p.val_size, p.rescore_size, seed)[1])
        if n_rescore != p.rescore_size:
            raise SystemExit(f"{name}: the hold-out has room for {n_rescore} of --rescore-size {p.rescore_size}")
        space = spaces[name] = get_space(p.space_name, d.image_size).scaled(p.width)
        t0 = time.monotonic()
        net, info = get_or_train_supernet(space, d, sn_cfg, seed=seed, val_size=holdout, root=cache, progress=False)
        sn_info[name] = {"path": str(info.path), "cache_hit": info.hit, "seconds": round(time.monotonic() - t0, 1),
                         "train_metrics_seconds": info.metrics.get("seconds")}
        # One evaluator per dataset, shared by every method and task: accuracies are deterministic per
        # architecture, so the memo saves time without changing any number (evaluations are counted per episode).
        evaluators[name] = make_evaluator(net, d, p.val_size, p.recal_batches, 64, seed, rescore_size=p.rescore_size)
        costs[name] = TaskCosts(d.in_channels, d.image_size, d.num_classes)
        t = d.test if p.test_size is None else d.test.subset(p.test_size, seed=seed + 3)
        test[name] = (t.x.contiguous(memory_format=torch.channels_last), t.y)
    names = [f"{d}-flops{b / 1e6:g}M" for d, b in p.tasks]

    def make_env(i: int, _seed: int = 0) -> NASEnv:
        d, b = p.tasks[i]
        return NASEnv(spaces[d], evaluators[d], costs[d], {"flops": b}, reward=RewardSpec(), task_id=i,
                      dataset_index=datasets.index(d), num_datasets=len(datasets), name=names[i])

    env_factories = [NASEnvFactory(space=p.space_name, dataset=d, budgets={"flops": b}, supernet_path=sn_info[d]["path"],
                                   width=p.width, task_id=i, dataset_index=datasets.index(d), num_datasets=len(datasets),
                                   val_size=p.val_size, rescore_size=p.rescore_size, recal_batches=p.recal_batches,
                                   seed=seed, name=names[i])
                     for i, (d, b) in enumerate(p.tasks)]

    def factories(_seed: int) -> list[Callable[[], Any]]:
        if backend == "inline":
            return [functools.partial(make_env, i) for i in range(len(p.tasks))]
        return list(env_factories)

    # autostruct nas' own re-scorer: the task's env on the re-score split, built once per task (its evaluator
    # memoizes, so a re-score is paid once per architecture and task whichever method or seed asks).
    rescorers: dict[int, Any] = {}

    def rescorer(i: int) -> Any:
        if i not in rescorers:
            rescore, seen = env_rescorer(env_factories[i]), set()

            def counted(arch: Any, rescore: Any = rescore, seen: set = seen, name: str = names[i]) -> Any:
                seen.add(tuple(int(a) for a in arch))
                info["rescored_architectures"][name] = len(seen)
                return rescore(arch)

            rescorers[i] = counted
        return rescorers[i]

    test_memo: dict[tuple[str, tuple[int, ...]], float] = {}

    @torch.no_grad()
    def true_accuracy(i: int, rec: dict[str, Any]) -> float:
        d = p.tasks[i][0]
        key = (d, tuple(rec["arch"]))
        if key not in test_memo:
            model = evaluators[d].model(spaces[d].arch(rec["arch"]))  # same recalibrated BN as the reward used
            x, y = test[d]
            correct = sum(int((model(x[j : j + 250]).argmax(1) == y[j : j + 250]).sum()) for j in range(0, len(y), 250))
            test_memo[key] = correct / len(y)
        return test_memo[key]

    info = {"supernets": sn_info, "supernet_config": sn_cfg.model_dump(), "test_images": {k: len(v[1]) for k, v in test.items()},
            "holdout_images": holdout, "reward_images": p.val_size, "rescore_images": p.rescore_size,
            "rescored_architectures": {},  # distinct architectures re-scored per task (none of them an evaluation)
            "flops_range": {d: [costs[d](spaces[d].smallest())["flops"], costs[d](spaces[d].largest())["flops"]]
                            for d in datasets}}
    return Space(names, make_env, factories, true_accuracy, info, backend, rescorer if p.rescore_top_k > 1 else None,
                 data, spaces, evaluators)


# ---------------------------------------------------------------------------------------------- runs


def run_mtnas(space: Space, evals: int, seed: int, actors: int | None = None
              ) -> tuple[list[tuple[list[float], list[dict[str, Any]]]], int]:
    """One multi-task search over all tasks: per task its episodes' rewards and records in order, and the number
    of greedy diagnostic rollouts the actors played besides (used neither for learning nor for the selection)."""
    from autostruct.config import BackendConfig
    from autostruct.nas.config import NASRLConfig
    from autostruct.rl import PolicySpec, run_impala

    n = len(space.names)
    rl = NASRLConfig(actors=actors or n)  # the NAS defaults; by default one actor per task
    factories = space.factories(seed)
    spec = PolicySpec.from_env(factories[0](), use_lstm=rl.use_lstm)
    with tempfile.TemporaryDirectory(prefix="mtnas-bench-") as tmp:
        res = run_impala(factories, spec, total_episodes=evals * n, run_dir=Path(tmp) / "search", rl=rl,
                         backend=BackendConfig(name=space.backend), algorithm="mc", seed=seed, progress=False,
                         tensorboard=False)
    out = []
    for i in range(n):
        eps = sorted((e for e in res.episodes if e.task_id == i), key=lambda e: e.episode_index)
        out.append(([float(e.reward) for e in eps], [e.info for e in eps]))
    return out, len(res.greedy)


def run_single(method: str, env: Any, evals: int, seed: int) -> tuple[list[float], list[dict[str, Any]]]:
    from autostruct.baselines.nas_cem import categorical_cem_search
    from autostruct.baselines.nas_evolution import regularized_evolution
    from autostruct.baselines.nas_random import random_search
    from autostruct.baselines.nas_reinforce import reinforce_search

    fn = {"random": random_search, "evolution": regularized_evolution, "reinforce": reinforce_search,
          "cem": categorical_cem_search}[method]
    r = fn(env, evals, seed=seed)
    return r.rewards, r.records


def summarize_run(space: Space, task: int, rewards: list[float], records: list[dict[str, Any]], window: int,
                  top_k: int = 1) -> dict[str, Any]:
    """Learning curves of one (method, seed, task) run; the true accuracy of every distinct selection.

    ``best_so_far`` follows the naive selection (best search reward); with ``top_k > 1`` the ``rescored_*``
    fields follow the re-scored one (:func:`rescored_selections`), which is what the tables report then.
    """
    picks = selections(rewards, records)
    true = {k: space.true_accuracy(task, records[k]) for k in set(picks) if k >= 0}
    rescored: dict[str, Any] = {}
    if top_k > 1:
        if space.rescorer is None:
            raise SystemExit("--rescore-top-k > 1 needs a space with a re-score hold-out (the supernet presets)")
        rescore = space.rescorer(task)
        rpicks = rescored_selections(rewards, records, rescore, top_k)
        rtrue = {k: space.true_accuracy(task, records[k]) for k in set(rpicks) if k >= 0}
        racc = {k: float(rescore(records[k]["arch"])[1]["accuracy"]) for k in rtrue}  # memoized: no new re-score
        rescored = {
            "rescored_best_so_far": [rtrue[k] if k >= 0 else None for k in rpicks],
            "rescored_best_so_far_rescore_accuracy": [racc[k] if k >= 0 else None for k in rpicks],
            "rescored_selected_arch": records[rpicks[-1]]["arch"] if rpicks[-1] >= 0 else None,
            "rescored_selected_index": rpicks[-1],
            "rescore": {"top_k": top_k, "images": space.info.get("rescore_images")},
        }
    return {**rescored,
        "best_so_far": [true[k] if k >= 0 else None for k in picks],
        "best_so_far_reward_accuracy": [float(records[k].get("accuracy", rewards[k])) if k >= 0 else None for k in picks],
        "windowed_reward": windowed(rewards, window),
        "selected_arch": records[picks[-1]].get("arch") if picks[-1] >= 0 else None,
        "distinct_archs": len({tuple(r.get("arch", ())) for r in records}),
    }


def aggregate(runs: dict[str, list[dict[str, Any]]], evals: int, selection: str = "naive") -> dict[str, Any]:
    """Per-method statistics over seeds for one task; ``runs[method][k]`` is seed ``k``'s summarized run.

    ``selection``: ``"naive"`` (best search reward: ``best_so_far``) or ``"rescored"`` (``rescored_best_so_far``;
    every run must have been re-scored with the same top-k and images).
    """
    checkpoints = [c for c in CHECKPOINTS if c <= evals] or [evals]
    curve, score = (("best_so_far", "best_so_far_reward_accuracy") if selection == "naive" else
                    ("rescored_best_so_far", "rescored_best_so_far_rescore_accuracy"))
    if selection == "rescored":
        rules = {json.dumps(r.get("rescore"), sort_keys=True) for rs in runs.values() for r in rs}
        assert len(rules) == 1 and None not in rules, f"methods were re-scored with different rules: {rules}"
    final = {m: [r[curve] for r in rs] for m, rs in runs.items()}
    target = [c[-1] for c in final["random"]]
    out: dict[str, Any] = {}
    for m, curves in final.items():
        reach = [evals_to_reach(c, t) for c, t in zip(curves, target, strict=True)]
        row: dict[str, Any] = {
            "best_found": {str(n): {**mean_ci([c[n - 1] for c in curves]), "per_seed": [c[n - 1] for c in curves]}
                           for n in checkpoints},
            "best_found_reward_accuracy": {str(n): mean_ci([r[score][n - 1] for r in runs[m]]) for n in checkpoints},
            "evals_to_random_best": {"per_seed": reach, "unreached": sum(x is None for x in reach),
                                     "mean": float(np.mean([x if x is not None else evals for x in reach]))},
            "mean_windowed_reward": np.mean([r["windowed_reward"] for r in runs[m]], axis=0).round(5).tolist(),
            "mean_best_so_far": np.mean(curves, axis=0).round(5).tolist(),
        }
        for ref in ("random", "evolution"):
            if m != ref and ref in final:
                row[f"vs_{ref}"] = {str(n): paired([c[n - 1] for c in curves], [c[n - 1] for c in final[ref]])
                                    for n in checkpoints}
        out[m] = row
    rnd = out["random"]["evals_to_random_best"]["mean"]
    for m in out:
        e = out[m]["evals_to_random_best"]
        e["fewer_than_random_x"] = rnd / e["mean"] if e["mean"] else None
    return out


# ---------------------------------------------------------------------------------------------- experts


def widest_within(model_name: str, data: Any, budget: float) -> tuple[float, int]:
    """Largest width (to 1%) whose zoo model fits ``budget`` FLOPs; returns (width, flops)."""
    from autostruct.measure import count_flops
    from autostruct.models import create_model

    x = torch.zeros(1, data.in_channels, data.image_size, data.image_size)

    def flops(w: float) -> int:
        m = create_model(model_name, data.num_classes, data.in_channels, data.image_size, width=w)
        return count_flops(m, x).flops

    lo, hi = 0.05, 4.0
    if flops(lo) > budget:
        return lo, flops(lo)
    for _ in range(12):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if flops(mid) <= budget else (lo, mid)
    return round(lo, 3), flops(lo)


def train_and_test(model: torch.nn.Module, data: Any, epochs: int, train_size: int | None, seed: int) -> float:
    from autostruct.models.train import evaluate, train

    d = data if train_size is None else dataclasses.replace(data, train=data.train.subset(train_size, seed=seed))
    # Not channels_last: on torch 2.13 CPU its backward corrupts the heap (abort) for ResNet-20 at widths 0.25
    # and 0.366 (4/8/16 and 6/12/23 channels) at 28x28; all three nets are trained the same way.
    train(model, d, epochs, lr=0.05, batch_size=128, seed=seed, progress=False, channels_last=False)
    return evaluate(model, data.test).accuracy


def experts(space: Space, p: Preset, task: int, arch: list[int], flops: int, seed: int) -> dict[str, Any]:
    """Test accuracy after identical training from scratch: the found net vs width-scaled MobileNetV2 / ResNet-20."""
    from autostruct.models.registry import create_model
    from autostruct.nas.supernet import extract

    name, budget = p.tasks[task]
    d = space.data[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        spec_kw = extract(space.evaluators[name].supernet, space.spaces[name].arch(arch),
                          image_size=d.image_size).autostruct_spec
        found = create_model(spec_kw["name"], **spec_kw["kwargs"])
    rows = {"mtnas_found": {"flops": flops, "test_accuracy": train_and_test(found, d, p.train_epochs, p.train_size, seed)}}
    for zoo in ("mobilenetv2", "resnet20"):
        w, f = widest_within(zoo, d, budget)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            m = create_model(zoo, d.num_classes, d.in_channels, d.image_size, width=w)
        rows[zoo] = {"width": w, "flops": f, "test_accuracy": train_and_test(m, d, p.train_epochs, p.train_size, seed)}
    return rows


def reuse_runs(path: Path, settings: dict[str, Any], methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Runs of the methods not being run now, from an earlier JSON whose preset settings are these.

    Only methods whose code did not change in between may be reused (e.g. the baselines after a change of the
    NAS controller's defaults); the JSON records which were.
    """
    prev = json.loads(path.read_text())
    keys = [f.name for f in dataclasses.fields(Preset)] + ["window", "seed"]
    defaults = {f.name: f.default for f in dataclasses.fields(Preset)}  # fields newer than that JSON
    diff = [k for k in keys if prev["settings"].get(k, defaults.get(k)) != json.loads(json.dumps(settings[k]))]
    if diff:
        raise SystemExit(f"--reuse {path}: settings differ in {diff}; rerun every method instead")
    return {m: {task: prev["runs"][task][m] for task in prev["runs"]} for m in prev["settings"]["methods"]
            if m not in methods}


def selected_arch(run: dict[str, Any]) -> list[int]:
    """A run's final selection: the re-scored one where the run was re-scored, else the best search reward's."""
    return run.get("rescored_selected_arch") or run["selected_arch"]


def all_experts(space: Space, p: Preset, archs: list[list[int]], seed: int) -> dict[str, Any]:
    """:func:`experts` for every task, ``archs[i]`` being the found architecture of task ``i``."""
    rows = {}
    for i, name in enumerate(space.names):
        flops = int(space.make_env(i, 0).costs(space.spaces[p.tasks[i][0]].arch(archs[i]))["flops"])
        rows[name] = experts(space, p, i, archs[i], flops, seed)
        print(json.dumps({"task": name, "after_identical_training": rows[name]}), flush=True)
    return rows


def experts_from(path: Path, out_path: Path | None) -> dict[str, Any]:
    """The expert comparison for the MTNAS selections (seed 0) of an earlier benchmark JSON, same settings."""
    prev = json.loads(path.read_text())
    s = prev["settings"]
    s = {**{f.name: f.default for f in dataclasses.fields(Preset)}, **s}  # fields newer than that JSON
    p = Preset(**{f.name: (tuple(tuple(x) if isinstance(x, list) else x for x in s[f.name])
                           if isinstance(s[f.name], list) else s[f.name]) for f in dataclasses.fields(Preset)})
    t0 = time.monotonic()
    space = supernet_space(p, s["seed"], "inline")
    archs = [selected_arch(prev["runs"][name]["mtnas"][0]) for name in space.names]
    out = {"settings": {**s, "experts_from": str(path)}, "after_identical_training": all_experts(space, p, archs, s["seed"]),
           "total_seconds": round(time.monotonic() - t0, 1)}
    if out_path:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(out) + "\n")
    return out


# ---------------------------------------------------------------------------------------------- report


def _pct(v: float) -> str:
    return f"{100 * v:.2f}"


def _search_tables(out: dict[str, Any], key: str = "summary") -> list[str]:
    s = out["settings"]
    checkpoints = [c for c in CHECKPOINTS if c <= s["evals"]] or [s["evals"]]
    head = "| task | method | " + " | ".join(f"@{n}" for n in checkpoints)
    rule = "| --- | --- | " + " | ".join("---" for _ in checkpoints)
    rule_name = (f"re-scored selection: top {s['rescore_top_k']} by search reward re-scored on {s['rescore_size']} "
                 "hold-out images" if key == "summary_rescored" else "selection by the best search reward")
    lines = [f"Best-found accuracy ({rule_name}; true accuracy of the selection, %; mean +- 95% CI over "
             f"{len(s['seeds'])} seeds)", "", head + " | evals to random's final best (random's / method's) |",
             rule + " | --- |"]
    for task, summary in out[key].items():
        for m, row in summary.items():
            e = row["evals_to_random_best"]
            reach = f"{e['mean']:.1f} ({e['fewer_than_random_x']:.2f}x" + (
                f"; {e['unreached']} seed(s) never, counted as {s['evals']})" if e["unreached"] else ")")
            cells = [f"{_pct(row['best_found'][str(n)]['mean'])} +- {_pct(row['best_found'][str(n)]['ci95'])}"
                     for n in checkpoints]
            lines.append(f"| {task} | {m} | " + " | ".join(cells) + f" | {reach} |")
    for ref in ("random", "evolution"):
        lines += ["", f"Paired difference vs {ref} (points; mean [95% CI], seeds better/worse)", "", head + " |",
                  rule + " |"]
        for task, summary in out[key].items():
            for m, row in summary.items():
                if f"vs_{ref}" in row:
                    cells = [f"{100 * d['mean_diff']:+.2f} [{100 * d['ci95'][0]:+.2f}, {100 * d['ci95'][1]:+.2f}] "
                             f"{d['better']}/{d['worse']}" for d in (row[f"vs_{ref}"][str(n)] for n in checkpoints)]
                    lines.append(f"| {task} | {m} | " + " | ".join(cells) + " |")
    if all("mtnas" in summary for summary in out[key].values()):
        lines += ["", "Targets (MTNAS): >= 3x fewer evaluations to random's final best (every seed reaching it); "
                  "best-found >= regularized evolution's at 50 and 100 (mean paired difference >= 0)", ""]
        for task, summary in out[key].items():
            e = summary["mtnas"]["evals_to_random_best"]
            fast = e["fewer_than_random_x"] >= 3 and not e["unreached"]
            evo = {n: summary["mtnas"]["vs_evolution"][str(n)]["mean_diff"] >= 0
                   for n in (50, 100) if str(n) in summary["mtnas"].get("vs_evolution", {})}
            lines.append(f"- {task}: 3x fewer: {'met' if fast else 'not met'} ({e['fewer_than_random_x']:.2f}x, "
                         f"{e['unreached']} unreached); >= evolution: "
                         + ", ".join(f"@{n} {'met' if ok else 'not met'}" for n, ok in evo.items()))
    return lines


def _expert_table(rows: dict[str, Any]) -> list[str]:
    lines = ["Test accuracy after identical training from scratch", "",
             "| task | found net (FLOPs) | MobileNetV2 (width, FLOPs) | ResNet-20 (width, FLOPs) |",
             "| --- | --- | --- | --- |"]
    for task, r in rows.items():
        f, mb, rn = r["mtnas_found"], r["mobilenetv2"], r["resnet20"]
        lines.append(f"| {task} | {_pct(f['test_accuracy'])}% ({f['flops'] / 1e6:.2f}M) | "
                     f"{_pct(mb['test_accuracy'])}% ({mb['width']}, {mb['flops'] / 1e6:.2f}M) | "
                     f"{_pct(rn['test_accuracy'])}% ({rn['width']}, {rn['flops'] / 1e6:.2f}M) |")
    return lines


def complete_seeds(out: dict[str, Any]) -> dict[str, Any]:
    """A partial benchmark JSON (a stopped run) summarized over the seeds that every method finished."""
    s, runs = out["settings"], out["runs"]
    n = min(len(rs) for task in runs.values() for rs in task.values())
    if n == 0 or not all("random" in task for task in runs.values()):
        return {**out, "summary": {}}
    cut = {task: {m: rs[:n] for m, rs in task_runs.items()} for task, task_runs in runs.items()}
    doc = {**out, "settings": {**s, "seeds": s["seeds"][:n]}, "runs": cut,
           "summary": {task: aggregate(r, s["evals"]) for task, r in cut.items()}}
    if s.get("rescore_top_k", 1) > 1:
        doc["summary_rescored"] = {task: aggregate(r, s["evals"], "rescored") for task, r in cut.items()}
    return doc


def merge_seeds(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One benchmark JSON from runs of the same settings over different seeds (e.g. a stopped run's finished
    seeds and a second run of the rest): runs concatenated in the given order, summaries recomputed.

    Every architecture's accuracies are deterministic and each method is seeded per seed, so a seed gives the
    same numbers whichever process ran it; only the seeds and wall times may differ between the parts.
    """
    docs = [complete_seeds(d) if d.get("partial") else d for d in docs]
    first = docs[0]["settings"]
    ignore = {"seeds", "reused"}
    for d in docs[1:]:
        diff = sorted(k for k in set(first) | set(d["settings"])
                      if k not in ignore and first.get(k) != d["settings"].get(k))
        if diff:
            raise SystemExit(f"--merge: settings differ in {diff}; only runs of one preset over other seeds merge")
    seeds = [s for d in docs for s in d["settings"]["seeds"]]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"--merge: seeds repeat across the files ({seeds})")
    runs = {task: {m: [r for d in docs for r in d["runs"][task][m]] for m in task_runs}
            for task, task_runs in docs[0]["runs"].items()}
    merged = {**docs[0], "settings": {**first, "seeds": seeds}, "runs": runs, "partial": False,
              "merged_from": [d["settings"]["seeds"] for d in docs],
              "seconds": {m: [t for d in docs for t in d["seconds"].get(m, [])] for m in docs[0]["seconds"]},
              "summary": {task: aggregate(r, first["evals"]) for task, r in runs.items()}}
    if first.get("rescore_top_k", 1) > 1:
        merged["summary_rescored"] = {task: aggregate(r, first["evals"], "rescored") for task, r in runs.items()}
    return merged


def markdown(out: dict[str, Any]) -> str:
    """The result tables of a benchmark JSON as Markdown (accuracies in %, differences in points)."""
    lines = []
    if out.get("partial"):
        out = complete_seeds(out)
        lines += [f"(partial run: the {len(out['settings']['seeds'])} seed(s) every method finished)", ""]
    if out.get("summary_rescored"):
        lines += [*_search_tables(out, "summary_rescored"), ""]
    lines += _search_tables(out) if out.get("summary") else []
    if "after_identical_training" in out:
        lines += ["", *_expert_table(out["after_identical_training"])] if lines else _expert_table(out["after_identical_training"])
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- main


def _preset(args: argparse.Namespace) -> tuple[str, Preset]:
    name = "quick" if args.quick else args.preset
    p = PRESETS[name]
    over = {k: getattr(args, k) for k in ("evals", "width", "val_size", "test_size", "recal_batches",
                                            "supernet_epochs", "supernet_train_size", "train_epochs", "train_size",
                                            "rescore_top_k", "rescore_size")
            if getattr(args, k) is not None}
    if args.seeds is not None:
        over["seeds"] = tuple(int(x) for x in args.seeds.split(",") if x.strip())
    if args.experts or args.skip_experts:
        over["experts"] = bool(args.experts and not args.skip_experts)
    return name, dataclasses.replace(p, **over)


def evaluations(space: Space) -> int | None:
    """Distinct architectures the search evaluators have scored (supernet spaces; None on tables)."""
    return sum(e.evaluations for e in space.evaluators.values()) if space.evaluators else None


def _write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="full")
    ap.add_argument("--quick", action="store_true", help="the 'quick' preset: 3 Digits tasks (8x8)")
    ap.add_argument("--evals", type=int, default=None, help="evaluations per task, method and seed")
    ap.add_argument("--seeds", default=None, help="search seeds, e.g. 0,1,2,3,4 (each method runs once per seed)")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"subset of {','.join(METHODS)} (random is required, here or in --reuse)")
    ap.add_argument("--table-kwargs", default="{}", help="JSON of TableEnv settings over its defaults (table preset)")
    ap.add_argument("--window", type=int, default=10, help="window of the sampled-reward learning curve")
    ap.add_argument("--width", type=float, default=None, help="channel width of the supernet space")
    ap.add_argument("--supernet-epochs", type=int, default=None)
    ap.add_argument("--supernet-train-size", type=int, default=None)
    ap.add_argument("--val-size", type=int, default=None, help="validation images behind one reward")
    ap.add_argument("--test-size", type=int, default=None, help="test images that re-score a selection")
    ap.add_argument("--recal-batches", type=int, default=None)
    ap.add_argument("--rescore-top-k", type=int, default=None,
                    help="every method's selection: re-score its K best architectures (by search reward) on "
                         "--rescore-size hold-out images and take the best re-score (1: best search reward)")
    ap.add_argument("--rescore-size", type=int, default=None,
                    help="hold-out images of the re-score, disjoint from the reward's, training's and test's")
    ap.add_argument("--experts", action="store_true", help="train found vs width-scaled expert nets")
    ap.add_argument("--skip-experts", action="store_true")
    ap.add_argument("--experts-from", type=Path, default=None,
                    help="skip the searches: train the MTNAS selections (seed 0) of this benchmark JSON vs the experts")
    ap.add_argument("--train-epochs", type=int, default=None, help="identical training of found vs expert nets")
    ap.add_argument("--train-size", type=int, default=None)
    ap.add_argument("--actors", type=int, default=None, help="MTNAS' actors (default: one per task)")
    ap.add_argument("--backend", default="inline", choices=["inline", "local"], help="MTNAS' actors")
    ap.add_argument("--seed", type=int, default=0, help="supernet, data and training seed")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--reuse", type=Path, default=None,
                    help="take the runs of methods not in --methods from this earlier JSON (same preset settings)")
    ap.add_argument("--markdown", type=Path, default=None, help="print the tables of this benchmark JSON and exit")
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="join JSONs of the same settings over other seeds into --out (then --markdown it) and exit")
    args = ap.parse_args(argv)
    if args.merge:
        if not args.out:
            ap.error("--merge needs --out")
        merged = merge_seeds([json.loads(f.read_text()) for f in args.merge])
        _write(args.out, merged)
        print(json.dumps({"seeds": merged["settings"]["seeds"], "out": str(args.out)}))
        return merged
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())), end="")
        return {}
    torch.set_num_threads(1)
    preset_name, p = _preset(args)
    if p.rescore_top_k < 1 or (p.rescore_top_k > 1) != (p.rescore_size > 0):
        ap.error("--rescore-top-k > 1 and --rescore-size > 0 go together (or 1 and 0: select by the search reward)")
    if args.experts_from:
        return experts_from(args.experts_from, args.out)
    methods = [m for m in METHODS if m in args.methods.split(",")]
    if "random" not in methods and not args.reuse:
        ap.error("--methods must include random (the reference), or --reuse a JSON with it")
    t_all = time.monotonic()

    from autostruct.nas.config import NASRLConfig

    space = (table_space(p.table, json.loads(args.table_kwargs)) if p.space == "table"
             else supernet_space(p, args.seed, args.backend))
    n_tasks = len(space.names)
    out: dict[str, Any] = {
        "settings": {"preset": preset_name, **dataclasses.asdict(p), "methods": methods, "window": args.window,
                     "backend": args.backend, "seed": args.seed, "actors": args.actors or n_tasks,
                     "nas_rl_defaults": NASRLConfig(actors=args.actors or n_tasks).model_dump()},
        "space": space.info, "tasks": space.names, "runs": {}, "summary": {}, "seconds": {}, "greedy_rollouts": [],
    }
    if p.rescore_top_k > 1:
        out["summary_rescored"] = {}
    print(json.dumps({"settings": out["settings"], "space": space.info}), flush=True)
    runs: dict[int, dict[str, list[dict[str, Any]]]] = {i: {m: [] for m in methods} for i in range(n_tasks)}
    if args.reuse:
        reused = reuse_runs(args.reuse, out["settings"], methods)
        out["settings"]["reused"] = {"from": str(args.reuse), "methods": sorted(reused)}
        for i, name in enumerate(space.names):
            runs[i] = {m: reused[m][name] if m in reused else runs[i][m] for m in METHODS if m in reused or m in methods}
    for seed in p.seeds:
        for m in methods:
            t0 = time.monotonic()
            if m == "mtnas":
                per_task, greedy = run_mtnas(space, p.evals, seed, args.actors)
                out["greedy_rollouts"].append(greedy)
            else:
                per_task = [run_single(m, space.make_env(i, seed), p.evals, seed) for i in range(n_tasks)]
            out["seconds"].setdefault(m, []).append(round(time.monotonic() - t0, 2))
            searched = evaluations(space)
            for i, (rewards, records) in enumerate(per_task):
                assert len(rewards) == p.evals, f"{m} seed {seed} task {i}: {len(rewards)} evaluations, not {p.evals}"
                runs[i][m].append(summarize_run(space, i, rewards, records, args.window, p.rescore_top_k))
            assert evaluations(space) == searched, "a re-score went through the search's evaluator"
            out["seconds"].setdefault(f"{m}_selection", []).append(round(time.monotonic() - t0 - out["seconds"][m][-1], 2))
            if args.out:  # what finished so far, so a stopped run loses nothing
                _write(args.out, {**out, "runs": {name: runs[i] for i, name in enumerate(space.names)}, "partial": True})
        print(json.dumps({"seed": seed, "seconds": {m: s[-1] for m, s in out["seconds"].items()},
                          "final": {m: [round(runs[i][m][-1]["best_so_far"][-1], 4) for i in range(n_tasks)]
                                    for m in methods},
                          **({"final_rescored": {m: [round(runs[i][m][-1]["rescored_best_so_far"][-1], 4)
                                                     for i in range(n_tasks)] for m in methods}}
                             if p.rescore_top_k > 1 else {})}), flush=True)

    for i, name in enumerate(space.names):
        out["runs"][name] = runs[i]
        out["summary"][name] = aggregate(runs[i], p.evals)
        if p.rescore_top_k > 1:
            out["summary_rescored"][name] = aggregate(runs[i], p.evals, "rescored")
        for key in ("summary", "summary_rescored"):
            if key in out:
                brief = {m: {"best_found": {n: round(v["mean"], 4) for n, v in s["best_found"].items()},
                             "evals_to_random_best": round(s["evals_to_random_best"]["mean"], 1),
                             "unreached": s["evals_to_random_best"]["unreached"]}
                         for m, s in out[key][name].items()}
                print(json.dumps({"task": name, key: brief}), flush=True)

    if p.experts and p.space == "supernet" and "mtnas" in methods:
        archs = [selected_arch(runs[i]["mtnas"][0]) for i in range(n_tasks)]
        out["after_identical_training"] = all_experts(space, p, archs, args.seed)

    out["total_seconds"] = round(time.monotonic() - t_all, 1)
    if args.out:
        _write(args.out, out)
    print(json.dumps({"total_seconds": out["total_seconds"], "out": str(args.out) if args.out else None}))
    return out


if __name__ == "__main__":
    main()
