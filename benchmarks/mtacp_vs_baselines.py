"""MTACP against the single-task searchers and the paper's ablations, side by side on the same tasks (issue 5).

Tasks (default): ResNet-20 on Fashion-MNIST at FLOPs ratios 0.3 / 0.5 / 0.7, and on a Fashion-MNIST class
subset (footwear: sandal, sneaker, ankle boot) at the same ratios: 6 tasks, 2 base models. Every method
searches the same MDP (the envs of ``autostruct.mtacp.run.make_factories``: same base models, pruning
settings, calibration batches and scored validation images), with the same episode budget per task:

=============== ===========================================================================================
mtacp           one multi-task IMPALA search over all tasks (V-trace, MTACP's LSTM agent, budget ``exact``),
                ``episodes_per_task x tasks`` episodes in total, actors on ``--mtacp-backend`` (local: 2)
ddpg            AMC's DDPG, one search per task, one after the other
impala          IMPALA with the same agent and settings as mtacp, but one run per task
random          uniformly random actions through the budget wall, per task
uniform         the same keep ratio in every layer (no search; one evaluation)
plain-impala    ablation: mtacp without the LSTM and without action limiting (budget ``--plain-budget``,
                default ``none``: over-budget episodes get a penalty reward), multi-task
ppo             ablation: single-task PPO with MTACP's agent minus the LSTM, budget ``exact``
=============== ===========================================================================================

Per task and method: the best validation accuracy found (no fine-tune, BN recalibrated; what the search
optimizes), optionally the test accuracy of that strategy after ``--finetune-epochs`` of fine-tuning, the
search's wall time, the episodes (and seconds) until the method first came within 0.5 pt of its own final
best, and the episodes it needed to beat uniform pruning. Totals per method, and the headline ratios MTACP
time / AMC-DDPG time and MTACP - AMC-DDPG mean accuracy. Issue 7's figure: the episodes random search,
DDPG and MTACP need to beat uniform under budget ``exact`` and under AMC's one-sided ``amc`` wall.

Prints one JSON document on stdout (progress on stderr); ``--out`` also writes it, ``--figure`` draws the
issue 7 figure. See docs/benchmark-mtacp.md for the columns and the commands.

    python benchmarks/mtacp_vs_baselines.py --out bench.json          # full: 6 tasks, hours on 2 CPU cores
    python benchmarks/mtacp_vs_baselines.py --quick                   # smoke run on digits, under a minute
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autostruct.baselines import ddpg_search, random_search, uniform_prune
from autostruct.baselines.ppo import ppo_search
from autostruct.config import BackendConfig, PruneConfig, RLConfig, parse_config
from autostruct.errors import AutostructError
from autostruct.measure import host_info
from autostruct.mtacp.run import make_factories, policy_spec, prepare_bases
from autostruct.mtacp.tasks import TaskSpec, expand_tasks
from autostruct.rl import run_impala
from autostruct.utils.io import write_json_atomic

METHODS = ("mtacp", "ddpg", "impala", "random", "uniform", "plain-impala", "ppo")
MULTI_TASK = ("mtacp", "plain-impala")
#: Searchers of issue 7's figure (episodes to beat uniform under each budget mode).
BEAT_UNIFORM_METHODS = ("random", "ddpg", "mtacp")
#: "Within 0.5 pt of the final best": rewards are accuracies in [0, 1].
NEAR_BEST_TOL = 0.005


def _log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# -- what a search leaves behind ---------------------------------------------------------------------------------
@dataclass
class Trace:
    """One method's search on one task: reward and time (since its start) of every episode, and the best one."""

    rewards: list[float]
    times: list[float]
    best_info: dict[str, Any]
    seconds: float  # this task's search time; for multi-task methods the whole run's (shared by all tasks)
    shared: bool = False


class TimedEnv:
    """Passes an env through, recording each episode's final reward and its end time since construction.

    ``task_id`` may be overridden: a single-task IMPALA run needs its one env to be task 0.
    """

    def __init__(self, env: Any, task_id: int | None = None) -> None:
        self.env = env
        self.observation_size, self.action_spec = env.observation_size, env.action_spec
        self.max_episode_steps = env.max_episode_steps
        self.task_id = env.task_id if task_id is None else task_id
        self.rewards: list[float] = []
        self.times: list[float] = []
        self.t0 = time.perf_counter()

    def reset(self, seed: int | None = None) -> np.ndarray:
        return self.env.reset(seed)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        obs, reward, done, info = self.env.step(action)
        if done:
            self.rewards.append(float(reward))
            self.times.append(time.perf_counter() - self.t0)
        return obs, reward, done, info

    def action_mask(self) -> None:
        return None


def first_beat(rewards: list[float], bar: float) -> int | None:
    """1-based episode at which ``rewards`` first exceed ``bar`` (None if never)."""
    return next((i + 1 for i, r in enumerate(rewards) if r > bar), None)


def near_best(rewards: list[float], tol: float = NEAR_BEST_TOL) -> int:
    """1-based episode at which ``rewards`` first come within ``tol`` of their maximum."""
    best = max(rewards)
    return next(i + 1 for i, r in enumerate(rewards) if r >= best - tol)


# -- the methods -----------------------------------------------------------------------------------------------
def run_single(method: str, env: Any, args: argparse.Namespace, cfg: PruneConfig, run_dir: Path) -> Trace:
    """One single-task search of ``method`` in ``env`` (already built), timed per episode."""
    e = args.episodes_per_task
    if method == "uniform":
        res = uniform_prune(env)
        return Trace([res.best_reward], [res.seconds], res.best_info, res.seconds)
    timed = TimedEnv(env, task_id=0 if method == "impala" else None)
    if method == "random":
        res = random_search(timed, e, seed=args.seed)
    elif method == "ddpg":
        res = ddpg_search(timed, e, warmup=args.ddpg_warmup, seed=args.seed)
    elif method == "ppo":
        res = ppo_search(timed, e, seed=args.seed)
    elif method == "impala":
        out = run_impala([lambda: timed], policy_spec(cfg), total_episodes=e, run_dir=run_dir,
                         rl=RLConfig(**{**cfg.rl.model_dump(), "actors": 1}), backend=BackendConfig(name="inline"),
                         algorithm="vtrace", seed=args.seed, progress=False, tensorboard=False)
        return Trace(timed.rewards, timed.times, out.best[0].info, float(out.elapsed_s))
    else:
        raise ValueError(method)
    return Trace(timed.rewards, timed.times, res.best_info, res.seconds)


def run_multi(cfg: PruneConfig, factories: list[Any], tasks: list[TaskSpec], run_dir: Path,
              args: argparse.Namespace) -> dict[int, Trace]:
    """One IMPALA run over all tasks with ``cfg``'s agent and backend; a Trace per task."""
    out = run_impala(factories, policy_spec(cfg), total_episodes=args.episodes_per_task * len(tasks),
                     run_dir=run_dir, rl=cfg.rl, backend=cfg.backend, algorithm="vtrace", seed=args.seed,
                     progress=False, tensorboard=False)
    traces = {}
    for t in tasks:
        eps = [ep for ep in out.episodes if ep.task_id == t.task_id]
        if not eps:
            raise AutostructError(f"task {t.name} got no episode; raise --episodes-per-task")
        traces[t.task_id] = Trace([float(ep.reward) for ep in eps], [float(ep.wall_time) for ep in eps],
                                  out.best[t.task_id].info, float(out.elapsed_s), shared=True)
    return traces


# -- scoring ---------------------------------------------------------------------------------------------------
def _valid(info: dict[str, Any]) -> bool:
    """A strategy within budget that was scored (budget ``none`` leaves over-budget episodes unscored)."""
    return info.get("accuracy") is not None and not info.get("over_budget", False)


def finetuned_accuracy(env: Any, data: Any, counts: list[int], cfg: PruneConfig, args: argparse.Namespace
                       ) -> dict[str, float]:
    """Test accuracy of the pruned model for ``counts`` (BN recalibrated), before and after a short fine-tune."""
    from autostruct.models.train import evaluate, fine_tune
    from autostruct.prune.bn import recalibrate_bn

    model = env.prune(counts)
    if cfg.search.recal_batches:
        batches = [x for x, _ in data.train.batches(128, shuffle=True, seed=cfg.seed)][: cfg.search.recal_batches]
        recalibrate_bn(model, batches, len(batches))
    before = evaluate(model, data.test, device=cfg.device).accuracy
    fine_tune(model, data, args.finetune_epochs, lr=cfg.finetune.lr, batch_size=cfg.finetune.batch_size,
              seed=cfg.seed, device=cfg.device, progress=False)
    return {"test_accuracy_before_finetune": before,
            "test_accuracy_after_finetune": evaluate(model, data.test, device=cfg.device).accuracy}


def task_record(trace: Trace, uniform_reward: float) -> dict[str, Any]:
    info = trace.best_info
    valid = _valid(info)
    i_near = near_best(trace.rewards)
    return {
        "val_accuracy": info.get("accuracy") if valid else None,
        "best_reward": max(trace.rewards),
        "flops_ratio": info.get("flops_ratio"),
        "keep_ratios": info.get("strategy"),
        "episodes": len(trace.rewards),
        "episodes_to_best": trace.rewards.index(max(trace.rewards)) + 1,
        "episodes_to_near_best": i_near,
        "seconds_to_near_best": trace.times[i_near - 1],
        "search_seconds": None if trace.shared else trace.seconds,
        "episodes_to_beat_uniform": first_beat(trace.rewards, uniform_reward),
        "valid_episodes": None,  # filled for budget "none" below
    }


def _mean(values: list[float | None]) -> float | None:
    """Mean over tasks; a task without a valid strategy counts as 0 accuracy (the search gave no usable model)."""
    return None if not values else float(np.mean([v if v is not None else 0.0 for v in values]))


def totals(per_task: dict[str, dict[str, Any]], shared_seconds: float | None) -> dict[str, Any]:
    recs = list(per_task.values())
    after = [r.get("test_accuracy_after_finetune") for r in recs]
    seconds = shared_seconds if shared_seconds is not None else float(sum(r["search_seconds"] for r in recs))
    episodes = sum(r["episodes"] for r in recs)
    return {
        "search_seconds": seconds,
        "episodes": episodes,
        "episodes_per_second": episodes / seconds if seconds > 0 else None,
        "mean_val_accuracy": _mean([r["val_accuracy"] for r in recs]),
        "mean_test_accuracy_after_finetune": _mean(after) if all("test_accuracy_after_finetune" in r for r in recs)
        else None,
        "tasks_without_valid_strategy": sum(r["val_accuracy"] is None for r in recs),
        "mean_episodes_to_near_best": float(np.mean([r["episodes_to_near_best"] for r in recs])),
    }


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Method ``a`` against ``b``: time ratio and mean accuracy differences in points."""
    def diff(key: str) -> float | None:
        return None if a[key] is None or b[key] is None else 100.0 * (a[key] - b[key])

    return {
        "time_ratio": a["search_seconds"] / b["search_seconds"] if b["search_seconds"] > 0 else None,
        "mean_val_accuracy_diff_pt": diff("mean_val_accuracy"),
        "mean_test_accuracy_after_finetune_diff_pt": diff("mean_test_accuracy_after_finetune"),
    }


# -- the run ---------------------------------------------------------------------------------------------------
def build_config(args: argparse.Namespace, workdir: Path, *, budget: str, use_lstm: bool) -> PruneConfig:
    """The PruneConfig all methods share (so the envs are those of a real ``autostruct prune`` run)."""
    data_tasks: list[dict[str, Any]] = [{"dataset": args.dataset, "ratios": args.ratios}]
    if args.classes:
        data_tasks.append({"dataset": args.dataset, "classes": args.classes, "ratios": args.ratios})
    n_tasks = len(data_tasks) * len(args.ratios)
    return parse_config(PruneConfig, {
        "name": "bench-mtacp-vs-baselines",
        "output_dir": str(workdir),
        "model": args.model,
        "width": args.width,
        "tasks": data_tasks,
        "base_training": {"epochs": args.base_epochs},
        "search": {"episodes": args.episodes_per_task * n_tasks, "val_size": args.val_size, "budget": budget,
                   "recal_batches": args.recal_batches, "round_to": args.round_to, "reward": "acc"},
        "rl": {"actors": args.actors, "unroll_length": args.unroll_length, "batch_size": args.rl_batch_size,
               "use_lstm": use_lstm, "threads_per_actor": 1},
        "finetune": {"epochs": args.finetune_epochs},
        "backend": {"name": args.mtacp_backend},
        "latency_runs": 3,
        "device": args.device,
        "seed": args.seed,
    }, source="benchmark settings")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--classes", nargs="*", type=int, default=[5, 7, 9],
                   help="class subset for the second base model (none: only the full dataset)")
    p.add_argument("--ratios", nargs="+", type=float, default=[0.3, 0.5, 0.7])
    p.add_argument("--episodes-per-task", type=int, default=100, help="episode budget of every searcher per task")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--beat-uniform-budgets", nargs="*", default=["exact", "amc"], choices=["exact", "amc"],
                   help="issue 7 figure: budget modes for random/ddpg/mtacp (amc reruns them)")
    p.add_argument("--plain-budget", default="none", choices=["none", "amc"], help="budget of plain-impala")
    p.add_argument("--val-size", type=int, default=2000, help="validation images scored per episode")
    p.add_argument("--recal-batches", type=int, default=10)
    p.add_argument("--round-to", type=int, default=1)
    p.add_argument("--base-epochs", type=int, default=3)
    p.add_argument("--finetune-epochs", type=int, default=1, help="0: no fine-tune, no test accuracy")
    p.add_argument("--ddpg-warmup", type=int, default=None, help="DDPG random episodes (default: a quarter)")
    p.add_argument("--mtacp-backend", default="local", choices=["inline", "local", "ray"])
    p.add_argument("--actors", type=int, default=2, help="actors of the multi-task runs (1 thread each)")
    p.add_argument("--unroll-length", type=int, default=20)
    p.add_argument("--rl-batch-size", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    p.add_argument("--workdir", default=None, help="run folders (default: a temporary folder, removed after)")
    p.add_argument("--quick", action="store_true", help="smoke run: digits, 2 tasks, 6 episodes each")
    p.add_argument("--out", default=None, help="also write the JSON here")
    p.add_argument("--figure", default=None, help="draw issue 7's figure (PNG) here")
    # --quick changes the defaults; flags given explicitly still win.
    if p.parse_known_args(argv)[0].quick:
        p.set_defaults(dataset="digits", classes=[0, 1, 2, 3, 4], ratios=[0.5], width=0.5, episodes_per_task=6,
                       val_size=200, recal_batches=2, base_epochs=3, finetune_epochs=1, unroll_length=10,
                       rl_batch_size=2)
    args = p.parse_args(argv)
    if args.ddpg_warmup is None:
        args.ddpg_warmup = max(1, args.episodes_per_task // 4)
    if args.episodes_per_task < 1:
        p.error("--episodes-per-task must be >= 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="autostruct-bench-"))
    try:
        result = _run(args, workdir)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    result["command"] = " ".join(["python", "benchmarks/mtacp_vs_baselines.py",
                                  *(sys.argv[1:] if argv is None else argv)])
    result["seconds"] = time.perf_counter() - start
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        write_json_atomic(args.out, result)
    if args.figure:
        draw_beat_uniform(result, args.figure)
    return result


def _run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from autostruct.data import load_dataset

    cfg = build_config(args, workdir / "exact", budget="exact", use_lstm=True)
    keys, tasks = expand_tasks(cfg)
    (workdir / "exact").mkdir(parents=True, exist_ok=True)
    bases = prepare_bases(cfg, workdir / "exact", keys, progress=False)
    factories = make_factories(cfg, tasks, bases)
    _log(f"{len(tasks)} tasks: {', '.join(t.name for t in tasks)}; building envs")
    envs = [f() for f in factories]  # one env per task, shared by every single-task method (same scored images)
    steps = {t.name: int(env.max_episode_steps) for t, env in zip(tasks, envs, strict=True)}

    uniform = {t.task_id: run_single("uniform", envs[t.task_id], args, cfg, workdir) for t in tasks}
    traces: dict[str, dict[int, Trace]] = {}
    for method in args.methods:
        t0 = time.perf_counter()
        if method == "uniform":
            traces[method] = uniform
        elif method in MULTI_TASK:
            mcfg = cfg if method == "mtacp" else build_config(args, workdir / method, budget=args.plain_budget,
                                                             use_lstm=False)
            mfact = factories if method == "mtacp" else make_factories(mcfg, tasks, bases)
            traces[method] = run_multi(mcfg, mfact, tasks, workdir / method / "search", args)
        else:
            traces[method] = {t.task_id: run_single(method, envs[t.task_id], args, cfg,
                                                    workdir / method / t.name) for t in tasks}
        _log(f"{method}: {time.perf_counter() - t0:.1f} s")

    data = {}
    if args.finetune_epochs > 0:
        data = {k: load_dataset(k.dataset, root=k.root, val_size=5000, seed=cfg.seed,
                                classes=list(k.classes) if k.classes else None) for k in keys}
    methods: dict[str, Any] = {}
    for method, per_task in traces.items():
        recs: dict[str, Any] = {}
        for t in tasks:
            trace = per_task[t.task_id]
            rec = task_record(trace, uniform[t.task_id].rewards[0])
            if method == "plain-impala":
                rec["valid_episodes"] = sum(r >= 0 for r in trace.rewards)  # over budget: a penalty <= -1
            else:
                rec.pop("valid_episodes")
            if data and _valid(trace.best_info):
                _log(f"fine-tuning {method} / {t.name}")
                rec.update(finetuned_accuracy(envs[t.task_id], data[t.data], trace.best_info["channels"], cfg, args))
            elif data:
                rec.update(test_accuracy_before_finetune=None, test_accuracy_after_finetune=None)
            recs[t.name] = rec
        shared = next(iter(per_task.values())).seconds if method in MULTI_TASK else None
        methods[method] = {"tasks": recs, "totals": totals(recs, shared)}

    headline = {}
    if "ddpg" in methods:
        for m in methods:
            if m != "ddpg":
                headline[f"{m}_vs_ddpg"] = compare(methods[m]["totals"], methods["ddpg"]["totals"])

    beat: dict[str, Any] = {}
    for budget in args.beat_uniform_budgets:
        chosen = [m for m in BEAT_UNIFORM_METHODS if m in args.methods]
        if budget == "exact":
            beat[budget] = {m: {t.name: {"episodes": methods[m]["tasks"][t.name]["episodes_to_beat_uniform"],
                                         "best_val_accuracy": methods[m]["tasks"][t.name]["val_accuracy"]}
                                for t in tasks} for m in chosen}
            continue
        acfg = build_config(args, workdir / budget, budget=budget, use_lstm=True)
        afact = make_factories(acfg, tasks, bases)
        aenvs = [f() for f in afact] if set(chosen) - {"mtacp"} else []
        beat[budget] = {}
        for m in chosen:
            _log(f"budget {budget}: {m}")
            if m == "mtacp":
                tr = run_multi(acfg, afact, tasks, workdir / budget / "mtacp", args)
            else:
                tr = {t.task_id: run_single(m, aenvs[t.task_id], args, acfg, workdir / budget / m / t.name)
                      for t in tasks}
            beat[budget][m] = {t.name: {"episodes": first_beat(tr[t.task_id].rewards, uniform[t.task_id].rewards[0]),
                                        "best_val_accuracy": tr[t.task_id].best_info.get("accuracy")} for t in tasks}

    return {
        "benchmark": "mtacp_vs_baselines",
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "figure")},
        "env": {"budget": "exact", "lbound": cfg.search.lbound, "val_size": cfg.search.val_size,
                "recal_batches": cfg.search.recal_batches, "importance": cfg.search.importance,
                "steps_per_episode": steps},
        "rl": cfg.rl.model_dump(),
        "host": host_info(),
        "tasks": [{"task": t.name, "dataset": t.data.dataset, "classes": list(t.data.classes) if t.data.classes else None,
                   "ratio": t.ratio, **_base(bases[t.data])} for t in tasks],
        "uniform_val_accuracy": {t.name: uniform[t.task_id].best_info["accuracy"] for t in tasks},
        "methods": methods,
        "headline": headline,
        "episodes_to_beat_uniform": beat,
    }


def _base(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: rec[k] for k in ("base_accuracy", "base_flops", "base_params")}


def draw_beat_uniform(result: dict[str, Any], path: str) -> Path:
    """Issue 7's figure: episodes to beat uniform pruning, per task, searcher and budget mode (bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    beat = result["episodes_to_beat_uniform"]
    budget_cap = result["settings"]["episodes_per_task"]
    tasks = [t["task"] for t in result["tasks"]]
    series = [(b, m) for b in beat for m in BEAT_UNIFORM_METHODS if m in beat[b]]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(tasks)), 4))
    width = 0.8 / max(1, len(series))
    for j, (b, m) in enumerate(series):
        xs = np.arange(len(tasks)) + j * width
        vals = [beat[b][m][t]["episodes"] for t in tasks]
        heights = [v if v is not None else budget_cap + 1 for v in vals]
        bars = ax.bar(xs, heights, width, label=f"{m} ({b})", hatch="//" if b == "amc" else None)
        for bar, v in zip(bars, vals, strict=True):
            if v is None:
                ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), "never", ha="center", va="bottom",
                        fontsize=7, rotation=90)
    ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks, rotation=20, ha="right")
    ax.set_ylabel("episodes to beat uniform pruning")
    ax.set_title(f"Episodes to beat uniform pruning (budget {budget_cap} per task)", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


if __name__ == "__main__":
    try:
        main()
    except AutostructError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
