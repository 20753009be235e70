"""``autostruct prune`` (multi-task search, or zero-shot with --policy) and ``autostruct report``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from autostruct.cli._app import app
from autostruct.cli.common import IMPORT_HELP, console, import_user_modules, parse_int_list, user_errors
from autostruct.errors import AutostructError


@app.command(
    epilog=(
        "Examples: autostruct prune configs/quickstart-prune.yaml [--resume]  |  "
        "autostruct prune --policy runs/quickstart-prune/policy.pt --dataset fashion-mnist --ratio 0.4"
    )
)
@user_errors
def prune(
    config: Annotated[str | None, typer.Argument(help="YAML config of the run (see configs/).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in the config's output_dir.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Delete the run in output_dir and start again.")] = False,
    policy: Annotated[str | None, typer.Option(help="Zero-shot: a trained policy.pt; prunes without search.")] = None,
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
    from autostruct import api

    import_user_modules(imports)

    if policy is not None:
        if config is not None:
            raise AutostructError("Give either a CONFIG (search) or --policy (zero-shot), not both.")
        if dataset is None or ratio is None:
            raise AutostructError("Zero-shot pruning needs --dataset and --ratio, e.g. --dataset fashion-mnist --ratio 0.4.")
        res = api.zero_shot_prune(
            policy, dataset, ratio, classes=parse_int_list(classes, "--classes"), data_root=data_root,
            output_dir=out, finetune_epochs=finetune_epochs, device=device,
        )
        console.print_json(json.dumps(res))
        return
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
            + (f" (budget {t['latency_budget_ms']:g}, table {t['predicted_latency_ms']:.3f})"
               if t.get("latency_budget_ms") is not None else "")
        )
    console.print(f"results: {result.output_dir / 'results.json'}\nreport:  {result.report_path}")


@app.command(epilog="Example: autostruct report runs/quickstart-prune")
@user_errors
def report(run_dir: Annotated[Path, typer.Argument(help="A run's output_dir.")]) -> None:
    """Re-render report.html of a finished prune or NAS run from its results.json."""
    from autostruct.report import render_report

    console.print(f"report: {render_report(run_dir)}")
