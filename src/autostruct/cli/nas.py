"""``autostruct nas CONFIG`` (multi-task NAS) and ``autostruct nas build-lut`` (a device's latency table)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from autostruct.cli._app import app
from autostruct.cli.common import RunByDefault, console, parse_int_list, user_errors
from autostruct.errors import AutostructError

nas_app = typer.Typer(
    cls=RunByDefault,
    help="Multi-task NAS: one RL controller searches a weight-sharing supernet for every (dataset, budget) task.",
    no_args_is_help=True,
)
app.add_typer(nas_app, name="nas")


@nas_app.command(
    "run",
    epilog="Examples: autostruct nas configs/quickstart-nas.yaml [--resume] [--from-scratch]  |  a config with "
    "'evaluator: module:function' and 'space:' searches your own space (docs/nas.md)",
)
@user_errors
def run(
    config: Annotated[Path, typer.Argument(help="YAML config of the run (see configs/quickstart-nas.yaml).")],
    resume: Annotated[bool, typer.Option(help="Continue the run in the config's output_dir.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Delete the run in output_dir and start again.")] = False,
    from_scratch: Annotated[
        bool, typer.Option("--from-scratch", help="Train the found architectures from scratch instead of fine-tuning.")
    ] = False,
) -> None:
    """Search the best architecture per task within its budgets (latency_ms, flops, params), train, export."""
    from autostruct import api  # lazy: torch and the searches load only when a command runs (fast --help)

    if resume and overwrite:
        raise AutostructError("--resume and --overwrite exclude each other: pick one.")
    result = api.search(config, resume=resume, overwrite=overwrite, from_scratch=True if from_scratch else None)
    if "evaluator" in result.results:  # a search on the user's own space: the evaluator's metrics are the result
        for t in result.tasks:
            budgets = ", ".join(f"{k}<={v:g}" for k, v in t["budgets"].items()) or "no budget"
            if t["arch"] is None:
                console.print(f"{t['task']:36s} [{budgets}] no architecture met the budgets ({t['episodes']} episodes)")
                continue
            costs = "  ".join(f"{k} {t[k]:g}" for k in ("flops", "params", "latency_ms") if t.get(k) is not None)
            console.print(f"{t['task']:36s} [{budgets}] {t['arch_str']}  accuracy {t['accuracy']:.4f}  {costs}  "
                          f"reward {t['reward']:.4f} (episode {t['episodes_to_best']} of {t['episodes']})")
        console.print(f"results: {result.output_dir / 'results.json'}\nreport:  {result.report_path}")
        return
    for t in result.tasks:
        ft = t["accuracy_after_finetune"]
        budgets = ", ".join(f"{k}<={v:g}" for k, v in t["budgets"].items())
        console.print(
            f"{t['task']:36s} [{budgets}] {t['arch_str']}  {t['flops'] / 1e6:.2f} MFLOPs  "
            f"{t['latency_ms']:.3f} ms  val acc {100 * t['accuracy']:.2f}% (supernet)"
            + (f" -> test {100 * ft:.2f}% ({'scratch' if t['from_scratch'] else 'fine-tuned'})" if ft is not None else "")
        )
    console.print(f"results: {result.output_dir / 'results.json'}\nreport:  {result.report_path}")


@nas_app.command(
    "build-lut",
    epilog=(
        "Examples: autostruct nas build-lut --dataset fashion-mnist --out profiles/laptop.json  |  "
        "autostruct nas build-lut --image-size 32 --in-channels 3 --num-classes 10 --device-name pi4 --out pi4.json"
    ),
)
@user_errors
def build_lut_cmd(
    out: Annotated[Path, typer.Option(help="Where to write the device profile (JSON).")],
    space: Annotated[str, typer.Option(help="Space name, or a YAML/JSON file describing one.")] = "mobilenetv2",
    dataset: Annotated[str | None, typer.Option(help="Take input shape and class count from this dataset.")] = None,
    classes: Annotated[str | None, typer.Option(help="With --dataset: class subset, e.g. 5,7,9.")] = None,
    image_size: Annotated[int | None, typer.Option(help="Input height/width (without --dataset).")] = None,
    in_channels: Annotated[int | None, typer.Option(help="Input channels (without --dataset).")] = None,
    num_classes: Annotated[int | None, typer.Option(help="Classes of the head (without --dataset).")] = None,
    width: Annotated[float, typer.Option(help="Channel multiplier of the space (as the config's width).")] = 1.0,
    device_name: Annotated[str, typer.Option(help="Name stored in the profile, e.g. raspberry-pi-4.")] = "host",
    threads: Annotated[int, typer.Option(help="onnxruntime intra-op threads.")] = 1,
    runs: Annotated[int, typer.Option(help="Timed runs per block and round.")] = 30,
    warmup: Annotated[int, typer.Option(help="Untimed runs first.")] = 10,
    rounds: Annotated[int, typer.Option(help="Interleaved passes over all blocks (median kept).")] = 3,
    check: Annotated[int, typer.Option(help="Sampled networks to compare predicted vs measured latency (0: skip).")] = 30,
    seed: Annotated[int, typer.Option(help="Seeds the sampled networks.")] = 0,
) -> None:
    """Measure every block of a search space with onnxruntime on this machine; write the device profile."""
    if dataset is None:
        missing = [n for n, v in (("--image-size", image_size), ("--in-channels", in_channels),
                                  ("--num-classes", num_classes)) if v is None]
        if missing:
            raise AutostructError(f"Give --dataset, or all of --image-size, --in-channels and --num-classes (missing {', '.join(missing)}).")
    for name, value, low in (("--threads", threads, 1), ("--runs", runs, 1), ("--warmup", warmup, 0), ("--rounds", rounds, 1)):
        if value < low:
            raise AutostructError(f"{name} must be >= {low}, got {value}.")
    from autostruct import api  # lazy: torch and the searches load only when a command runs (fast --help)

    summary = api.build_nas_lut(
        out, space=space, dataset=dataset, classes=parse_int_list(classes, "--classes"), image_size=image_size,
        in_channels=in_channels, num_classes=num_classes, width=width, device_name=device_name, threads=threads,
        runs=runs, warmup=warmup, rounds=rounds, check=check, seed=seed,
    )
    console.print_json(json.dumps(summary))
