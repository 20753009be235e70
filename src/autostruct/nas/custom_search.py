"""The NAS run on a user's own space and evaluator: checks -> one env per task -> one IMPALA search -> results.

A run owns one folder (``output_dir``)::

    run.json, config.yaml    what this folder is and the validated config
    search/                  the engine's run: checkpoint.pt, episodes.jsonl, metrics, TensorBoard events
    tasks/<task>/arch.json   the best architecture within budget of each task ({name: value})
    policy.pt                the trained controller
    results.json             per task: best architecture within budget, its metrics, reward, episodes to best;
                             every evaluated architecture per task, totals, config and versions
    report.html              rendered from results.json

Unlike the supernet search there is nothing to train or export afterwards: the evaluator is a black box, and its
metrics of the chosen architecture are the result. Everything a user can get wrong (the space, the evaluator's
import, its result on one architecture per task) is checked before the run folder is touched.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from autostruct.nas.config import CustomNASConfig, CustomTask
from autostruct.nas.custom import (
    CustomEnvFactory,
    CustomSpace,
    Evaluator,
    custom_observation_size,
    evaluator_name,
    load_evaluator,
    load_space,
)
from autostruct.utils.io import write_json_atomic
from autostruct.utils.runs import RunResult, engine_totals, prepare_run_dir, say

RUN_FORMAT = "autostruct.nas-custom-run/1"
RESULTS_FORMAT = "autostruct.nas-custom-results/1"
_RESUMABLE_FIELDS = {"output_dir", "name", "backend"}


class CustomRunResult(RunResult):
    """What :func:`search_custom` returns: the parsed ``results.json`` plus where things are."""


def is_custom_config(config: Any) -> bool:
    """Whether ``config`` (object, mapping or YAML path) describes a search on a user's space (has ``evaluator``)."""
    if isinstance(config, CustomNASConfig):
        return True
    if isinstance(config, dict):
        return "evaluator" in config
    if isinstance(config, (str, Path)) and Path(config).is_file():
        import yaml

        try:
            data = yaml.safe_load(Path(config).read_text())
        except yaml.YAMLError:
            return False  # the regular loader reports it
        return isinstance(data, dict) and "evaluator" in data
    return False


def task_name(i: int, task: CustomTask) -> str:
    """A folder-safe, readable task name: ``t0-cifar10-flops2e+06``."""
    budgets = "-".join(f"{k}{v:g}" for k, v in task.budgets.items())
    raw = f"t{i}-{task.dataset}" + (f"-{budgets}" if budgets else "")
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", raw)


def make_factories(
    cfg: CustomNASConfig, space: CustomSpace | dict[str, Any] | str, evaluator: Evaluator | str, names: list[str]
) -> list[CustomEnvFactory]:
    datasets = list(dict.fromkeys(t.dataset for t in cfg.tasks))
    ranges: dict[str, tuple[float, float]] = {}
    for t in cfg.tasks:
        for k, v in t.budgets.items():
            lo, hi = ranges.get(k, (v, v))
            ranges[k] = (min(lo, v), max(hi, v))
    s = cfg.search
    return [
        CustomEnvFactory(
            space=space,
            evaluator=evaluator,
            dataset=t.dataset,
            budgets=dict(t.budgets),
            task_id=i,
            dataset_index=datasets.index(t.dataset),
            num_datasets=len(datasets),
            budget_ranges=tuple((k, lo, hi) for k, (lo, hi) in ranges.items()),
            reward=s.reward,
            reward_alpha=s.reward_alpha,
            reward_beta=s.reward_beta,
            import_paths=tuple(cfg.import_paths),
            name=names[i],
        )
        for i, t in enumerate(cfg.tasks)
    ]


def _parse(config: CustomNASConfig | dict[str, Any] | str | Path) -> CustomNASConfig:
    from autostruct.config import coerce_config

    return coerce_config(CustomNASConfig, config)


def search_custom(
    config: CustomNASConfig | dict[str, Any] | str | Path,
    *,
    space: CustomSpace | None = None,
    evaluator: Evaluator | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> CustomRunResult:
    """Run a multi-task NAS on a user's space with a user's evaluator (see the module docstring).

    ``space`` and ``evaluator`` objects, when given, are used instead of resolving the config's strings (what
    :func:`autostruct.search_custom` does for Python callables); they must pickle for the ``local`` backend.
    """
    cfg = _parse(config)
    from autostruct.report.nas_report import render_nas_report
    from autostruct.rl import PolicySpec, run_impala, save_policy
    from autostruct.rl.env import CategoricalSpec
    from autostruct.utils.versions import versions

    t_start = time.monotonic()
    # Checks first; nothing is written until they pass.
    space_obj = load_space(space if space is not None else cfg.space, cfg.import_paths)
    eval_fn = load_evaluator(evaluator if evaluator is not None else cfg.evaluator, cfg.import_paths)
    names = [task_name(i, t) for i, t in enumerate(cfg.tasks)]
    space_spec: CustomSpace | dict[str, Any] | str = space_obj if space is not None else cfg.space
    factories = make_factories(cfg, space_spec, evaluator if evaluator is not None else cfg.evaluator, names)
    prepare_run_dir(cfg, output_dir=cfg.output_dir, run_format=RUN_FORMAT, resumable=_RESUMABLE_FIELDS,
                    resume=resume, overwrite=overwrite, what_changed="tasks, space, evaluator or search settings",
                    dry_run=True)
    if cfg.search.check_evaluator:  # one architecture per task through the env, as an actor would build it
        for f in factories:
            f().evaluate([0] * space_obj.num_decisions)
    out = prepare_run_dir(cfg, output_dir=cfg.output_dir, run_format=RUN_FORMAT, resumable=_RESUMABLE_FIELDS,
                          resume=resume, overwrite=overwrite,
                          what_changed="tasks, space, evaluator or search settings")
    datasets = list(dict.fromkeys(t.dataset for t in cfg.tasks))
    spec = PolicySpec(
        observation_size=custom_observation_size(space_obj, len(datasets)),
        action_spec=CategoricalSpec(space_obj.choice_counts),
        use_lstm=cfg.rl.use_lstm,
    )
    say(progress, f"search: {len(cfg.tasks)} tasks, space '{space_obj.name}' ({space_obj.num_decisions} decisions), "
                  f"evaluator {evaluator_name(eval_fn)}, {cfg.search.episodes} episodes, {cfg.rl.actors} actor(s) on "
                  f"'{cfg.backend.name}'", prefix="autostruct nas")
    t_search = time.monotonic()
    result = run_impala(
        factories, spec, total_episodes=cfg.search.episodes, run_dir=out / "search", rl=cfg.rl, backend=cfg.backend,
        algorithm="mc", resume=True, seed=cfg.seed, progress=progress,
    )
    search_wall = time.monotonic() - t_search
    policy_path = save_policy(result.policy, out / "policy.pt",
                              metadata={"space": space_obj.to_dict(), "tasks": names, "seed": cfg.seed})
    from autostruct.nas.search import _evaluated, best_in_budget

    records = [_task_record(i, t, names[i], best_in_budget(result.episodes, i), result.episodes, out)
               for i, t in enumerate(cfg.tasks)]
    results = {
        "format": RESULTS_FORMAT,
        "name": cfg.name,
        "tasks": records,
        "totals": {
            "tasks": len(cfg.tasks),
            "datasets": len(datasets),
            "episodes": len(result.episodes),
            "distinct_architectures": len({(e.task_id, tuple(e.info.get("indices", ()))) for e in result.episodes}),
            "tasks_without_feasible_arch": sum(r["arch"] is None for r in records),
            **engine_totals(result, search_wall, t_start),
        },
        "space": space_obj.to_dict(),
        "evaluator": evaluator_name(eval_fn),
        "evaluated": _evaluated(result.episodes, names),
        "policy_path": str(policy_path),
        "config": cfg.model_dump(mode="json"),
        "versions": versions(),
    }
    write_json_atomic(out / "results.json", results)
    report = render_nas_report(out)
    say(progress, f"done: {out / 'results.json'} and {report}", prefix="autostruct nas")
    return CustomRunResult(out, results, report, policy_path)


def _task_record(
    i: int, task: CustomTask, name: str, chosen: tuple[Any, int, int] | None, episodes: list[Any], out: Path
) -> dict[str, Any]:
    """The task's entry of results.json: its best episode within budget (``arch`` None when none met them)."""
    rec: dict[str, Any] = {"task": name, "task_id": i, "dataset": task.dataset, "budgets": dict(task.budgets)}
    if chosen is None:
        n = sum(e.task_id == i for e in episodes)
        say(True, f"task {name}: none of its {n} architectures met its budgets {task.budgets}", prefix="autostruct nas")
        return {**rec, "arch": None, "arch_str": None, "indices": None, "accuracy": None, "flops": None,
                "params": None, "latency_ms": None, "reward": None, "metrics": {}, "meets_budgets": False,
                "episodes_to_best": None, "episodes": n, "found_at_seconds": None}
    best, episodes_to_best, n = chosen
    info = best.info
    write_json_atomic(out / "tasks" / name / "arch.json", info["arch"])
    return {
        **rec,
        "arch": info["arch"],
        "arch_str": info["arch_str"],
        "indices": info["indices"],
        "accuracy": info["accuracy"],
        "flops": info.get("flops"),
        "params": info.get("params"),
        "latency_ms": info.get("latency_ms"),
        "reward": float(best.reward),
        "metrics": info.get("metrics", {}),
        "meets_budgets": True,
        "episodes_to_best": episodes_to_best,
        "episodes": n,
        "found_at_seconds": float(best.wall_time),
    }


__all__ = ["CustomRunResult", "is_custom_config", "search_custom", "task_name"]
