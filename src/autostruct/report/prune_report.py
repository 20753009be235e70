"""The MTACP run report: reads ``results.json`` of a run folder and writes ``report.html``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from autostruct.errors import AutostructError
from autostruct.report.html import figure_to_img, page, table
from autostruct.utils.io import write_text_atomic


def load_results(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise AutostructError(
            f"'{run_dir}' has no results.json. Pass the output_dir of a finished `autostruct prune` run."
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise AutostructError(f"'{path}' is not valid JSON ({exc}); re-run the search with --resume.") from None


def _acc_vs_flops(tasks: list[dict[str, Any]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[dict[str, Any]]] = {}
    for t in tasks:
        groups.setdefault(t["dataset_label"], []).append(t)
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for ax, (label, ts) in zip(axes[0], groups.items(), strict=True):
        ts = sorted(ts, key=lambda t: t["ratio"])
        base = ts[0]
        ax.scatter([base["base_flops"] / 1e6], [100 * base["base_accuracy"]], marker="*", s=160, c="k", label="base")
        ax.plot([t["flops"] / 1e6 for t in ts], [100 * t["accuracy_before_finetune"] for t in ts], "o--",
                c="tab:blue", label="MTACP, no fine-tune")
        if all(t.get("accuracy_after_finetune") is not None for t in ts):
            ax.plot([t["flops"] / 1e6 for t in ts], [100 * t["accuracy_after_finetune"] for t in ts], "o-",
                    c="tab:blue", label="MTACP, fine-tuned")
        uni = [t["uniform"] for t in ts if t.get("uniform")]
        if uni:
            ax.plot([u["flops"] / 1e6 for u in uni], [100 * u["accuracy_before_finetune"] for u in uni], "s--",
                    c="tab:orange", label="uniform, no fine-tune")
        ax.set_title(label)
        ax.set_xlabel("MFLOPs (multiply-accumulates)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return figure_to_img(fig, "accuracy vs FLOPs")


def _reward_curves(curves: dict[str, list[float]]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for name, rewards in curves.items():
        if not rewards:
            continue
        best = [max(rewards[: i + 1]) for i in range(len(rewards))]
        (line,) = ax.plot(rewards, alpha=0.35, lw=0.8)
        ax.plot(best, c=line.get_color(), lw=1.8, label=f"{name} (best so far)")
    ax.set_xlabel("episode of the task")
    ax.set_ylabel("reward")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure_to_img(fig, "reward curves")


def _keep_ratios(tasks: list[dict[str, Any]]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    for t in tasks:
        ax.plot(range(len(t["keep_ratios"])), t["keep_ratios"], marker="o", ms=3, label=t["task"])
    ax.set_xlabel("prunable group (forward order)")
    ax.set_ylabel("keep ratio")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure_to_img(fig, "per-layer keep ratios")


def render_prune_report(run_dir: str | Path) -> Path:
    """Render ``report.html`` in ``run_dir`` from its ``results.json``; returns the path."""
    res = load_results(run_dir)
    tasks = res.get("tasks", [])
    if not tasks:
        raise AutostructError(f"results.json in '{run_dir}' lists no tasks; nothing to report.")
    for t in tasks:
        t.setdefault("dataset_label", t["dataset"] + (f" {t['classes']}" if t.get("classes") else ""))

    def pct(v: Any) -> Any:
        return None if v is None else round(100 * v, 2)

    rows = [
        [
            t["task"], t["ratio"], pct(t["base_accuracy"]), pct(t["accuracy_before_finetune"]),
            pct(t.get("accuracy_after_finetune")), pct((t.get("uniform") or {}).get("accuracy_before_finetune")),
            round(t["flops"] / t["base_flops"], 3), t["params"], t.get("base_latency_ms"), t.get("latency_ms"),
            t.get("episodes_to_best"),
        ]
        for t in tasks
    ]
    results_table = table(
        ["task", "alpha", "base acc %", "acc no-FT %", "acc FT %", "uniform no-FT %", "FLOPs / base", "params",
         "base latency ms", "latency ms", "episodes to best"],
        rows,
    )
    totals = res.get("totals", {})
    sections = [
        ("Results per task (test split)", results_table),
        ("Accuracy vs FLOPs", _acc_vs_flops(tasks)),
        ("Reward curves", _reward_curves(res.get("curves", {}))),
        ("Per-layer keep ratios", _keep_ratios(tasks)),
        ("Totals", "<pre>" + json.dumps(totals, indent=2) + "</pre>"),
        ("Config", "<pre>" + json.dumps(res.get("config", {}), indent=2) + "</pre>"),
    ]
    meta = " · ".join(f"{k} {v}" for k, v in res.get("versions", {}).items())
    out = Path(run_dir) / "report.html"
    write_text_atomic(out, page(f"autostruct prune: {res.get('name', '')}", sections, meta))
    return out
