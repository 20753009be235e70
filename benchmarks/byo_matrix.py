"""The bring-your-own-model matrix (``tests/byo_archs.py``: 18 third-party-style architectures, 2x16x16 inputs,
random weights), plus a few zoo models at 32x32x3, pruned to 50% of their FLOPs with the settings a user gets by
default: ``PruningEnv(model, data, 0.5)`` (``lbound`` 0.2, ``round_to="auto"``: this host's multiple, lowered
where the budget needs it), ``uniform_prune``, ``env.prune``.

Per architecture: the pruning groups and those left at full width (with the reason); whether the env's FLOP model
equals ``count_flops`` at keep ratio 0.5 and at ``--random`` random keep-ratio vectors; the channel multiple
``auto`` chose; the FLOPs of an episode (mid actions, random actions) and of the uniform strategy as a fraction of
the target, by ``count_flops``; whether the uniformly pruned model saves, reloads with identical outputs and
matches in onnxruntime; and its onnxruntime latency over the original's (batch 1, one thread, ``--runs``
interleaved runs, medians), next to the same strategy with ``round_to=1``. Prints one JSON document (``--out``
also writes it) and a Markdown table on stderr.

    python benchmarks/byo_matrix.py --out benchmarks/results/byo_matrix.json
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

from autostruct.baselines import uniform_prune  # noqa: E402
from autostruct.export import export, load_model  # noqa: E402
from autostruct.measure import count_flops  # noqa: E402
from autostruct.measure.latency import time_interleaved  # noqa: E402
from autostruct.measure.lut import host_info  # noqa: E402
from autostruct.models import create_model  # noqa: E402
from autostruct.prune.env import PruningEnv  # noqa: E402
from autostruct.prune.graph import analyze  # noqa: E402
from autostruct.prune.surgery import counts_from_ratios, prune_counts  # noqa: E402
from byo_archs import MATRIX, onnx_out, randomize  # noqa: E402

ZOO = ("resnet20", "mobilenetv2", "vgg11")


def one(name: str, channels: int, size: int, n_random: int, seed: int, runs: int) -> dict[str, Any]:
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
    env = PruningEnv(model, data, 0.5, val_size=8, rescore_size=0, recal_batches=0)
    fine = PruningEnv(model, data, 0.5, val_size=8, rescore_size=0, recal_batches=0, round_to=1)
    target = 0.5 * count_flops(model, x).flops
    strategies = {"mid": env.simulate(np.full(env.max_episode_steps, 0.5)),
                  "random": env.simulate(rng.uniform(size=env.max_episode_steps)),
                  "uniform": np.asarray(uniform_prune(env).best_info["channels"])}
    landed = {k: count_flops(env.prune(c), x).flops / target for k, c in strategies.items()}
    pruned = env.prune(strategies["uniform"]).eval()
    pruned_fine = fine.prune(uniform_prune(fine).best_info["channels"]).eval()
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        expected = pruned(x)
        paths = export(pruned, Path(tmp) / "out", x[:1])
        rebuilt, _ = load_model(paths.model_pt)
        identical = bool(torch.equal(rebuilt(x), expected))
        scale = max(1.0, float(expected.abs().max()))
        onnx_ok = bool(np.allclose(onnx_out(paths.onnx, x), expected.numpy(), atol=1e-4 * scale, rtol=1e-4))
        base, small, small_fine = time_interleaved([model, pruned, pruned_fine], x[:1], runs=runs, warmup=10)
    return {
        "model": name,
        "input": [channels, size, size],
        "groups": [grp.name for grp in graph.groups],
        "skipped": [{"layer": n, "reason": r} for n, r in graph.skipped],
        "flop_model_equals_count_flops": agree,
        "rounding": env.rounding.as_dict(),
        "flops_over_target": landed,
        "in_0.97_1.0": all(0.97 <= v <= 1.0 for v in landed.values()),
        "reload_identical": identical,
        "onnxruntime_matches": onnx_ok,
        "base_ms": base.median_ms,
        "latency_over_base": small.median_ms / base.median_ms,
        "latency_over_base_round_to_1": small_fine.median_ms / base.median_ms,
        "faster": small.median_ms < base.median_ms,
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--random", type=int, default=5, help="random keep-ratio vectors per model")
    ap.add_argument("--runs", type=int, default=300, help="interleaved onnxruntime runs per model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [one(n, 2, 16, args.random, args.seed, args.runs) for n in MATRIX]
    rows += [one(n, 3, 32, args.random, args.seed, args.runs) for n in ZOO]
    matrix = rows[: len(MATRIX)]

    def pct(key: str) -> float:
        return 100 * float(np.mean([bool(r[key]) for r in matrix]))

    summary = {
        "architectures": len(matrix),
        "reload_identical_pct": pct("reload_identical"),
        "flops_in_0.97_1.0_pct": pct("in_0.97_1.0"),
        "flop_model_exact_pct": 100 * float(np.mean([all(r["flop_model_equals_count_flops"]) for r in matrix])),
        "onnxruntime_matches_pct": pct("onnxruntime_matches"),
        "faster_than_original_pct": pct("faster"),
        "slowest_latency_over_base": max(r["latency_over_base"] for r in matrix),
        "slower_than_original_with_round_to_1": [r["model"] for r in matrix if r["latency_over_base_round_to_1"] >= 1],
        "zoo_all_ok": all(r["in_0.97_1.0"] and r["reload_identical"] and all(r["flop_model_equals_count_flops"])
                          and r["faster"] for r in rows[len(MATRIX):]),
    }
    doc = {"summary": summary, "rows": rows, "seed": args.seed, "runs": args.runs, "host": host_info()}
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(render(doc), file=sys.stderr)


def render(doc: dict[str, Any]) -> str:
    """The Markdown table of docs/models.md from this script's JSON."""
    lines = ["| model | groups | left at full width | FLOP model exact | round_to | FLOPs / target (mid, random, "
             "uniform) | reload | ORT | latency / original (round_to 1) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in doc["rows"]:
        f = r["flops_over_target"]
        lines.append(
            f"| {r['model']} | {len(r['groups'])} | {', '.join(s['layer'] for s in r['skipped']) or '-'} | "
            f"{sum(r['flop_model_equals_count_flops'])}/{len(r['flop_model_equals_count_flops'])} | "
            f"{r['rounding']['round_to']} | {f['mid']:.3f}, {f['random']:.3f}, {f['uniform']:.3f} | "
            f"{r['reload_identical']} | {r['onnxruntime_matches']} | {r['latency_over_base']:.2f} "
            f"({r['latency_over_base_round_to_1']:.2f}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
