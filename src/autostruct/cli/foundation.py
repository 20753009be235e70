"""Foundation commands: ``info``, ``train``, ``measure``, ``export``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from autostruct.cli._app import app
from autostruct.cli.common import (
    IMPORT_HELP,
    console,
    import_user_modules,
    parse_int_list,
    parse_model_kwargs,
    user_errors,
)
from autostruct.errors import AutostructError


@app.command(epilog="Example: autostruct info --json")
@user_errors
def info(
    data_root: Annotated[str | None, typer.Option(help="Extra folder to look for datasets in.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show versions, the datasets found on this machine, and the registered models."""
    from autostruct import api  # lazy: torch and the searches load only when a command runs (fast --help)

    report = api.system_info(data_root).as_dict()
    if as_json:
        console.print_json(json.dumps(report))
        return
    console.print("[bold]autostruct[/] " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
    table = Table("dataset", "status")
    for name, status in report["datasets"].items():
        table.add_row(name, status)
    console.print(table)
    console.print("models: " + ", ".join(report["models"]))
    console.print(f"model cache: {report['cache']}")


@app.command(
    epilog="Example: autostruct train --model resnet20 --dataset fashion-mnist --epochs 3 --classes 5,7,9"
)
@user_errors
def train(
    model: Annotated[str, typer.Option(
        help="Zoo or registered model name (see `autostruct info`) or package.module:function."
    )] = "resnet20",
    dataset: Annotated[str, typer.Option(help="Dataset name (see `autostruct info`).")] = "fashion-mnist",
    epochs: Annotated[int, typer.Option(help="Training epochs (> 0).")] = 3,
    classes: Annotated[str | None, typer.Option(help="Comma-separated class subset, relabelled 0..k-1.")] = None,
    width: Annotated[float, typer.Option(help="Width multiplier of the model.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed for splits, init and shuffling.")] = 0,
    data_root: Annotated[str | None, typer.Option(help="Folder holding the dataset files.")] = None,
    val_size: Annotated[int, typer.Option(help="Images carved from the training set for validation.")] = 5000,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    imports: Annotated[list[str] | None, typer.Option("--import", help=IMPORT_HELP)] = None,
    model_kwargs: Annotated[str | None, typer.Option(help="JSON object of the builder's keyword arguments.")] = None,
) -> None:
    """Train a zoo model on a dataset (cached: a second call with the same settings reuses the checkpoint)."""
    from autostruct import api  # lazy: torch and the searches load only when a command runs (fast --help)

    import_user_modules(imports)
    summary = api.train(
        model,
        dataset,
        epochs=epochs,
        classes=parse_int_list(classes, "--classes"),
        width=width,
        seed=seed,
        root=data_root,
        val_size=val_size,
        device=device,
        progress=not as_json,
        model_kwargs=parse_model_kwargs(model_kwargs),
    )
    if as_json:
        console.print_json(json.dumps(summary.as_dict()))
        return
    cached = " (from cache)" if summary.cache_hit else ""
    console.print(
        f"{summary.model} on {summary.dataset}: test accuracy {100 * summary.test_accuracy:.2f}%{cached}, "
        f"{summary.flops / 1e6:.2f} MFLOPs (MACs), {summary.params / 1e3:.1f}k params"
    )
    console.print(f"checkpoint: {summary.checkpoint}")


@app.command(epilog="Example: autostruct measure runs/quickstart-prune/tasks/fashion-mnist_r0.5/model.pt --runs 50")
@user_errors
def measure(
    checkpoint: Annotated[str, typer.Argument(help="model.pt (or a folder holding one), or a zoo model name.")],
    image_size: Annotated[int, typer.Option(help="Input size when CHECKPOINT is a zoo name.")] = 28,
    in_channels: Annotated[int, typer.Option(help="Input channels when CHECKPOINT is a zoo name.")] = 1,
    num_classes: Annotated[int, typer.Option(help="Classes when CHECKPOINT is a zoo name.")] = 10,
    runs: Annotated[int, typer.Option(help="Timed runs per backend (after warm-up).")] = 50,
    threads: Annotated[int, typer.Option(help="Intra-op threads for both backends.")] = 1,
    batch: Annotated[int, typer.Option(help="Batch size for latency.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    imports: Annotated[list[str] | None, typer.Option("--import", help=IMPORT_HELP)] = None,
    base: Annotated[
        str | None,
        typer.Option(help="The unpruned base (model.pt or zoo name): adds base vs this model in onnxruntime, "
                     "timed in one process with interleaved runs (median, p90, speed-up)."),
    ] = None,
) -> None:
    """FLOPs (multiply-accumulates), params, and latency in torch and onnxruntime (median and p90)."""
    if runs < 1:
        raise AutostructError(f"--runs must be >= 1, got {runs}.")
    from autostruct import api  # lazy: torch and the searches load only when a command runs (fast --help)

    import_user_modules(imports)
    out = api.measure(checkpoint, runs=runs, threads=threads, batch=batch, base=base, num_classes=num_classes,
                      in_channels=in_channels, image_size=image_size).as_dict()
    if as_json:
        console.print_json(json.dumps(out))
        return
    console.print(f"FLOPs (MACs): {out['flops']:,}   params: {out['params']:,}   input {out['input_shape']}")
    for b, s in out["latency_ms"].items():
        console.print(f"{b:12s} median {s['median']:.3f} ms   p90 {s['p90']:.3f} ms   ({runs} runs, {threads} thread(s))")
    if base is not None:
        b = out["base"]
        console.print(f"vs base (onnxruntime, {runs} interleaved runs): base median {b['base_latency_ms']:.3f} ms "
                      f"p90 {b['base_latency_p90_ms']:.3f} ms | this median {b['latency_ms']:.3f} ms "
                      f"p90 {b['latency_p90_ms']:.3f} ms | speed-up {b['speedup']:.2f}x | FLOPs "
                      f"{out['flops'] / max(b['flops'], 1):.2f}x, params {out['params'] / max(b['params'], 1):.2f}x of base")


@app.command(epilog="Example: autostruct export ~/.cache/autostruct/models/resnet20-fashion-mnist.pt --out exported/")
@user_errors
def export(
    checkpoint: Annotated[str, typer.Argument(help="An autostruct model.pt or cached checkpoint.")],
    out: Annotated[Path, typer.Option(help="Output folder for model.pt and model.onnx.")] = Path("exported"),
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
    imports: Annotated[list[str] | None, typer.Option("--import", help=IMPORT_HELP)] = None,
) -> None:
    """Write model.pt (state dict + structure, loads with weights_only=True) and model.onnx, and check they agree."""
    from autostruct import api  # lazy: torch and the searches load only when a command runs (fast --help)

    import_user_modules(imports)
    paths = api.export(checkpoint, out, opset=opset)
    console.print(f"model.pt:   {paths.model_pt}\nmodel.onnx: {paths.onnx}")
