"""Issue 13's targets on the bring-your-own-model matrix (``tests/byo_archs.py``: 10 third-party-style
architectures, 2x16x16 inputs, random weights), plus a few zoo models at 32x32x3.

Per architecture: the pruning groups and those left at full width (with the reason); whether the env's FLOP model
equals ``count_flops`` at keep ratio 0.5 and at ``--random`` random keep-ratio vectors; the FLOPs of the env's
episode (budget wall ``exact``) at a 50% target, by ``count_flops``, for a mid action (0.5 at every step) and
for random actions, as a fraction of the target; whether the pruned model saves, reloads with identical outputs
and matches in onnxruntime. Prints one JSON document (``--out`` also writes it) and a Markdown table on stderr.

    python benchmarks/byo_matrix.py --out runs/byo-matrix.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from autostruct.export import export, load_model  # noqa: E402
from autostruct.measure import count_flops  # noqa: E402
from autostruct.models import create_model  # noqa: E402
from autostruct.prune.env import PruningEnv  # noqa: E402
from autostruct.prune.graph import analyze  # noqa: E402
from autostruct.prune.surgery import counts_from_ratios, prune_counts  # noqa: E402
from byo_archs import MATRIX, onnx_out, randomize  # noqa: E402

ZOO = ("resnet20", "mobilenetv2", "vgg11")


def one(name: str, channels: int, size: int, n_random: int, seed: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = randomize(create_model(name, num_classes=5, in_channels=channels, image_size=size, width=0.5
                                   if name in ZOO else 1.0))
    x = torch.randn(3, channels, size, size, generator=torch.Generator().manual_seed(seed))
    graph = analyze(model, x[:1])
    rng = np.random.default_rng(seed)
    agree = []
    for ratios in [0.5] + [rng.uniform(0.1, 1.0, len(graph.groups)) for _ in range(n_random)]:
        counts = counts_from_ratios(graph, ratios)
        agree.append(graph.flop_model.flops(counts) == count_flops(prune_counts(model, graph, counts, None), x).flops)
    g = torch.Generator().manual_seed(seed)
    data = [(torch.randn(n, channels, size, size, generator=g), torch.randint(0, 5, (n,), generator=g)) for n in (16, 8)]
    env = PruningEnv(model, data, 0.5, val_size=8, rescore_size=0, recal_batches=0, lbound=0.1)
    target = 0.5 * count_flops(model, x).flops
    landed = {}
    for label, actions in (("mid", np.full(env.max_episode_steps, 0.5)),
                           ("random", rng.uniform(size=env.max_episode_steps))):
        pruned = prune_counts(model, env.graph, env.simulate(actions), env.scores).eval()
        landed[label] = count_flops(pruned, x).flops / target
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        expected = pruned(x)
        paths = export(pruned, Path(tmp) / "out", x[:1])
        rebuilt, _ = load_model(paths.model_pt)
        identical = bool(torch.equal(rebuilt(x), expected))
        onnx_ok = bool(np.allclose(onnx_out(paths.onnx, x), expected.numpy(), atol=1e-4, rtol=1e-4))
    return {
        "model": name,
        "groups": [grp.name for grp in graph.groups],
        "skipped": [{"layer": n, "reason": r} for n, r in graph.skipped],
        "flop_model_equals_count_flops": agree,
        "flops_over_target": landed,
        "in_0.97_1.0": all(0.97 <= v <= 1.0 for v in landed.values()),
        "reload_identical": identical,
        "onnxruntime_matches": onnx_ok,
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--random", type=int, default=5, help="random keep-ratio vectors per model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [one(n, 2, 16, args.random, args.seed) for n in MATRIX]
    rows += [one(n, 3, 32, args.random, args.seed) for n in ZOO]
    matrix = rows[: len(MATRIX)]
    summary = {
        "architectures": len(matrix),
        "reload_identical_pct": 100 * np.mean([r["reload_identical"] for r in matrix]),
        "flops_in_0.97_1.0_pct": 100 * np.mean([r["in_0.97_1.0"] for r in matrix]),
        "flop_model_exact_pct": 100 * np.mean([all(r["flop_model_equals_count_flops"]) for r in matrix]),
        "onnxruntime_matches_pct": 100 * np.mean([r["onnxruntime_matches"] for r in matrix]),
        "zoo_all_ok": all(r["in_0.97_1.0"] and r["reload_identical"] and all(r["flop_model_equals_count_flops"])
                          for r in rows[len(MATRIX):]),
    }
    doc = {"summary": summary, "rows": rows, "seed": args.seed}
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print("| model | groups | left at full width | FLOP model exact | FLOPs / target (mid, random) | reload | ORT |",
          file=sys.stderr)
    print("| --- | --- | --- | --- | --- | --- | --- |", file=sys.stderr)
    for r in rows:
        f = r["flops_over_target"]
        print(f"| {r['model']} | {len(r['groups'])} | {', '.join(s['layer'] for s in r['skipped']) or '-'} | "
              f"{sum(r['flop_model_equals_count_flops'])}/{len(r['flop_model_equals_count_flops'])} | "
              f"{f['mid']:.3f}, {f['random']:.3f} | {r['reload_identical']} | {r['onnxruntime_matches']} |",
              file=sys.stderr)


if __name__ == "__main__":
    main()
