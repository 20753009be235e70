"""How fast can a pruned model get at a FLOPs ratio? The latency floor (and ceiling) of a pruning task.

For each model (random weights, seeded: latency does not depend on the values) at each input shape, each FLOPs
ratio ``alpha`` and each ``round_to``, :func:`autostruct.prune.latency_floor.graph_latency_floor` finds, by
branch and bound over the host's per-layer latency table (:func:`autostruct.prune.latency_table.host_table`,
measured once per model and rounding, cached):

- **floor**: the fastest strategy an episode of ``budget: exact`` can end on (``lbound`` 0.2): no search over
  that FLOPs task can do better, however well it learns;
- **ceiling**: the slowest such strategy: a search that ignores latency (``reward: acc``) lands between the two;
- **least**: the fastest strategy within the budget at all (``budget: amc``: every group at its floor).

Floor and ceiling are then pruned for real and timed against the base in one process, each pair with interleaved
runs (:func:`autostruct.measure.compare_latency`: ONNX Runtime, batch 1, medians): predicted and measured ratio
pruned / base side by side. Prints one JSON document on stdout and a Markdown table on stderr; ``--out`` also
writes the JSON.

    python benchmarks/latency_floor.py          # resnet20 x1.0 and x0.5; 28x28x1 and 8x8x1; alpha 0.3/0.5/0.7;
                                                # round_to 8/16 (~5 min on 1 core with cached tables)
    python benchmarks/latency_floor.py --quick  # smoke run: resnet20 x0.5 at 8x8, round_to 8, alpha 0.5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import torch

from autostruct.measure import count_flops, host_info
from autostruct.measure.latency import compare_latency
from autostruct.models import create_model
from autostruct.prune.graph import analyze
from autostruct.prune.latency_floor import graph_latency_floor
from autostruct.prune.latency_table import host_table, latency_model, layer_specs
from autostruct.prune.surgery import prune_counts
from autostruct.utils.io import write_json_atomic

MODELS = (("resnet20", 1.0), ("resnet20", 0.5))
SHAPES = ((1, 28), (1, 8))  # (input channels, size): Fashion-MNIST and digits, the demo's inputs


def bench_group(name: str, width: float, in_ch: int, size: int, round_to: int, args: argparse.Namespace
                ) -> list[dict[str, Any]]:
    """Floor, ceiling and least strategy at every alpha for one (model, input shape, round_to)."""
    torch.manual_seed(args.seed)
    x = torch.randn(1, in_ch, size, size)
    base = create_model(name, num_classes=10, in_channels=in_ch, image_size=size, width=width).eval()
    graph = analyze(base, x)
    table, _ = host_table(base, graph, x, round_to, threads=args.threads)
    lat = latency_model(layer_specs(base, graph, x, round_to), table)
    base_flops = count_flops(base, x).flops
    rows = []
    for alpha in args.alphas:
        row: dict[str, Any] = {"model": name, "width": width, "input": f"{size}x{size}x{in_ch}", "alpha": alpha,
                               "round_to": round_to, "lbound": args.lbound,
                               "calibration_max_rel_error": table.meta["calibration"]["max_rel_error"]}
        t0 = time.perf_counter()
        try:
            found = {
                "floor": graph_latency_floor(graph, lat, alpha, round_to, args.lbound, max_nodes=args.max_nodes),
                "ceiling": graph_latency_floor(graph, lat, alpha, round_to, args.lbound, worst=True,
                                               max_nodes=args.max_nodes),
                "least": graph_latency_floor(graph, lat, alpha, round_to, args.lbound, wall="amc",
                                             max_nodes=args.max_nodes),
            }
        except Exception as exc:  # e.g. a 16-channel stage cannot shrink with round_to=16
            rows.append({**row, "unreachable": str(exc)})
            continue
        row["search_seconds"] = time.perf_counter() - t0
        for kind, f in found.items():
            row[kind] = f.as_dict()
        for kind in ("floor", "ceiling"):
            pruned = prune_counts(base, graph, found[kind].counts, None).eval()
            cmp = compare_latency(base, pruned, x, runs=args.runs, warmup=args.warmup, threads=args.threads)
            row[kind].update({"measured_flops_ratio": count_flops(pruned, x).flops / base_flops,
                              "base_latency_ms": cmp.base.median_ms, "latency_ms": cmp.model.median_ms,
                              "latency_p90_ms": cmp.model.p90_ms,
                              "measured_ratio": cmp.model.median_ms / cmp.base.median_ms})
        rows.append(row)
        print(f"  alpha {alpha}: floor {row['floor']['ratio']:.3f} (measured {row['floor']['measured_ratio']:.3f}),"
              f" ceiling {row['ceiling']['ratio']:.3f} (measured {row['ceiling']['measured_ratio']:.3f})",
              file=sys.stderr)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | input | round_to | alpha | least (table) | floor: table / measured | FLOPs | "
             "ceiling: table / measured | FLOPs | base ms |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lead = f"| {r['model']} x{r['width']} | {r['input']} | {r['round_to']} | {r['alpha']} |"
        if "unreachable" in r:
            lines.append(f"{lead} out of reach | - | - | - | - | - |")
            continue
        lo, hi = r["floor"], r["ceiling"]
        lines.append(f"{lead} {r['least']['ratio']:.2f} | {lo['ratio']:.2f} / {lo['measured_ratio']:.2f} | "
                     f"{lo['flops_ratio']:.2f} | {hi['ratio']:.2f} / {hi['measured_ratio']:.2f} | "
                     f"{hi['flops_ratio']:.2f} | {lo['base_latency_ms']:.3f} |")
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]], target: float = 0.7) -> dict[str, Any]:
    """Per model and input at alpha 0.5: can any ``budget: exact`` strategy run in ``target`` x the base?"""
    out = {}
    for r in rows:
        if r["alpha"] != 0.5 or "unreachable" in r:
            continue
        key = f"{r['model']} x{r['width']} {r['input']} round_to {r['round_to']}"
        out[key] = {"floor_table": r["floor"]["ratio"], "floor_measured": r["floor"]["measured_ratio"],
                    "ceiling_table": r["ceiling"]["ratio"], "ceiling_measured": r["ceiling"]["measured_ratio"],
                    f"reachable_{target}": r["floor"]["ratio"] <= target,
                    f"every_strategy_within_{target}": r["ceiling"]["ratio"] <= target}
    return out


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=[f"{m}:{w}" for m, w in MODELS], help="name:width")
    p.add_argument("--inputs", nargs="+", default=[f"{c}x{s}" for c, s in SHAPES], help="CxS, e.g. 1x28")
    p.add_argument("--alphas", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    p.add_argument("--round-to", type=int, nargs="+", default=[8, 16], dest="round_to")
    p.add_argument("--lbound", type=float, default=0.2)
    p.add_argument("--max-nodes", type=int, default=200_000, dest="max_nodes",
                   help="branch-and-bound nodes per search (beyond: best found, exact=false)")
    p.add_argument("--runs", type=int, default=200, help="interleaved timed runs per (base, pruned) pair")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smoke run: resnet20 x0.5 at 8x8, round_to 8, alpha 0.5")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    args.model_list = [(m.split(":")[0], float(m.split(":")[1]) if ":" in m else 1.0) for m in args.models]
    args.shape_list = [(int(v.split("x")[0]), int(v.split("x")[1])) for v in args.inputs]
    if args.quick:
        args.model_list, args.shape_list, args.round_to = [("resnet20", 0.5)], [(1, 8)], [8]
        args.alphas, args.runs, args.warmup = [0.5], 10, 2
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
    result = {
        "benchmark": "latency_floor",
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "host": host_info(),
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
