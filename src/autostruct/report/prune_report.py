"""The MTACP run report: reads ``results.json`` of a run folder (through its schema,
:class:`autostruct.results.PruneResults`) and writes ``report.html``."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from autostruct.errors import AutostructError
from autostruct.report.html import figure_to_img, page, table
from autostruct.results import PruneResults, PruneTaskRecord
from autostruct.results import load_results as _load
from autostruct.utils.io import write_text_atomic


def load_results(run_dir: str | Path) -> PruneResults:
    """``run_dir/results.json`` of a pruning run, validated (an error names a missing or malformed field)."""
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise AutostructError(
            f"'{run_dir}' has no results.json. Pass the output_dir of a finished `autostruct prune` run."
        )
    return _load(run_dir, PruneResults)  # type: ignore[return-value]  # validated as PruneResults


def _acc_vs_flops(tasks: list[PruneTaskRecord]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[PruneTaskRecord]] = {}
    for t in tasks:
        groups.setdefault(t.dataset_label, []).append(t)
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for ax, (label, ts) in zip(axes[0], groups.items(), strict=True):
        ts = sorted(ts, key=lambda t: t.flops / t.base_flops)
        base = ts[0]
        ax.scatter([base.base_flops / 1e6], [100 * base.base_accuracy], marker="*", s=160, c="k", label="base")
        ax.plot([t.flops / 1e6 for t in ts], [100 * t.accuracy_before_finetune for t in ts], "o--",
                c="tab:blue", label="MTACP, no fine-tune")
        after = [t.accuracy_after_finetune for t in ts]
        if all(a is not None for a in after):
            ax.plot([t.flops / 1e6 for t in ts], [100 * a for a in after], "o-",  # type: ignore[operator]
                    c="tab:blue", label="MTACP, fine-tuned")
        uni = [t.uniform for t in ts if t.uniform is not None]
        if uni:
            ax.plot([u.flops / 1e6 for u in uni], [100 * u.accuracy_before_finetune for u in uni], "s--",
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
    if any(curves.values()):
        ax.legend(fontsize=8)
    return figure_to_img(fig, "reward curves")


def _keep_ratios(tasks: list[PruneTaskRecord]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    for t in tasks:
        ax.plot(range(len(t.keep_ratios)), t.keep_ratios, marker="o", ms=3, label=t.task)
    ax.set_xlabel("prunable group (forward order)")
    ax.set_ylabel("keep ratio")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure_to_img(fig, "per-layer keep ratios")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file; [] when it is missing; a torn or bad line is skipped."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def learning_window(n: int) -> int:
    """Episodes per window of the sampled-reward curve: about 10% of the task's episodes, at least 5."""
    return max(5, round(0.1 * n))


def window_means(rewards: list[float], window: int) -> tuple[list[int], list[float]]:
    """Means of consecutive, non-overlapping windows (the last may be shorter), at their last episode count."""
    xs, ys = [], []
    for i in range(0, len(rewards), window):
        chunk = rewards[i : i + window]
        xs.append(i + len(chunk))
        ys.append(sum(chunk) / len(chunk))
    return xs, ys


def _learning_data(run_dir: Path, res: PruneResults) -> dict[int, dict[str, Any]]:
    """Per task id: sampled rewards in order, greedy points ``(task episodes, reward)`` and where they came from."""
    search = run_dir / "search"
    tasks = res.tasks
    data: dict[int, dict[str, Any]] = {t.task_id: {"rewards": [], "greedy": [], "greedy_source": None} for t in tasks}
    episodes = _read_jsonl(search / "episodes.jsonl")
    for e in sorted(episodes, key=lambda e: e.get("episode_index", 0)):
        if e.get("task_id") in data and e.get("reward") is not None:
            data[e["task_id"]]["rewards"].append(float(e["reward"]))
    for t in tasks:
        d = data[t.task_id]
        if not d["rewards"] and res.curves.get(t.task):
            d["rewards"] = [float(r) for r in res.curves[t.task]]
    for g in _read_jsonl(search / "greedy.jsonl"):
        n = (g.get("info") or {}).get("task_episodes")
        if g.get("task_id") in data and n is not None and g.get("reward") is not None:
            data[g["task_id"]]["greedy"].append((int(n), float(g["reward"])))
            data[g["task_id"]]["greedy_source"] = "search/greedy.jsonl"
    num_tasks = max(len(tasks), 1)
    for m in _read_jsonl(search / "metrics.jsonl"):
        for tid, d in data.items():
            v = m.get(f"greedy/task_{tid}")
            if d["greedy_source"] != "search/greedy.jsonl" and v is not None and m.get("episodes") is not None:
                # metrics count episodes over all tasks; the engine gives every task the same share
                d["greedy"].append((round(float(m["episodes"]) / num_tasks), float(v)))
                d["greedy_source"] = "search/metrics.jsonl (x: all episodes / tasks)"
    for d in data.values():
        d["greedy"].sort()
    return data


def _learning_figure(t: PruneTaskRecord, d: dict[str, Any], window: int) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rewards = d["rewards"]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    xs, ys = window_means(rewards, window)
    ax.plot(xs, ys, "o-", c="tab:blue", label=f"mean sampled reward (windows of {window})")
    running = [max(rewards[: i + 1]) for i in range(len(rewards))]
    ax.plot(range(1, len(rewards) + 1), running, c="tab:green", lw=1.8, label="search: best so far")
    if d["greedy"]:
        gx, gy = zip(*d["greedy"], strict=True)
        ax.plot(gx, gy, "s-", c="tab:purple", ms=4, label="greedy policy")
    final = t.greedy.search_score if t.greedy else None
    if final is not None:
        ax.plot([len(rewards)], [final], "*", c="tab:purple", ms=12, label="greedy policy after the search")
    if t.random_baseline and t.random_baseline.expected_best_of_n:
        ref = t.random_baseline.expected_best_of_n
        ax.plot(range(1, len(ref) + 1), ref, "--", c="tab:orange",
                label=f"random search: expected best of n ({t.random_baseline.episodes} samples)")
    ax.set_title(t.task)
    ax.set_xlabel("episodes of the task")
    ax.set_ylabel("reward (search split)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure_to_img(fig, f"learning curves of {t.task}")


def _learning_table(t: PruneTaskRecord, d: dict[str, Any], window: int) -> str:
    def num(v: Any) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    def pct(v: Any) -> str:
        return "n/a" if v is None else f"{100 * v:.2f}%"

    rewards = d["rewards"]
    n = len(rewards)
    first = sum(rewards[:window]) / len(rewards[:window])
    last = sum(rewards[-window:]) / len(rewards[-window:])
    greedy_end = t.greedy.search_score if t.greedy else None
    greedy_note = "after the search (results.json)"
    if greedy_end is None and d["greedy"]:
        greedy_end, greedy_note = d["greedy"][-1][1], f"last point of {d['greedy_source']}"
    rb = t.random_baseline
    ref = rb.expected_best_of_n if rb else []
    random_at_n = ref[n - 1] if len(ref) >= n else None
    random_note = (f"E[best of {n}] from {rb.episodes} random episodes" if rb and random_at_n is not None
                   else "not run (set search.random_episodes > 0)")
    naive = t.naive_best
    rows = [
        ["episodes of this task", str(n), f"windows of {window}"],
        ["mean sampled reward: first / last window", f"{num(first)} / {num(last)}", f"change {last - first:+.4f}"],
        ["greedy policy's reward at the end", num(greedy_end), greedy_note if greedy_end is not None else
         "not recorded"],
        ["search best vs random search at equal n", f"{num(max(rewards))} / {num(random_at_n)}", random_note],
        ["selected strategy: search score / re-score / test accuracy",
         f"{num(t.search_score)} / {num(t.rescore)} / {pct(t.test_accuracy)}",
         "rank {} of top {}".format((t.selection or {}).get("selected_rank", "?"), (t.selection or {}).get("top_k", "?"))],
        ["naive best (highest search score): search score / re-score / test accuracy",
         f"{num(naive and naive.search_score)} / {num(naive and naive.rescore)} / "
         f"{pct(naive and naive.test_accuracy)}",
         "test accuracies without fine-tune"],
        ["greedy strategy: test accuracy", pct(t.greedy and t.greedy.test_accuracy), "without fine-tune"],
    ]
    return table(["", "value", "note"], rows)


_LEARNING_INTRO = (
    "<p>Per task: the mean reward of the sampled episodes per window (rising if the policy learns), the greedy "
    "policy's reward during the search (when the engine logged it), the search's best so far, and what random "
    "search is expected to reach after as many episodes (from <code>search.random_episodes</code> random "
    "episodes). The selected strategy is the best re-score among the top-k search scores; the naive best "
    "(highest search score) shows how much the search score overstates its test accuracy.</p>"
)


def learning_section(run_dir: str | Path, res: PruneResults) -> str:
    """The "Is the agent learning?" section: one figure and one table per task (missing metrics are said so)."""
    data = _learning_data(Path(run_dir), res)
    parts = [_LEARNING_INTRO]
    for t in res.tasks:
        parts.append(f"<h3>{html.escape(t.task)}</h3>")
        d = data.get(t.task_id)
        if d is None or not d["rewards"]:
            parts.append("<p>No learning metrics for this task: search/episodes.jsonl and the curves in "
                         "results.json hold none of its episodes.</p>")
            continue
        window = learning_window(len(d["rewards"]))
        parts.append(_learning_figure(t, d, window))
        if not d["greedy"]:
            parts.append("<p>No greedy rollouts were logged during the search (no search/greedy.jsonl, no "
                         "greedy/task_* metrics): the greedy curve during the search is missing.</p>")
        parts.append(_learning_table(t, d, window))
    return "\n".join(parts)


def render_prune_report(run_dir: str | Path) -> Path:
    """Render ``report.html`` in ``run_dir`` from its ``results.json``; returns the path."""
    res = load_results(run_dir)
    tasks = res.tasks
    if not tasks:
        raise AutostructError(f"results.json in '{run_dir}' lists no tasks; nothing to report.")

    def pct(v: Any) -> Any:
        return None if v is None else round(100 * v, 2)

    rows = [
        [
            t.task, t.ratio if t.ratio is not None else (
                f"{t.latency_ratio:g}x base latency ({t.latency_budget_ms:.4g} ms)" if t.latency_ratio is not None
                else f"{t.latency_budget_ms:g} ms"),
            pct(t.base_accuracy), pct(t.accuracy_before_finetune),
            pct(t.accuracy_after_finetune), pct(t.uniform.accuracy_before_finetune if t.uniform else None),
            round(t.flops / t.base_flops, 3),
            None if t.flops_vs_budget is None else round(t.flops_vs_budget, 3), t.params, t.round_to,
            t.base_latency_ms, t.latency_ms,
            None if t.speedup is None else round(t.speedup, 2),  # base / pruned median, interleaved runs
            None if t.predicted_latency_ms is None else round(t.predicted_latency_ms, 4),
            t.episodes_to_best,
        ]
        for t in tasks
    ]
    results_table = table(
        ["task", "budget", "base acc %", "acc no-FT %", "acc FT %", "uniform no-FT %", "FLOPs / base",
         "FLOPs / budget", "params", "round to", "base latency ms", "latency ms", "speed-up x", "table ms",
         "episodes to best"],
        rows,
    )
    warnings = [t.budget_warning for t in tasks if t.budget_warning]
    if warnings:  # said before the search too; here so that nobody reads the table without it
        results_table = "".join(f"<p><b>Budget not spent:</b> {html.escape(w)}</p>" for w in warnings) + results_table
    totals = res.totals.model_dump(mode="json", exclude_unset=True)
    sections = [
        ("Results per task (test split)", results_table),
        ("Accuracy vs FLOPs", _acc_vs_flops(tasks)),
        ("Reward curves", _reward_curves(res.curves)),
        ("Is the agent learning?", learning_section(run_dir, res)),
        ("Per-layer keep ratios", _keep_ratios(tasks)),
        ("Totals", "<pre>" + json.dumps(totals, indent=2) + "</pre>"),
        ("Config", "<pre>" + json.dumps(res.config, indent=2) + "</pre>"),
    ]
    meta = " · ".join(f"{k} {v}" for k, v in res.versions.items())
    out = Path(run_dir) / "report.html"
    write_text_atomic(out, page(f"autostruct prune: {res.name}", sections, meta))
    return out
