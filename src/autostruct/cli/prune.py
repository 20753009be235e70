"""``autostruct prune`` (multi-task search, or zero-shot with --policy), ``autostruct prune build-lut`` (a
device's pruning latency table) and ``autostruct report``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from autostruct.cli._app import app
from autostruct.cli.common import (
    IMPORT_HELP,
    RunByDefault,
    console,
    import_user_modules,
    parse_int_list,
    user_errors,
)
from autostruct.errors import AutostructError

prune_app = typer.Typer(
    cls=RunByDefault,
    help="Multi-task channel pruning (MTACP): `autostruct prune CONFIG` runs the search (the `run` command); "
    "`autostruct prune build-lut CONFIG --out T.json` measures a device's latency table for it.",
    no_args_is_help=False,  # `autostruct prune` alone says which config to pass (the run command's error)
)
app.add_typer(prune_app, name="prune")


@prune_app.command(
    "run",
    epilog=(
        "Examples: autostruct prune configs/quickstart-prune.yaml [--resume]  |  "
        "autostruct prune --policy runs/quickstart-prune --dataset fashion-mnist --ratio 0.4 [--episodes 10]"
    ),
)
@user_errors
def prune(
    config: Annotated[str | None, typer.Argument(help="YAML config of the run (see configs/).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in the config's output_dir.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Delete the run in output_dir and start again.")] = False,
    policy: Annotated[str | None, typer.Option(
        help="New scenario: a finished run's folder (or its policy.pt); prunes without a new search.")] = None,
    episodes: Annotated[int, typer.Option(
        help="With --policy: few-shot episodes warm-started from the run (0: zero-shot, no episode).")] = 0,
    dataset: Annotated[str | None, typer.Option(help="Zero-shot: dataset to prune for.")] = None,
    ratio: Annotated[float | None, typer.Option(help="Zero-shot: FLOPs keep ratio in (0, 1].")] = None,
    classes: Annotated[str | None, typer.Option(help="Zero-shot: class subset, e.g. 5,7,9.")] = None,
    data_root: Annotated[str | None, typer.Option(help="Zero-shot: dataset folder.")] = None,
    out: Annotated[str | None, typer.Option(help="Zero-shot: folder for model.pt / model.onnx.")] = None,
    finetune_epochs: Annotated[int, typer.Option(help="Zero-shot: fine-tune epochs after pruning.")] = 0,
    device: Annotated[str, typer.Option(help="Zero-shot: cpu, cuda or auto.")] = "cpu",
    imports: Annotated[list[str] | None, typer.Option("--import", help=IMPORT_HELP)] = None,
) -> None:
    """Prune a model for many (dataset, FLOPs ratio) tasks in one multi-task RL search (MTACP)."""
    from autostruct import api  # lazy: torch and the searches load only when a command runs (fast --help)

    import_user_modules(imports)

    if policy is not None:
        if config is not None:
            raise AutostructError("Give either a CONFIG (search) or --policy (zero-shot), not both.")
        if dataset is None or ratio is None:
            raise AutostructError("Zero-shot pruning needs --dataset and --ratio, e.g. --dataset fashion-mnist --ratio 0.4.")
        res = api.zero_shot_prune(
            policy, dataset, ratio, classes=parse_int_list(classes, "--classes"), data_root=data_root,
            output_dir=out, finetune_epochs=finetune_epochs, device=device, episodes=episodes,
        )
        console.print_json(json.dumps(res))
        return
    if episodes:
        raise AutostructError("--episodes is for new scenarios with --policy RUN (few-shot), not for a search.")
    if config is None:
        raise AutostructError("Pass a config file, e.g. `autostruct prune configs/quickstart-prune.yaml`.")
    if resume and overwrite:
        raise AutostructError("--resume and --overwrite exclude each other: pick one.")
    result = api.prune(config, resume=resume, overwrite=overwrite)
    for t in result.tasks:
        ft = t["accuracy_after_finetune"]
        console.print(
            f"{t['task']:28s} FLOPs {t['flops_ratio']:.3f}x base  acc {100 * t['base_accuracy']:.2f}% -> "
            f"{100 * t['accuracy_before_finetune']:.2f}% (no FT)"
            + (f" -> {100 * ft:.2f}% (FT)" if ft is not None else "")
            + f"  latency {t['base_latency_ms']:.3f} -> {t['latency_ms']:.3f} ms"
            + (f" (budget {t['latency_budget_ms']:.4g}, table {t['predicted_latency_ms']:.3f}"
               + (f"; {t['latency_vs_budget_relative']:.2f} of the budget relative to the base"
                  if t.get("latency_vs_budget_relative") is not None else "")  # absent in older runs' tasks
               + ")" if t.get("latency_budget_ms") is not None else "")
        )
    console.print(f"results: {result.output_dir / 'results.json'}\nreport:  {result.report_path}")


@prune_app.command(
    "build-lut",
    epilog=(
        "The model and input shape are resolved as the run resolves them (model, width, model_kwargs, imports, "
        "each dataset's shape and classes, search.round_to incl. auto, measured here).  "
        "Example (on the device): autostruct prune build-lut configs/my-run.yaml --out profiles/pi4-resnet20.json "
        "--device-name raspberry-pi-4; then set search.latency_table: profiles/pi4-resnet20.json in the config "
        "and run `autostruct prune configs/my-run.yaml` on any machine (docs/prune.md)."
    ),
)
@user_errors
def build_lut_cmd(
    config: Annotated[Path, typer.Argument(help="YAML config of the run whose latency tasks the table prices.")],
    out: Annotated[Path, typer.Option(help="Where to write the table (a .json file).")],
    dataset: Annotated[str | None, typer.Option(
        help="Task data to price (a label such as fashion-mnist-c5.7.9 for classes [5, 7, 9], or a dataset name) "
        "when the config's latency tasks use data of different shapes.")] = None,
    threads: Annotated[int | None, typer.Option(
        help="onnxruntime intra-op threads (default: the config's search.latency_threads).")] = None,
    device_name: Annotated[str | None, typer.Option(
        help="Name stored in the table, e.g. raspberry-pi-4 (default: OS and CPU architecture, e.g. linux-aarch64).")] = None,
) -> None:
    """Measure the per-layer latency table of a config's model on this machine (onnxruntime, batch 1); write it."""
    from autostruct import api  # lazy: torch and the searches load only when a command runs (fast --help)

    result = api.build_prune_lut(config, out, dataset=dataset, threads=threads, device_name=device_name, progress=True)
    console.print_json(json.dumps(result.summary()))


@app.command(epilog="Example: autostruct report runs/quickstart-prune")
@user_errors
def report(run_dir: Annotated[Path, typer.Argument(help="A run's output_dir.")]) -> None:
    """Re-render report.html of a finished prune or NAS run from its results.json."""
    from autostruct import api  # lazy: torch and the searches load only when a command runs (fast --help)

    console.print(f"report: {api.render_report(run_dir)}")
