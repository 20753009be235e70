"""How steady is this host's speed? Medians of the same two models, timed again and again.

A latency budget in milliseconds can only be checked to within the host's own drift. This benchmark times a base
model (ResNet-20, random weights, 28x28x1, the demo's input) and its uniformly pruned copy (keep ratio
``--keep``, ``round_to`` 8) with interleaved ONNX Runtime runs (batch 1, one thread) in ``--windows`` windows of
``--runs`` rounds each, in ``--bursts`` bursts separated by ``--idle`` seconds of idling (as a run idles between
setting its budget and checking its final model). Per window it records the base's median, the pruned model's
median and their ratio; the summary gives the spread of each: (max - min) / median over all windows. A
[0.9, 1.0] landing window is 10% wide: an absolute-ms check is only meaningful where the base's spread is well
under that.

    python benchmarks/latency_drift.py --out runs/bench-latency-drift.json    # ~1 min
    python benchmarks/latency_drift.py --quick                                # seconds
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np
import torch

from autostruct.measure import host_info
from autostruct.measure.latency import time_interleaved
from autostruct.models import create_model
from autostruct.prune.surgery import apply_keep_ratios
from autostruct.utils.io import write_json_atomic


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--keep", type=float, default=0.7, help="uniform keep ratio of the pruned copy")
    p.add_argument("--runs", type=int, default=500, help="interleaved rounds per window")
    p.add_argument("--windows", type=int, default=6, help="windows per burst")
    p.add_argument("--bursts", type=int, default=3)
    p.add_argument("--idle", type=float, default=3.0, help="seconds idle before each burst")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.width, args.size, args.runs, args.windows, args.bursts, args.idle = 0.5, 8, 20, 2, 2, 0.1
    return args


def spread(values: list[float]) -> float:
    """(max - min) / median: how far apart the same measurement lands."""
    v = np.asarray(values, dtype=float)
    return float((v.max() - v.min()) / np.median(v))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    x = torch.randn(1, 1, args.size, args.size)
    base = create_model("resnet20", num_classes=10, in_channels=1, image_size=args.size, width=args.width).eval()
    pruned = apply_keep_ratios(base, x, args.keep, round_to=8).eval()
    windows = []
    for burst in range(args.bursts):
        time.sleep(args.idle)
        for w in range(args.windows):
            b, p = time_interleaved([base, pruned], x, runs=args.runs, warmup=10)
            row = {"burst": burst, "window": w, "t": time.perf_counter() - start, "base_ms": b.median_ms,
                   "pruned_ms": p.median_ms, "ratio": p.median_ms / b.median_ms, "base_min_ms": b.min_ms}
            windows.append(row)
            print(f"burst {burst} window {w}: base {b.median_ms:.4f} ms, pruned {p.median_ms:.4f} ms, "
                  f"ratio {row['ratio']:.3f}", file=sys.stderr)
    summary = {k: {"min": min(r[k] for r in windows), "max": max(r[k] for r in windows),
                   "spread": spread([r[k] for r in windows])} for k in ("base_ms", "pruned_ms", "ratio", "base_min_ms")}
    result = {"benchmark": "latency_drift", "settings": {k: v for k, v in vars(args).items() if k != "out"},
              "host": host_info(), "windows": windows, "summary": summary,
              "seconds": time.perf_counter() - start}
    print(json.dumps(result, indent=2))
    if args.out:
        write_json_atomic(args.out, result)
    return result


if __name__ == "__main__":
    main()
