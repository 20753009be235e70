"""The NAS run report: one self-contained HTML page rendered from a run folder's ``results.json`` only (read
through its schema, :class:`autostruct.results.NASResults` or :class:`~autostruct.results.CustomNASResults`).

Per task: the chosen architecture (a stage-by-stage picture and its numbers), the accuracy-vs-cost scatter of
every architecture the search evaluated with its Pareto front and the budget, and the reward curve.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from autostruct.errors import AutostructError
from autostruct.report.html import figure_to_img, page, table
from autostruct.results import CustomNASResults, NASResults, NASTaskRecord, load_results
from autostruct.utils.io import write_text_atomic


def pareto_front(costs: list[float], accs: list[float]) -> list[int]:
    """Indices of points no other point beats on both lower cost and higher accuracy, by increasing cost."""
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -accs[i]))
    front, best = [], float("-inf")
    for i in order:
        if accs[i] > best:
            front.append(i)
            best = accs[i]
    return front


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _axis(task: dict[str, Any]) -> tuple[str, str]:
    """The cost the scatter plots: the task's first budget (latency is the LUT's prediction)."""
    name = next(iter(task["budgets"]), "flops")
    label = {"flops": "FLOPs (MACs, millions)", "params": "parameters (millions)", "latency_ms": "predicted latency (ms)"}
    return name, label[name]


def _scale(name: str) -> float:
    return 1.0 if name == "latency_ms" else 1e-6


def _scatter(task: dict[str, Any], ev: dict[str, list[Any]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cost, label = _axis(task)
    k = _scale(cost)
    pts = [(c * k, a, m) for c, a, m in zip(ev[cost], ev["accuracy"], ev["meets_budgets"], strict=True)
           if c is not None and a is not None]
    fig, ax = plt.subplots(figsize=(6.2, 4))
    if pts:
        xs, ys, ms = zip(*pts, strict=True)
        ax.scatter([x for x, m in zip(xs, ms, strict=True) if m], [y for y, m in zip(ys, ms, strict=True) if m],
                   s=10, alpha=0.5, label="evaluated (in budget)")
        out = [(x, y) for x, y, m in pts if not m]
        if out:
            ax.scatter(*zip(*out, strict=True), s=10, alpha=0.4, c="grey", label="evaluated (over budget)")
        front = pareto_front(list(xs), list(ys))
        ax.plot([xs[i] for i in front], [ys[i] for i in front], "g-", lw=1.2, drawstyle="steps-post",
                label="Pareto front")
    target = task["budgets"].get(cost)
    if target is not None:
        ax.axvline(target * k, color="k", ls="--", lw=1, label="budget")
    chosen = task.get("predicted_latency_ms", task.get(cost)) if cost == "latency_ms" else task.get(cost)
    if chosen is not None and task.get("accuracy") is not None:
        ax.scatter([chosen * k], [task["accuracy"]], marker="*", s=220, c="red", zorder=5, label="chosen")
    ax.set_xlabel(label)
    ax.set_ylabel("accuracy (evaluator)" if "evaluator" in task else "validation accuracy (supernet weights)")
    ax.set_title(task["task"])
    ax.legend(fontsize=8, loc="lower right")
    return figure_to_img(fig, f"accuracy vs {cost} for {task['task']}")


def _curves(evaluated: dict[str, dict[str, list[Any]]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name, ev in evaluated.items():
        rewards = ev["reward"]
        if not rewards:
            continue
        best, run = [], float("-inf")
        for r in rewards:
            run = max(run, r)
            best.append(run)
        line = ax.plot(rewards, lw=0.6, alpha=0.35)[0]
        ax.plot(best, lw=1.6, color=line.get_color(), label=f"{name} (best so far)")
    ax.set_xlabel("episode of the task")
    ax.set_ylabel("reward")
    ax.legend(fontsize=8)
    return figure_to_img(fig, "reward curves")


def _arch_picture(arch: dict[str, Any]) -> str:
    """A stage-by-stage table: one row per stage (with its width where the space chooses one), one cell per block
    (kernel k, expand e)."""
    stages = arch.get("stages", [])
    width = max((len(s["blocks"]) for s in stages), default=0)
    rows = []
    for i, st in enumerate(stages, start=1):
        cells = [f"k{b['kernel']} e{b['expand']}" for b in st["blocks"]]
        name = f"stage {i}" + (f" ({st['width']} ch)" if "width" in st else "")
        rows.append([name, st["depth"], *cells, *[""] * (width - len(cells))])
    return table(["stage", "depth", *[f"block {j + 1}" for j in range(width)]], rows)


def render_nas_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` from ``run_dir/results.json`` and return its path."""
    run_dir = Path(run_dir)
    path = run_dir / "results.json"
    if not path.is_file():
        raise AutostructError(f"'{run_dir}' has no results.json. Pass the output_dir of a finished NAS run.")
    results = load_results(run_dir)  # the schema its "format" names
    if isinstance(results, CustomNASResults):
        return _render_custom(run_dir, results)
    if not isinstance(results, NASResults):
        raise AutostructError(f"'{path}' is not the results of a NAS run (format '{results.format}').")
    tasks = results.tasks
    summary = table(
        ["task", "budgets", "architecture", "MFLOPs", "params (k)", "latency ms (host)", "latency ms (LUT)",
         "val acc (supernet)", "re-score acc", "test acc (inherited)", "test acc (trained)", "episodes to best",
         "best by reward: val / re-score / test (inherited)"],
        [
            [
                t.task,
                ", ".join(f"{k} <= {v:g}" for k, v in t.budgets.items()),
                t.arch_str,
                t.flops / 1e6,
                t.params / 1e3,
                t.latency_ms,
                t.predicted_latency_ms,
                _pct(t.accuracy),
                _pct(t.rescore),
                _pct(t.accuracy_before_finetune),
                _pct(t.accuracy_after_finetune),
                t.episodes_to_best,
                _naive(t),
            ]
            for t in tasks
        ],
    )
    sections = [("Tasks", summary), ("Reward curves", _curves(results.evaluated))]
    for t in tasks:
        ev = results.evaluated.get(t.task, {})
        body = _arch_picture(t.arch) + (_scatter(t.model_dump(exclude_unset=True), ev) if ev else "")
        body += (f"<p class='meta'>model: {html.escape(str(t.model_path))} &middot; "
                 f"onnx: {html.escape(str(t.onnx_path))}</p>")
        sections.append((f"Task {t.task}", body))
    tot = results.totals
    checks = []
    for name, prof in results.profiles.items():
        try:
            meta = json.loads(Path(prof).read_text()).get("meta", {})
        except (OSError, json.JSONDecodeError):
            continue
        if "check" in meta:
            checks.append([name, prof, meta["check"]["n"], meta["check"]["spearman"]])
    if checks:
        sections.append(("Latency tables", table(["task", "profile", "networks checked", "Spearman"], checks)))
    sections.append(("Run", _run_section(results)))
    meta = (f"{tot.tasks} tasks, {tot.episodes} episodes, search {tot.search_seconds or 0:.0f} s, "
            f"supernet training {tot.supernet_training_seconds:.0f} s")
    out = run_dir / "report.html"
    write_text_atomic(out, page(f"autostruct NAS: {results.name}", sections, meta))
    return out


def _run_section(results: NASResults | CustomNASResults) -> str:
    """Totals, config and versions as written."""
    run = {"totals": results.totals.model_dump(mode="json", exclude_unset=True), "config": results.config,
           "versions": results.versions}
    return "<pre>" + html.escape(json.dumps(run, indent=2)) + "</pre>"


def _naive(t: NASTaskRecord) -> str:
    """The best-by-reward architecture's scores when the re-score selected another one ("same" otherwise)."""
    naive = t.naive_best
    if not naive:
        return "-"
    if t.selected_rank == 1:
        return "same"
    return " / ".join(_pct(naive.get(k)) for k in ("search_score", "rescore", "accuracy_before_finetune"))


def _render_custom(run_dir: Path, results: CustomNASResults) -> Path:
    """The report of a search on a user's space: the evaluator's metrics are the result (nothing is trained)."""
    tasks = results.tasks
    summary = table(
        ["task", "dataset", "budgets", "architecture", "accuracy", "flops", "params", "latency ms", "reward",
         "episodes to best"],
        [
            [t.task, t.dataset, ", ".join(f"{k} <= {v:g}" for k, v in t.budgets.items()) or "-",
             t.arch_str or "none within budget", t.accuracy, t.flops, t.params, t.latency_ms,
             t.reward, t.episodes_to_best]
            for t in tasks
        ],
    )
    sections = [("Tasks", summary), ("Reward curves", _curves(results.evaluated))]
    for t in tasks:
        body = table(["decision", "value"], [[k, v] for k, v in t.arch.items()]) if t.arch else ""
        ev = results.evaluated.get(t.task, {})
        cost = next(iter(t.budgets), None)
        if ev and cost is not None and any(v is not None for v in ev.get(cost, [])):
            body += _scatter({**t.model_dump(exclude_unset=True), "evaluator": results.evaluator}, ev)
        sections.append((f"Task {t.task}", body or "<p>no architecture met the budgets</p>"))
    sections.append(("Space", "<pre>" + html.escape(json.dumps(results.space, indent=2)) + "</pre>"))
    tot = results.totals
    sections.append(("Run", _run_section(results)))
    meta = (f"{tot.tasks} tasks, {tot.episodes} episodes, search {tot.search_seconds or 0:.0f} s, "
            f"evaluator {results.evaluator}")
    out = run_dir / "report.html"
    write_text_atomic(out, page(f"autostruct NAS: {results.name}", sections, meta))
    return out
