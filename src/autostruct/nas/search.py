"""The MTNAS run: supernets -> device profiles -> one env per task -> one IMPALA search -> train, export, report.

A run owns one folder (``output_dir``)::

    run.json                 what this folder is (format, name, settings fingerprint)
    config.yaml              the validated config
    supernets/<data>.json    the cached supernet's path and training metrics, per dataset
    profiles/<task>.json     the latency profile a task is priced with (host: measured here, with its check)
    search/                  the engine's run: checkpoint.pt, episodes.jsonl, metrics, TensorBoard events
    tasks/<task>/            arch.json, model.pt, model.onnx, task.json (one folder per finished task)
    policy.pt                the trained controller
    results.json             everything per task + evaluated architectures, totals, config and versions
    report.html              rendered from results.json

One controller (the engine's categorical LSTM policy; the task is in its observation) is trained by IMPALA
actors on every task at once, with Monte Carlo returns and truncated importance weights (``algorithm="mc"``).
Every phase writes atomically and is skipped on ``resume`` when its output exists.

The phases run in :func:`autostruct.pipeline.run_search`; :class:`NASSearch` supplies this search's parts
(supernets and latency profiles, NAS envs, the per-task selection and finish, the results fields).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

import torch

from autostruct.config import coerce_config
from autostruct.data import load_dataset
from autostruct.errors import AutostructError
from autostruct.export import export
from autostruct.measure import count_flops
from autostruct.models.registry import create_model
from autostruct.models.train import evaluate, fine_tune
from autostruct.nas import supernet as _registers_nas_model  # noqa: F401  (load_model needs the builder)
from autostruct.nas.config import NASConfig, NASTask
from autostruct.nas.costs import arch_cost
from autostruct.nas.custom_search import best_in_budget, evaluated_archs, is_custom_config, search_custom
from autostruct.nas.env import NASEnvFactory, holdout_indices, make_evaluator, observation_size
from autostruct.nas.evaluate import TaskCosts
from autostruct.nas.lut import build_lut, check_lut, load_profile, save_profile
from autostruct.nas.space import SearchSpace, get_space
from autostruct.nas.train_supernet import get_or_train_supernet, load_supernet, supernet_cache_dir
from autostruct.pipeline import SearchRun, onnx_latency_ms, run_search, task_episodes
from autostruct.prune.selection import RescoreFn, Selection, select_strategy
from autostruct.results import NAS_FORMAT
from autostruct.rl import CategoricalSpec, PolicySpec
from autostruct.utils.cache import entry_lock
from autostruct.utils.io import write_json_atomic, write_text_atomic
from autostruct.utils.runs import DataKey, RunResult, mean_of, say

log = logging.getLogger("autostruct.nas")

RUN_FORMAT = "autostruct.nas-run/1"
RESULTS_FORMAT = NAS_FORMAT  # the schema: autostruct.results
#: Config fields that may change between a run and its resume (they don't change what was already done).
_RESUMABLE_FIELDS = {"output_dir", "name", "backend", "latency_runs", "finetune", "device", "lut"}


class NASRunResult(RunResult):
    """What :func:`search` returns: the parsed ``results.json`` plus where things are."""


def _data_key(task: NASTask) -> DataKey:
    return DataKey(task.dataset, tuple(task.classes) if task.classes else None, task.root)


def task_name(i: int, task: NASTask) -> str:
    """A folder-safe, readable task name: ``t0-fashion-mnist-latency_ms2``."""
    budgets = "-".join(f"{k}{v:g}" for k, v in task.budgets.items())
    raw = f"t{i}-{_data_key(task).label}-{budgets}"
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", raw)


#: The prefix of this search's status lines.
PREFIX = "autostruct nas"


# ---------------------------------------------------------------------- phases


class _Data:
    """Datasets loaded lazily, once per key (the val carve holds the reward's and the re-score's images)."""

    def __init__(self, cfg: NASConfig) -> None:
        self.cfg = cfg
        self._cache: dict[DataKey, Any] = {}

    def __call__(self, key: DataKey) -> Any:
        if key not in self._cache:

            self._cache[key] = load_dataset(
                key.dataset,
                root=key.root,
                val_size=holdout_size(self.cfg),
                seed=self.cfg.seed,
                classes=list(key.classes) if key.classes else None,
            )
        return self._cache[key]


def holdout_size(cfg: NASConfig) -> int:
    """Validation images carved from the training set: ``search.holdout_size``, by default the reward's
    ``val_size`` plus the re-score's ``rescore_size``."""
    return cfg.search.holdout


def _space(cfg: NASConfig, data: Any) -> SearchSpace:
    return get_space(cfg.space, data.image_size).scaled(cfg.width)


def prepare_supernets(cfg: NASConfig, out: Path, keys: list[DataKey], datas: _Data, progress: bool) -> dict[DataKey, dict[str, Any]]:
    """Train (or fetch from the cache) one supernet per dataset; record where it is."""

    recs: dict[DataKey, dict[str, Any]] = {}
    for key in keys:
        rec_path = out / "supernets" / f"{key.label}.json"
        if rec_path.is_file():
            rec = json.loads(rec_path.read_text())
            if Path(rec["path"]).is_file():
                recs[key] = rec
                continue
        data = datas(key)
        space = _space(cfg, data)
        say(progress, f"supernet for {key.label}: {space.num_architectures():.3g} architectures, "
                       f"{cfg.supernet.epochs} epochs ({cfg.supernet.sampling} sampling), cached after training", prefix=PREFIX)
        _, info = get_or_train_supernet(
            space, data, cfg.supernet, seed=cfg.seed, val_size=holdout_size(cfg), device=cfg.device, progress=progress
        )
        rec = {"dataset": key.dataset, "classes": list(key.classes) if key.classes else None, "path": str(info.path),
               "cache_hit": info.hit, "metrics": info.metrics}
        write_json_atomic(rec_path, rec)
        recs[key] = rec
    return recs


def _host_profile_path(cfg: NASConfig, space: SearchSpace, data: Any) -> Path:
    """Host tables are cached like supernets: ``$AUTOSTRUCT_CACHE/luts/host-<key>.json``."""
    import platform


    fields = {"space": space.to_dict(), "shape": [data.in_channels, data.image_size, data.num_classes],
              "lut": cfg.lut.model_dump(), "seed": cfg.seed, "host": platform.node(), "version": 1}
    digest = hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]
    return supernet_cache_dir().parent / "luts" / f"host-{space.name}-{data.in_channels}x{data.image_size}-n{data.num_classes}-{digest}.json"


def prepare_profiles(cfg: NASConfig, tasks: list[NASTask], names: list[str], datas: _Data, progress: bool) -> dict[int, str]:
    """The latency profile of each task that prices latency: measured here (cached) for ``device: host``, else
    the given file, checked to cover the task's space and input shape."""

    paths: dict[int, str] = {}
    for i, (task, name) in enumerate(zip(tasks, names, strict=True)):
        if "latency_ms" not in task.budgets:
            continue
        data = datas(_data_key(task))
        space = _space(cfg, data)
        if task.device != "host":
            profile = load_profile(task.device)
            missing = profile.covers(space)
            if missing:
                raise AutostructError(
                    f"Task {name}: device profile '{task.device}' lacks {len(missing)} block(s) of this space and input "
                    f"shape, e.g. '{missing[0]}'. Measure it on the device with `autostruct nas build-lut --space "
                    f"{cfg.space if isinstance(cfg.space, str) else '<file>'} --image-size {data.image_size} "
                    f"--in-channels {data.in_channels} --num-classes {data.num_classes} --width {cfg.width:g}`."
                )
            paths[i] = task.device
            continue
        path = _host_profile_path(cfg, space, data)
        with entry_lock(path, "measuring this host's latency table"):  # concurrent runs measure it once
            if not path.is_file():
                say(progress, f"latency table for {_data_key(task).label} on this host (onnxruntime, {cfg.lut.threads} thread(s))",
                    prefix=PREFIX)
                profile = build_lut(
                    space, data.image_size, data.in_channels, data.num_classes, device="host", threads=cfg.lut.threads,
                    warmup=cfg.lut.warmup, runs=cfg.lut.runs, rounds=cfg.lut.rounds, seed=cfg.seed, progress=progress,
                )
                if cfg.lut.check_archs >= 2:
                    check = check_lut(profile, space, cfg.lut.check_archs, seed=cfg.seed, warmup=cfg.lut.warmup,
                                      runs=cfg.lut.runs, rounds=cfg.lut.rounds, progress=progress)
                    profile = profile.with_meta(check=check.as_dict())
                    say(progress, f"  predicted vs measured latency of {cfg.lut.check_archs} networks: Spearman "
                                   f"{check.spearman:.3f} (target >= 0.9)", prefix=PREFIX)
                save_profile(profile, path)
        paths[i] = str(path)
    return paths


def copy_profiles(out: Path, profiles: dict[int, str], names: list[str]) -> dict[int, str]:
    """Keep the tables a run was priced with inside its folder (the report and a later resume read these)."""
    copied = {}
    for i, src in profiles.items():
        dst = out / "profiles" / f"{names[i]}.json"
        if not dst.is_file():
            write_text_atomic(dst, Path(src).read_text())
        copied[i] = str(dst)
    return copied


def make_factories(
    cfg: NASConfig, tasks: list[NASTask], names: list[str], supernets: dict[DataKey, dict[str, Any]], profiles: dict[int, str]
) -> list[NASEnvFactory]:
    keys = list(dict.fromkeys(_data_key(t) for t in tasks))
    s = cfg.search
    return [
        NASEnvFactory(
            space=cfg.space,
            dataset=t.dataset,
            budgets=dict(t.budgets),
            supernet_path=supernets[_data_key(t)]["path"],
            classes=tuple(t.classes) if t.classes else None,
            root=t.root,
            width=cfg.width,
            profile_path=profiles.get(i),
            task_id=i,
            dataset_index=keys.index(_data_key(t)),
            num_datasets=len(keys),
            val_size=s.val_size,
            rescore_size=s.rescore_size,
            holdout_size=s.holdout_size,
            recal_batches=s.recal_batches,
            recal_batch_size=s.recal_batch_size,
            reward=s.reward,
            reward_alpha=s.reward_alpha,
            reward_beta=s.reward_beta,
            mask_infeasible=s.mask_infeasible,
            seed=cfg.seed,
            name=names[i],
        )
        for i, t in enumerate(tasks)
    ]


def check_budgets(
    cfg: NASConfig, tasks: list[NASTask], names: list[str], datas: _Data, profiles: dict[int, str] | None
) -> None:
    """Fail before any training if a budget is unreachable (the envs would only fail inside actor processes).

    With ``profiles=None`` only FLOPs and params budgets are checked (latency needs the tables).
    """

    for i, (task, name) in enumerate(zip(tasks, names, strict=True)):
        data = datas(_data_key(task))
        budgets = dict(task.budgets)
        profile = None
        if profiles is None:
            budgets.pop("latency_ms", None)
        elif i in profiles:
            profile = load_profile(profiles[i])
        TaskCosts(data.in_channels, data.image_size, data.num_classes, profile).check_budgets(
            _space(cfg, data), budgets, where=f"Task {name}"
        )


def policy_spec(cfg: NASConfig, space: SearchSpace, num_datasets: int) -> Any:

    return PolicySpec(
        observation_size=observation_size(space, num_datasets),
        action_spec=CategoricalSpec(space.choice_counts),
        use_lstm=cfg.rl.use_lstm,
    )


def select_architecture(
    episodes: list[Any], task_id: int, rescore: RescoreFn | None, top_k: int
) -> tuple[Selection, tuple[Any, int, int]] | None:
    """Select a task's architecture without the winner's curse (:func:`~autostruct.prune.selection.select_strategy`).

    The ``top_k`` distinct architectures meeting their budgets, best by search reward, are re-scored with
    ``rescore`` (choice indices -> ``(reward, info)`` on images that never scored an episode) and the best re-score
    wins (ties: the search reward). With ``rescore=None`` the pick is :func:`best_in_budget`'s. Returns the
    selection and (the selected episode, its 1-based index among the task's episodes, their count), or None when
    no episode met its budgets.
    """
    task_eps = task_episodes(episodes, task_id)
    within = [(e.reward, e.info) for e in task_eps if e.info.get("meets_budgets")]
    if not within:
        return None
    selection = select_strategy(within, rescore, top_k, key="arch")
    index = next(i for i, e in enumerate(task_eps, start=1) if e.info is selection.info)
    return selection, (task_eps[index - 1], index, len(task_eps))


def env_rescorer(factory: NASEnvFactory) -> RescoreFn:
    """Scores architectures on the factory's re-score split with the task's reward: indices -> (reward, info)."""
    env = dataclasses.replace(factory, split="rescore")()

    def rescore(indices: Any) -> tuple[float, dict[str, Any]]:
        info = env.evaluate(env.space.arch([int(i) for i in indices]))
        return float(info["reward"]), info

    return rescore


def selection_fields(selection: Selection, rescored: bool, rescore_images: int) -> dict[str, Any]:
    """The results.json fields of a task's selection: ``search_score`` and ``rescore`` are accuracies (on the
    reward's subset and on the disjoint re-score subset); ``naive_best`` is the best-by-reward architecture."""

    def scores(c: Any) -> dict[str, Any]:
        return {"arch": list(c.channels), "arch_str": c.info.get("arch_str"), "search_score": c.info.get("accuracy"),
                "rescore": c.rescore_info.get("accuracy") if rescored else None, "search_reward": c.search_score,
                "rescore_reward": c.rescore if rescored else None}

    chosen = scores(selection.selected)
    return {
        "search_score": chosen["search_score"],
        "rescore": chosen["rescore"],
        "selection": "rescore" if rescored else "search",
        "selected_rank": selection.candidates.index(selection.selected) + 1,
        "top_k": selection.top_k,
        "rescore_images": rescore_images,
        "naive_best": scores(selection.candidates[0]),
        "rescore_candidates": [scores(c) for c in selection.candidates],
    }


def _finish_task(
    cfg: NASConfig,
    out: Path,
    name: str,
    task_id: int,
    task: NASTask,
    data: Any,
    supernet_path: str,
    profile_path: str | None,
    chosen: tuple[Any, int, int],
    selected: dict[str, Any],
    search_episodes: int,
    progress: bool,
) -> dict[str, Any]:
    """Build the chosen architecture with inherited weights, train it further, export, measure.

    ``selected`` is :func:`selection_fields`'s record; the best-by-reward architecture's test accuracy with
    inherited weights is added to its ``naive_best`` (the winner's curse, measured).
    """

    task_dir = out / "tasks" / name
    done = task_dir / "task.json"
    from_scratch = cfg.finetune.from_scratch
    if done.is_file():
        rec = json.loads(done.read_text())
        if rec.get("search_episodes") == search_episodes and rec.get("from_scratch") == from_scratch:
            return rec
    best, episodes_to_best, n_task_eps = chosen
    space = _space(cfg, data)
    arch = space.arch(best.info["arch"])
    rescore_note = f", re-score accuracy {selected['rescore']:.4f}" if selected["rescore"] is not None else ""
    say(progress, f"task {name}: selected architecture {arch} (rank {selected['selected_rank']} of "
                   f"{len(selected['rescore_candidates'])} by reward {best.reward:.4f}{rescore_note}); "
                   + ("training from scratch" if from_scratch else "fine-tuning inherited weights"), prefix=PREFIX)
    write_json_atomic(task_dir / "arch.json", arch.to_json())
    supernet = load_supernet(supernet_path, data.num_classes, data.in_channels)
    evaluator = make_evaluator(supernet, data, cfg.search.val_size, cfg.search.recal_batches,
                              cfg.search.recal_batch_size, cfg.seed)
    model = evaluator.model(arch).to(memory_format=torch.contiguous_format)
    acc_before = evaluate(model, data.test, device=cfg.device).accuracy
    naive = dict(selected["naive_best"])
    naive["accuracy_before_finetune"] = acc_before if naive["arch"] == list(arch.indices) else evaluate(
        evaluator.model(space.arch(naive["arch"])), data.test, device=cfg.device).accuracy
    acc_after, ft_epochs = None, 0
    if from_scratch:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            fresh = create_model(**{"name": model.autostruct_spec["name"], **model.autostruct_spec["kwargs"]})
        model = fresh
    if cfg.finetune.epochs > 0:
        lr = cfg.finetune.lr * (10 if from_scratch else 1)
        ft_data = data
        if cfg.finetune.train_size is not None:
            ft_data = dataclasses.replace(data, train=data.train.subset(cfg.finetune.train_size, seed=cfg.seed))
        ft_epochs = cfg.finetune.epochs_for(len(ft_data.train), drop_last=True)
        fine_tune(model, ft_data, ft_epochs, lr=lr, batch_size=cfg.finetune.batch_size, seed=cfg.seed,
                  device=cfg.device, progress=progress, channels_last=True)
        acc_after = evaluate(model, data.test, device=cfg.device).accuracy
    model = model.cpu().eval().to(memory_format=torch.contiguous_format)
    x = torch.zeros(1, data.in_channels, data.image_size, data.image_size)
    cost = count_flops(model, x)
    formula = arch_cost(arch, data.in_channels, data.image_size, data.num_classes)
    if (cost.flops, cost.params) != (formula.flops, formula.params):
        raise RuntimeError(f"task {name}: counted cost {cost} differs from the space's formula {formula}; this is a bug")
    predicted = load_profile(profile_path).predict(arch) if profile_path else None
    costs = {"flops": cost.flops, "params": cost.params, "latency_ms": predicted}
    over = {k: (costs[k], t) for k, t in task.budgets.items() if costs[k] is not None and costs[k] > t * (1 + 1e-9)}
    if over:
        raise RuntimeError(f"task {name}: the chosen architecture breaks its budgets {over}; this is a bug")
    rec = {
        "task": name,
        "task_id": task_id,
        "dataset": task.dataset,
        "classes": list(task.classes) if task.classes else None,
        "budgets": dict(task.budgets),
        "device": task.device,
        "arch": arch.to_json(),
        "arch_str": str(arch),
        "flops": int(cost.flops),
        "params": int(cost.params),
        "latency_ms": onnx_latency_ms(model, x, cfg.latency_runs),
        "predicted_latency_ms": predicted,
        "accuracy": best.info["accuracy"],
        "reward": best.reward,
        "accuracy_before_finetune": acc_before,
        "accuracy_after_finetune": acc_after,
        "from_scratch": from_scratch,
        "finetune_epochs": ft_epochs,
        "episodes_to_best": episodes_to_best,
        "episodes": n_task_eps,
        "search_episodes": search_episodes,
        "found_at_seconds": float(best.wall_time),
        **selected,
        "naive_best": naive,
    }
    paths = export(model, task_dir, x, metadata={k: rec[k] for k in ("task", "dataset", "classes", "budgets", "arch")})
    rec["model_path"], rec["onnx_path"] = str(paths.model_pt), str(paths.onnx)
    write_json_atomic(done, rec)
    return rec


#: The per-task evaluated architectures of results.json (shared with the custom-space search).
_evaluated = evaluated_archs


@dataclasses.dataclass
class NASPlan:
    """The checked inputs of a NAS run: tasks and their names, datasets, the data cache, latency profiles."""

    tasks: list[NASTask]
    names: list[str]
    keys: list[DataKey]
    datas: _Data
    profiles: dict[int, str]


@dataclasses.dataclass
class NASAssets:
    """Per dataset the supernet record (``supernets/<data>.json``); per latency task its profile in the run folder."""

    supernets: dict[DataKey, dict[str, Any]]
    profiles: dict[int, str]


class NASSearch:
    """Supernet NAS (MTNAS) as a :class:`~autostruct.pipeline.SearchKind`: one supernet per dataset, latency
    profiles, one NAS env per task, Monte Carlo returns, and per task a selected architecture that is built with
    inherited weights, fine-tuned (or trained from scratch), exported and timed.

    ``from_scratch`` overrides ``finetune.from_scratch`` (the CLI's ``--from-scratch``)."""

    run_format = RUN_FORMAT
    resumable = frozenset(_RESUMABLE_FIELDS)
    what_changed = "tasks, space, supernet or search settings"
    algorithm = "mc"
    prefix = PREFIX

    def __init__(self, from_scratch: bool | None = None) -> None:
        self.from_scratch = from_scratch

    def parse(self, config: Any) -> NASConfig:
        cfg = coerce_config(NASConfig, config)
        if self.from_scratch is not None:
            cfg = cfg.model_copy(update={"finetune": cfg.finetune.model_copy(update={"from_scratch": self.from_scratch})})
        if cfg.finetune.from_scratch and cfg.finetune.epochs < 1:
            raise AutostructError("Training from scratch needs finetune.epochs >= 1 (e.g. finetune: {epochs: 10}).")
        return cfg

    def preflight(self, run: SearchRun) -> NASPlan:

        cfg = run.cfg
        tasks = list(cfg.tasks)
        names = [task_name(i, t) for i, t in enumerate(tasks)]
        keys = list(dict.fromkeys(_data_key(t) for t in tasks))
        datas = _Data(cfg)
        check_budgets(cfg, tasks, names, datas, None)
        profiles = prepare_profiles(cfg, tasks, names, datas, run.progress)
        check_budgets(cfg, tasks, names, datas, profiles)
        return NASPlan(tasks, names, keys, datas, profiles)

    def prepare_assets(self, run: SearchRun) -> NASAssets:
        plan = run.plan
        profiles = copy_profiles(run.out, plan.profiles, plan.names)
        return NASAssets(prepare_supernets(run.cfg, run.out, plan.keys, plan.datas, run.progress), profiles)

    def make_factories(self, run: SearchRun) -> list[NASEnvFactory]:
        plan = run.plan
        return make_factories(run.cfg, plan.tasks, plan.names, run.assets.supernets, run.assets.profiles)

    def _space0(self, run: SearchRun) -> SearchSpace:
        return _space(run.cfg, run.plan.datas(run.plan.keys[0]))

    def policy_spec(self, run: SearchRun) -> Any:
        return policy_spec(run.cfg, self._space0(run), len(run.plan.keys))

    def describe(self, run: SearchRun) -> str:
        cfg = run.cfg
        return (f"search: {len(run.plan.tasks)} tasks, {cfg.search.episodes} episodes, {cfg.rl.actors} actor(s) on "
                f"'{cfg.backend.name}', reward {cfg.search.reward}")

    def policy_metadata(self, run: SearchRun) -> dict[str, Any]:
        return {"space": run.cfg.model_dump(mode="json")["space"], "tasks": run.plan.names, "seed": run.cfg.seed}

    def finish_task(self, run: SearchRun, task_id: int) -> dict[str, Any]:
        cfg, plan, s = run.cfg, run.plan, run.cfg.search
        task, name = plan.tasks[task_id], plan.names[task_id]
        key = _data_key(task)
        n_rescore = len(holdout_indices(len(plan.datas(key).val), s.val_size, s.rescore_size, cfg.seed)[1])
        if n_rescore < s.rescore_size:
            msg = (f"task {name}: the validation hold-out has room for {n_rescore} of search.rescore_size="
                   f"{s.rescore_size} re-score images after the reward's {s.val_size}"
                   + ("; selecting by the search reward" if n_rescore == 0 else ""))
            log.warning(msg)
            say(run.progress, msg, prefix=PREFIX)
        rescore = env_rescorer(run.factories[task_id]) if n_rescore > 0 and s.top_k > 1 else None
        picked = select_architecture(run.episodes, task_id, rescore, s.top_k)
        if picked is None:
            raise AutostructError(
                f"Task {name}: none of its episodes met its budgets {task.budgets}. Raise search.episodes, relax the "
                "budgets, or set search.mask_infeasible: true."
            )
        selection, chosen = picked
        return _finish_task(cfg, run.out, name, task_id, task, plan.datas(key), run.assets.supernets[key]["path"],
                            run.assets.profiles.get(task_id), chosen,
                            selection_fields(selection, rescore is not None, n_rescore), len(run.episodes),
                            run.progress)

    def results(self, run: SearchRun, records: list[dict[str, Any]]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        cfg, plan, supernets = run.cfg, run.plan, run.assets.supernets
        totals = {
            "datasets": len(plan.keys),
            "distinct_architectures": len({(e.task_id, tuple(e.info.get("arch", ()))) for e in run.episodes}),
            "supernet_training_seconds": sum(float(supernets[k]["metrics"].get("seconds", 0.0)) for k in plan.keys),
            "mean_accuracy_after_finetune": mean_of(records, "accuracy_after_finetune"),
        }
        fields = {
            "space": self._space0(run).to_dict() if isinstance(cfg.space, dict) else cfg.space,
            "supernets": {k.label: supernets[k] for k in plan.keys},
            "profiles": {plan.names[i]: p for i, p in run.assets.profiles.items()},
            "evaluated": evaluated_archs(run.episodes, plan.names),
        }
        return RESULTS_FORMAT, totals, fields


def search(
    config: NASConfig | dict[str, Any] | str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    from_scratch: bool | None = None,
    progress: bool = True,
) -> NASRunResult:
    """Run a multi-task NAS end to end (see the module docstring for what lands where).

    ``from_scratch`` overrides ``finetune.from_scratch`` (the CLI's ``--from-scratch``). A config with an
    ``evaluator`` (a user's own space and evaluator) runs :func:`autostruct.nas.custom_search.search_custom`.
    """
    if is_custom_config(config):
        if from_scratch:
            raise AutostructError("--from-scratch applies to supernet searches; a search with an evaluator trains nothing.")
        return search_custom(config, resume=resume, overwrite=overwrite, progress=progress)  # type: ignore[return-value]
    return run_search(config, NASSearch(from_scratch), resume=resume, overwrite=overwrite, progress=progress,
                      result_type=NASRunResult)


__all__ = ["NASAssets", "NASPlan", "NASRunResult", "NASSearch", "best_in_budget", "env_rescorer", "holdout_size",
           "search", "select_architecture", "selection_fields", "task_name"]
