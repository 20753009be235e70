"""Landing against speed, per channel multiple, on a net whose trunk is one pruning group.

The model is ``tests/byo_archs.py``'s ``se_trunk`` (a residual depthwise net with squeeze-excite on a 48-channel
trunk, random weights) at 3x32x32. For each FLOPs ratio and each multiple that reaches it (``lbound`` 0.2): the
least FLOPs / budget of the exact-budget strategies (``task_rounding.landing``), and the uniform strategy's
onnxruntime latency over the unpruned model (batch 1, one thread, ``--runs`` interleaved runs, medians). This is
why ``round_to: auto`` does not go below the finest multiple the host runs fast just to land closer.

    python benchmarks/rounding_landing.py --out benchmarks/results/rounding_landing.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from autostruct.measure.latency import time_interleaved  # noqa: E402
from autostruct.measure.lut import host_info  # noqa: E402
from autostruct.prune.graph import analyze  # noqa: E402
from autostruct.prune.groups import prune_counts  # noqa: E402
from autostruct.prune.task_rounding import landing, reachable, wall_strategies  # noqa: E402
from byo_archs import se_trunk  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, x = se_trunk(3, 3).eval(), torch.zeros(1, 3, 32, 32)
    graph = analyze(model, x)
    rows = []
    for ratio in (0.5, 0.3):
        found = [(k, landing(graph, ratio, k, 0.2), wall_strategies(graph, ratio, k, 2, lbound=0.2)[0])
                 for k in (16, 8, 4, 2, 1) if reachable(graph, ratio, k, 0.2)]
        stats = time_interleaved([model] + [prune_counts(model, graph, c, None).eval() for _, _, c in found], x,
                                 runs=args.runs, warmup=10)
        rows += [{"ratio": ratio, "round_to": k, "landing": land, "uniform_channels": [int(c) for c in counts],
                  "latency_over_base": st.median_ms / stats[0].median_ms}
                 for (k, land, counts), st in zip(found, stats[1:], strict=True)]
    doc = {"rows": rows, "runs": args.runs, "host": host_info()}
    print(json.dumps(doc, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2))
    print("| ratio | round_to | lands at (of the budget) | latency / base |\n| --- | --- | --- | --- |", file=sys.stderr)
    for r in rows:
        print(f"| {r['ratio']} | {r['round_to']} | {r['landing']:.2f} | {r['latency_over_base']:.2f} |", file=sys.stderr)


if __name__ == "__main__":
    main()
