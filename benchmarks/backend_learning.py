"""Does the engine learn the toy multi-task problems on an asynchronous backend, at full length?

The test suite learns both toy problems inline and on ``local`` at full length, and on Ray the MC case at full
length and the V-trace case's plumbing in a short run (tests/rl/test_impala_learning.py). This script runs the
V-trace box case (``TargetEnv``, 2 tasks, optimum 1.0 per task, a task-agnostic policy scores 0.8) at the
length Ray's policy lag needs (2000 episodes), or any case on any backend, and prints one JSON object per seed:
the greedy reward per task, whether it clears the test's bar (min >= 0.85, mean >= 0.9), the policy lag and the
seconds.

    python benchmarks/backend_learning.py                                  # box, V-trace, on Ray, 2000 episodes
    python benchmarks/backend_learning.py --backend local --episodes 1000  # the suite's local case
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time

import torch

from autostruct.config import BackendConfig, RLConfig
from autostruct.rl import PolicySpec, rollout, run_impala
from autostruct.rl.toy_envs import ChoiceEnv, TargetEnv

#: The suite's asynchronous cases (no replay: replayed updates multiply the policy lag of instant envs).
CASES = {
    "box": dict(env=TargetEnv, algorithm="vtrace", use_lstm=False, min_variance=0.03,
                rl=RLConfig(actors=2, unroll_length=3, batch_size=2, learning_rate=2e-4, queue_size=2,
                            replay_ratio=0.0)),
    "choice": dict(env=ChoiceEnv, algorithm="mc", use_lstm=True, min_variance=0.01,
                   rl=RLConfig(actors=2, batch_size=2, learning_rate=1e-3, replay_ratio=0.0)),
}


def run(case: str, backend: str, episodes: int, seed: int) -> dict:
    c = CASES[case]
    factories = [functools.partial(c["env"], i) for i in range(2)]
    spec = PolicySpec.from_env(factories[0](), use_lstm=c["use_lstm"], min_variance=c["min_variance"])
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        result = run_impala(factories, spec, rl=c["rl"], backend=BackendConfig(name=backend), algorithm=c["algorithm"],
                            total_episodes=episodes, run_dir=run_dir, seed=seed, progress=False, tensorboard=False)
    greedy = [rollout(result.policy, f()).reward for f in factories]
    return {"case": case, "backend": backend, "episodes": episodes, "seed": seed, "greedy": greedy,
            "passes_test_bar": min(greedy) >= 0.85 and sum(greedy) / len(greedy) >= 0.9,
            "policy_lag_mean": result.learner_stats.get("policy_lag_mean"),
            "seconds": round(time.perf_counter() - start, 1)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--case", default="box", choices=sorted(CASES))
    p.add_argument("--backend", default="ray", choices=["inline", "local", "ray"])
    p.add_argument("--episodes", type=int, default=2000)
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    for seed in args.seeds:
        print(json.dumps(run(args.case, args.backend, args.episodes, seed)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
