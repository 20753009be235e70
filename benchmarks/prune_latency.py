"""Does pruning make models faster? Latency of uniformly pruned and searched models vs their base.

For each model (random weights, seeded: latency does not depend on the values) at each input shape (28x28x1,
32x32x3), each FLOPs ratio ``alpha`` and each ``round_to``, two strategies that fit ``alpha * base FLOPs``:

- **uniform**: the largest single keep ratio whose rounded counts fit (the FLOP model on allowed counts, as the
  env's budget wall), pruned with ``apply_keep_ratios``;
- **searched**: ``--search`` episodes of uniformly random actions under the exact FLOPs wall (the env's
  ``budget: exact``, pure math), plus the uniform strategy, scored by the host's per-layer latency table
  (:func:`autostruct.prune.latency_table.host_table`, measured once per model and rounding, cached): the one
  the table predicts fastest. No accuracy enters (random weights): this is the latency-aware half of the search,
  the part that has to know which layers buy latency.

Base, uniform and searched are timed in ONNX Runtime (batch 1, one thread) in one process with interleaved runs
(``autostruct.measure.time_interleaved``): median and p90, and the ratio pruned / base (below 1 is faster).
The host's measured rounding choice (``search.round_to: auto``) is reported too.

Prints one JSON document on stdout and a Markdown table on stderr; ``--out`` also writes the JSON.

    python benchmarks/prune_latency.py                 # resnet20, vgg11, mobilenetv2; 28x28x1 and 32x32x3;
                                                       # alpha 0.3/0.5/0.7; round_to 1/8/16 (~15 min on 1 core)
    python benchmarks/prune_latency.py --quick         # smoke run: resnet20 x0.5 at 8x8, round_to 1/8, seconds
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np
import torch

from autostruct.measure import count_flops, host_info
from autostruct.measure.latency import time_interleaved
from autostruct.measure.rounding import choose_round_to
from autostruct.models import create_model
from autostruct.prune import apply_keep_ratios
from autostruct.prune.graph import analyze
from autostruct.prune.latency_table import host_table, latency_model, layer_specs
from autostruct.prune.surgery import counts_from_ratios, prune_counts
from autostruct.prune.task_rounding import reachable, wall_strategies
from autostruct.utils.io import write_json_atomic

MODELS = (("resnet20", 1.0), ("vgg11", 1.0), ("mobilenetv2", 1.0))
SHAPES = ((1, 28), (3, 32))  # (input channels, size)


def uniform_ratio_for(graph: Any, alpha: float, round_to: int, iters: int = 40) -> float:
    """The largest single keep ratio whose rounded counts fit ``alpha`` of the base FLOPs (bisection)."""
    base = float(graph.flop_model(graph.channels))

    def fits(r: float) -> bool:
        return float(graph.flop_model(counts_from_ratios(graph, r, round_to))) <= alpha * base

    lo, hi = 1e-3, 1.0
    if not fits(lo):
        raise ValueError(f"alpha={alpha} is out of reach with round_to={round_to}")
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def searched_counts(graph: Any, lat: Any, alpha: float, round_to: int, episodes: int, seed: int,
                    start: np.ndarray, lbound: float = 0.2) -> tuple[np.ndarray, int]:
    """The fastest strategy by the table among ``episodes`` random walks under the exact FLOPs wall and ``start``.

    Returns the counts and how many distinct strategies were scored.
    """
    found = {tuple(int(v) for v in start)}
    if reachable(graph, alpha, round_to, lbound):  # else lbound is too high for this alpha: only ``start``
        walks = wall_strategies(graph, alpha, round_to, episodes + 1, lbound=lbound, seed=seed)
        found.update(tuple(int(v) for v in counts) for counts in walks)
    cands = np.asarray(sorted(found), dtype=np.int64)
    return cands[int(np.argmin(lat(cands)))], len(cands)


def bench_group(name: str, width: float, in_ch: int, size: int, round_to: int, args: argparse.Namespace
                ) -> list[dict[str, Any]]:
    """Uniform and searched strategies at every alpha for one (model, input shape, round_to)."""
    torch.manual_seed(args.seed)
    x = torch.randn(1, in_ch, size, size)
    base = create_model(name, num_classes=10, in_channels=in_ch, image_size=size, width=width).eval()
    graph = analyze(base, x)
    lat = None
    if args.search > 0:
        table, _ = host_table(base, graph, x, round_to, threads=args.threads)
        lat = latency_model(layer_specs(base, graph, x, round_to), table)
    c_base = count_flops(base, x)
    rows = []
    for alpha in args.alphas:
        head = {"model": name, "width": width, "input": f"{size}x{size}x{in_ch}", "alpha": alpha,
                "round_to": round_to}
        try:
            ratio = uniform_ratio_for(graph, alpha, round_to)
        except ValueError as exc:  # e.g. a 16-channel stage cannot shrink with round_to=16
            rows.append({**head, "strategy": "uniform", "unreachable": str(exc)})
            continue
        uni = counts_from_ratios(graph, ratio, round_to)
        strategies = [("uniform", uni, apply_keep_ratios(base, x, ratio, round_to=round_to, graph=graph).eval(),
                       {"keep_ratio": ratio})]
        if lat is not None:
            found, n = searched_counts(graph, lat, alpha, round_to, args.search, args.seed, uni)
            strategies.append(("searched", found, prune_counts(base, graph, found, None).eval(),
                               {"candidates": n}))
        stats = time_interleaved([base] + [m for _, _, m, _ in strategies], x, runs=args.runs, warmup=args.warmup,
                                 threads=args.threads)
        for (kind, counts, model, extra), st in zip(strategies, stats[1:], strict=True):
            c = count_flops(model, x)
            row = {**head, "strategy": kind, **extra, "channels": [int(v) for v in counts],
                   "flops_ratio": c.flops / c_base.flops, "params_ratio": c.params / c_base.params,
                   "latency_ms": st.median_ms, "latency_p90_ms": st.p90_ms, "base_latency_ms": stats[0].median_ms,
                   "base_latency_p90_ms": stats[0].p90_ms, "latency_ratio": st.median_ms / stats[0].median_ms}
            if lat is not None:
                row["predicted_ratio"] = lat.latency_ms(counts) / lat.latency_ms(graph.channels)
            rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | input | alpha | round_to | strategy | FLOPs ratio | base ms (p90) | pruned ms (p90) | "
             "latency ratio | table's ratio |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lead = f"| {r['model']} x{r['width']} | {r['input']} | {r['alpha']} | {r['round_to']} | {r['strategy']} |"
        if "unreachable" in r:
            lines.append(f"{lead} out of reach | - | - | - | - |")
            continue
        pred = f"{r['predicted_ratio']:.2f}" if "predicted_ratio" in r else "-"
        lines.append(
            f"{lead} {r['flops_ratio']:.2f} | {r['base_latency_ms']:.3f} ({r['base_latency_p90_ms']:.3f}) | "
            f"{r['latency_ms']:.3f} ({r['latency_p90_ms']:.3f}) | {r['latency_ratio']:.2f} | {pred} |"
        )
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue 12 target per rounding: at alpha 0.5 every pruned model <= 0.7x its base; none slower than base."""
    done = [r for r in rows if "unreachable" not in r]
    out: dict[str, Any] = {}
    for rt in sorted({r["round_to"] for r in done}):
        mine = [r for r in done if r["round_to"] == rt]
        half = [r for r in mine if r["alpha"] == 0.5]
        out[f"round_to_{rt}"] = {
            "alpha_0.5_all_within_0.7": all(r["latency_ratio"] <= 0.7 for r in half),
            "alpha_0.5_worst": max((r["latency_ratio"] for r in half), default=None),
            "alpha_0.5_misses": [f"{r['model']} {r['input']} {r['strategy']}: {r['latency_ratio']:.2f}"
                                 for r in half if r["latency_ratio"] > 0.7],
            "none_slower": all(r["latency_ratio"] <= 1.0 for r in mine),
            "worst": max(r["latency_ratio"] for r in mine),
            "slower": [f"{r['model']} {r['input']} alpha {r['alpha']} {r['strategy']}: {r['latency_ratio']:.2f}"
                       for r in mine if r["latency_ratio"] > 1.0],
        }
    return out


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=[f"{m}:{w}" for m, w in MODELS], help="name:width")
    p.add_argument("--inputs", nargs="+", default=[f"{c}x{s}" for c, s in SHAPES], help="CxS, e.g. 3x32")
    p.add_argument("--alphas", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    p.add_argument("--round-to", type=int, nargs="+", default=[1, 8, 16], dest="round_to")
    p.add_argument("--search", type=int, default=200, help="random wall episodes of the searched strategy (0: off)")
    p.add_argument("--runs", type=int, default=100, help="interleaved timed runs per model")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smoke run: resnet20 x0.5 at 8x8, round_to 1/8, 10 runs")
    p.add_argument("--no-auto", action="store_true", help="skip measuring the host's rounding choice")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    args.model_list = [(m.split(":")[0], float(m.split(":")[1]) if ":" in m else 1.0) for m in args.models]
    args.shape_list = [(int(v.split("x")[0]), int(v.split("x")[1])) for v in args.inputs]
    if args.quick:
        args.model_list, args.shape_list, args.round_to = [("resnet20", 0.5)], [(1, 8)], [1, 8]
        args.alphas, args.runs, args.warmup, args.search = [0.5], 10, 2, 20
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows = []
    for name, width in args.model_list:
        for in_ch, size in args.shape_list:
            for rt in args.round_to:
                print(f"{name} x{width} {size}x{size}x{in_ch} round_to {rt}", file=sys.stderr)
                rows.extend(bench_group(name, width, in_ch, size, rt, args))
    auto = None if args.no_auto else choose_round_to(args.threads).as_dict()
    result = {
        "benchmark": "prune_latency",
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "host": host_info(),
        "auto_round_to": auto,
        "rows": rows,
        "summary": summary(rows),
        "seconds": time.perf_counter() - start,
    }
    print(json.dumps(result, indent=2))
    print(markdown(rows), file=sys.stderr)
    if args.out:
        write_json_atomic(args.out, result)
    return result


if __name__ == "__main__":
    main()
