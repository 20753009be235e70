"""Benchmark the pruning MDP: episode time per phase, and the single-task searchers under both budget modes.

For each model (trained base model from the cache, see ``autostruct.models.cache``):

1. Time per episode, split into prune / BN recalibration / evaluation, next to one plain evaluation of the
   unpruned model on the same validation subset (the floor an episode cannot beat). (Issue 3.)
2. For ``budget`` in ``amc`` and ``exact`` and each FLOPs ratio alpha: the accuracy (BN recalibrated, no
   fine-tune) of uniform pruning; of ``--episodes`` random strategies (min / median / max, and the median FLOPs
   actually used as a fraction of the base); the best of random search and of AMC-style DDPG with the same
   episode budget; and the episode at which each first beats uniform pruning. Same seeds and the same scored
   images in both modes. (Issues 3 and 7.)

Prints one JSON document on stdout (progress on stderr); ``--out`` also writes it.

    python benchmarks/prune_episode.py                                     # full: fashion-mnist, 3 models
    python benchmarks/prune_episode.py --quick                             # smoke run on digits, seconds

Timings from a machine shared with other jobs are inflated; the JSON records the host and the settings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch

from autostruct.baselines import ddpg_search, uniform_prune
from autostruct.baselines.random_search import run_episode
from autostruct.data import load_dataset
from autostruct.measure import host_info
from autostruct.models.cache import get_or_train
from autostruct.prune.env import PruningEnv
from autostruct.utils.io import write_json_atomic


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def first_beat(rewards: list[float], bar: float) -> int | None:
    """1-based episode at which ``rewards`` first exceed ``bar`` (None if never)."""
    return next((i + 1 for i, r in enumerate(rewards) if r > bar), None)


def time_episodes(env: PruningEnv, episodes: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    phases: dict[str, list[float]] = {"prune": [], "recal": [], "eval": [], "total": []}
    for _ in range(episodes):
        start = time.perf_counter()
        _, info = run_episode(env, lambda _o: rng.random(1))
        phases["total"].append(time.perf_counter() - start)
        for k in ("prune", "recal", "eval"):
            phases[k].append(info["seconds"][k])
    plain = []
    for _ in range(3):
        start = time.perf_counter()
        env.base_accuracy()
        plain.append(time.perf_counter() - start)
    out = {f"{k}_s": statistics.median(v) for k, v in phases.items()}
    out["plain_eval_s"] = min(plain)
    out["episode_over_plain_eval"] = out["total_s"] / out["plain_eval_s"]
    return out


def search_block(env: PruningEnv, episodes: int, warmup: int, seed: int) -> dict[str, Any]:
    uni = uniform_prune(env)
    rng = np.random.default_rng(seed)
    infos = [run_episode(env, lambda _o: rng.random(1))[1] for _ in range(episodes)]
    accs = [i["accuracy"] for i in infos]
    rewards = [i["reward"] for i in infos]
    ddpg = ddpg_search(env, episodes, warmup=warmup, seed=seed)
    return {
        "uniform": {"accuracy": uni.best_info["accuracy"], "ratio": uni.best_info["uniform_ratio"],
                    "flops_ratio": uni.best_info["flops_ratio"]},
        "random": {
            "accuracy_min": min(accs), "accuracy_median": statistics.median(accs), "accuracy_max": max(accs),
            "flops_ratio_median": statistics.median(i["flops_ratio"] for i in infos),
            "flops_over_target_min": min(i["flops_over_target"] for i in infos),
            "episodes_to_beat_uniform": first_beat(rewards, uni.best_reward),
            "seconds": sum(sum(i["seconds"].values()) for i in infos),
        },
        "ddpg": {
            "best_accuracy": ddpg.best_info["accuracy"], "episodes_to_best": ddpg.episodes_to_best,
            "episodes_to_beat_uniform": first_beat(ddpg.rewards_per_episode, uni.best_reward),
            "flops_ratio_of_best": ddpg.best_info["flops_ratio"], "seconds": ddpg.seconds,
        },
        "mtacp": None,  # filled by the MTACP benchmark (autostruct.rl); not run here
    }


def bench_model(name: str, args: argparse.Namespace) -> dict[str, Any]:
    dataset = load_dataset(args.dataset, val_size=args.val_split, seed=args.seed)
    model, info = get_or_train(name, args.dataset, width=args.width, epochs=args.epochs, seed=args.seed,
                               val_size=args.val_split, device=args.device, progress=False, dataset=dataset)
    common = dict(val_size=args.val_size, recal_batches=args.recal_batches, batch_size=args.batch_size,
                  round_to=args.round_to, seed=args.seed, device=args.device)
    env = PruningEnv(model, dataset, 0.5, **common)
    record: dict[str, Any] = {
        "base_val_accuracy_subset": env.base_accuracy(),
        "base_test_accuracy": info.metrics.get("test_accuracy"),
        "base_flops": int(env.base_flops),
        "groups": len(env.graph.groups),
        "steps": env.max_episode_steps,
        "skipped": [list(s) for s in env.graph.skipped],
    }
    _log(f"{name}: timing {args.timing_episodes} episodes")
    record["timing"] = time_episodes(env, args.timing_episodes, args.seed)
    record["search"] = {}
    for budget in args.budgets:
        record["search"][budget] = {}
        for alpha in args.alphas:
            _log(f"{name}: budget={budget} alpha={alpha}")
            env = PruningEnv(model, dataset, alpha, budget=budget, **common)
            record["search"][budget][str(alpha)] = search_block(env, args.episodes, args.warmup, args.seed)
    return record


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["resnet20", "vgg11", "mobilenetv2"])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--epochs", type=int, default=3, help="training epochs of the cached base models")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--alphas", nargs="+", type=float, default=[0.3, 0.5, 0.7])
    p.add_argument("--budgets", nargs="+", default=["amc", "exact"])
    p.add_argument("--episodes", type=int, default=60, help="episode budget of every searcher")
    p.add_argument("--warmup", type=int, default=None, help="DDPG random episodes (default: a quarter)")
    p.add_argument("--timing-episodes", type=int, default=5)
    p.add_argument("--val-split", type=int, default=5000, help="validation images carved from the train set")
    p.add_argument("--val-size", type=int, default=2000, help="validation images scored per episode")
    p.add_argument("--recal-batches", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--round-to", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="smoke run: digits, resnet20 at width 0.5, 6 episodes")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.models, args.dataset, args.width, args.epochs = ["resnet20"], "digits", 0.5, 2
        args.alphas, args.episodes, args.timing_episodes = [0.5], 6, 2
        args.val_split, args.val_size, args.recal_batches, args.batch_size = 300, 300, 2, 64
    if args.warmup is None:
        args.warmup = max(1, args.episodes // 4)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    result = {
        "benchmark": "prune_episode",
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "host": host_info(),
        "models": {name: bench_model(name, args) for name in args.models},
    }
    result["seconds"] = time.perf_counter() - start
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        write_json_atomic(args.out, result)
    return result


if __name__ == "__main__":
    main()
