"""What does the screen (``rl.screen``) cost per episode, next to the evaluation it saves?

On a width-0.5 ResNet-20 at 28x28 (the sharing benchmark's model; random weights and random images: this
measures costs, not accuracies), one process, one torch thread, it times:

* ``plan_walls``: planning ``--candidates`` episodes through the budget walls, one copy of the env each
  (``PruningEnv.plan_step``, no policy), with the FLOP model's quadratic form and, side by side, the per-call
  sum it replaced; ``plan_walls_batched``: the same episodes planned together (``PruningEnv.plan_batch``: each
  step's walls priced for all of them in one call), which is what the screen does;
* ``plan_screened``: what an actor adds per screened episode (the policy's batched samples, the walls, the
  surrogate's choice);
* ``episode``: one evaluated episode (prune, recalibrate ``--recal-batches`` batches, score ``--val-size``
  images), the cost the screen is weighed against;
* ``refit``: the learner's warm-started surrogate refit on ``n`` logged episodes.

Each is the median of ``--repeats`` in wall and CPU seconds (CPU seconds: the cost on a core of its own, which
a loaded host's wall time hides).

    python benchmarks/screen_cost.py --out benchmarks/results/screen_cost.json     # ~1 min
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from autostruct.measure import host_info
from autostruct.models import create_model
from autostruct.prune.budget import FlopModel
from autostruct.prune.env import PruningEnv
from autostruct.rl import PolicySpec
from autostruct.rl.actor import plan_screened
from autostruct.rl.policy import make_policy
from autostruct.rl.screen import ScreenData
from autostruct.utils.io import write_json_atomic


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--ratio", type=float, default=0.4)
    p.add_argument("--candidates", type=int, default=32, help="rl.screen")
    p.add_argument("--val-size", type=int, default=300)
    p.add_argument("--recal-batches", type=int, default=1)
    p.add_argument("--round-to", type=int, default=1)
    p.add_argument("--refit-sizes", type=int, nargs="+", default=[100, 300, 900])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out", default=None)
    return p.parse_args(argv)


def timed(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus)}


def _per_call(self: FlopModel, counts: np.ndarray) -> np.ndarray:
    """The FLOP model's per-call sum (what the quadratic form replaced), for the side-by-side timing."""
    counts = np.asarray(counts, dtype=np.float64)
    c_in = self.in_const + counts @ self.in_coef.T
    c_out = self.out_const + counts @ self.out_coef.T
    return (self.p * c_in * c_out + self.q * c_out + self.r * c_in + self.s).sum(axis=-1)


def warm_refit(data: ScreenData) -> None:
    """One warm refit on all of ``data``, due whatever the growth rule says (it would wait for 10% more)."""
    data.surrogate.fitted_on = 1  # type: ignore[union-attr]
    data.refit()


@contextmanager
def per_call_pricing() -> Iterator[None]:
    original = FlopModel.__call__
    FlopModel.__call__ = _per_call  # type: ignore[method-assign]
    try:
        yield
    finally:
        FlopModel.__call__ = original  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, in_channels=1, image_size=28, width=args.width)
    n = args.val_size + 600
    x, y = torch.randn(n, 1, 28, 28), torch.randint(0, 10, (n,))
    env = PruningEnv(model, ((x[:300], y[:300]), (x[300:], y[300:])), args.ratio, round_to=args.round_to,
                     val_size=args.val_size, rescore_size=100, recal_batches=args.recal_batches)
    rng = np.random.default_rng(0)

    def plan_walls() -> None:
        copies = [copy.copy(env) for _ in range(args.candidates)]
        for c in copies:
            c.reset()
        for _ in range(env.max_episode_steps):
            for c in copies:
                c.plan_step(rng.random())

    def plan_walls_batched() -> None:
        batch = env.plan_batch(args.candidates)
        batch.reset()
        for _ in range(env.max_episode_steps):
            batch.step(rng.random(args.candidates))

    def episode() -> None:
        env.reset()
        for _ in range(env.max_episode_steps):
            env.step(rng.random())

    out: dict[str, Any] = {"benchmark": "screen_cost", "host": host_info(), "settings": vars(args),
                           "groups": int(env.max_episode_steps)}
    out["plan_walls"] = timed(plan_walls, args.repeats)
    out["plan_walls_batched"] = timed(plan_walls_batched, args.repeats)
    with per_call_pricing():
        out["plan_walls_per_call_sum"] = timed(plan_walls, args.repeats)
    policy = make_policy(PolicySpec.from_env(env), seed=0)
    design = len(env.planned_design())
    refits = {}
    surrogate = None
    for size in args.refit_sizes:
        data = ScreenData()
        for i in range(size):
            data.add(i % 9, float(rng.random()), {"design": list(rng.random(design)), "task_features": [0.5, 0.1]})
        data.refit()  # the cold fit; a run refits warm from then on
        refits[str(size)] = timed(lambda d=data: warm_refit(d), args.repeats)
        surrogate = data.surrogate
    gen = torch.Generator().manual_seed(0)
    out["plan_screened"] = timed(lambda: plan_screened(policy, env, surrogate, args.candidates, 1.0, gen),
                                 args.repeats)
    out["episode"] = timed(episode, args.repeats)
    out["refit"] = refits
    out["ratios"] = {
        "plan_screened_over_episode_cpu": out["plan_screened"]["cpu_s"] / out["episode"]["cpu_s"],
        "plan_walls_speedup_cpu": out["plan_walls_per_call_sum"]["cpu_s"] / out["plan_walls"]["cpu_s"],
        "plan_walls_batched_speedup_cpu": out["plan_walls"]["cpu_s"] / max(out["plan_walls_batched"]["cpu_s"], 1e-9),
    }
    print(f"per episode (CPU s): evaluated {out['episode']['cpu_s']:.3f}, screened planning of {args.candidates} "
          f"{out['plan_screened']['cpu_s']:.3f} ({out['ratios']['plan_screened_over_episode_cpu']:.2f}x); walls "
          f"alone {out['plan_walls']['cpu_s']:.3f} vs the per-call sum {out['plan_walls_per_call_sum']['cpu_s']:.3f} "
          f"({out['ratios']['plan_walls_speedup_cpu']:.1f}x), planned together {out['plan_walls_batched']['cpu_s']:.3f} "
          f"({out['ratios']['plan_walls_batched_speedup_cpu']:.1f}x faster than one copy each); refit " +
          ", ".join(f"n={k}: {v['cpu_s']:.3f}" for k, v in refits.items()), file=sys.stderr)
    if args.out:
        write_json_atomic(args.out, out)
    return out


if __name__ == "__main__":
    main()
