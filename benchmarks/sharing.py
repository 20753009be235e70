"""The sharing regime of ``mtacp_vs_baselines.py`` (``--regime sharing``): does one search over many scenarios
beat one search per scenario at equal evaluations and equal cores, and does it answer new scenarios?

Every searcher runs ``episodes_per_task`` episodes on every task, on one core (inline). Its selection (the same
top-k re-score for all) is taken at several budgets, the first n episodes of each task, so one run gives the
curve of test accuracy against evaluations spent (an engine stopped after n episodes per task would have played
exactly these: the inline engine is deterministic and schedules tasks equally). At ``n = E // 3`` and ``n = E``
every selection is also fine-tuned and tested again. Then the multi-task run's policy and scored episodes
answer new scenarios (unseen ratios, an unseen dataset with its own base model) with zero or ``--few-shot``
episodes, next to uniform pruning, random search and the nearest solved task's strategy rescaled.

One JSON per run (one seed per process, so seeds run side by side on separate cores); ``records`` holds one
entry per (method, episodes_per_task, seed, task), ``new_scenario_records`` the same for the new scenarios.
``benchmarks/render_sharing.py`` merges the files and renders the tables of docs/benchmark-mtacp.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from autostruct.baselines import random_search
from autostruct.config import BackendConfig, PruneConfig, RLConfig
from autostruct.measure import host_info
from autostruct.mtacp.run import make_factories, policy_spec, prepare_bases
from autostruct.mtacp.tasks import expand_tasks
from autostruct.mtacp.transfer import (
    few_shot,
    nearest_task_counts,
    propose,
    screen_data,
    solved_strategies,
)
from autostruct.rl import run_impala
from autostruct.utils.io import write_json_atomic

SEARCHERS = ("mtacp", "mtacp-plain", "random", "cem", "ddpg", "single")


def budgets(e: int) -> list[int]:
    """Episodes per task at which every searcher's selection is tested (the curve)."""
    return sorted({max(1, round(e * f)) for f in (0.05, 0.1, 0.2, 1 / 3, 0.5, 1.0)})


def finetune_budgets(e: int, extra: list[int] | None = None) -> list[int]:
    """Episodes per task at which the selections are also fine-tuned: a third of the budget and all of it, and the
    ``extra`` ones (``--finetune-at``: where a method may reach a target earlier, e.g. for (d))."""
    return sorted({max(1, round(e / 3)), e, *(n for n in extra or [] if n in budgets(e))})


def run(args: argparse.Namespace, workdir: Path, bench: Any) -> dict[str, Any]:
    """The regime's whole run for ``args.seeds`` (see the module docstring); ``bench`` is the main script."""
    regime = bench.REGIMES[args.regime]
    e = args.episodes_per_task
    cfg = bench.build_config(args, workdir, regime["data"], regime["ratios"])
    keys, tasks = expand_tasks(cfg)
    workdir.mkdir(parents=True, exist_ok=True)
    bases = prepare_bases(cfg, workdir, keys, progress=False)
    factories = make_factories(cfg, tasks, bases)
    envs = [f() for f in factories]
    rescorers = [bench.CachedRescore(env) for env in envs]
    scorer = bench.TestScorer(cfg, args)
    bench._log(f"sharing: {len(tasks)} tasks, {e} episodes per task, seeds {args.seeds}, methods {args.methods}")
    records: list[dict[str, Any]] = []
    new_records: list[dict[str, Any]] = []
    curves: dict[str, Any] = {}
    result = {
        "benchmark": "mtacp_vs_baselines",
        "regime": args.regime,
        "preset": args.preset,
        "host": host_info(),
        "sizes": {"model": args.model, "width": args.width, "tasks": [t.name for t in tasks], "episodes_per_task": e,
                  "budgets": budgets(e), "finetune_budgets": finetune_budgets(e, args.finetune_at), "seeds": args.seeds,
                  "val_size": cfg.search.val_size, "rescore_size": min(env.rescore_size for env in envs),
                  "top_k": args.top_k, "recal_batches": cfg.search.recal_batches, "base_epochs": args.base_epochs,
                  "test_size": args.test_size or "full", "finetune_steps": args.finetune_steps,
                  "finetune_batch_size": cfg.finetune.batch_size, "finetune_lr": cfg.finetune.lr, "cores": 1},
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "rl": cfg.rl.model_dump(),
        "tasks": [{"task": t.name, "dataset": t.data.dataset, "classes": list(t.data.classes) if t.data.classes
                   else None, "ratio": t.ratio, "base_accuracy": bases[t.data]["base_accuracy"]} for t in tasks],
        "records": records,
        "new_scenario_records": new_records,
        "curves": curves,
        "complete": False,
    }
    for seed in args.seeds:
        curves[str(seed)] = {}
        for method in [m for m in args.methods if m in SEARCHERS]:
            searches, policy, mtacp_run = _search(method, cfg, args, bench, envs, tasks, e, seed,
                                                  workdir / "searches" / f"seed{seed}" / method)
            curves[str(seed)][method] = {t.name: searches[t.task_id]["rewards"] for t in tasks}
            for n in budgets(e):
                total, cpu = _time_to(searches, n), _time_to(searches, n, "cpu_times")
                for t in tasks:
                    s = searches[t.task_id]
                    rec = bench.select_and_measure(
                        bench.Search(s["scored"][:n], None), envs[t.task_id], t.data, args.top_k,
                        rescorers[t.task_id] if rescorers[t.task_id].enabled else None, scorer,
                        finetune=n in finetune_budgets(e, args.finetune_at))
                    records.append(_record(method, n, seed, t.name, rec, total, len(tasks), s, cpu))
                bench._log(f"seed {seed} {method} @{n}: test "
                           f"{np.mean([r['test_accuracy'] for r in records[-len(tasks):]]):.2f}%, {total:.0f} s")
            if method == "mtacp" and args.new_scenarios:
                new_records += new_scenarios(args, cfg, bench, bases, factories, tasks, policy, mtacp_run, scorer, seed,
                                             workdir)
            if args.out:  # what is finished so far survives an interrupted run
                write_json_atomic(args.out, result)
    result["complete"] = True
    return result


def _record(method: str, n: int, seed: int, task: str, rec: dict[str, Any], total_s: float, num_tasks: int,
            search: dict[str, Any], cpu_s: float) -> dict[str, Any]:
    ft = rec["test_accuracy_finetuned"]
    return {
        "method": method, "episodes_per_task": n, "seed": seed, "task": task,
        "test_accuracy": 100 * rec["test_accuracy_no_finetune"],
        "test_accuracy_finetuned": None if ft is None else 100 * ft,
        "evaluations": n,
        # Time charged to this task: its own search's, or the shared run's split equally over the tasks.
        "wall_s": search["times"][n - 1] if search["own_time"] else total_s / num_tasks,
        "wall_s_method": total_s,  # the method's time to n episodes on every task
        # The same in CPU seconds of the one-thread process: what the method costs on a core of its own, which
        # wall time shows only on a quiet machine.
        "cpu_s_method": cpu_s,
        "cores": 1,
        "search_score": 100 * rec["search_score"], "rescore": None if rec["rescore"] is None else 100 * rec["rescore"],
        "flops_ratio": rec["flops_ratio"], "channels": rec["channels"],
    }


def _time_to(searches: dict[int, dict[str, Any]], n: int, clock: str = "times") -> float:
    """Wall time (or with ``clock="cpu_times"`` CPU time) the method needed for n episodes on every task
    (per-task searches add up; a shared run's is the moment its last task reached n)."""
    if all(s["own_time"] for s in searches.values()):
        return float(sum(s[clock][n - 1] for s in searches.values()))
    return float(max(s[clock][n - 1] for s in searches.values()))


def _search(method: str, cfg: PruneConfig, args: argparse.Namespace, bench: Any, envs: list[Any], tasks: list[Any],
            e: int, seed: int, run_dir: Path) -> tuple[dict[int, dict[str, Any]], Any, Any]:
    """Every episode's (reward, info) and finish time per task; the policy and run of ``mtacp``."""
    if method in ("mtacp", "mtacp-plain"):  # mtacp-plain: the same engine without the screen (the ablation)
        rl = cfg.rl if method == "mtacp" else cfg.rl.model_copy(update={"screen": 0})
        cpu: dict[int, list[float]] = {t.task_id: [] for t in tasks}
        c0 = time.process_time()  # inline backend: actor and learner in this one-thread process
        out = run_impala([(lambda env=env: env) for env in envs], policy_spec(cfg), total_episodes=e * len(tasks),
                         run_dir=run_dir, rl=rl, backend=BackendConfig(name="inline"), algorithm="vtrace",
                         seed=seed, progress=False, tensorboard=False,
                         on_episode=lambda ep: cpu[ep.task_id].append(time.process_time() - c0))
        per = {}
        for t in tasks:
            eps = [ep for ep in out.episodes if ep.task_id == t.task_id]
            per[t.task_id] = {"scored": [(float(ep.reward), ep.info) for ep in eps], "rewards": [ep.reward for ep in eps],
                              "times": [ep.wall_time for ep in eps], "cpu_times": cpu[t.task_id], "own_time": False}
        return per, out.policy, out
    per = {}
    for t in tasks:
        rec = bench.RecordingEnv(envs[t.task_id], task_id=0 if method == "single" else None)
        if method == "single":
            out = run_impala([lambda rec=rec: rec], policy_spec(cfg), total_episodes=e, run_dir=run_dir / t.name,
                             rl=RLConfig(**{**cfg.rl.model_dump(), "actors": 1}), backend=BackendConfig(name="inline"),
                             algorithm="vtrace", seed=bench._search_seed(seed, t.task_id), progress=False,
                             tensorboard=False)
            scored = [(float(ep.reward), ep.info) for ep in out.episodes]
            times, cpu_times = [ep.wall_time for ep in out.episodes], rec.cpu_times
        else:
            bench.run_single_task(method, rec, t.task_id, e, seed, args, cfg, run_dir / t.name)
            scored, times, cpu_times = rec.scored, rec.times, rec.cpu_times
        per[t.task_id] = {"scored": scored[:e], "rewards": [r for r, _ in scored[:e]], "times": times[:e],
                          "cpu_times": cpu_times[:e], "own_time": True}
    return per, None, None


# -- new scenarios ------------------------------------------------------------------------------------------------
def new_dataset_factory(args: argparse.Namespace, cfg: PruneConfig, workdir: Path, template: Any) -> tuple[Any, Any]:
    """The unseen dataset's (``--new-dataset``, ``--new-classes``) data key and an env factory of its own base
    model, built like ``template`` (one of the run's factories) with the next dataset index: past the run's
    datasets, so its beta feature is clipped to 1."""
    new_cfg = cfg.model_copy(update={"tasks": [cfg.tasks[0].model_copy(update={"dataset": args.new_dataset,
                                                                               "classes": args.new_classes})]})
    (new_key,), _ = expand_tasks(new_cfg)
    new_base = prepare_bases(new_cfg, workdir, [new_key], progress=False)[new_key]
    return new_key, dataclasses.replace(template, model=new_base["checkpoint"], dataset=new_key.dataset,
                                        classes=new_key.classes, data_root=new_key.root, task_id=0,
                                        dataset_index=template.num_datasets)


def new_scenarios(args: argparse.Namespace, cfg: PruneConfig, bench: Any, bases: dict[Any, Any], factories: list[Any],
                  tasks: list[Any], policy: Any, mtacp_run: Any, scorer: Any, seed: int,
                  workdir: Path) -> list[dict[str, Any]]:
    """Unseen ratios of the trained datasets and an unseen dataset (its own base model): zero-shot, few-shot,
    uniform, random search with ``--new-random`` episodes, the nearest solved task's strategy rescaled."""
    first = {t.data: factories[t.task_id] for t in reversed(tasks)}  # one factory per trained dataset
    scenarios = []  # (name, data key, factory)
    for key, f in first.items():
        for r in args.new_ratios:
            scenarios.append((f"{key.label}-r{r}", key, dataclasses.replace(f, target_ratio=r, task_id=0)))
    new_key, new_factory = new_dataset_factory(args, cfg, workdir, next(iter(first.values())))
    for r in args.new_dataset_ratios:
        scenarios.append((f"{new_key.label}-r{r}", new_key, dataclasses.replace(new_factory, target_ratio=r)))
    solved = solved_strategies(mtacp_run.episodes)
    out = []
    for name, key, factory in scenarios:
        env = factory()
        resc = bench.CachedRescore(env)
        rs = resc if resc.enabled else None
        t0 = time.perf_counter()
        zs = env.evaluate_counts(propose(policy, env, screen_data(mtacp_run.episodes), seed=seed, solved=solved))
        picks: dict[str, tuple[list[tuple[float, dict[str, Any]]], int, float]] = {
            "zero-shot": ([zs], 0, time.perf_counter() - t0)}
        t0 = time.perf_counter()
        fs = few_shot(policy, env, screen_data(mtacp_run.episodes), args.few_shot, seed=seed, solved=solved)
        picks[f"few-shot-{args.few_shot}"] = (fs, args.few_shot, time.perf_counter() - t0)
        t0 = time.perf_counter()
        nt = env.evaluate_counts(nearest_task_counts(env, solved))
        picks["nearest-task"] = ([nt], 0, time.perf_counter() - t0)
        t0 = time.perf_counter()
        rnd = bench.RecordingEnv(env)
        random_search(rnd, max(args.new_random), seed=bench._search_seed(seed, 100))
        rnd_s = time.perf_counter() - t0
        for n in args.new_random:
            picks[f"random-{n}"] = (rnd.scored[:n], n, rnd_s * n / max(args.new_random))
        uni = bench.run_single_task("uniform", env, 0, 1, seed, args, cfg, workdir)
        picks["uniform"] = (uni.scored, 0, uni.seconds or 0.0)
        for method, (scored, evals, secs) in picks.items():
            rec = bench.select_and_measure(bench.Search(scored, None), env, key, args.top_k if evals > 1 else 1,
                                           rs if evals > 1 else None, scorer)
            out.append({"method": method, "episodes_per_task": evals, "seed": seed, "task": name,
                        "test_accuracy": 100 * rec["test_accuracy_no_finetune"],
                        "test_accuracy_finetuned": None if rec["test_accuracy_finetuned"] is None
                        else 100 * rec["test_accuracy_finetuned"],
                        "evaluations": evals, "wall_s": secs, "cores": 1, "flops_ratio": rec["flops_ratio"],
                        "channels": rec["channels"]})
        bench._log(f"seed {seed} new scenario {name}: " + ", ".join(
            f"{r['method']} {r['test_accuracy_finetuned'] or r['test_accuracy']:.2f}" for r in out[-len(picks):]))
    return out
