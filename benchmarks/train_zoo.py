"""Benchmark the model zoo on one dataset: size, FLOPs, training speed, accuracy and latency per model.

For each zoo model: params, FLOPs (multiply-accumulates per image), seconds per training epoch, test accuracy
after N epochs, and batch-1 latency in PyTorch and ONNX Runtime (median and p90 of ``--runs`` timed runs) with
their ratio. Prints one JSON document on stdout (progress goes to stderr); ``--out`` also writes it to a file.

    python benchmarks/train_zoo.py --dataset fashion-mnist --epochs 1
    python benchmarks/train_zoo.py --models resnet20 mobilenetv2 --subset 2000 --test-subset 1000 --runs 20

Latency is measured on the CPU, one thread by default (the edge setting); numbers from a machine shared with
other jobs are inflated and noisy, so the JSON records the host and the settings next to them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

import torch

from autostruct.data import load_dataset
from autostruct.errors import AutostructError
from autostruct.measure import count_flops, host_info, measure_latency
from autostruct.models import create_model, list_models
from autostruct.utils.device import resolve_device
from autostruct.utils.io import write_json_atomic


def _with_splits(dataset: Any, **splits: Any) -> Any:
    """The dataset with some splits replaced (the Dataset record is a dataclass; never mutate the cached one)."""
    return dataclasses.replace(dataset, **splits)


def bench_model(
    name: str,
    dataset: Any,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: str,
    runs: int,
    warmup: int,
    threads: int,
) -> dict[str, Any]:
    """Train ``name`` on ``dataset`` for ``epochs`` and measure it; returns one JSON-ready record."""
    from autostruct.models.train import evaluate, train

    torch.manual_seed(seed)
    model = create_model(
        name, num_classes=dataset.num_classes, in_channels=dataset.in_channels, image_size=dataset.image_size
    )
    example = dataset.test.x[:1]  # a real image, batch 1
    cost = count_flops(model, example)

    # No validation pass inside train(): seconds per epoch should count training only.
    train_only = _with_splits(dataset, val=dataset.val.subset(0))
    result = train(
        model, train_only, epochs, batch_size=batch_size, lr=lr, seed=seed, device=device, progress=False
    )
    seconds_per_epoch = sum(h.seconds for h in result.history) / len(result.history)
    accuracy = evaluate(model, dataset.test, device=device).accuracy

    model = model.to("cpu").eval()
    latency = {
        backend: measure_latency(model, example, backend=backend, warmup=warmup, runs=runs, threads=threads)
        for backend in ("torch", "onnxruntime")
    }
    return {
        "model": name,
        "params": cost.params,
        "flops": cost.flops,
        "mflops": round(cost.flops / 1e6, 3),
        "seconds_per_epoch": round(seconds_per_epoch, 2),
        "test_accuracy": round(float(accuracy), 4),
        "latency_ms": {
            b: {k: round(v, 4) for k, v in s.as_dict().items() if k.endswith("_ms")}
            for b, s in latency.items()
        },
        # > 1 means ONNX Runtime is faster than eager PyTorch (same definition as `autostruct measure`).
        "onnxruntime_speedup": round(
            latency["torch"].median_ms / max(latency["onnxruntime"].median_ms, 1e-9), 3
        ),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist", help="dataset name (default: fashion-mnist)")
    p.add_argument("--root", default=None, help="dataset folder, where the dataset needs one")
    p.add_argument("--epochs", type=int, default=1, help="training epochs per model (default: 1)")
    p.add_argument("--models", nargs="+", default=None, help="zoo models (default: every registered model)")
    p.add_argument("--subset", type=int, default=None, help="train on this many training images only")
    p.add_argument("--test-subset", type=int, default=None, help="evaluate on this many test images only")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="training device: cpu, cuda, cuda:N or auto")
    p.add_argument(
        "--train-threads", type=int, default=None, help="torch threads for training (default: torch's)"
    )
    p.add_argument("--threads", type=int, default=1, help="threads for latency, both backends (default: 1)")
    p.add_argument("--runs", type=int, default=50, help="timed latency runs per backend (default: 50)")
    p.add_argument("--warmup", type=int, default=10, help="untimed latency runs first (default: 10)")
    p.add_argument("--out", default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    for flag in ("epochs", "subset", "test_subset", "batch_size", "runs", "threads", "train_threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark every requested model; returns the JSON document."""
    if args.train_threads is not None:
        torch.set_num_threads(args.train_threads)
    device = str(resolve_device(args.device))
    names = args.models or list_models()
    unknown = [n for n in names if n not in list_models()]
    if unknown:
        raise SystemExit(f"unknown model(s) {', '.join(unknown)}; zoo: {', '.join(list_models())}")

    data = load_dataset(args.dataset, root=args.root, seed=args.seed)
    splits = {}
    if args.subset is not None and args.subset < len(data.train):
        splits["train"] = data.train.subset(args.subset, seed=args.seed)
    if args.test_subset is not None and args.test_subset < len(data.test):
        splits["test"] = data.test.subset(args.test_subset, seed=args.seed)
    data = _with_splits(data, **splits) if splits else data

    results = []
    for name in names:
        print(
            f"[train_zoo] {name} on {args.dataset} ({len(data.train)} training images) ...", file=sys.stderr
        )
        record = bench_model(
            name,
            data,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            device=device,
            runs=args.runs,
            warmup=args.warmup,
            threads=args.threads,
        )
        print(f"[train_zoo] {json.dumps(record)}", file=sys.stderr)
        results.append(record)
    return {
        "benchmark": "train_zoo",
        "dataset": args.dataset,
        "train_images": len(data.train),
        "test_images": len(data.test),
        "input_shape": [1, data.in_channels, data.image_size, data.image_size],
        "epochs": args.epochs,
        "device": device,
        "train_threads": torch.get_num_threads(),
        "latency": {"batch": 1, "threads": args.threads, "runs": args.runs, "warmup": args.warmup},
        "flops_convention": "multiply-accumulates per image (Torch-Pruning counter)",
        "host": host_info(),
        "models": results,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except AutostructError as exc:  # a bad name or missing data: the message says how to fix it
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        write_json_atomic(args.out, report)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
