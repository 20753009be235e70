"""Does pruning make models faster? Latency of uniformly pruned models vs their base, per channel rounding.

For each model (random weights, seeded: latency does not depend on the values) at 28x28x1 and each ``round_to``,
the largest uniform keep ratio whose FLOPs fit ``alpha * base`` (the FLOP model on allowed counts, as the env's
budget wall), pruned with ``apply_keep_ratios``, then base and pruned timed in ONNX Runtime (batch 1, one
thread) in one process with interleaved runs (``autostruct.measure.compare_latency``): median, p90 and the
ratio pruned / base (below 1 is faster). The host's measured rounding choice (``search.round_to: auto``) is
reported too.

Prints one JSON document on stdout and a Markdown table on stderr; ``--out`` also writes the JSON.

    python benchmarks/prune_latency.py                 # resnet20 x0.5, x1.0, mobilenetv2; round_to 1/8/16
    python benchmarks/prune_latency.py --quick         # smoke run: resnet20 x0.5 at 8x8, round_to 1/8, 10 runs, seconds
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import torch

from autostruct.measure import compare_latency, count_flops, host_info
from autostruct.measure.rounding import choose_round_to
from autostruct.models import create_model
from autostruct.prune import apply_keep_ratios
from autostruct.prune.graph import analyze
from autostruct.prune.surgery import counts_from_ratios
from autostruct.utils.io import write_json_atomic

MODELS = (("resnet20", 0.5), ("resnet20", 1.0), ("mobilenetv2", 1.0))


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


def bench_one(name: str, width: float, alpha: float, round_to: int, args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    x = torch.randn(1, 1, args.size, args.size)
    base = create_model(name, num_classes=10, in_channels=1, image_size=args.size, width=width).eval()
    graph = analyze(base, x)
    try:
        ratio = uniform_ratio_for(graph, alpha, round_to)
    except ValueError as exc:  # e.g. a 16-channel stage cannot shrink with round_to=16
        return {"model": name, "width": width, "alpha": alpha, "round_to": round_to, "unreachable": str(exc)}
    pruned = apply_keep_ratios(base, x, ratio, round_to=round_to, graph=graph).eval()
    c_base, c_pruned = count_flops(base, x), count_flops(pruned, x)
    cmp = compare_latency(base, pruned, x, runs=args.runs, warmup=args.warmup, threads=args.threads)
    return {
        "model": name, "width": width, "alpha": alpha, "round_to": round_to, "keep_ratio": ratio,
        "channels": [int(c) for c in counts_from_ratios(graph, ratio, round_to)],
        "flops_ratio": c_pruned.flops / c_base.flops, "params_ratio": c_pruned.params / c_base.params,
        **cmp.as_fields(), "latency_ratio": 1.0 / cmp.speedup,
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | round_to | keep | FLOPs ratio | base ms (p90) | pruned ms (p90) | latency ratio |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "unreachable" in r:
            lines.append(f"| {r['model']} x{r['width']} | {r['round_to']} | - | out of reach | - | - | - |")
            continue
        lines.append(
            f"| {r['model']} x{r['width']} | {r['round_to']} | {r['keep_ratio']:.3f} | {r['flops_ratio']:.2f} | "
            f"{r['base_latency_ms']:.3f} ({r['base_latency_p90_ms']:.3f}) | {r['latency_ms']:.3f} "
            f"({r['latency_p90_ms']:.3f}) | {r['latency_ratio']:.2f} |"
        )
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alphas", type=float, nargs="+", default=[0.5])
    p.add_argument("--round-to", type=int, nargs="+", default=[1, 8, 16], dest="round_to")
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--runs", type=int, default=100, help="interleaved timed runs per model pair")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smoke run: resnet20 x0.5 at 8x8, round_to 1/8, 10 runs")
    p.add_argument("--no-auto", action="store_true", help="skip measuring the host's rounding choice")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    args.models = list(MODELS)
    if args.quick:
        args.models, args.size, args.round_to, args.runs, args.warmup = [("resnet20", 0.5)], 8, [1, 8], 10, 2
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows = []
    for name, width in args.models:
        for alpha in args.alphas:
            for rt in args.round_to:
                print(f"{name} x{width} alpha {alpha} round_to {rt}", file=sys.stderr)
                rows.append(bench_one(name, width, alpha, rt, args))
    auto = None if args.no_auto else choose_round_to(args.threads).as_dict()
    result = {
        "benchmark": "prune_latency",
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "host": host_info(),
        "auto_round_to": auto,
        "rows": rows,
        "seconds": time.perf_counter() - start,
    }
    print(json.dumps(result, indent=2))
    print(markdown(rows), file=sys.stderr)
    if args.out:
        write_json_atomic(args.out, result)
    return result


if __name__ == "__main__":
    main()
