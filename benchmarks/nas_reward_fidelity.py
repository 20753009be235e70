"""How well does the supernet NAS reward rank architectures? Calibration for the supernet benchmark's settings.

    python benchmarks/nas_reward_fidelity.py --out runs/nas-reward-fidelity.json   # ~20 min, 1 core

For random feasible architectures of the Fashion-MNIST supernet tasks of ``benchmarks/mtnas_vs_baselines.py``
(MobileNetV2-style space at width 0.35, FLOPs <= 2.5M and <= 4.5M), and for each supernet setting (epochs,
training images), this measures the test accuracy of every architecture (inherited weights, recalibrated BN, as
the benchmark scores a selection) against its reward, the accuracy on the first 250 / 1000 / 2000 images of the
validation hold-out (nested subsets, drawn as :func:`autostruct.nas.env.holdout_indices` draws the reward's):

- the spread (std over architectures) of the test accuracies, against the reward's noise (its binomial standard
  error, and the std of reward minus test accuracy);
- Spearman's rank correlation of the reward with test accuracy (per task, and both tasks pooled);
- what selecting the best of the sample by each reward gives on test, against the sample's best;
- the wall time of one evaluation (extraction + BN recalibration + the forward passes) per reward size, and the
  supernet's training time.

The hold-out (``--holdout``, default 3000) is carved from the training images before the supernet trains, as the
benchmark carves its reward and re-score images, so a supernet trained here is the benchmark's (cached) when the
benchmark carves the same hold-out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

SUPERNETS = ((4, 10000), (8, 20000))  # (epochs, training images)


class _NoEvaluator:
    """Stands in for the reward while sampling architectures: the sample must not depend on any accuracy."""

    def accuracy(self, arch: Any) -> tuple[float, bool]:
        return 0.0, True


def sample_archs(space: Any, costs: Any, budget: float, n: int, seed: int) -> list[list[int]]:
    """``n`` distinct architectures drawn as random search draws them (uniform among feasible options)."""
    from autostruct.baselines.nas_common import random_episode
    from autostruct.nas.env import NASEnv

    env = NASEnv(space, _NoEvaluator(), costs, {"flops": budget})  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    seen: dict[tuple[int, ...], None] = {}
    while len(seen) < n:
        seen[tuple(random_episode(env, rng).info["arch"])] = None
    return [list(a) for a in seen]


@torch.no_grad()
def score(evaluator: Any, arch: Any, val_x: torch.Tensor, val_y: torch.Tensor, sizes: list[int],
          test_x: torch.Tensor, test_y: torch.Tensor, batch: int = 250) -> dict[str, Any]:
    """Reward accuracies on the first ``sizes`` hold-out images (nested) with the wall time of each, and test."""
    t0 = time.perf_counter()
    model = evaluator.model(arch)
    t_model = time.perf_counter() - t0
    correct, seconds, t_fwd = [], {}, 0.0
    for j in range(0, max(sizes), batch):
        t1 = time.perf_counter()
        correct.append(model(val_x[j : j + batch]).argmax(1) == val_y[j : j + batch])
        t_fwd += time.perf_counter() - t1
        if j + batch in sizes:
            seconds[str(j + batch)] = t_model + t_fwd
    c = torch.cat(correct).float()
    test_c = torch.cat([model(test_x[j : j + batch]).argmax(1) == test_y[j : j + batch]
                        for j in range(0, len(test_y), batch)]).float()
    return {"reward": {str(n): float(c[:n].mean()) for n in sizes}, "eval_seconds": seconds,
            "test": float(test_c.mean()), "test_first_1000": float(test_c[:1000].mean())}


def stats(rows: list[dict[str, Any]], sizes: list[int]) -> dict[str, Any]:
    """Spread of test accuracies vs reward noise, rank correlation, and best-by-reward selection, per reward size."""
    from scipy.stats import pearsonr, spearmanr

    test = np.array([r["test"] for r in rows])
    first = np.array([r["test_first_1000"] for r in rows])
    half = float(pearsonr(first, 2 * test - first).statistic)  # the test images' two halves, as two measurements
    out: dict[str, Any] = {"archs": len(rows), "test_mean": float(test.mean()), "test_std": float(test.std(ddof=1)),
                           "test_max": float(test.max()),
                           # Spearman-Brown: how reliable the whole test accuracy is at telling architectures apart
                           # (a perfect reward's correlation with it cannot exceed its square root).
                           "test_reliability": 2 * half / (1 + half), "per_size": {}}
    for n in sizes:
        rew = np.array([r["reward"][str(n)] for r in rows])
        best = int(np.argmax(rew))
        out["per_size"][str(n)] = {
            "spearman": float(spearmanr(rew, test).statistic),
            "binomial_se": float(np.mean(np.sqrt(rew * (1 - rew) / n))),
            "std_reward_minus_test": float(np.std(rew - test, ddof=1)),
            "mean_reward_minus_test": float(np.mean(rew - test)),
            "selected_test": float(test[best]),
            "selected_reward": float(rew[best]),
            "eval_seconds_median": float(np.median([r["eval_seconds"][str(n)] for r in rows])),
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", type=int, default=60, help="random feasible architectures per task")
    ap.add_argument("--budgets", default="2.5e6,4.5e6", help="FLOPs budgets of the tasks")
    ap.add_argument("--width", type=float, default=0.35)
    ap.add_argument("--holdout", type=int, default=3000, help="validation images carved from training")
    ap.add_argument("--sizes", default="250,1000,2000", help="reward sizes (multiples of 250, <= --holdout)")
    ap.add_argument("--test-size", type=int, default=2000, help="test images behind the 'true' accuracy")
    ap.add_argument("--supernets", default=",".join(f"{e}x{n}" for e, n in SUPERNETS),
                    help="supernet settings as EPOCHSxIMAGES, e.g. 4x10000,8x20000")
    ap.add_argument("--recal-batches", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None, help="print the table of this JSON and exit")
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())), end="")
        return {}
    torch.set_num_threads(1)

    from autostruct.data import load_dataset
    from autostruct.nas.config import SupernetConfig
    from autostruct.nas.env import holdout_indices, make_evaluator
    from autostruct.nas.evaluate import TaskCosts
    from autostruct.nas.space import mobilenetv2_space
    from autostruct.nas.train_supernet import get_or_train_supernet

    sizes = [int(s) for s in args.sizes.split(",")]
    budgets = [float(b) for b in args.budgets.split(",")]
    d = load_dataset("fashion-mnist", val_size=args.holdout, seed=args.seed)
    space = mobilenetv2_space(d.image_size).scaled(args.width)
    costs = TaskCosts(d.in_channels, d.image_size, d.num_classes)
    # The reward's images in the order that makes every size a prefix (holdout_indices draws the first n).
    perm = torch.randperm(len(d.val), generator=torch.Generator().manual_seed(args.seed))[: max(sizes)]
    assert set(perm[:250].tolist()) == set(holdout_indices(len(d.val), 250, 0, args.seed)[0].tolist())
    val_x = d.val.x[perm].contiguous(memory_format=torch.channels_last)
    val_y = d.val.y[perm]
    t = d.test.subset(args.test_size, seed=args.seed + 3)  # its first 1000 are the benchmark's test subset
    test_x, test_y = t.x.contiguous(memory_format=torch.channels_last), t.y
    archs = {b: sample_archs(space, costs, b, args.archs, args.seed + i) for i, b in enumerate(budgets)}
    out: dict[str, Any] = {"settings": {**vars(args), "out": str(args.out)}, "results": {}}
    for setting in args.supernets.split(","):
        epochs, images = (int(x) for x in setting.split("x"))
        cfg = SupernetConfig(epochs=epochs, train_size=images, batch_size=128)
        t0 = time.monotonic()
        net, info = get_or_train_supernet(space, d, cfg, seed=args.seed, val_size=args.holdout, progress=False)
        res: dict[str, Any] = {"supernet": {"path": str(info.path), "cache_hit": info.hit,
                                            "train_seconds": info.metrics.get("seconds"),
                                            "seconds_here": round(time.monotonic() - t0, 1)}, "tasks": {}}
        evaluator = make_evaluator(net, d, max(sizes), args.recal_batches, 64, args.seed)
        pooled = []
        for b in budgets:
            rows = [{"arch": a, **score(evaluator, space.arch(a), val_x, val_y, sizes, test_x, test_y)} for a in archs[b]]
            pooled += rows
            res["tasks"][f"flops{b / 1e6:g}M"] = {"stats": stats(rows, sizes), "rows": rows}
        res["pooled"] = stats(pooled, sizes)
        out["results"][setting] = res
        print(json.dumps({"supernet": setting, **res["supernet"], "pooled": res["pooled"],
                          "tasks": {k: v["stats"] for k, v in res["tasks"].items()}}), flush=True)
        if args.out:  # after every supernet, so a stopped run keeps what finished
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(out) + "\n")
    print(markdown(out), end="")
    return out


def markdown(out: dict[str, Any]) -> str:
    """One table row per (supernet, task, reward size), the statistics recomputed from the JSON's rows."""
    lines = ["| supernet (epochs x images, train s) | task | test mean | test std | test reliability | reward images | "
             "Spearman | reward SE | std(reward - test) | test of best-by-reward / sample's best | s per eval |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for setting, res in out["results"].items():
        secs = res["supernet"]["train_seconds"]
        sizes = [int(n) for n in res["pooled"]["per_size"]]
        pooled = [row for t in res["tasks"].values() for row in t["rows"]]
        for task, st in [*((k, stats(v["rows"], sizes)) for k, v in res["tasks"].items()),
                         ("pooled", stats(pooled, sizes))]:
            for n, s in st["per_size"].items():
                lines.append(f"| {setting} ({secs if secs is not None else 'cached'}) | {task} | "
                             f"{100 * st['test_mean']:.2f} | {100 * st['test_std']:.2f} | {st['test_reliability']:.2f} | "
                             f"{n} | {s['spearman']:.2f} | {100 * s['binomial_se']:.2f} | "
                             f"{100 * s['std_reward_minus_test']:.2f} | {100 * s['selected_test']:.2f} / "
                             f"{100 * st['test_max']:.2f} | {s['eval_seconds_median']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
