"""Tune the NAS controller on tables in seconds: MTNAS vs random search and regularized evolution.

    python benchmarks/nas_controller_tuning.py                               # NASRLConfig defaults, both tables
    python benchmarks/nas_controller_tuning.py --variant "old:optimizer=rmsprop,rmsprop_eps=0.01,use_lstm=true" \\
        --variant "adam:optimizer=adam" --seeds 10 --out tuning.json

Each ``--variant NAME:key=value,...`` is a :class:`~autostruct.nas.config.NASRLConfig` with those fields changed
(values parsed as YAML); without one, the defaults. Tables (``--table``): ``default`` is the table of
``tests/rl/test_learning_table.py`` (``TableEnv``'s defaults: 6 decisions x 5 options), ``hard`` is
:data:`~autostruct.rl.toy_envs.HARD_TABLE` (8 x 5, stronger and longer-range interactions, more noise). Both
have two "datasets" sharing most of their structure, searched together as two tasks by one controller
(``run_impala(..., algorithm="mc")``, inline backend and 1 actor unless ``--backend local --actors 2``).

Per table, variant and task, over ``--seeds`` seeds with ``--evals`` evaluations per task for every method
(checked): best-found *true* accuracy (of the architecture with the best noisy reward so far) at 50/100/200
evaluations for MTNAS, random search and regularized evolution; paired differences MTNAS - random and
MTNAS - evolution with 95% t-intervals; evaluations MTNAS needs to reach random search's final best (true
accuracy, same seed) against random's own point of discovery, as ``benchmarks/mtnas_vs_baselines.py`` counts
them; the controller's policy entropy (first and last tenth of its updates) so a collapse shows.
Prints one JSON line per variant and table, then the whole document (also written to ``--out``).
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from autostruct.baselines.nas_evolution import regularized_evolution
from autostruct.baselines.nas_random import random_search
from autostruct.config import BackendConfig
from autostruct.nas.config import NASRLConfig
from autostruct.rl import PolicySpec, run_impala
from autostruct.rl.toy_envs import HARD_TABLE, TableEnv

TABLES: dict[str, dict[str, Any]] = {"default": {}, "hard": HARD_TABLE}
CHECKPOINTS = (50, 100, 200)

#: One search's evaluations in order, each as (noisy reward, true accuracy).
Trace = list[tuple[float, float]]


def table_factories(table: str) -> list[Callable[[], TableEnv]]:
    """The two tasks of ``table`` (dataset i is task i)."""
    return [functools.partial(TableEnv, i, i, **TABLES[table]) for i in range(2)]


def best_found(trace: Trace) -> list[float]:
    """True accuracy of the best-reward architecture after each evaluation (what a search would hand over)."""
    out, best_r, best_acc = [], -np.inf, float("nan")
    for reward, acc in trace:
        if reward > best_r:
            best_r, best_acc = reward, acc
        out.append(best_acc)
    return out


def evals_to_reach(curve: Sequence[float], target: float) -> int | None:
    """1-based number of evaluations after which ``curve`` first reaches ``target``; None if it never does."""
    for i, v in enumerate(curve, start=1):
        if v >= target - 1e-12:
            return i
    return None


def paired_ci(diffs: Sequence[float]) -> dict[str, float]:
    """Mean of paired differences with a 95% t-interval, and how many seeds were positive."""
    from scipy import stats

    d = np.asarray(diffs, dtype=np.float64)
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return {"mean": float(d.mean()), "ci95": [float(d.mean()) - half, float(d.mean()) + half],
            "positive": int((d > 0).sum()), "n": len(d)}


def controller_traces(table: str, rl: NASRLConfig, seed: int, evals: int,
                      backend: str) -> tuple[list[Trace], dict[str, float]]:
    """One MTNAS run on both tasks of ``table``: per task its evaluations in order, and entropy/update stats."""
    factories = table_factories(table)
    shm = Path("/dev/shm")  # the run folder's fsyncs cost more than the learning on a disk
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        result = run_impala(factories, PolicySpec.from_env(factories[0](), use_lstm=rl.use_lstm),
                            total_episodes=evals * len(factories), run_dir=tmp, rl=rl,
                            backend=BackendConfig(name=backend), algorithm="mc", seed=seed, progress=False,
                            tensorboard=False)
        lines = [json.loads(x) for x in (Path(tmp) / "metrics.jsonl").read_text().splitlines() if x.strip()]
    traces = [[(e.reward, e.info["accuracy"]) for e in result.episodes if e.task_id == t] for t in range(len(factories))]
    for t, tr in enumerate(traces):
        if len(tr) != evals:
            raise RuntimeError(f"task {t}: MTNAS logged {len(tr)} evaluations, expected {evals}")
    ent = [x["entropy"] for x in lines if "entropy" in x]
    k = max(1, len(ent) // 10)
    return traces, {"updates": float(result.updates), "entropy_first": float(np.mean(ent[:k])),
                    "entropy_last": float(np.mean(ent[-k:]))}


def baseline_trace(method: str, factory: Callable[[], TableEnv], evals: int, seed: int) -> Trace:
    fn = random_search if method == "random" else regularized_evolution
    r = fn(factory(), evals, seed=seed)
    if r.evaluations != evals:
        raise RuntimeError(f"{method} made {r.evaluations} evaluations, expected {evals}")
    return [(rew, rec["accuracy"]) for rew, rec in zip(r.rewards, r.records, strict=True)]


def summarize(curves: dict[str, list[list[float]]], evals: int) -> dict[str, Any]:
    """One task: best-found at the checkpoints per method, paired differences, evaluations to random's best."""
    out: dict[str, Any] = {"best_found": {}, "diff_vs_random": {}, "diff_vs_evolution": {}}
    for n in (c for c in CHECKPOINTS if c <= evals):
        for m, cs in curves.items():
            out["best_found"].setdefault(m, {})[str(n)] = float(np.mean([c[n - 1] for c in cs]))
        for other in ("random", "evolution"):
            diffs = [100 * (a[n - 1] - b[n - 1]) for a, b in zip(curves["mtnas"], curves[other], strict=True)]
            out[f"diff_vs_{other}"][str(n)] = paired_ci(diffs)
    reach = {}
    for m in ("mtnas", "random", "evolution"):
        ns = [evals_to_reach(c, r[-1]) for c, r in zip(curves[m], curves["random"], strict=True)]
        got = [n for n in ns if n is not None]
        # Seeds that never reach it count as the whole budget: a lower bound on their true count.
        reach[m] = {"seeds_reaching": f"{len(got)}/{len(ns)}",
                    "mean_evals": float(np.mean([evals if n is None else n for n in ns])),
                    "per_seed": ns}
    for m in ("mtnas", "evolution"):
        # As benchmarks/mtnas_vs_baselines.py: against random's own point of discovery of its final best.
        reach[m]["speedup_vs_random"] = reach["random"]["mean_evals"] / reach[m]["mean_evals"]
        # Against the budget random search spent to find it.
        reach[m]["speedup_vs_random_budget"] = evals / reach[m]["mean_evals"]
    out["evals_to_random_best"] = reach
    return out


def evaluate(name: str, overrides: dict[str, Any], table: str, seeds: Sequence[int], evals: int, *,
             backend: str = "inline", actors: int = 1,
             baseline_cache: dict[tuple, list[Trace]] | None = None) -> dict[str, Any]:
    """Every method on ``table`` over ``seeds``; MTNAS with ``NASRLConfig(**overrides)``. Returns the summary."""
    rl = NASRLConfig(**{"actors": actors, **overrides})
    cache = {} if baseline_cache is None else baseline_cache
    factories = table_factories(table)
    curves: list[dict[str, list[list[float]]]] = [{"mtnas": [], "random": [], "evolution": []} for _ in factories]
    info: list[dict[str, float]] = []
    t0 = time.perf_counter()
    for seed in seeds:
        traces, stats = controller_traces(table, rl, seed, evals, backend)
        info.append(stats)
        for t, factory in enumerate(factories):
            curves[t]["mtnas"].append(best_found(traces[t]))
            for m in ("random", "evolution"):
                key = (table, m, seed, t, evals)
                if key not in cache:
                    cache[key] = baseline_trace(m, factory, evals, 1000 + 10 * seed + t)
                curves[t][m].append(best_found(cache[key]))
    # Pair by seed: the tasks of one seed share a controller, so they are not independent samples.
    both = {m: [list(np.mean([curves[t][m][k] for t in range(len(factories))], axis=0)) for k in range(len(seeds))]
            for m in curves[0]}
    return {
        "variant": name, "overrides": overrides, "table": table, "seeds": len(seeds), "evals_per_task": evals,
        "controller_seconds_per_run": (time.perf_counter() - t0) / len(seeds),
        "entropy_first": float(np.mean([s["entropy_first"] for s in info])),
        "entropy_last": float(np.mean([s["entropy_last"] for s in info])),
        "updates": float(np.mean([s["updates"] for s in info])),
        "tasks": [summarize(curves[t], evals) for t in range(len(factories))],
        "both_tasks": summarize(both, evals),  # per seed, the mean over tasks of each curve
    }


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME:key=value,key=value`` (values as YAML scalars) -> (name, overrides); ``NAME`` alone: defaults."""
    name, _, rest = text.partition(":")
    overrides = {}
    for part in filter(None, rest.split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            raise SystemExit(f"--variant '{text}': expected key=value, got '{part}'")
        overrides[key.strip()] = yaml.safe_load(value)
    NASRLConfig(**overrides)  # fail before any run on a bad key or value
    return name, overrides


def headline(r: dict[str, Any]) -> str:
    b = r["both_tasks"]
    parts = [f"{r['variant']:>14} {r['table']:>7}"]
    for n in ("50", "100", "200"):
        if n in b["diff_vs_random"]:
            dr, de = b["diff_vs_random"][n], b["diff_vs_evolution"][n]
            parts.append(f"@{n}: mt {b['best_found']['mtnas'][n]:.4f} vsR {dr['mean']:+.2f} "
                         f"[{dr['ci95'][0]:+.2f},{dr['ci95'][1]:+.2f}] vsE {de['mean']:+.2f} "
                         f"[{de['ci95'][0]:+.2f},{de['ci95'][1]:+.2f}]")
    speed = [t["evals_to_random_best"]["mtnas"]["speedup_vs_random"] for t in r["tasks"]]
    budget = [t["evals_to_random_best"]["mtnas"]["speedup_vs_random_budget"] for t in r["tasks"]]
    parts.append("speedup " + "/".join(f"{s:.2f}" for s in speed) + " (vs budget " + "/".join(f"{s:.1f}" for s in budget)
                 + ")")
    parts.append(f"H {r['entropy_first']:.2f}->{r['entropy_last']:.2f}")
    return " | ".join(parts)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variant", action="append", default=[], help="NAME:key=value,... (repeatable)")
    p.add_argument("--table", action="append", choices=sorted(TABLES), help="default and hard unless given")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--evals", type=int, default=200, help="evaluations per task, for every method")
    p.add_argument("--backend", choices=("inline", "local"), default="inline")
    p.add_argument("--actors", type=int, default=1)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    variants = [parse_variant(v) for v in args.variant] or [("defaults", {})]
    cache: dict[tuple, list[Trace]] = {}
    results = []
    for table in args.table or ["default", "hard"]:
        for name, overrides in variants:
            r = evaluate(name, overrides, table, range(args.seeds), args.evals, backend=args.backend,
                         actors=args.actors, baseline_cache=cache)
            print(headline(r), flush=True)
            results.append(r)
    doc = {"seeds": args.seeds, "evals_per_task": args.evals, "backend": args.backend, "actors": args.actors,
           "defaults": NASRLConfig().model_dump(), "results": results}
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1))
    return doc


if __name__ == "__main__":
    main()
