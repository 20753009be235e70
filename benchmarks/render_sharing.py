"""Render the sharing benchmark's tables (docs/benchmark-mtacp.md) from the raw files in benchmarks/results/.

Merges every ``benchmarks/results/sharing*.json`` (one seed per file is fine: seeds run side by side or in later
sessions), checks that every searcher has the same evaluations per task, and writes the tables between the
``<!-- sharing:begin -->`` and ``<!-- sharing:end -->`` markers of the doc.

    python benchmarks/render_sharing.py                 # rewrite the section of docs/benchmark-mtacp.md
    python benchmarks/render_sharing.py --print         # print the section
    python benchmarks/render_sharing.py --results 'benchmarks/results/sharing-v2/*.json' --section sharing-v2
    python benchmarks/render_sharing.py --results 'benchmarks/results/sharing-v3/*.json' \\
        --retime 'benchmarks/results/sharing-v3-retime/*.json' --section sharing-v3-retime
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
PER_TASK = ("random", "cem", "ddpg", "single")


def mean_ci(values: list[float]) -> dict[str, Any]:
    x = np.asarray(values, dtype=np.float64)
    out: dict[str, Any] = {"mean": float(x.mean()) if len(x) else float("nan"), "n": len(x), "ci95": None}
    if len(x) >= 2:
        half = float(stats.t.ppf(0.975, len(x) - 1)) * float(x.std(ddof=1)) / math.sqrt(len(x))
        out["ci95"] = [out["mean"] - half, out["mean"] + half]
    return out


def fmt(c: dict[str, Any]) -> str:
    if c["ci95"] is None:
        return f"{c['mean']:+.2f} (n={c['n']})"
    return f"{c['mean']:+.2f} [{c['ci95'][0]:+.2f}, {c['ci95'][1]:+.2f}] (n={c['n']})"


def load(pattern: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Every file's records (later files win on the same (method, n, seed, task)), new-scenario records, headers."""
    recs: dict[tuple, dict[str, Any]] = {}
    new: dict[tuple, dict[str, Any]] = {}
    heads = []
    for path in sorted(glob.glob(pattern)):
        doc = json.loads(Path(path).read_text())
        heads.append({"file": os.path.relpath(path, ROOT),
                      "sizes": doc["sizes"], "complete": doc.get("complete", True), "rl": doc.get("rl", {})})
        for r in doc["records"]:
            recs[(r["method"], r["episodes_per_task"], r["seed"], r["task"])] = r
        for r in doc.get("new_scenario_records", []):
            new[(r["method"], r["episodes_per_task"], r["seed"], r["task"])] = r
    return list(recs.values()), list(new.values()), heads


def by(records: list[dict[str, Any]], method: str, n: int, field: str) -> dict[tuple[int, str], float]:
    return {(r["seed"], r["task"]): r[field] for r in records
            if r["method"] == method and r["episodes_per_task"] == n and r[field] is not None}


def method_seconds(records: list[dict[str, Any]], method: str, n: int, field: str = "wall_s_method") -> dict[int, float]:
    """Per seed: the method's wall time (or ``field``, e.g. ``cpu_s_method``) to ``n`` episodes on every task (the
    same in each of its task records); seeds whose records lack the field are left out."""
    return {r["seed"]: r[field] for r in records
            if r["method"] == method and r["episodes_per_task"] == n and r.get(field) is not None}


def paired(a: dict[tuple[int, str], float], b: dict[tuple[int, str], float]) -> dict[str, Any]:
    keys = sorted(set(a) & set(b))
    return mean_ci([a[k] - b[k] for k in keys])


#: (a)'s bar: the lower bound of the paired 95% CI of (mtacp @n - best per-task @E) after fine-tune, in points.
REACH_BOUND = -0.5


def earliest_reach(records: list[dict[str, Any]], best: str, e: int, seeds: list[int]) -> list[str]:
    """(d) read where MTACP first meets (a)'s bar: the fewest episodes per task n (among those fine-tuned) whose
    paired CI against ``best`` at ``e`` has its lower bound >= :data:`REACH_BOUND`, and its CPU seconds to n over
    ``best``'s to ``e`` per seed. Empty when no n below a third of ``e`` was fine-tuned (the (d) lines above
    already read n = e/3)."""
    ft = "test_accuracy_finetuned"
    tuned = sorted({r["episodes_per_task"] for r in records if r["method"] == "mtacp" and r[ft] is not None})
    if not tuned or tuned[0] >= round(e / 3):
        return []
    ref = by(records, best, e, ft)
    rows = [(n, paired(by(records, "mtacp", n, ft), ref)) for n in tuned]
    reach = next((n for n, c in rows if c["ci95"] is not None and c["ci95"][0] >= REACH_BOUND), None)
    out = ["", f"(d) read at the fewest episodes per task where MTACP meets (a)'s bar (after fine-tune, paired 95% CI "
           f"lower bound >= {REACH_BOUND} pt against {best} @{e}): "
           + ", ".join(f"@{n}: {fmt(c)}" for n, c in rows) + "."]
    if reach is None:
        return [*out, "", "MTACP does not meet the bar at any fine-tuned budget."]
    cpu = cpu_ratios(records, reach, best, e, seeds)
    if cpu:
        out += ["", f"It first does at **{reach}** episodes per task; CPU seconds to {reach} over {best}'s to {e}: "
                + cpu_text(cpu, bold=True) + "."]
    return out


def cpu_ratios(records: list[dict[str, Any]], n: int, ref: str, e: int, seeds: list[int]) -> dict[int, tuple]:
    """Per seed with both: (mtacp's CPU seconds to ``n`` episodes per task, ``ref``'s to ``e``)."""
    mc, bc = method_seconds(records, "mtacp", n, "cpu_s_method"), method_seconds(records, ref, e, "cpu_s_method")
    return {sd: (mc[sd], bc[sd]) for sd in seeds if sd in mc and sd in bc}


def cpu_text(cpu: dict[int, tuple], bold: bool = False) -> str:
    mean = f"{np.mean([m / b for m, b in cpu.values()]):.2f}x"
    return (", ".join(f"seed {sd}: {m:.0f} s / {b:.0f} s = {m / b:.2f}x" for sd, (m, b) in cpu.items())
            + f" (mean {f'**{mean}**' if bold else mean})")


def render(records: list[dict[str, Any]], new: list[dict[str, Any]], heads: list[dict[str, Any]]) -> str:
    e = max(r["episodes_per_task"] for r in records)
    third = round(e / 3)
    methods = [m for m in ("mtacp", "mtacp-plain", *PER_TASK) if any(r["method"] == m for r in records)]
    seeds = sorted({r["seed"] for r in records})
    tasks = sorted({r["task"] for r in records})
    # Equal evaluations: every method has every (seed, task) at every budget it reports.
    counts = {m: {n: len(by(records, m, n, "test_accuracy")) for n in (third, e)} for m in methods}
    lines = [f"Merged from {len(heads)} file(s): " + ", ".join(f"`{h['file']}`" + ("" if h["complete"] else
                                                                                   " (partial)") for h in heads),
             f"; seeds {seeds}, {len(tasks)} tasks, up to {e} episodes per task (evaluations per task are equal "
             f"for every method: the records per method and budget are {counts}).", ""]
    ft = "test_accuracy_finetuned"
    lines += ["| method | episodes per task | test acc. after fine-tune | test acc. without | method's search s (mean per seed) |",
              "| --- | --- | --- | --- | --- |"]
    for m in methods:
        for n in sorted({r["episodes_per_task"] for r in records if r["method"] == m and r[ft] is not None}):
            a, raw = by(records, m, n, ft), by(records, m, n, "test_accuracy")
            if not a:
                continue
            per_seed = np.mean(list(method_seconds(records, m, n).values()))
            lines.append(f"| {m} | {n} | {np.mean(list(a.values())):.2f} | {np.mean(list(raw.values())):.2f} | "
                         f"{per_seed:.0f} |")
    best = max((m for m in PER_TASK if by(records, m, e, ft)), key=lambda m: np.mean(list(by(records, m, e, ft).values())))
    lines += ["", f"Best per-task searcher at {e} episodes per task (after fine-tune): **{best}**.", "",
              "| comparison (points, paired over (seed, task), 95% CI) | after fine-tune | without fine-tune |",
              "| --- | --- | --- |"]
    checks = [
        (f"(a) mtacp @{third} minus {best} @{e}", "mtacp", third),
        (f"regime check: random @{third} minus {best} @{e}", "random", third),
        (f"(b) mtacp @{e} minus {best} @{e}", "mtacp", e),
    ]
    for n in (third, e):  # the ablation: the same engine without the screen (seeds where it ran)
        plain = by(records, "mtacp-plain", n, ft)
        if plain:
            checks.append((f"ablation: mtacp @{n} minus mtacp-plain @{n} (seeds {sorted({k[0] for k in plain})})",
                           "mtacp", n))
    for label, m, n in checks:
        if not by(records, m, n, ft):
            continue
        ref, rn = ("mtacp-plain", n) if label.startswith("ablation") else (best, e)
        lines.append(f"| {label} | {fmt(paired(by(records, m, n, ft), by(records, ref, rn, ft)))} | "
                     f"{fmt(paired(by(records, m, n, 'test_accuracy'), by(records, ref, rn, 'test_accuracy')))} |")
    # Wall time at equal cores (each method on one core): mtacp to E/3 against the best per-task searcher to E.
    mt, bt = method_seconds(records, "mtacp", third), method_seconds(records, best, e)
    ratios = [mt[sd] / bt[sd] for sd in seeds if sd in mt and sd in bt]
    if ratios:
        lines += ["", f"(d) Wall time, one core each: mtacp to {third} episodes per task over {best} to {e} on every task: "
                  f"{', '.join(f'{x:.2f}x' for x in ratios)} (per seed; mean {np.mean(ratios):.2f}x)."]
    cpu = cpu_ratios(records, third, best, e, seeds)
    if cpu:
        lines += ["", "(d) The same in CPU seconds of each method's one-thread process (its time on a core of its own, "
                  "which wall time shows only on a quiet machine): " + cpu_text(cpu) + "."]
    lines += earliest_reach(records, best, e, seeds)
    if best != "ddpg" and by(records, "ddpg", e, ft):  # the classic baseline, when it is not the best
        lines += earliest_reach(records, "ddpg", e, seeds)
    # Curves: mean test accuracy without fine-tune of each method's selection against episodes per task.
    budgets = sorted({r["episodes_per_task"] for r in records})
    lines += ["", "Test accuracy without fine-tune of the selection after n episodes per task (mean over seeds and tasks):",
              "", "| method | " + " | ".join(str(n) for n in budgets) + " | episodes to reach random @" + str(e) + " |",
              "| --- | " + " | ".join("---" for _ in budgets) + " | --- |"]
    target = np.mean(list(by(records, "random", e, "test_accuracy").values())) if by(records, "random", e,
                                                                                      "test_accuracy") else None
    for m in methods:
        means = [np.mean(list(by(records, m, n, "test_accuracy").values())) if by(records, m, n, "test_accuracy")
                 else float("nan") for n in budgets]
        reach = next((n for n, v in zip(budgets, means, strict=True) if target is not None and v >= target), None)
        reach_text = "no random records" if target is None else (str(reach) if reach else f">{e}")
        lines.append(f"| {m} | " + " | ".join(f"{v:.2f}" for v in means) + f" | {reach_text} |")
    # Per task, after fine-tune.
    lines += ["", "Per task, test accuracy after fine-tune (mean over seeds):", "",
              "| task | " + " | ".join(f"{m} @{n}" for m in methods for n in (third, e) if by(records, m, n, ft)) + " |",
              "| --- | " + " | ".join("---" for m in methods for n in (third, e) if by(records, m, n, ft)) + " |"]
    for t in tasks:
        cells = []
        for m in methods:
            for n in (third, e):
                a = by(records, m, n, ft)
                if a:
                    v = [a[(sd, t)] for sd in seeds if (sd, t) in a]
                    cells.append(f"{np.mean(v):.2f}" if v else "-")
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    if new:
        lines += ["", "New scenarios (no search in the run; test accuracy after fine-tune, mean over seeds and tasks):",
                  "", "| method | evaluations | test acc. after fine-tune | without |", "| --- | --- | --- | --- |"]
        nm = sorted({r["method"] for r in new}, key=lambda m: (min(r["evaluations"] for r in new if r["method"] == m), m))
        for m in nm:
            rs = [r for r in new if r["method"] == m]
            lines.append(f"| {m} | {rs[0]['evaluations']} | {np.mean([r[ft] for r in rs]):.2f} | "
                         f"{np.mean([r['test_accuracy'] for r in rs]):.2f} |")

        def nb(method: str, field: str) -> dict[tuple[int, str], float]:
            return {(r["seed"], r["task"]): r[field] for r in new if r["method"] == method}

        lines += ["", "| (c) paired, points, 95% CI | after fine-tune | without |", "| --- | --- | --- |"]
        few = next((m for m in nm if m.startswith("few-shot")), None)
        rnd = max((m for m in nm if m.startswith("random-")), key=lambda m: int(m.split("-")[1]), default=None)
        for a in ("zero-shot", few):
            for b in (rnd, "nearest-task", "uniform"):
                if a and b:
                    lines.append(f"| {a} minus {b} | {fmt(paired(nb(a, ft), nb(b, ft)))} | "
                                 f"{fmt(paired(nb(a, 'test_accuracy'), nb(b, 'test_accuracy')))} |")
        lines += ["", "Per new scenario (after fine-tune, mean over seeds):", "",
                  "| scenario | " + " | ".join(nm) + " |", "| --- | " + " | ".join("---" for _ in nm) + " |"]
        for t in sorted({r["task"] for r in new}):
            lines.append(f"| {t} | " + " | ".join(
                f"{np.mean([r[ft] for r in new if r['method'] == m and r['task'] == t]):.2f}" for m in nm) + " |")
    return "\n".join(lines)


def same_selections(records: list[dict[str, Any]], others: list[dict[str, Any]]) -> tuple[int, int]:
    """Of ``others`` whose (method, n, seed, task) ``records`` also hold: how many select the same channels, and
    how many there are."""
    orig = {(r["method"], r["episodes_per_task"], r["seed"], r["task"]): r for r in records}
    both = [(orig[k], r) for r in others if (k := (r["method"], r["episodes_per_task"], r["seed"], r["task"])) in orig]
    return sum(1 for a, b in both if a["channels"] == b["channels"]), len(both)


def render_retime(records: list[dict[str, Any]], retimed: list[dict[str, Any]], heads: list[dict[str, Any]],
                  best: str = "cem", control: list[dict[str, Any]] | None = None) -> str:
    """(d) from a re-timing: the same seeds searched again by ``mtacp`` and ``best`` (without fine-tune, run side
    by side so both see the same load), CPU seconds taken from those runs and accuracies from ``records``.

    The re-timed selections must be the ones ``records`` hold (same channels per (method, n, seed, task)): the
    re-run changed the cost of a search, not what it found; the count of identical selections is printed.
    ``control``: random search's selections fine-tuned at the budgets MTACP's are (a bar that random search
    meets as early does not tell searchers apart there)."""
    e = max(r["episodes_per_task"] for r in records)
    seeds = sorted({r["seed"] for r in retimed})
    same, total = same_selections(records, retimed)
    lines = ["Re-timed from " + ", ".join(f"`{h['file']}`" for h in heads) + f"; seeds {seeds}.", "",
             f"Selections identical to the accuracy records' (same channels per method, budget, seed and task): "
             f"**{same} of {total}**.", ""]
    ft = "test_accuracy_finetuned"
    tuned = sorted({r["episodes_per_task"] for r in records if r["method"] == "mtacp" and r[ft] is not None})
    ref = by(records, best, e, ft)
    lines += [f"| mtacp @n | after fine-tune minus {best} @{e} (paired 95% CI, accuracy records) | "
              f"CPU s to n over {best}'s to {e}, per re-timed seed | mean |", "| --- | --- | --- | --- |"]
    for n in tuned:
        c = paired(by(records, "mtacp", n, ft), ref)
        cpu = cpu_ratios(retimed, n, best, e, seeds)
        meets = c["ci95"] is not None and c["ci95"][0] >= REACH_BOUND
        mean = f"{np.mean([m / b for m, b in cpu.values()]):.2f}x" if cpu else "-"
        lines.append(f"| {n}{' (meets the bar)' if meets else ''} | {fmt(c)} | "
                     + (", ".join(f"{sd}: {m:.0f} / {b:.0f} s" for sd, (m, b) in cpu.items()) or "-")
                     + f" | {f'**{mean}**' if meets else mean} |")
    if control:
        same, total = same_selections(records, control)
        lines += ["", f"Control: random search's selections at the same budgets, fine-tuned alike (its first n episodes "
                  f"do not depend on the total: of its selections at budgets the accuracy records also test, "
                  f"{same} of {total} are identical to theirs):", "",
                  f"| random @n | after fine-tune minus {best} @{e} (paired 95% CI) | meets the bar |", "| --- | --- | --- |"]
        for n in sorted({r["episodes_per_task"] for r in control if r[ft] is not None}):
            c = paired(by(control, "random", n, ft), ref)
            meets = c["ci95"] is not None and c["ci95"][0] >= REACH_BOUND
            lines.append(f"| {n} | {fmt(c)} | {'yes' if meets else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "sharing*.json"))
    p.add_argument("--doc", default=str(ROOT / "docs" / "benchmark-mtacp.md"))
    p.add_argument("--print", action="store_true", help="print the section instead of writing the doc")
    p.add_argument("--section", default="sharing",
                   help="the doc's markers <!-- SECTION:begin --> / <!-- SECTION:end --> (a rerun on other base "
                        "models or another host gets its own section: its records must not pair with these)")
    p.add_argument("--retime", default=None,
                   help="files of a re-timing (mtacp and the best per-task searcher searched again side by side, "
                        "no fine-tune): render (d) with their CPU seconds and --results' accuracies")
    p.add_argument("--control", default=None,
                   help="with --retime: random search's runs fine-tuned at MTACP's budgets (the bar's control)")
    args = p.parse_args(argv)
    begin, end = f"<!-- {args.section}:begin -->", f"<!-- {args.section}:end -->"
    records, new, heads = load(args.results)
    if not records:
        print(f"no records in {args.results}", file=sys.stderr)
        return 2
    if args.retime:
        retimed, _, retime_heads = load(args.retime)
        if not retimed:
            print(f"no records in {args.retime}", file=sys.stderr)
            return 2
        control = load(args.control)[0] if args.control else None
        section = render_retime(records, retimed, retime_heads, control=control)
    else:
        section = render(records, new, heads)
    if args.print:
        print(section)
        return 0
    doc = Path(args.doc)
    text = doc.read_text()
    if begin not in text or end not in text:
        print(f"{doc} has no {begin} ... {end} section", file=sys.stderr)
        return 2
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{begin}\n{section}\n{end}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
