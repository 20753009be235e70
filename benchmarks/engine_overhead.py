"""How much does the IMPALA engine add to the environments' own cost?

A synthetic env (``SleepEnv``) whose step sleeps, or busy-computes, for a fixed time runs under ``run_impala``
with the MTACP agent. For each (backend, actors, step time) it reports, as one JSON object per line:

* ``episodes_per_s`` over a steady-state window (first ``--warmup`` episodes excluded: process start-up),
  ``ideal_episodes_per_s`` = actors / (step time * episode length), and ``overhead`` = 1 - measured / ideal;
* ``actor_utilization`` (share of actor time inside env.step), ``actor_policy_share`` (policy inference),
  ``transport_share`` (the rest: sending unrolls, syncing weights, waiting on a full queue);
* ``learner_share`` (share of the learner process's wall time spent in updates + weight publishing);
* ``speedup_vs_1_actor`` for multi-actor rows.

Targets (issue 4): overhead < 2% at 100 ms steps; 2 actors >= 1.8x one actor on 2 cores.

    python benchmarks/engine_overhead.py                 # full grid (minutes)
    python benchmarks/engine_overhead.py --quick         # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from autostruct.config import BackendConfig, RLConfig
from autostruct.rl import PolicySpec, run_impala
from autostruct.rl.toy_envs import SleepEnv


def measure(backend: str, actors: int, step_ms: float, mode: str, episodes: int, warmup: int, length: int) -> dict:
    factories = [functools.partial(SleepEnv, i, step_ms / 1000, length, mode) for i in range(actors)]
    spec = PolicySpec.from_env(factories[0]())
    rl = RLConfig(actors=actors, unroll_length=length, batch_size=max(2, actors), checkpoint_every=10_000)
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as run_dir:
        run_impala(factories, spec, rl=rl, backend=BackendConfig(name=backend), total_episodes=episodes + warmup,
                   run_dir=run_dir, progress=False, tensorboard=False,
                   on_episode=lambda ep: stamps.append(time.perf_counter()))
        metrics = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    window = stamps[warmup:]
    eps = (len(window) - 1) / (window[-1] - window[0]) if len(window) > 1 else float("nan")
    ideal = actors / (step_ms / 1000 * length)
    steady = metrics[len(metrics) // 4:] or metrics

    def mean(key: str) -> float:
        vals = [m[key] for m in steady if isinstance(m.get(key), float) and m[key] == m[key]]
        return round(statistics.fmean(vals), 4) if vals else float("nan")

    util, pol = mean("actor_utilization"), mean("actor_policy_share")
    return {
        "backend": backend,
        "actors": actors,
        "step_ms": step_ms,
        "mode": mode,
        "episode_length": length,
        "episodes_measured": len(window),
        "episodes_per_s": round(eps, 3),
        "ideal_episodes_per_s": round(ideal, 3),
        "overhead": round(1 - eps / ideal, 4),
        "actor_utilization": util,
        "actor_policy_share": pol,
        "transport_share": round(1 - util - pol, 4),
        "learner_share": mean("learner_share"),
        "policy_lag_mean": mean("policy_lag_mean"),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", nargs="+", default=["local", "ray"])
    ap.add_argument("--actors", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--step-ms", nargs="+", type=float, default=[1.0, 10.0, 100.0])
    ap.add_argument("--mode", choices=["sleep", "compute"], default="sleep")
    ap.add_argument("--length", type=int, default=10, help="steps per episode")
    ap.add_argument("--seconds", type=float, default=20.0, help="target steady-state seconds per row")
    ap.add_argument("--warmup", type=int, default=4, help="episodes per actor excluded from the window")
    ap.add_argument("--quick", action="store_true", help="smoke run: local, 1 actor, 10 ms, ~2 s")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.backends, args.actors, args.step_ms, args.seconds = ["local"], [1], [10.0], 2.0
    rows = []
    for backend in args.backends:
        if backend == "ray" and importlib.util.find_spec("ray") is None:
            print(json.dumps({"backend": "ray", "skipped": "ray is not installed"}), flush=True)
            continue
        for step_ms in args.step_ms:
            base = None
            for actors in args.actors:
                ideal = actors / (step_ms / 1000 * args.length)
                episodes = max(4 * actors, int(ideal * args.seconds))
                row = measure(backend, actors, step_ms, args.mode, episodes, args.warmup * actors, args.length)
                if actors == 1:
                    base = row["episodes_per_s"]
                elif base:
                    row["speedup_vs_1_actor"] = round(row["episodes_per_s"] / base, 3)
                rows.append(row)
                print(json.dumps(row), flush=True)
    json.dump({"rows": rows}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
