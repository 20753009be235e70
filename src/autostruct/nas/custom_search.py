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

The phases run in :func:`autostruct.pipeline.run_search`; :class:`CustomNASSearch` supplies this search's parts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autostruct.config import coerce_config
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
from autostruct.pipeline import SearchRun, best_episode, run_search
from autostruct.results import CUSTOM_NAS_FORMAT
from autostruct.rl import CategoricalSpec, PolicySpec
from autostruct.utils.io import write_json_atomic
from autostruct.utils.runs import RunResult, say

RUN_FORMAT = "autostruct.nas-custom-run/1"
RESULTS_FORMAT = CUSTOM_NAS_FORMAT  # the schema: autostruct.results
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


def best_in_budget(episodes: list[Any], task_id: int) -> tuple[Any, int, int] | None:
    """(best episode among those meeting their budgets, its 1-based index among the task's episodes, count)."""
    return best_episode(episodes, task_id, accept=lambda e: bool(e.info.get("meets_budgets")))


def evaluated_archs(episodes: list[Any], names: list[str]) -> dict[str, dict[str, list[Any]]]:
    """Per task, the architectures evaluated in the search (for the accuracy-vs-cost scatter and reward curves)."""
    out: dict[str, dict[str, list[Any]]] = {
        n: {"episode": [], "accuracy": [], "reward": [], "flops": [], "params": [], "latency_ms": [], "meets_budgets": []}
        for n in names
    }
    for e in episodes:
        d = out[names[e.task_id]]
        d["episode"].append(e.episode_index)
        for k in ("accuracy", "flops", "params", "latency_ms", "meets_budgets"):
            d[k].append(e.info.get(k))
        d["reward"].append(float(e.reward))
    return out


@dataclass(frozen=True)
class CustomPlan:
    """The checked inputs: the space and evaluator as loaded, task names, the env factories, the datasets."""

    space: CustomSpace
    evaluator: Evaluator
    names: list[str]
    factories: list[CustomEnvFactory]
    datasets: list[str]


class CustomNASSearch:
    """NAS on a user's space with a user's evaluator as a :class:`~autostruct.pipeline.SearchKind`: no assets, one
    env per task, Monte Carlo returns, and per task the best architecture within budget (nothing to train).

    ``space`` and ``evaluator`` objects, when given, are used instead of resolving the config's strings."""

    run_format = RUN_FORMAT
    resumable = frozenset(_RESUMABLE_FIELDS)
    what_changed = "tasks, space, evaluator or search settings"
    algorithm = "mc"
    prefix = "autostruct nas"

    def __init__(self, space: CustomSpace | None = None, evaluator: Evaluator | None = None) -> None:
        self.space, self.evaluator = space, evaluator

    def parse(self, config: Any) -> CustomNASConfig:
        return coerce_config(CustomNASConfig, config)

    def preflight(self, run: SearchRun) -> CustomPlan:
        cfg = run.cfg
        space_obj = load_space(self.space if self.space is not None else cfg.space, cfg.import_paths)
        eval_fn = load_evaluator(self.evaluator if self.evaluator is not None else cfg.evaluator, cfg.import_paths)
        names = [task_name(i, t) for i, t in enumerate(cfg.tasks)]
        space_spec: CustomSpace | dict[str, Any] | str = space_obj if self.space is not None else cfg.space
        factories = make_factories(cfg, space_spec, self.evaluator if self.evaluator is not None else cfg.evaluator,
                                   names)
        if cfg.search.check_evaluator:  # one architecture per task through the env, as an actor would build it
            for f in factories:
                f().evaluate([0] * space_obj.num_decisions)
        return CustomPlan(space_obj, eval_fn, names, factories, list(dict.fromkeys(t.dataset for t in cfg.tasks)))

    def prepare_assets(self, run: SearchRun) -> None:
        return None

    def make_factories(self, run: SearchRun) -> list[CustomEnvFactory]:
        return run.plan.factories

    def policy_spec(self, run: SearchRun) -> PolicySpec:
        space = run.plan.space
        return PolicySpec(
            observation_size=custom_observation_size(space, len(run.plan.datasets)),
            action_spec=CategoricalSpec(space.choice_counts),
            use_lstm=run.cfg.rl.use_lstm,
        )

    def describe(self, run: SearchRun) -> str:
        cfg, space = run.cfg, run.plan.space
        return (f"search: {len(cfg.tasks)} tasks, space '{space.name}' ({space.num_decisions} decisions), "
                f"evaluator {evaluator_name(run.plan.evaluator)}, {cfg.search.episodes} episodes, {cfg.rl.actors} "
                f"actor(s) on '{cfg.backend.name}'")

    def policy_metadata(self, run: SearchRun) -> dict[str, Any]:
        return {"space": run.plan.space.to_dict(), "tasks": run.plan.names, "seed": run.cfg.seed}

    def finish_task(self, run: SearchRun, task_id: int) -> dict[str, Any]:
        return _task_record(task_id, run.cfg.tasks[task_id], run.plan.names[task_id],
                            best_in_budget(run.episodes, task_id), run.episodes, run.out)

    def results(self, run: SearchRun, records: list[dict[str, Any]]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        totals = {
            "datasets": len(run.plan.datasets),
            "distinct_architectures": len({(e.task_id, tuple(e.info.get("indices", ()))) for e in run.episodes}),
            "tasks_without_feasible_arch": sum(r["arch"] is None for r in records),
        }
        fields = {
            "space": run.plan.space.to_dict(),
            "evaluator": evaluator_name(run.plan.evaluator),
            "evaluated": evaluated_archs(run.episodes, run.plan.names),
        }
        return RESULTS_FORMAT, totals, fields


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
    return run_search(config, CustomNASSearch(space, evaluator), resume=resume, overwrite=overwrite,
                      progress=progress, result_type=CustomRunResult)


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


__all__ = ["CustomNASSearch", "CustomPlan", "CustomRunResult", "best_in_budget", "evaluated_archs",
           "is_custom_config", "search_custom", "task_name"]
