"""The MTACP run: base models -> one env per task -> one IMPALA search -> per-task fine-tune, export, report.

A run owns one folder (``output_dir``)::

    run.json            what this folder is (format, name, settings fingerprint)
    config.yaml         the validated config
    base/<data>.json    base model checkpoint path and its test accuracy, FLOPs, params, latency
    search/             the engine's run: checkpoint.pt, episodes.jsonl, metrics, TensorBoard events
    tasks/<task>/       model.pt, model.onnx, task.json (one folder per finished task)
    random/<task>.json  rewards of ``search.random_episodes`` random episodes (the report's reference), if > 0
    policy.pt           the trained agent (zero-shot pruning: ``autostruct prune --policy``)
    results.json        everything per task + totals, config and versions
    report.html         rendered from results.json

Every phase writes its outputs atomically and is skipped on ``resume`` when its output exists, so an
interrupted run loses at most the episode in flight or the task being fine-tuned.

The phases run in :func:`autostruct.pipeline.run_search`; this module supplies what is specific to pruning,
:class:`PruneSearch` (base models, pruning envs, the per-task finish, the results fields).
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from autostruct.config import PruneConfig, coerce_config
from autostruct.data import load_dataset
from autostruct.errors import AutostructError
from autostruct.export import export
from autostruct.measure import compare_latency, count_flops
from autostruct.measure._inputs import model_device
from autostruct.measure.rounding import resolve_round_to, resolve_rounding
from autostruct.models.bn import recalibrate_bn
from autostruct.models.cache import get_or_train
from autostruct.models.train import TrainConfig, distillation_targets, evaluate, fine_tune_cycles
from autostruct.mtacp.preflight import (
    check_prune_inputs,
    choose_task_rounding,
    is_checkpoint,
    landing_warnings,
    price_latency_tasks,
)
from autostruct.mtacp.tasks import DataKey, TaskSpec, expand_tasks
from autostruct.pipeline import (
    SearchRun,
    best_episode,
    load_any_model,
    onnx_latency_ms,
    run_search,
    task_episodes,
)
from autostruct.prune.env import PruningEnvFactory, env_settings
from autostruct.prune.features import NUM_FEATURES
from autostruct.prune.graph import analyze
from autostruct.prune.selection import env_rescore, select_strategy
from autostruct.prune.uniform import uniform_strategy
from autostruct.results import PRUNE_FORMAT
from autostruct.rl import BoxSpec, PolicySpec, rollout
from autostruct.rl.random_play import random_episodes
from autostruct.utils.io import write_json_atomic
from autostruct.utils.recipes import epochs_for
from autostruct.utils.runs import RunResult, mean_of, say
from autostruct.utils.stats import expected_best_of_n
from autostruct.utils.threads import torch_threads

log = logging.getLogger("autostruct.mtacp")

RUN_FORMAT = "autostruct.prune-run/1"
RESULTS_FORMAT = PRUNE_FORMAT  # the schema: autostruct.results
#: Config fields that may change between a run and its resume (they don't change what was already done).
_RESUMABLE_FIELDS = {"output_dir", "name", "backend", "latency_runs", "finetune", "device", "threads"}


class PruneRunResult(RunResult):
    """What :func:`run_prune` returns: the parsed ``results.json`` plus where things are."""


def _example(data: Any) -> torch.Tensor:
    return torch.zeros(1, data.in_channels, data.image_size, data.image_size)


def _load_data(cfg: PruneConfig, key: DataKey) -> Any:

    return load_dataset(
        key.dataset, root=key.root, val_size=cfg.search.holdout, seed=cfg.seed, classes=list(key.classes) if key.classes else None
    )


def _base_model(
    cfg: PruneConfig, key: DataKey, data: Any, progress: bool, full: tuple[torch.nn.Module, str] | None = None
) -> tuple[torch.nn.Module, str, str]:
    """The trained base model for ``key``, a checkpoint path that actor processes load it from, and where it came
    from (``"config"``: the config's model.pt; else :class:`~autostruct.models.cache.CacheInfo`'s ``source``).

    ``full``: (model, checkpoint path) of the full dataset's base model, for a class subset of it to start from
    (``base_training.subsets_from_full``): trained ``subset_epochs`` at ``subset_lr``, keyed by the full one's key.
    """
    path = Path(cfg.model)
    if path.suffix == ".pt" or path.is_dir():
        model, _ = load_any_model(path)
        kw = model.autostruct_spec["kwargs"]
        if kw["num_classes"] != data.num_classes or kw["in_channels"] != data.in_channels:
            raise AutostructError(
                f"Model '{cfg.model}' has {kw['num_classes']} classes and {kw['in_channels']} input channels, but "
                f"{key.label} has {data.num_classes} and {data.in_channels}. Use a checkpoint trained on that dataset "
                "or a zoo model name."
            )
        return model, str(path if path.suffix == ".pt" else path / "model.pt"), "config"

    bt = cfg.base_training
    if full is not None:
        epochs, tcfg = bt.subset_epochs, TrainConfig(epochs=bt.subset_epochs, batch_size=bt.batch_size, lr=bt.subset_lr)
    else:
        epochs = bt.epochs_for(len(data.train))
        tcfg = TrainConfig(epochs=epochs, batch_size=bt.batch_size, lr=bt.lr)
    model, info = get_or_train(
        cfg.model, key.dataset, classes=list(key.classes) if key.classes else None, width=cfg.width,
        epochs=epochs, seed=cfg.seed, root=key.root, val_size=cfg.search.holdout, device=cfg.device,
        progress=progress, train_config=tcfg, dataset=data, model_kwargs=dict(cfg.model_kwargs),
        shipped=not bt.retrain, init=None if full is None else (full[0], Path(full[1]).stem),
    )
    return model, str(info.path), info.source


_SOURCES = {"config": "the config's model", "cache": "cached", "shipped": "shipped with autostruct", "trained": "trained now"}


def prepare_bases(cfg: PruneConfig, out: Path, keys: list[DataKey], progress: bool) -> dict[DataKey, dict[str, Any]]:
    """Train (or load) each dataset's base model once and record its test accuracy, FLOPs and latency."""

    bases: dict[DataKey, dict[str, Any]] = {}
    models: dict[DataKey, tuple[torch.nn.Module, str]] = {}

    def full_of(key: DataKey) -> tuple[torch.nn.Module, str] | None:
        """The full dataset's (model, checkpoint) when ``key`` is a class subset that starts from it."""
        full = DataKey(key.dataset, None, key.root)
        if not (key.classes and cfg.base_training.subsets_from_full and full in bases and not is_checkpoint(cfg.model)):
            return None
        if full not in models:  # recorded by an earlier, interrupted run
            models[full] = (load_any_model(Path(bases[full]["checkpoint"]))[0], bases[full]["checkpoint"])
        return models[full]

    for key in sorted(keys, key=lambda k: k.classes is not None):  # a full dataset before its class subsets
        rec_path = out / "base" / f"{key.label}.json"
        if rec_path.is_file():
            bases[key] = json.loads(rec_path.read_text())
            continue
        full = full_of(key)
        bt = cfg.base_training
        how = (f"from the {key.dataset} model, {bt.subset_epochs} epoch(s)" if full
               else f"{bt.epochs} epochs or more (base_training.min_steps)")
        say(progress, f"base model for {key.label}: from the cache or shipped with autostruct, else trained here ({how})")
        data = _load_data(cfg, key)
        model, ckpt, source = _base_model(cfg, key, data, progress, full)
        models[key] = (model, ckpt)
        x = _example(data)
        cost = count_flops(model, x)
        rec = {
            "skipped_groups": skipped_groups(model, x),
            "dataset": key.dataset,
            "classes": list(key.classes) if key.classes else None,
            "checkpoint": ckpt,
            "source": source,
            "base_accuracy": evaluate(model, data.test, device=cfg.device).accuracy,
            "base_flops": int(cost.flops),
            "base_params": int(cost.params),
            "base_latency_ms": onnx_latency_ms(model, x, cfg.latency_runs),
        }
        write_json_atomic(rec_path, rec)
        bases[key] = rec
        say(progress, f"  {key.label} ({_SOURCES[source]}{' from the full model' if full else ''}): test accuracy {100 * rec['base_accuracy']:.2f}%, "
                      f"{rec['base_flops'] / 1e6:.2f} MFLOPs, checkpoint {ckpt}")
    return {key: bases[key] for key in keys}


def skipped_groups(model: torch.nn.Module, x: torch.Tensor) -> list[dict[str, str]]:
    """The channel groups of ``model`` the engine leaves at full width, with the reason (the trial cut fails,
    or a layer type without a pruner shares the channels): ``[{"layer": ..., "reason": ...}]``."""

    graph = analyze(model, x.to(model_device(model)))
    return [{"layer": name, "reason": reason} for name, reason in graph.skipped]


def warn_skipped(bases: dict[DataKey, dict[str, Any]], model: str) -> None:
    """Print once per dataset which groups stay at full width (also on a quiet run: it changes the result)."""
    from rich.console import Console

    for key, base in bases.items():
        skipped = base.get("skipped_groups") or []
        if not skipped:
            continue
        layers = ", ".join(s["layer"] for s in skipped)
        msg = (f"{len(skipped)} pruning group(s) of '{model}' on {key.label} stay at full width (counted in the "
               f"FLOPs budget, listed as skipped_groups in results.json): {layers}")
        log.warning(msg + "; reasons: " + "; ".join(f"{s['layer']}: {s['reason']}" for s in skipped))
        Console(stderr=True).print(f"[bold yellow]warning[/] {msg}", highlight=False)


def warn_landing(lines: list[str]) -> None:
    """Print the tasks whose episodes cannot spend their FLOPs budget (also on a quiet run: it changes the result)."""
    from rich.console import Console

    for line in lines:
        log.info(line)  # the run's log; the console line below is what the user sees
        Console(stderr=True).print(f"[bold yellow]warning[/] {line}", highlight=False)


def resolved_search(cfg: PruneConfig) -> Any:
    """``cfg.search`` with ``round_to`` as a number ('auto': measured once per host, then cached)."""

    return cfg.search.model_copy(update={"round_to": resolve_round_to(cfg.search.round_to)})


def env_kwargs(cfg: PruneConfig) -> dict[str, Any]:
    """The PruningEnv settings every task (and every baseline) shares (the policy file records them)."""

    return env_settings(resolved_search(cfg))


def make_factories(cfg: PruneConfig, tasks: list[TaskSpec], bases: dict[DataKey, dict[str, Any]],
                   tables: dict[DataKey, str] | None = None, task_round_to: dict[str, int] | None = None) -> list[Any]:
    """One env factory per task, each given the typed ``search`` settings; ``tables`` maps datasets with latency
    tasks to their latency table's path (a FLOPs task on such a dataset gets the table too, so its latency
    rewards use the table's prediction); ``task_round_to`` maps task names to their own channel multiple
    (``round_to: auto``, :func:`~autostruct.mtacp.preflight.choose_task_rounding`; others use ``search.round_to``)."""

    tables, task_round_to = tables or {}, task_round_to or {}
    shared = resolved_search(cfg)

    def search(t: TaskSpec) -> Any:
        own = task_round_to.get(t.name)
        return shared if own is None else shared.model_copy(update={"round_to": own})

    num_datasets = len({t.data for t in tasks})
    return [
        PruningEnvFactory(
            bases[t.data]["checkpoint"], t.data.dataset, 1.0 if t.ratio is None else t.ratio, classes=t.data.classes,
            width=cfg.width, epochs=cfg.base_training.epochs, seed=cfg.seed, val_split=cfg.search.holdout,
            data_root=t.data.root, device=cfg.device, task_id=t.task_id, dataset_index=t.dataset_index,
            num_datasets=num_datasets, search=search(t), latency_budget_ms=t.latency_ms, latency_table=tables.get(t.data),
        )
        for t in tasks
    ]


def policy_spec(cfg: PruneConfig) -> Any:

    return PolicySpec(observation_size=NUM_FEATURES, action_spec=BoxSpec(dim=1), use_lstm=cfg.rl.use_lstm)


def _finish_task(
    cfg: PruneConfig, out: Path, task: TaskSpec, factory: Any, episodes: list[Any], base: dict[str, Any],
    policy: Any, progress: bool, soft_targets: dict[Any, Any] | None = None,
) -> dict[str, Any]:
    """Select this task's strategy, rebuild it, score it before/after fine-tune on the test split, export, measure.

    The selected strategy is the best re-score among the ``search.top_k`` best distinct search scores
    (:func:`~autostruct.prune.selection.select_strategy`); the highest search score (``naive_best``) and the
    trained policy's greedy strategy (``greedy``) are scored on the test split too, without fine-tune.
    ``soft_targets`` keeps the base model's outputs on its training images between the tasks of one run: every
    task of a dataset distils from the same base on the same images.
    """

    task_dir = out / "tasks" / task.name
    done = task_dir / "task.json"
    if done.is_file():
        rec = json.loads(done.read_text())
        if rec.get("search_episodes") == len(episodes):  # else the search went on after it: redo
            return rec
    task_eps = task_episodes(episodes, task.task_id)
    env = factory()
    rescore_fn = env_rescore(env)
    selection = select_strategy([(e.reward, e.info) for e in task_eps], rescore_fn, cfg.search.top_k)
    chosen, naive = selection.selected, selection.candidates[0]
    say(progress, f"task {task.name}: selected rank {selection.candidates.index(chosen) + 1} of "
                   f"{len(selection.candidates)} (search {chosen.search_score:.4f}, re-score {chosen.rescore:.4f}); "
                   "fine-tuning, exporting")
    data = _load_data(cfg, task.data)
    x = _example(data)

    def recalibrated(counts: list[int]) -> torch.nn.Module:
        model = env.prune(counts)
        if cfg.search.recal_batches:
            batches = [bx for bx, _ in data.train.batches(128, shuffle=True, seed=cfg.seed)][: cfg.search.recal_batches]
            recalibrate_bn(model, batches, len(batches))
        return model

    def test_accuracy(counts: list[int]) -> float:
        return evaluate(recalibrated(counts), data.test, device=cfg.device).accuracy

    def rescored(channels: list[int], cand: Any = None) -> float | None:
        """The re-score of a strategy (None when the env has no re-score split)."""
        if cand is not None and cand.rescore_info:
            return cand.rescore
        return None if rescore_fn is None else float(rescore_fn(channels)[0])

    pruned = recalibrated(chosen.channels)
    acc_before = evaluate(pruned, data.test, device=cfg.device).accuracy
    naive_best = {
        "search_score": naive.search_score,
        "rescore": rescored(naive.channels, naive),
        "test_accuracy": acc_before if naive is chosen else test_accuracy(naive.channels),
        "val_accuracy_in_search": naive.info.get("accuracy"),
        "channels": naive.channels,
    }
    g = rollout(policy, env, greedy=True)
    greedy = {
        "keep_ratios": g.info.get("strategy"),
        "channels": g.info.get("channels"),
        "search_score": float(g.reward),
        "rescore": rescored(g.info["channels"]) if "channels" in g.info else None,
        "test_accuracy": test_accuracy(g.info["channels"]) if "channels" in g.info else None,
    }
    _, uni = uniform_strategy(env)
    uniform = {
        "keep_ratio": uni.get("uniform_ratio"),
        "flops": int(uni["flops"]),
        "val_accuracy": uni["accuracy"],
        "accuracy_before_finetune": test_accuracy(uni["channels"]),
    }
    acc_after = None
    ft_epochs = cfg.finetune.epochs_for(len(data.train))
    cycles = 0
    if ft_epochs > 0:
        ft = cfg.finetune
        teacher, logits = (env.model if ft.distill > 0 else None), None
        if teacher is not None and soft_targets is not None:
            key = (task.data, str(base["checkpoint"]))
            if key not in soft_targets:
                soft_targets[key] = distillation_targets(teacher, data, device=cfg.device)
            logits = soft_targets[key]
        target = None
        if ft.recover_within is not None and data.val is not None and len(data.val.y):
            target = evaluate(env.model, data.val, device=cfg.device).accuracy - ft.recover_within / 100
        cycles = len(fine_tune_cycles(
            pruned, data, ft_epochs, target_val_accuracy=target, max_cycles=ft.max_cycles if target is not None else 1,
            lr=ft.lr, batch_size=ft.batch_size, seed=cfg.seed, device=cfg.device, progress=progress,
            label=f"fine-tune {task.name}", teacher=teacher, teacher_logits=logits, distill=ft.distill,
            temperature=ft.temperature, max_steps=ft.max_steps))
        acc_after = evaluate(pruned, data.test, device=cfg.device).accuracy
    pruned = pruned.cpu().eval()
    cost = count_flops(pruned, x)
    if task.ratio is not None and cost.flops > task.ratio * base["base_flops"] * (1 + 1e-9):
        raise RuntimeError(f"task {task.name}: pruned FLOPs {cost.flops} exceed the budget; this is a bug")
    predicted = base_predicted = None
    if task.latency_ms is not None:
        predicted = env.latency_model.latency_ms(chosen.channels)
        base_predicted = env.latency_model.latency_ms(env.graph.channels)
        if predicted > task.latency_ms * (1 + 1e-9):
            raise RuntimeError(f"task {task.name}: predicted latency {predicted} exceeds the budget; this is a bug")
    timing = compare_latency(copy.deepcopy(env.model).cpu().eval(), pruned, x, runs=cfg.latency_runs, warmup=5,
                             threads=cfg.search.latency_threads).as_fields()
    # The first episode of this task that played the selected strategy.
    first = next(i for i, e in enumerate(task_eps) if e.info.get("channels") == chosen.channels)
    rec = {
        "task": task.name,
        "task_id": task.task_id,
        "dataset": task.data.dataset,
        "classes": list(task.data.classes) if task.data.classes else None,
        "ratio": task.ratio,
        "round_to": env.round_to,
        **({} if task.latency_ms is None else {
            # The budget, what the table predicts for the selected strategy, and the measured median (below).
            "latency_budget_ms": task.latency_ms,
            "predicted_latency_ms": predicted,
            "latency_vs_predicted": timing["latency_ms"] / predicted,
            "latency_vs_budget": timing["latency_ms"] / task.latency_ms,
            # The same check relative to the base timed in this process (interleaved): where the model lands in
            # its budget at the host's speed of now. A latency_ratios task's budget is relative by definition.
            "budget_vs_base": task.latency_ms / base_predicted,
            "latency_vs_budget_relative": (timing["latency_ms"] / timing["base_latency_ms"])
            / (task.latency_ms / base_predicted),
            **({} if task.latency_ratio is None else {"latency_ratio": task.latency_ratio}),
        }),
        "base_accuracy": base["base_accuracy"],
        "accuracy_before_finetune": acc_before,
        "accuracy_after_finetune": acc_after,
        "finetune_epochs": ft_epochs,
        "finetune_cycles": cycles,  # > 1: finetune.recover_within asked for more
        "val_accuracy_in_search": chosen.info.get("accuracy"),
        "best_reward": naive.search_score,
        "search_score": chosen.search_score,
        "rescore": rescored(chosen.channels, chosen),
        "test_accuracy": acc_before,
        "base_flops": base["base_flops"],
        "flops": int(cost.flops),
        "flops_ratio": cost.flops / base["base_flops"],
        "base_params": base["base_params"],
        "params": int(cost.params),
        # Base and pruned timed in this process with interleaved runs (latency_ms, latency_p90_ms,
        # base_latency_ms, base_latency_p90_ms, speedup); base/<data>.json keeps the base's own timing.
        **timing,
        "keep_ratios": chosen.info["strategy"],
        "channels": chosen.channels,
        "episodes_to_best": first + 1,
        "episodes": len(task_eps),
        "search_episodes": len(episodes),
        "search_seconds": float(task_eps[first].wall_time),
        "selection": selection.to_json(),
        "naive_best": naive_best,
        "greedy": greedy,
        "uniform": uniform,
        "skipped_groups": [{"layer": n, "reason": r} for n, r in env.graph.skipped],
    }
    paths = export(pruned, task_dir, x, metadata={k: rec[k] for k in ("task", "dataset", "classes", "ratio")})
    rec["model_path"], rec["onnx_path"] = str(paths.model_pt), str(paths.onnx)
    write_json_atomic(done, rec)
    return rec


def random_reference(
    cfg: PruneConfig, out: Path, task: TaskSpec, factory: Any, n_search: int, progress: bool
) -> dict[str, Any] | None:
    """``search.random_episodes`` uniformly random episodes on a fresh env of ``task`` (None when 0).

    The rewards are kept in ``random/<task>.json`` so a resume does not play them again;
    ``expected_best_of_n[n - 1]`` is random search's expected best after ``n`` episodes, for
    ``n = 1 .. n_search`` (this task's search episodes), from :func:`~autostruct.utils.stats.expected_best_of_n`.
    """

    episodes = cfg.search.random_episodes
    if episodes <= 0:
        return None
    path = out / "random" / f"{task.name}.json"
    stored = json.loads(path.read_text()) if path.is_file() else {}
    if stored.get("episodes") == episodes and stored.get("seed") == cfg.seed:
        rewards = stored["rewards"]
    else:
        say(progress, f"task {task.name}: {episodes} random episodes (the report's reference)")
        rewards = [float(r) for r, _ in random_episodes(factory(), episodes, seed=cfg.seed)]
        write_json_atomic(path, {"task": task.name, "episodes": episodes, "seed": cfg.seed, "rewards": rewards})
    return {"episodes": episodes, "rewards": rewards, "expected_best_of_n": expected_best_of_n(rewards, n_search)}


@dataclass(frozen=True)
class PrunePlan:
    """The checked inputs of a pruning run: ``search.round_to`` resolved, latency tables, datasets and tasks, and
    the tasks whose channel multiple was chosen on their own models (``round_to: auto``)."""

    round_to: int | None
    tables: dict[DataKey, str]
    keys: list[DataKey]
    tasks: list[TaskSpec]
    task_rounding: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def task_round_to(self) -> dict[str, int]:
        return {name: int(r["round_to"]) for name, r in self.task_rounding.items()}


class PruneSearch:
    """Channel pruning (MTACP) as a :class:`~autostruct.pipeline.SearchKind`: one trained base model per dataset,
    one pruning env per (dataset, budget) task, V-trace, and per task a selected strategy that is rebuilt,
    fine-tuned, exported and timed against its base."""

    run_format = RUN_FORMAT
    resumable = frozenset(_RESUMABLE_FIELDS)
    what_changed = "tasks, model or search settings"
    algorithm = "vtrace"
    prefix = "autostruct"
    assets_phase = "base models"

    def __init__(self) -> None:
        # The base models' outputs on their training images, shared by the fine-tunes of one run's tasks.
        self._soft_targets: dict[Any, Any] = {}

    def parse(self, config: Any) -> PruneConfig:
        return coerce_config(PruneConfig, config)

    def preflight(self, run: SearchRun) -> PrunePlan:
        round_to = check_prune_inputs(run.cfg)  # search.round_to; 'auto': measured on this host, fitted to the model
        # latency tasks: tables, reachable budgets, latency_ratios priced in ms
        tables, tasks = price_latency_tasks(run.cfg, round_to, run.progress)
        keys, _ = expand_tasks(run.cfg)
        rounding = {name: r.as_dict() for name, r in choose_task_rounding(run.cfg, round_to, run.progress).items()}
        warn_landing(landing_warnings(run.cfg, rounding))
        return PrunePlan(round_to, tables, keys, tasks, rounding)

    def prepare_assets(self, run: SearchRun) -> dict[DataKey, dict[str, Any]]:
        # A resumed run keeps the multiples its episodes were played with, whatever a re-timing says today; a run
        # started before per-task rounding existed (episodes but no rounding.json) played every task at the run's.
        path = run.out / "rounding.json"
        if path.is_file():
            run.plan = replace(run.plan, task_rounding=json.loads(path.read_text()))
        else:
            if (run.out / "search" / "episodes.jsonl").is_file():
                run.plan = replace(run.plan, task_rounding={})
            write_json_atomic(path, run.plan.task_rounding)
        with torch_threads(run.cfg.threads) as n:
            say(run.progress, f"{n} torch thread(s) (threads: {run.cfg.threads})")
            bases = prepare_bases(run.cfg, run.out, run.plan.keys, run.progress)
        warn_skipped(bases, run.cfg.model)
        return bases

    @staticmethod
    def env_config(run: SearchRun) -> PruneConfig:
        """The config the envs see: ``search.round_to`` as resolved by the preflight."""
        cfg = run.cfg
        return cfg.model_copy(update={"search": cfg.search.model_copy(update={"round_to": run.plan.round_to})})

    def make_factories(self, run: SearchRun) -> list[Any]:
        return make_factories(self.env_config(run), run.plan.tasks, run.assets, run.plan.tables,
                              run.plan.task_round_to)

    def policy_spec(self, run: SearchRun) -> Any:
        return policy_spec(run.cfg)

    def describe(self, run: SearchRun) -> str:
        cfg = run.cfg
        return (f"search: {len(run.plan.tasks)} tasks, {cfg.search.episodes} episodes, {cfg.rl.actors} actor(s) on "
                f"'{cfg.backend.name}'")

    def policy_metadata(self, run: SearchRun) -> dict[str, Any]:
        cfg, bases = run.cfg, run.assets
        return {
            "model": cfg.model,
            "model_kwargs": dict(cfg.model_kwargs),
            "imports": list(cfg.imports),
            "width": cfg.width,
            "base_training_epochs": cfg.base_training.epochs,
            "seed": cfg.seed,
            "env": env_kwargs(self.env_config(run)),
            "round_to_config": cfg.search.round_to,
            "task_round_to": run.plan.task_round_to,
            "datasets": [{"dataset": k.dataset, "classes": list(k.classes) if k.classes else None, "root": k.root,
                          "checkpoint": bases[k]["checkpoint"]} for k in run.plan.keys],
        }

    def finish_task(self, run: SearchRun, task_id: int) -> dict[str, Any]:
        cfg, task, factory = run.cfg, run.plan.tasks[task_id], run.factories[task_id]
        if best_episode(run.episodes, task.task_id) is None:
            raise AutostructError(
                f"Task {task.name} got no episode in {cfg.search.episodes} episodes. Raise search.episodes to at least "
                f"{len(run.plan.tasks)} (one per task)."
            )
        with torch_threads(cfg.threads) as n:
            say(run.progress, f"{n} torch thread(s) (threads: {cfg.threads})")
            rec = _finish_task(cfg, run.out, task, factory, run.episodes, run.assets[task.data], run.result.policy,
                               run.progress, self._soft_targets)
            if task.ratio is not None:
                rec["flops_vs_budget"] = rec["flops"] / (task.ratio * rec["base_flops"])
                warning = landing_warnings(cfg, {task.name: run.plan.task_rounding.get(task.name, {})})
                if warning:
                    rec["budget_warning"] = warning[0]
            reference = random_reference(cfg, run.out, task, factory, rec["episodes"], run.progress)
        return rec if reference is None else {**rec, "random_baseline": reference}

    def results(self, run: SearchRun, records: list[dict[str, Any]]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        cfg, plan, bases = run.cfg, run.plan, run.assets
        curves: dict[str, list[float]] = {t.name: [] for t in plan.tasks}
        for e in run.episodes:
            curves[plan.tasks[e.task_id].name].append(float(e.reward))
        totals = {
            "mean_accuracy_before_finetune": mean_of(records, "accuracy_before_finetune"),
            "mean_accuracy_after_finetune": mean_of(records, "accuracy_after_finetune"),
        }
        fields = {
            "curves": curves,
            "skipped_groups": {k.label: bases[k].get("skipped_groups", []) for k in plan.keys},
            "latency_tables": {k.label: p for k, p in plan.tables.items()},
            "rounding": {"config": cfg.search.round_to, "round_to": plan.round_to,
                         "host": resolve_rounding(cfg.search.round_to).as_dict()
                         if cfg.search.round_to == "auto" else None,
                         "tasks": {t.name: run.plan.task_rounding.get(t.name, {"round_to": plan.round_to,
                                                                              "source": "run"})
                                   for t in plan.tasks}},
        }
        return RESULTS_FORMAT, totals, fields


def run_prune(
    config: PruneConfig | dict[str, Any] | str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> PruneRunResult:
    """Run a multi-task pruning search end to end (see the module docstring for what lands where)."""
    return run_search(config, PruneSearch(), resume=resume, overwrite=overwrite, progress=progress,
                      result_type=PruneRunResult)


__all__ = ["PrunePlan", "PruneRunResult", "PruneSearch", "epochs_for", "make_factories", "policy_spec",
           "prepare_bases", "run_prune"]
