"""Render docs/benchmark-nas.md's tables from benchmarks/results/nas-standalone*.json and nas-ranking*.json.

Merges every ``nas-standalone*.json`` (one per session is fine; :func:`nas_standalone.merge` refuses files of
other settings) and writes the tables between ``<!-- nas-standalone:begin -->`` and ``<!-- nas-standalone:end -->``.

    python benchmarks/render_nas_standalone.py            # rewrite the section of docs/benchmark-nas.md
    python benchmarks/render_nas_standalone.py --print    # print it
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nas_standalone  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- nas-standalone:begin -->", "<!-- nas-standalone:end -->"
ORDER = ("mtnas", "random", "evolution", "mobilenetv2-width", "pruned-resnet20")


def _ci(m: dict[str, Any]) -> str:
    half = m["ci95_over_search_seeds"]
    return f"{m['mean']:.2f}" + (f" ± {half:.2f}" if half is not None else "")


def ranking_table(rank: dict[str, Any] | None) -> list[str]:
    if not rank:
        return ["No nas-ranking.json yet."]
    rc, setup, recipe = rank["rank_correlation"], rank["setup"], rank["recipe"]
    sn = rank["supernet"].get("metrics", {})

    def tau(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    sampling = {"uniform": "sampled uniformly per decision",
                "flops-stratified": "spread evenly over log FLOPs from the space's smallest to its largest"}[
        rank.get("arch_sampling", "uniform")]
    images = ("the whole training split" if recipe["train_size"] is None
              else f"a fixed {recipe['train_size']}-image subset")
    lines = [
        f"Architectures {sampling} (seed {rank['arch_seed']}). "
        f"Supernet `{setup['space']}` on {setup['dataset']}: {sn.get('epochs', setup['supernet_epochs'])} epochs, "
        f"{sn.get('steps', '?')} steps on {sn.get('train_images', '?')} training images, sampling "
        f"`{setup['supernet_sampling']}`, distillation {setup['supernet_distill']}; scores on {setup['val_size']} "
        f"hold-out images after BN recalibration on {setup['recal_batches']} x 64 images. Stand-alone recipe: "
        f"{recipe['epochs']} epoch(s) on {images}, lr {recipe['lr']}, batch "
        f"{recipe['batch_size']}, tested on {recipe['test_size'] or 'all'} test images, train seed 0.",
        "",
        "| architectures | Kendall tau (supernet score vs stand-alone test accuracy) |",
        "| --- | --- |",
        f"| all {rc['n_archs']} (FLOPs {rank['archs'] and min(r['flops'] for r in rank['archs']) / 1e6:.2f}M-"
        f"{rank['archs'] and max(r['flops'] for r in rank['archs']) / 1e6:.2f}M) | **{tau(rc['kendall_tau'])}** |",
    ]
    for half in ("lower_flops_half", "upper_flops_half"):
        h = rc[half]
        lines.append(f"| {half.replace('_', ' ')} ({h['n_archs']}, {h['flops_range'][0] / 1e6:.2f}M-"
                     f"{h['flops_range'][1] / 1e6:.2f}M) | {tau(h['kendall_tau'])} |")
    lines.append(f"| for comparison: FLOPs alone vs stand-alone accuracy, all {rc['n_archs']} | "
                 f"{tau(rc['kendall_tau_flops_vs_accuracy'])} |")
    rows = [r for r in rank["archs"] if r["supernet_score"] is not None and "test_accuracy" in r]
    accs = [r["test_accuracy"] for r in rows]
    scores = [r["supernet_score"] for r in rows]
    lines += ["", f"Stand-alone test accuracy of the sampled nets: {min(accs):.2f}-{max(accs):.2f}%; supernet scores "
              f"{min(scores):.2f}-{max(scores):.2f}%.", "", "<details><summary>Every architecture</summary>", "",
              "| MFLOPs | supernet score | stand-alone test accuracy | architecture |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['flops'] / 1e6:.2f} | {r['supernet_score']:.2f} | {r['test_accuracy']:.2f} | `{r['arch_str']}` |"
              for r in sorted(rows, key=lambda r: r["flops"])]
    return [*lines, "", "</details>"]


def standalone_table(doc: dict[str, Any]) -> list[str]:
    per_task = doc["summary"]["per_task"]
    lines = ["| task | method | stand-alone test acc. (%), mean ± 95% CI over search seeds | search seeds | "
             "records | mean FLOPs | mean supernet score (%) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for task in sorted(per_task):
        for m in sorted(per_task[task], key=lambda m: ORDER.index(m) if m in ORDER else 99):
            s = per_task[task][m]
            scores = [r["supernet_score"] for r in doc["records"] if r["task"] == task and r["method"] == m
                      and r["supernet_score"] is not None]
            sc = f"{sum(scores) / len(scores):.2f}" if scores else "-"
            lines.append(f"| {task} | {m} | {_ci(s)} | {s['search_seeds'] if m in nas_standalone.SEARCH_METHODS else '-'}"
                         f" | {s['records']} | {s['mean_flops'] / 1e6:.2f}M | {sc} |")
    if doc["summary"]["paired"]:
        lines += ["", "Paired differences over (search seed, task), each the mean over train seeds:", "",
                  "| comparison | mean (pt) | 95% CI | better / worse of pairs |", "| --- | --- | --- | --- |"]
    for name, p in doc["summary"]["paired"].items():
        lines.append(f"| {name.replace('_minus_', ' - ')} | {p['mean_diff']:+.2f} | [{p['ci95'][0]:+.2f}, "
                     f"{p['ci95'][1]:+.2f}] | {p['better']} / {p['worse']} of {p['seeds']} |")
    meta = doc["meta"]
    lines += ["", f"Evaluations per task and search seed: {meta['bench']['evals']}; search seeds "
              f"{sorted({r['search_seed'] for r in doc['records'] if r['search_seed'] is not None})}; train seeds "
              f"{sorted({r['train_seed'] for r in doc['records']})}. References not run: "
              f"{', '.join(meta['references_not_run']) or 'none'}."]
    if meta.get("cut"):
        lines.append(f"Cut from the full protocol (meta.cut): {meta['cut']}.")
    if doc.get("partial"):
        lines.append("**Partial run**: the file was written before the run finished.")
    return lines


def deploy_table(doc: dict[str, Any]) -> list[str]:
    """A run of found nets against the references a user would otherwise deploy (``nas-deploy*.json``)."""
    recipe = doc["meta"]["bench"]["recipe"]
    images = "the whole training split" if recipe["train_size"] is None else f"{recipe['train_size']} images"
    lines = [f"Stand-alone recipe: {recipe['epochs']} epoch(s) on {images}, lr {recipe['lr']}; tested on "
             f"{recipe['test_size'] or 'all'} test images.", ""]
    for r in doc["records"]:
        if r["method"] == "pruned-resnet20":
            src = r["source"]
            lines += [f"`pruned-resnet20` on {r['task']}: task `{src['task']}` of `{src['run']}` ({src['model']} width "
                      f"{src['width']}, base {src['base_accuracy']:.2f}% at {src['base_flops'] / 1e6:.2f}M FLOPs), "
                      f"trained {src['base_epochs']} base epoch(s) + {src['finetune_epochs']} fine-tune epoch(s) x "
                      f"{src['finetune_cycles']} cycle(s) = **{r['training_epochs']} epochs**, against the recipe's "
                      f"{recipe['epochs']}; one train seed (the run's).", ""]
    return [*lines, *standalone_table(doc)]


def render(standalone: dict[str, Any] | None, ranks: dict[str, dict[str, Any] | None],
           deploys: dict[str, dict[str, Any]] | None = None) -> str:
    out = []
    for name, rank in ranks.items() or {"nas-ranking.json": None}.items():
        partial = " (partial: the run was stopped before all architectures)" if rank and rank.get("partial") else ""
        out += [f"### Supernet ranking (`benchmarks/results/{name}`){partial}", "", *ranking_table(rank), ""]
    out += ["### Selections trained stand-alone (`benchmarks/results/nas-standalone*.json`)", ""]
    out += standalone_table(standalone) if standalone else ["No nas-standalone*.json yet."]
    for name, doc in (deploys or {}).items():
        out += ["", f"### Found nets against what a user would deploy (`benchmarks/results/{name}`)", "",
                *deploy_table(doc)]
    return "\n".join(out)


def load_standalone(pattern: str) -> dict[str, Any] | None:
    docs = [json.loads(Path(p).read_text()) for p in sorted(glob.glob(pattern))]
    if not docs:
        return None
    merged = nas_standalone.merge(docs)
    merged["partial"] = any(d.get("partial") for d in docs)
    return merged


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmark-nas.md")
    ap.add_argument("--print", action="store_true")
    args = ap.parse_args(argv)
    ranks = {}
    for path in sorted(args.results.glob("nas-ranking*.json")):
        rank = json.loads(path.read_text())
        if "rank_correlation" not in rank:  # a stopped run: the correlation of what it finished
            done = [r for r in rank["archs"] if r["supernet_score"] is not None and "test_accuracy" in r]
            rank["rank_correlation"] = nas_standalone.nas_ranking.summarize(done)
        ranks[path.name] = rank
    deploys = {path.name: json.loads(path.read_text()) for path in sorted(args.results.glob("nas-deploy*.json"))}
    section = render(load_standalone(str(args.results / "nas-standalone*.json")), ranks, deploys)
    if args.print:
        print(section)
        return 0
    text = args.doc.read_text()
    if BEGIN not in text or END not in text:
        print(f"{args.doc} has no {BEGIN} ... {END} section", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    args.doc.write_text(f"{head}{BEGIN}\n{section}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
