"""Where does the pruned structure survive the fine-tune? A probe for issue 19's regime, no search.

For each data task of the sharing preset (its base models, envs and test scorer, so nothing differs from
``mtacp_vs_baselines.py --preset sharing``) and each ``--ratios`` budget, ``--strategies`` random strategies
(uniform actions through the exact wall, seeded) and the uniform one are each measured four ways:

- ``val_score``: the search's reward (validation accuracy after BN recalibration, no fine-tune);
- ``short_ft_score``: the same validation images after ``--short-steps`` SGD steps (a reward that sees past the
  first minutes of recovery; what an episode would cost more);
- ``test_no_ft`` and ``test_ft[steps]``: test accuracy without and after each ``--finetune-steps`` fine-tune (the
  benchmark's recipe: batch 128, lr 0.01, cosine, a seeded training subset).

The summary per (task, ratio) says how far apart strategies end after the fine-tune (sd, best minus median) and
how well each reward ranks them there (Kendall tau; the fine-tuned test accuracy of the top strategy by each
reward minus the mean). A regime where (b) and (c) can be judged needs a spread after the fine-tune that a
reward can see.

    python benchmarks/regime_probe.py --ratios 0.2 0.3 0.4 --out benchmarks/results/regime-probe.json
    python benchmarks/regime_probe.py --render benchmarks/results/regime-probe.json --doc docs/benchmark-mtacp.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mtacp_vs_baselines as bench  # noqa: E402

from autostruct.measure import host_info  # noqa: E402
from autostruct.mtacp.run import make_factories, prepare_bases  # noqa: E402
from autostruct.mtacp.tasks import expand_tasks  # noqa: E402
from autostruct.utils.io import write_json_atomic  # noqa: E402


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ratios", type=float, nargs="+", default=[0.2, 0.3, 0.4])
    p.add_argument("--strategies", type=int, default=24, help="random strategies per (task, ratio)")
    p.add_argument("--short-steps", type=int, default=20, dest="short_steps")
    p.add_argument("--finetune-steps", type=int, nargs="+", default=[50, 200], dest="finetune_steps")
    p.add_argument("--data", type=int, nargs="+", default=None, help="indices of the preset's data tasks (all)")
    p.add_argument("--preset", default="sharing", help="mtacp_vs_baselines preset the envs come from")
    p.add_argument("--workdir", default="runs/regime-probe")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args, rest = p.parse_known_args(argv)
    args.bench = bench.parse(["--preset", args.preset, "--workdir", args.workdir, *rest])
    return args


def _val_accuracy(env: Any, model: torch.nn.Module) -> float:
    with torch.no_grad():
        pred = torch.cat([model(x).argmax(1) for x in env._val_x.split(env.eval_batch_size)])
    return float((pred == env._val_y).float().mean())


def _fine_tuned(env: Any, counts: np.ndarray, data: Any, steps: int, cfg: Any, seed: int) -> torch.nn.Module:
    """The pruned model, BN recalibrated as an episode does, after ``steps`` SGD steps of the benchmark's recipe."""
    from autostruct.models.bn import recalibrate_bn
    from autostruct.models.train import fine_tune

    model = env.prune(counts)
    if env._calib:
        recalibrate_bn(model, [x for x, _ in env._calib], len(env._calib))
    if steps > 0:
        bs = cfg.finetune.batch_size
        subset = SimpleNamespace(train=data.train.subset(min(steps * bs, len(data.train)), seed=seed), val=None)
        fine_tune(model, subset, 1, lr=cfg.finetune.lr, batch_size=bs, seed=seed, device=cfg.device, progress=False)
    return model.eval()


def measure(env: Any, key: Any, counts: np.ndarray, scorer: Any, args: argparse.Namespace, cfg: Any) -> dict[str, Any]:
    from autostruct.models.train import evaluate

    data, test = scorer._data(key)
    reward, info = env.evaluate_counts(counts)
    short = _val_accuracy(env, _fine_tuned(env, counts, data, args.short_steps, cfg, args.seed))
    rec = {"channels": [int(c) for c in counts], "flops_ratio": info.get("flops_ratio"), "val_score": 100 * reward,
           "short_ft_score": 100 * short}
    rec["test_no_ft"] = 100 * evaluate(_fine_tuned(env, counts, data, 0, cfg, args.seed), test).accuracy
    for steps in args.finetune_steps:
        rec[f"test_ft{steps}"] = 100 * evaluate(_fine_tuned(env, counts, data, steps, cfg, args.seed), test).accuracy
    return rec


def summarize(rows: list[dict[str, Any]], steps: list[int]) -> dict[str, Any]:
    from scipy import stats

    random_rows = [r for r in rows if r["kind"] == "random"]
    out: dict[str, Any] = {}
    for s in steps:
        y = np.asarray([r[f"test_ft{s}"] for r in random_rows])
        entry: dict[str, Any] = {"sd": float(y.std(ddof=1)), "best_minus_median": float(y.max() - np.median(y)),
                                 "mean": float(y.mean())}
        for reward in ("val_score", "short_ft_score", "test_no_ft"):
            x = np.asarray([r[reward] for r in random_rows])
            entry[f"tau_{reward}"] = float(stats.kendalltau(x, y).statistic)
            entry[f"top1_by_{reward}_minus_mean"] = float(y[int(np.argmax(x))] - y.mean())
        uni = [r for r in rows if r["kind"] == "uniform"]
        entry["uniform_minus_mean"] = float(uni[0][f"test_ft{s}"] - y.mean()) if uni else None
        out[f"ft{s}"] = entry
    return out


def render(result: dict[str, Any], path: str) -> str:
    """The probe's table (one row per task and fine-tune length) for the doc section ``regime-probe``."""
    s = result["settings"]
    lines = [f"From `{path}`: {s['strategies']} random strategies and the uniform one per task, reward fine-tune "
             f"{s['short_steps']} steps; test accuracy after the benchmark's fine-tune"
             + ("" if result.get("complete") else " (**incomplete run**: the tasks finished so far)") + ".", "",
             "| task | fine-tune steps | mean | sd | best minus median | uniform minus mean | Kendall tau: untrained "
             f"reward | tau: {s['short_steps']}-step reward | top-1 by untrained reward minus mean | top-1 by "
             f"{s['short_steps']}-step reward minus mean |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for t in result["tasks"]:
        for key, v in t["summary"].items():
            uni = "" if v["uniform_minus_mean"] is None else f"{v['uniform_minus_mean']:+.2f}"
            lines.append(f"| {t['task']} | {key[2:]} | {v['mean']:.2f} | {v['sd']:.2f} | {v['best_minus_median']:.2f} | "
                         f"{uni} | {v['tau_val_score']:+.2f} | {v['tau_short_ft_score']:+.2f} | "
                         f"{v['top1_by_val_score_minus_mean']:+.2f} | {v['top1_by_short_ft_score_minus_mean']:+.2f} |")
    return "\n".join(lines) + "\n"


def write_section(doc: Path, section: str, name: str = "regime-probe") -> None:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = doc.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{doc} has no {begin} ... {end} markers")
    head, rest = text.split(begin, 1)
    doc.write_text(head + begin + "\n" + section + end + rest.split(end, 1)[1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from autostruct.prune.budget import uniform_wall_counts

    if argv is None:
        argv = sys.argv[1:]
    if "--render" in argv:
        r = argparse.ArgumentParser()
        r.add_argument("--render", required=True)
        r.add_argument("--doc", default=str(Path(__file__).resolve().parents[1] / "docs" / "benchmark-mtacp.md"))
        a = r.parse_args(argv)
        result = json.loads(Path(a.render).read_text())
        write_section(Path(a.doc), render(result, a.render))
        return result
    args = parse(argv)
    torch.set_num_threads(1)
    b = args.bench
    regime = bench.REGIMES[b.regime]
    data = [regime["data"][i] for i in (args.data if args.data is not None else range(len(regime["data"])))]
    workdir = Path(args.workdir)
    cfg = bench.build_config(b, workdir, data, args.ratios)
    keys, tasks = expand_tasks(cfg)
    bases = prepare_bases(cfg, workdir, keys, progress=False)
    factories = make_factories(cfg, tasks, bases)
    scorer = bench.TestScorer(cfg, b)
    result: dict[str, Any] = {"benchmark": "regime_probe", "host": host_info(), "command": sys.argv,
                              "settings": {k: v for k, v in vars(args).items() if k not in ("out", "bench")},
                              "sizes": {"width": b.width, "val_size": cfg.search.val_size,
                                        "recal_batches": cfg.search.recal_batches,
                                        "finetune_lr": cfg.finetune.lr, "finetune_batch_size": cfg.finetune.batch_size},
                              "tasks": [], "complete": False}
    t_start = time.perf_counter()
    for task, factory in zip(tasks, factories, strict=True):
        env = factory()
        rng = np.random.default_rng(1000 * args.seed + task.task_id)
        _, uniform = uniform_wall_counts(env.cost_model, env.channels, env.allowed, env.decidable, env.floor,
                                         env.target_cost)
        strategies = [("uniform", uniform)]
        strategies += [("random", env.simulate(rng.uniform(0, 1, env.max_episode_steps).tolist()))
                       for _ in range(args.strategies)]
        rows = []
        for i, (kind, counts) in enumerate(strategies):
            rows.append({"kind": kind, **measure(env, task.data, counts, scorer, args, cfg)})
            print(f"[probe] {task.name} strategy {i + 1}/{len(strategies)} ({kind}): val {rows[-1]['val_score']:.1f} "
                  f"short-ft {rows[-1]['short_ft_score']:.1f} test {rows[-1]['test_no_ft']:.1f} -> "
                  + " ".join(f"{rows[-1][f'test_ft{st}']:.1f}" for st in args.finetune_steps)
                  + f" ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr, flush=True)
        entry = {"task": task.name, "ratio": task.ratio, "base_accuracy": bases[task.data]["base_accuracy"],
                 "rows": rows, "summary": summarize(rows, args.finetune_steps)}
        result["tasks"].append(entry)
        s = entry["summary"]
        print(f"[probe] {task.name}: " + "; ".join(
            f"ft{k}: mean {v['mean']:.2f} sd {v['sd']:.2f} best-med {v['best_minus_median']:.2f} "
            f"tau val {v['tau_val_score']:.2f} short {v['tau_short_ft_score']:.2f} "
            f"top1 val {v['top1_by_val_score_minus_mean']:+.2f} short {v['top1_by_short_ft_score_minus_mean']:+.2f}"
            for k, v in ((st, s[f'ft{st}']) for st in args.finetune_steps)) + f" ({time.perf_counter() - t_start:.0f} s)",
              file=sys.stderr, flush=True)
        if args.out:
            write_json_atomic(args.out, result)
    result["complete"] = True
    result["seconds"] = time.perf_counter() - t_start
    if args.out:
        write_json_atomic(args.out, result)
    return result


if __name__ == "__main__":
    main()
