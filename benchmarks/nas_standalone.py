"""NAS winners judged by training them: each method's selection per task, trained stand-alone over seeds.

    python benchmarks/nas_standalone.py --out benchmarks/results/nas-standalone-seed0-2.json      # ~1 h, 1 core
    python benchmarks/nas_standalone.py --search-seeds 3,4 --out runs/nas-standalone-seed3-4.json
    python benchmarks/nas_standalone.py --merge a.json b.json --out benchmarks/results/nas-standalone.json
    python benchmarks/nas_standalone.py --tiny --out /tmp/nas-standalone-tiny.json                 # seconds

Steps:

1. Searches (``benchmarks/mtnas_vs_baselines.py``'s runners, unchanged): on the supernet of
   :mod:`nas_ranking` (same setup, same cache entry), ``mtnas`` (one controller for all tasks), ``random`` and
   ``evolution`` (regularized, one search per task) each take exactly ``--evals`` evaluations per task and search
   seed; each selects per task by re-scoring its ``rescore_top_k`` best architectures on hold-out images no
   reward saw (what ``autostruct nas`` does).
2. Every selection is trained from scratch with :class:`nas_ranking.Recipe` for each train seed and tested.
   Training runs train seed by train seed, so a stopped run holds complete seeds first; ``--resume`` skips
   records ``--out`` already has.
3. References at each task's FLOPs budget: ``mobilenetv2-width`` (the zoo's MobileNetV2, widest width within
   the budget), trained with the same recipe; ``pruned-resnet20`` (with ``--pruned-run RUN``): the task of an
   ``autostruct prune`` run on the same dataset with the most FLOPs within the budget, as that run pruned and
   fine-tuned it (its base training plus fine-tune is its training budget, recorded as ``training_epochs``; the
   recipe should spend as many epochs on the whole training split, e.g. ``--epochs 4 --train-size 0`` beside
   ``configs/prune-full.yaml``'s 2 + 2). It is read, not retrained: one train seed, the run's.

Output (the contract of issue 22): ``records``, one per (method, search_seed, task, train_seed) with
``test_accuracy`` (stand-alone, percent), ``supernet_score`` (the selection's re-score accuracy with supernet
weights, percent; None for references), ``flops`` and ``evaluations``; ``rank_correlation`` copied from a
:mod:`nas_ranking` JSON when ``--ranking`` names one; ``meta`` with every setting and what was cut.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmark scripts, however this one is loaded
import mtnas_vs_baselines as mvb  # noqa: E402
import nas_ranking  # noqa: E402

SEARCH_METHODS = ("mtnas", "random", "evolution")
REFERENCES = ("mobilenetv2-width", "pruned-resnet20")
IMPLEMENTED_REFERENCES = ("mobilenetv2-width",)  # pruned-resnet20 runs only with --pruned-run


@dataclasses.dataclass(frozen=True)
class Bench:
    """Everything a run's numbers depend on besides the seeds."""

    setup: nas_ranking.Setup = nas_ranking.Setup()
    recipe: nas_ranking.Recipe = nas_ranking.Recipe()
    #: (dataset, FLOPs budget): near the small end of the space's ~0.7-12 MFLOPs, and one below its median.
    tasks: tuple[tuple[str, float], ...] = (("fashion-mnist", 1.5e6), ("fashion-mnist", 3e6))
    evals: int = 100
    #: The searches' reward scores this many of the hold-out's images, and the selection re-scores its top-k
    #: on the rest (``setup.holdout - reward_images``), so the supernet is the one nas_ranking trained.
    reward_images: int = 500
    rescore_top_k: int = 5
    search_recal_batches: int = 4
    #: Test images behind the searches' own (supernet) learning curves; not the stand-alone test.
    curve_test_images: int = 500


TINY = Bench(setup=nas_ranking.TINY_SETUP, recipe=nas_ranking.TINY_RECIPE,
             tasks=(("digits", 0.9e6), ("digits", 1.3e6)), evals=6, reward_images=150, rescore_top_k=2,
             search_recal_batches=2, curve_test_images=100)


def preset(b: Bench, seeds: Sequence[int]) -> mvb.Preset:
    """The searches' settings in mtnas_vs_baselines' terms (its supernet_space builds envs and re-scorers)."""
    s = b.setup
    return mvb.Preset("supernet", evals=b.evals, seeds=tuple(seeds), tasks=b.tasks, val_size=b.reward_images,
                      test_size=b.curve_test_images, recal_batches=b.search_recal_batches,
                      supernet_epochs=s.supernet_epochs, supernet_train_size=s.supernet_train_size,
                      supernet_batch_size=s.supernet_batch_size, rescore_top_k=b.rescore_top_k,
                      rescore_size=s.holdout - b.reward_images, space_name=s.space,
                      supernet_sampling=s.supernet_sampling, supernet_distill=s.supernet_distill,
                      supernet_min_steps=s.supernet_min_steps)


def search_selections(b: Bench, space: mvb.Space, methods: Sequence[str], seeds: Sequence[int]
                      ) -> list[dict[str, Any]]:
    """One selection per (method, search seed, task): its architecture, supernet scores and evaluations."""
    out = []
    for seed in seeds:
        for m in methods:
            t0 = time.monotonic()
            if m == "mtnas":
                per_task, _ = mvb.run_mtnas(space, b.evals, seed)
            else:
                per_task = [mvb.run_single(m, space.make_env(i, seed), b.evals, seed) for i in range(len(space.names))]
            for i, (rewards, records) in enumerate(per_task):
                assert len(rewards) == b.evals, f"{m} seed {seed} task {i}: {len(rewards)} evaluations, not {b.evals}"
                run = mvb.summarize_run(space, i, rewards, records, 10, b.rescore_top_k)
                arch = mvb.selected_arch(run)
                pick = next(r for r in records if r["arch"] == arch)
                out.append({"method": m, "search_seed": seed, "task": space.names[i], "arch": arch,
                            "arch_str": pick["arch_str"], "flops": pick["flops"], "evaluations": len(rewards),
                            "supernet_score": round(100 * run["rescored_best_so_far_rescore_accuracy"][-1], 3),
                            "search_reward_accuracy": round(100 * pick["accuracy"], 3),
                            "distinct_archs": run["distinct_archs"],
                            "search_seconds": round(time.monotonic() - t0, 1)})
                print(json.dumps(out[-1]), flush=True)
    return out


def reference_models(b: Bench, loaded: nas_ranking.Loaded, names: Sequence[str]) -> list[dict[str, Any]]:
    """One reference per (name, task): how to build it at the task's FLOPs budget."""
    out = []
    for ref in names:
        if ref not in IMPLEMENTED_REFERENCES:  # pruned-resnet20: read from --pruned-run, not built here
            continue
        for dataset, budget in b.tasks:
            width, flops = mvb.widest_within("mobilenetv2", loaded.data, budget)
            out.append({"method": ref, "search_seed": None, "task": task_name(dataset, budget), "width": width,
                        "flops": flops, "evaluations": 0, "supernet_score": None})
    return out


def pruned_reference(run: Path, dataset: str, budget: float) -> dict[str, Any] | None:
    """The record of ``run``'s (an ``autostruct prune`` output folder) task on ``dataset`` (all its classes) with the
    most FLOPs within ``budget``, None when it has none: test accuracy after its fine-tune, FLOPs, episodes, and
    its training budget in epochs over the training split (base training plus fine-tune epochs x cycles)."""
    res = json.loads((Path(run) / "results.json").read_text())
    fits = [t for t in res["tasks"] if t["dataset"] == dataset and not t.get("classes") and t["flops"] <= budget]
    if not fits:
        return None
    t = max(fits, key=lambda t: t["flops"])
    base_epochs = res["config"]["base_training"]["epochs"]
    return {"method": "pruned-resnet20", "search_seed": None, "task": task_name(dataset, budget),
            "train_seed": res["config"]["seed"], "test_accuracy": round(100 * t["accuracy_after_finetune"], 3),
            "supernet_score": None, "flops": t["flops"], "evaluations": t["episodes"],  # the task's share of the search
            "training_epochs": base_epochs + t["finetune_epochs"] * t.get("finetune_cycles", 1),
            "source": {"run": str(run), "task": t["task"], "model": res["config"]["model"],
                       "width": res["config"].get("width"), "base_epochs": base_epochs,
                       "finetune_epochs": t["finetune_epochs"], "finetune_cycles": t.get("finetune_cycles", 1),
                       "base_accuracy": round(100 * t["base_accuracy"], 3), "base_flops": t["base_flops"]}}


def parse_tasks(text: str) -> tuple[tuple[str, float], ...]:
    """``"fashion-mnist:15.7e6,fashion-mnist:3e6"`` -> ((dataset, FLOPs budget), ...)."""
    out = []
    for item in text.split(","):
        dataset, _, budget = item.partition(":")
        if not dataset or not budget:
            raise SystemExit(f"--tasks: '{item}' is not DATASET:FLOPS (e.g. fashion-mnist:15.7e6)")
        out.append((dataset.strip(), float(budget)))
    return tuple(out)


def task_name(dataset: str, budget: float) -> str:
    return f"{dataset}-flops{budget / 1e6:g}M"


def train_reference(loaded: nas_ranking.Loaded, sel: dict[str, Any], recipe: nas_ranking.Recipe, seed: int) -> float:
    from autostruct.models.registry import create_model
    from autostruct.models.train import evaluate, train

    d = loaded.data
    torch.manual_seed(seed)
    model = create_model("mobilenetv2", d.num_classes, d.in_channels, d.image_size, width=sel["width"])
    no_val = d.val.subset(0) if len(d.val) else d.val
    train_split = d.train if recipe.train_size is None else d.train.subset(recipe.train_size, seed=recipe.subset_seed)
    train(model, dataclasses.replace(d, train=train_split, val=no_val),
          recipe.epochs, lr=recipe.lr, batch_size=recipe.batch_size, seed=seed, progress=False, channels_last=True)
    test = d.test if recipe.test_size is None else d.test.subset(recipe.test_size, seed=recipe.subset_seed + 1)
    return 100.0 * evaluate(model, test).accuracy


def _key(r: dict[str, Any]) -> tuple:
    return (r["method"], r["search_seed"], r["task"], r["train_seed"])


def train_all(b: Bench, loaded: nas_ranking.Loaded, selections: list[dict[str, Any]], train_seeds: Sequence[int],
              done: dict[tuple, dict[str, Any]], save: Any) -> list[dict[str, Any]]:
    """Records for every selection and train seed, seed by seed; ``done`` records are kept, not retrained."""
    records = list(done.values())
    for ts in train_seeds:
        for sel in selections:
            rec_base = {k: v for k, v in sel.items() if k != "search_seconds"}
            key = (sel["method"], sel["search_seed"], sel["task"], ts)
            if key in done:
                continue
            t0 = time.monotonic()
            if sel["method"] in REFERENCES:
                acc = train_reference(loaded, sel, b.recipe, ts)
            else:
                acc = nas_ranking.standalone_accuracy(loaded, sel["arch"], b.recipe, ts)
            rec = {**rec_base, "train_seed": ts, "test_accuracy": round(acc, 3),
                   "train_seconds": round(time.monotonic() - t0, 1)}
            records.append(rec)
            print(json.dumps(rec), flush=True)
            save(records)
    return records


# ---------------------------------------------------------------------------------------------- statistics


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per task and method: mean stand-alone accuracy over all (search seed, train seed) records with a 95%
    t-interval over search seeds (each seed's mean over train seeds); paired differences vs random and vs
    evolution over (search seed, task) pairs that both methods have."""
    by: dict[str, dict[str, dict[Any, list[float]]]] = {}
    for r in records:
        by.setdefault(r["task"], {}).setdefault(r["method"], {}).setdefault(r["search_seed"], []).append(r["test_accuracy"])
    out: dict[str, Any] = {"per_task": {}, "paired": {}}
    for task, methods in by.items():
        out["per_task"][task] = {}
        for m, seeds in methods.items():
            means = [sum(v) / len(v) for v in seeds.values()]
            ci = mvb.mean_ci(means) if len(means) > 1 else {"mean": means[0], "ci95": None}
            flops = [r["flops"] for r in records if r["task"] == task and r["method"] == m]
            out["per_task"][task][m] = {"mean": ci["mean"], "ci95_over_search_seeds": ci["ci95"],
                                        "search_seeds": len(means), "records": sum(len(v) for v in seeds.values()),
                                        "mean_flops": sum(flops) / len(flops)}
    for base in ("random", "evolution"):
        for m in ("mtnas", "evolution"):
            if m == base:
                continue
            a, c = [], []
            for methods in by.values():
                if m in methods and base in methods:
                    for s in sorted(set(methods[m]) & set(methods[base])):
                        a.append(sum(methods[m][s]) / len(methods[m][s]))
                        c.append(sum(methods[base][s]) / len(methods[base][s]))
            if len(a) > 1:
                out["paired"][f"{m}_minus_{base}"] = mvb.paired(a, c)
    return out


def merge(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Join runs of identical settings (e.g. other search or train seeds from later sessions); a record present in
    several keeps the first."""
    first = docs[0]
    for d in docs[1:]:
        if d["meta"]["bench"] != first["meta"]["bench"]:
            raise SystemExit("--merge: the runs' settings (meta.bench) differ; only runs of one setting merge")
    seen: dict[tuple, dict[str, Any]] = {}
    for d in docs:
        for r in d["records"]:
            seen.setdefault(_key(r), r)
    records = sorted(seen.values(), key=lambda r: (r["task"], r["method"], str(r["search_seed"]), r["train_seed"]))
    meta = {**first["meta"], "merged_from": [d["meta"].get("out") for d in docs]}
    return {"meta": meta, "records": records, "rank_correlation": first.get("rank_correlation"),
            "summary": summary(records)}


def _write(path: Path, doc: dict[str, Any]) -> None:
    nas_ranking._write(path, doc)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--search-seeds", default="0,1,2")
    ap.add_argument("--train-seeds", default="0,1,2")
    ap.add_argument("--methods", default=",".join(SEARCH_METHODS))
    ap.add_argument("--references", default=",".join(IMPLEMENTED_REFERENCES),
                    help=f"subset of {','.join(REFERENCES)} ('' for none)")
    ap.add_argument("--evals", type=int, default=None, help="evaluations per task, method and search seed")
    ap.add_argument("--tasks", default=None, help="DATASET:FLOPS,... (default: Bench.tasks)")
    ap.add_argument("--epochs", type=int, default=None, help="stand-alone epochs (default: the recipe's)")
    ap.add_argument("--supernet-epochs", type=int, default=None,
                    help="the supernet's epochs (nas_ranking's --supernet-epochs: the same cache entry)")
    ap.add_argument("--train-size", type=int, default=None, help="stand-alone training images (0: all of them)")
    ap.add_argument("--test-size", type=int, default=None, help="stand-alone test images (0: the whole test split)")
    ap.add_argument("--pruned-run", type=Path, default=None,
                    help="an `autostruct prune` output folder: its task within each budget is the pruned-resnet20 "
                         "reference")
    ap.add_argument("--ranking", type=Path, default=None, help="a nas_ranking JSON whose rank_correlation to copy")
    ap.add_argument("--cut", default="", help="what this run leaves out of the full protocol (into meta.cut)")
    ap.add_argument("--tiny", action="store_true", help="8x8 digits, a few hundred images: seconds")
    ap.add_argument("--cache", type=Path, default=None, help="supernet cache folder (default: autostruct's)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--resume", action="store_true", help="keep the selections and records --out already holds")
    ap.add_argument("--merge", type=Path, nargs="+", default=None, help="join these JSONs into --out and exit")
    args = ap.parse_args(argv)
    if args.merge:
        if not args.out:
            ap.error("--merge needs --out")
        doc = merge([json.loads(f.read_text()) for f in args.merge])
        _write(args.out, doc)
        return doc
    torch.set_num_threads(1)
    t_all = time.monotonic()
    b = TINY if args.tiny else Bench()
    if args.evals is not None:
        b = dataclasses.replace(b, evals=args.evals)
    if args.tasks:
        b = dataclasses.replace(b, tasks=parse_tasks(args.tasks))
    if args.supernet_epochs is not None:
        b = dataclasses.replace(b, setup=dataclasses.replace(b.setup, supernet_epochs=args.supernet_epochs))
    b = dataclasses.replace(b, recipe=nas_ranking.recipe_from_args(b.recipe, args))
    search_seeds = [int(s) for s in args.search_seeds.split(",")]
    train_seeds = [int(s) for s in args.train_seeds.split(",")]
    methods = [m for m in SEARCH_METHODS if m in args.methods.split(",")]
    refs = [r for r in REFERENCES if r in args.references.split(",")]
    meta = {"bench": json.loads(json.dumps(dataclasses.asdict(b))), "search_seeds": search_seeds,
            "train_seeds": train_seeds, "methods": methods, "references": refs,
            "references_not_run": [r for r in REFERENCES if r not in refs or (r not in IMPLEMENTED_REFERENCES
                                                                               and not args.pruned_run)],
            "cut": args.cut, "out": str(args.out) if args.out else None}
    prev = json.loads(args.out.read_text()) if args.resume and args.out and args.out.is_file() else None
    if prev is not None and prev["meta"]["bench"] != meta["bench"]:
        raise SystemExit(f"--resume {args.out}: its settings differ; choose another --out")
    loaded = nas_ranking.load(b.setup, args.cache)
    doc: dict[str, Any] = {"meta": {**meta, "supernet": loaded.supernet_info}, "records": [], "selections": []}
    rank = json.loads(args.ranking.read_text()).get("rank_correlation") if args.ranking else None
    doc["rank_correlation"] = ({"kendall_tau": rank["kendall_tau"], "n_archs": rank["n_archs"],
                                "source": str(args.ranking)} if rank else None)

    def save(records: list[dict[str, Any]], partial: bool = True) -> None:
        doc["records"] = records
        if args.out:
            _write(args.out, {**doc, "partial": partial})

    have = {(s["method"], s["search_seed"], s["task"]) for s in (prev or {}).get("selections", [])}
    doc["selections"] = list((prev or {}).get("selections", []))
    todo_seeds = [s for s in search_seeds if any((m, s, task_name(*t)) not in have for m in methods for t in b.tasks)]
    if todo_seeds:
        space = mvb.supernet_space(preset(b, todo_seeds), b.setup.seed, "inline", args.cache)
        for s in todo_seeds:  # one seed at a time, saved, so a stopped run keeps its finished searches
            new = search_selections(b, space, methods, [s])
            doc["selections"] += [x for x in new if (x["method"], x["search_seed"], x["task"]) not in have]
            save(list((prev or {}).get("records", [])))
    if not any(s["method"] in REFERENCES for s in doc["selections"]):
        doc["selections"] += reference_models(b, loaded, refs)
    done = {_key(r): r for r in (prev or {}).get("records", [])}
    if "pruned-resnet20" in refs and not args.pruned_run:
        print(json.dumps({"reference": "pruned-resnet20", "skipped": "needs --pruned-run RUN"}), flush=True)
    if args.pruned_run and "pruned-resnet20" in refs:  # read from the pruning run, not trained here
        for dataset, budget in b.tasks:
            rec = pruned_reference(args.pruned_run, dataset, budget)
            if rec is None:
                print(json.dumps({"reference": "pruned-resnet20", "task": task_name(dataset, budget),
                                  "skipped": f"{args.pruned_run} has no {dataset} task within the budget"}), flush=True)
            else:
                done[_key(rec)] = rec
                doc["meta"].setdefault("pruned_training_epochs", {})[rec["task"]] = rec["training_epochs"]
    records = train_all(b, loaded, doc["selections"], train_seeds, done, save)
    doc["summary"] = summary(records)
    doc["meta"]["total_seconds"] = round(time.monotonic() - t_all, 1)
    save(records, partial=False)
    print(json.dumps({"summary": doc["summary"]}), flush=True)
    return doc


if __name__ == "__main__":
    main()
