"""Checks of a pruning run's inputs that run before its folder is created, so a bad input writes nothing.

:func:`check_prune_inputs` refuses, with an :class:`~autostruct.errors.AutostructError` that names the config
field and the fix: a device that does not exist, a dataset name that is not registered or whose files cannot
be read (the dataset is loaded exactly as the run loads it), a class subset out of range, a model that is
neither a registered name nor a readable ``model.pt``, a checkpoint whose classes, input channels or input size
differ from a task's dataset, a model with nothing to prune, and a FLOPs ratio that no strategy can reach with
``search.lbound`` (the env's own check, on an untrained copy of the architecture: the budget depends on the
structure only). Before any of that it imports the config's ``imports:`` (each failure names ``imports.<i>``),
resolves a ``package.module:function`` model (the module imports, the function exists and returns an
``nn.Module`` with ``model_kwargs``), and runs every model once on each task dataset's input shape.

:func:`price_latency_tasks` then prices every latency task (``latency_ms``, ``latency_ratios``): it measures (or reads from the cache) the
model's per-layer latency table on this host, or reads ``search.latency_table`` (refused, naming what differs,
when it was built for another model, input shape or rounding), and refuses a budget below the smallest model
the table allows (every group at ``search.lbound``), naming ``tasks.<i>.latency_ms`` / ``latency_ratios``; a
``latency_ratios`` task's budget in ms is the ratio times the table's prediction for the base model.

:func:`choose_task_rounding` last fixes each FLOPs task's channel multiple and how close to its budget the
task's episodes can land with it; :func:`landing_warnings` names the tasks that cannot spend their budget, so
the run says so before its search.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

from autostruct.config import PruneConfig
from autostruct.data import load_dataset
from autostruct.errors import AutostructError
from autostruct.measure.rounding import finest_fast, resolve_round_to, resolve_rounding
from autostruct.models import (
    check_model_input,
    create_model,
    import_modules,
    is_factory_name,
    list_models,
    resolve_model,
)
from autostruct.mtacp.tasks import DataKey, TaskSpec, expand_tasks
from autostruct.pipeline.assets import load_any_model
from autostruct.prune import budget as B
from autostruct.prune.graph import analyze
from autostruct.prune.latency_table import (
    host_table,
    latency_model,
    layer_specs,
    load_table,
    smallest_latency,
    table_mismatch,
)
from autostruct.prune.task_rounding import (
    TaskRounding,
    choose_task_round_to,
    fit_round_to,
    halvings,
    landing,
    least_ratio,
    reachable,
    unreachable_reason,
)
from autostruct.utils.device import resolve_device
from autostruct.utils.runs import say

log = logging.getLogger("autostruct.mtacp")


def _field_error(field: str, exc: AutostructError) -> AutostructError:
    return AutostructError(f"Invalid config: '{field}': {exc}")


def _task_field(cfg: PruneConfig, key: DataKey, name: str) -> str:
    """``tasks.<i>.<name>`` of the first config task that uses ``key`` (and has ``name`` set, if any does)."""
    tasks = list(enumerate(cfg.tasks))
    tasks = [(i, t) for i, t in tasks if getattr(t, name, None)] + tasks
    for i, t in tasks:
        if t.dataset == key.dataset and (tuple(t.classes) if t.classes else None) == key.classes and t.root == key.root:
            return f"tasks.{i}.{name}"
    return f"tasks.{name}"


def is_checkpoint(model: str) -> bool:
    """Whether the config's ``model`` names a file or folder (a ``model.pt``) rather than a registered model."""
    path = Path(model)
    return path.suffix == ".pt" or path.is_dir()


def _load_checkpoint(cfg: PruneConfig) -> torch.nn.Module:
    try:
        model, _ = load_any_model(cfg.model)
    except AutostructError as exc:
        raise _field_error("model", exc) from None
    return model


def _check_model_name(cfg: PruneConfig) -> None:

    if is_factory_name(cfg.model) or ":" in cfg.model:
        try:
            resolve_model(cfg.model)
        except AutostructError as exc:
            raise _field_error("model", exc) from None
        return
    if cfg.model not in list_models():
        raise AutostructError(
            f"Invalid config: 'model': '{cfg.model}' is neither a registered model nor a model.pt path. Use one of "
            f"{', '.join(list_models())}, the path of a model.pt written by `autostruct export`, "
            "package.module:function (a factory returning an nn.Module), or list the module that registers it "
            "under 'imports'."
        )


def _check_checkpoint_fits(cfg: PruneConfig, key: DataKey, kw: dict[str, Any], data: Any) -> None:
    problems = []
    if kw.get("num_classes") != data.num_classes:
        problems.append(f"{kw.get('num_classes')} classes (the dataset has {data.num_classes})")
    if kw.get("in_channels") != data.in_channels:
        problems.append(f"{kw.get('in_channels')} input channels (the dataset has {data.in_channels})")
    if kw.get("image_size") != data.image_size:
        problems.append(f"{kw.get('image_size')} px inputs (the dataset has {data.image_size} px)")
    if problems:
        raise AutostructError(
            f"Invalid config: 'model': checkpoint '{cfg.model}' was built for {', '.join(problems)}, so it does not "
            f"fit the task data {key.label} ('{_task_field(cfg, key, 'dataset')}'). Use a checkpoint trained on "
            "that dataset (autostruct train --dataset ...) or a zoo model name."
        )


def _check_budgets(
    cfg: PruneConfig, model: torch.nn.Module, data: Any, tasks: list[TaskSpec], key: DataKey, steps: list[int]
) -> int:
    """The env's reachability check for every ratio of ``key``'s tasks, from the model's structure alone.

    ``steps`` are the channel multiples to try, largest first (one unless ``search.round_to`` is ``auto``);
    returns the largest that passes, or raises the smallest's error, which names the real limit (the multiple
    or ``search.lbound``, :func:`~autostruct.prune.task_rounding.unreachable_reason`).
    """

    s = cfg.search
    graph = analyze(model.eval(), torch.zeros(1, data.in_channels, data.image_size, data.image_size))
    ratios = [t for t in tasks if t.data == key and t.ratio is not None]
    for n, round_to in enumerate(steps):
        last = n == len(steps) - 1
        if least_ratio(graph, round_to, s.lbound) is None:  # no group has a choice at this multiple
            if not last:
                continue
            raise AutostructError(
                f"Invalid config: 'model': no pruning group of '{cfg.model}' has more than one channel count to "
                f"choose with search.round_to={round_to}. Use a smaller search.round_to or a model with prunable layers."
            )
        out = next((t for t in ratios if not reachable(graph, t.ratio, round_to, s.lbound)), None)
        if out is None:
            return round_to
        if last:
            field = _task_field(cfg, key, "ratios")
            raise AutostructError(f"Invalid config: '{field}' (task {out.name}): "
                                  f"{unreachable_reason(graph, out.ratio, round_to, s.lbound)}")
    raise AssertionError("unreachable")  # the last step either returns or raises


def _task_model(cfg: PruneConfig, key: DataKey, data: Any, checkpoint: torch.nn.Module | None) -> torch.nn.Module:
    """The checkpoint (checked to fit ``data``) or an untrained copy of the configured architecture for ``data``."""

    if checkpoint is not None:
        _check_checkpoint_fits(cfg, key, checkpoint.autostruct_spec["kwargs"], data)
        model = checkpoint
    else:
        try:
            with torch.random.fork_rng(devices=[]):
                model = create_model(
                    cfg.model, num_classes=data.num_classes, in_channels=data.in_channels,
                    image_size=data.image_size, width=cfg.width, **cfg.model_kwargs,
                )
        except AutostructError as exc:
            raise _field_error("model_kwargs" if cfg.model_kwargs else "model", exc) from None
        except TypeError as exc:  # a registered builder given keyword arguments it does not take
            raise AutostructError(
                f"Invalid config: 'model_kwargs': model '{cfg.model}' could not be built with {cfg.model_kwargs}: "
                f"{exc}. Fix model_kwargs to match the builder's parameters."
            ) from None
    return model


def table_round_to(cfg: PruneConfig) -> int | None:
    """The rounding a device table was built with, when ``round_to: auto`` prices latency tasks with one.

    ``auto`` means the multiple that pays where the model will run: for a table measured on another device that
    is the device's (``autostruct prune build-lut`` resolved ``auto`` there), not this host's. None when there
    is no such table or it cannot be read (:func:`check_latency_budgets` then names the problem).
    """

    s = cfg.search
    if s.round_to != "auto" or s.latency_table == "host" or not any(t.latency_ms or t.latency_ratios
                                                                                  for t in cfg.tasks):
        return None
    try:
        value = load_table(s.latency_table).meta.get("round_to")
    except AutostructError:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def check_prune_inputs(cfg: PruneConfig) -> int:
    """Raise on any input of ``cfg`` that would make the run fail; writes nothing (see the module docstring).

    Returns the channel multiple the run uses: ``search.round_to``, or for ``auto`` the measured multiple (the
    device table's, :func:`table_round_to`, when latency tasks are priced by one), halved until every task's
    budget is reachable with it (a model too small for it).
    """

    try:
        resolve_device(cfg.device)
    except AutostructError as exc:
        raise _field_error("device", exc) from None
    keys, tasks = expand_tasks(cfg)

    import_modules(cfg.imports, "imports")  # errors already name 'imports.<i>'
    r = cfg.search.round_to
    steps = halvings(table_round_to(cfg) or resolve_round_to(r)) if r == "auto" else [r]
    checkpoint = _load_checkpoint(cfg) if is_checkpoint(cfg.model) else None
    if checkpoint is None:
        _check_model_name(cfg)
    elif cfg.model_kwargs:
        raise AutostructError(
            "Invalid config: 'model_kwargs': a model.pt is rebuilt from its own recorded arguments. Remove "
            "model_kwargs, or give the model's name or package.module:function instead of the checkpoint."
        )
    for key in keys:
        try:
            data = load_dataset(
                key.dataset, root=key.root, val_size=cfg.search.holdout, seed=cfg.seed,
                classes=list(key.classes) if key.classes else None,
            )
        except AutostructError as exc:
            raise _field_error(_task_field(cfg, key, "dataset"), exc) from None
        model = _task_model(cfg, key, data, checkpoint)
        try:
            check_model_input(model, cfg.model, data.num_classes, data.in_channels, data.image_size)
        except AutostructError as exc:
            raise AutostructError(
                f"Invalid config: 'model' with '{_task_field(cfg, key, 'dataset')}' ({key.label}): {exc}"
            ) from None
        steps = steps[steps.index(_check_budgets(cfg, model, data, tasks, key, steps)):]
    return steps[0]


def load_config_checkpoint(cfg: PruneConfig) -> torch.nn.Module | None:
    """The config's ``model.pt`` (errors name the field), or None when ``model`` is a name or a factory."""
    return _load_checkpoint(cfg) if is_checkpoint(cfg.model) else None


def priced_model(
    cfg: PruneConfig, key: DataKey, checkpoint: torch.nn.Module | None
) -> tuple[torch.nn.Module, Any, torch.Tensor]:
    """The model a latency table of ``key``'s tasks prices (eval mode), its pruning graph and a zero input.

    As the run resolves it: the dataset as the run loads it (its input shape and classes), then the checkpoint or
    an untrained copy of the configured architecture (``width``, ``model_kwargs``); a table depends on the
    architecture only. Run after :func:`check_prune_inputs` (imports done, inputs checked).
    """

    data = load_dataset(key.dataset, root=key.root, val_size=cfg.search.holdout, seed=cfg.seed,
                        classes=list(key.classes) if key.classes else None)
    model = _task_model(cfg, key, data, checkpoint).eval()
    x = torch.zeros(1, data.in_channels, data.image_size, data.image_size)
    return model, analyze(model, x), x


def check_latency_budgets(cfg: PruneConfig, round_to: int, progress: bool = False) -> dict[DataKey, str]:
    """The latency table (its JSON path) of each dataset that has latency tasks; raises if one is unreachable.

    :func:`price_latency_tasks` without the priced tasks.
    """
    return price_latency_tasks(cfg, round_to, progress)[0]


def price_latency_tasks(cfg: PruneConfig, round_to: int, progress: bool = False
                        ) -> tuple[dict[DataKey, str], list[TaskSpec]]:
    """The latency table (its JSON path) of each dataset with latency tasks, and the run's tasks priced by it.

    ``search.latency_table: host`` measures the table on this host once per model and input shape (cached,
    seconds); a path is read and must cover the model. A ``latency_ratios`` task gets its budget in ms from the
    table: the ratio times the table's prediction for the base model. Raises when a budget is below the smallest
    model the table allows. Run after :func:`check_prune_inputs` (``round_to`` is its answer); writes nothing but
    the cache.
    """

    keys, tasks = expand_tasks(cfg)
    s = cfg.search
    out: dict[DataKey, str] = {}
    checkpoint = load_config_checkpoint(cfg)
    for key in keys:
        mine = [t for t in tasks if t.data == key and t.is_latency]
        if not mine:
            continue
        model, graph, x = priced_model(cfg, key, checkpoint)
        if s.latency_table == "host":
            say(progress, f"latency table for {key.label}: measuring on this host (cached per host and model)")
            # The cells come from the cache; the whole-model calibration is re-timed for this run (seconds).
            table, path = host_table(model, graph, x, round_to, threads=s.latency_threads, recalibrate=True)
        else:
            path = Path(s.latency_table)
            try:
                table = load_table(path)
            except AutostructError as exc:
                raise _field_error("search.latency_table", exc) from None
        if s.latency_table != "host":
            why = table_mismatch(table, model, graph, x, round_to)
            if why is not None:
                raise AutostructError(f"Invalid config: 'search.latency_table': '{path}' does not price "
                                      f"'{cfg.model}' on {key.label}: {why}")
        try:
            lat = latency_model(layer_specs(model, graph, x, round_to), table)
        except AutostructError as exc:
            raise _field_error("search.latency_table", exc) from None
        least = smallest_latency(lat, graph, round_to, s.lbound)
        base = lat.latency_ms(graph.channels)
        for t in mine:
            if t.latency_ratio is not None:
                t = tasks[t.task_id] = t.with_latency_ms(t.latency_ratio * base)
                field, asked = "latency_ratios", f"latency ratio {t.latency_ratio:g}"
                got = f"{least / base:.3f}x the base model ({least:.4f} of {base:.4f} ms)"
                fix = f"a ratio >= {math.ceil(least / base * 1e3) / 1e3:g}"
            else:
                field, asked = "latency_ms", f"latency budget {t.latency_ms:g} ms"
                got = f"{least:.4f} ms (the base model: {base:.4f} ms)"
                fix = f"a budget >= {math.ceil(least * 1e4) / 1e4:g} ms"
            if least > t.latency_ms * (1 + 1e-12):
                raise AutostructError(
                    f"Invalid config: '{_task_field(cfg, key, field)}' (task {t.name}): {asked} cannot be met: with "
                    f"every prunable group at lbound={s.lbound:g} the latency table predicts {got}. Use {fix} or a "
                    "smaller search.lbound."
                )
        out[key] = str(path)
    return out, tasks


def choose_task_rounding(cfg: PruneConfig, round_to: int, progress: bool = False) -> dict[str, TaskRounding]:
    """Each FLOPs task's channel multiple, and how close to its budget its episodes can land (``meta["landing"]``).

    ``search.round_to: auto``: where the run's multiple (:func:`check_prune_inputs`) lets the task's exact-budget
    episodes land within :data:`~autostruct.prune.budget.LANDING_TOLERANCE` below the budget, that multiple or
    twice it, the coarser only where it lands as close and runs the task's pruned models faster by more than
    :data:`~autostruct.prune.task_rounding.TOLERANCE` (timed, :mod:`autostruct.prune.task_rounding`); where it
    does not, the finer multiple that does, down to the finest the host measured to be fast
    (:func:`~autostruct.prune.task_rounding.fit_round_to`, ``source="landing"``). An integer ``round_to`` is used
    as given (``source="config"``). ``meta["landing"]``: the least FLOPs / budget of the task's exact-budget
    strategies with its multiple; ``meta["finest_landing"]``: the same with ``round_to=1``. Tasks of a dataset with
    latency tasks (``latency_ms``, ``latency_ratios``) keep the run's multiple (their latency table was built for
    it) and are not listed. Writes nothing but the cache (seconds per task the first time).
    """

    keys, tasks = expand_tasks(cfg)
    checkpoint = load_config_checkpoint(cfg)
    lbound = cfg.search.lbound
    finest = finest_fast(resolve_rounding(cfg.search.round_to))
    out: dict[str, TaskRounding] = {}
    for key in keys:
        mine = [t for t in tasks if t.data == key]
        if any(t.is_latency for t in mine):
            continue
        model, graph, x = priced_model(cfg, key, checkpoint)
        for t in mine:
            ratio = float(t.ratio)
            finest_landing = landing(graph, ratio, 1, lbound)
            if cfg.search.round_to != "auto":
                out[t.name] = TaskRounding(round_to, {}, source="config", meta={
                    "landing": landing(graph, ratio, round_to, lbound), "finest_landing": finest_landing})
                continue
            fit = fit_round_to(graph, ratio, round_to, lbound, finest=finest)
            if fit.round_to != round_to:
                out[t.name] = TaskRounding(fit.round_to, fit.scores, source="landing",
                                           meta={**fit.meta, "finest_landing": finest_landing})
                continue
            coarse = 2 * round_to
            lands = (reachable(graph, ratio, coarse, lbound)
                     and landing(graph, ratio, coarse, lbound) >= 1 - B.LANDING_TOLERANCE)
            candidates = (round_to, coarse) if lands else (round_to,)
            if lands:
                say(progress, f"channel rounding for task {t.name}: timing its pruned models with multiples of "
                              f"{round_to} and {coarse} (cached per host and model)")
            try:
                chosen = choose_task_round_to(model, graph, x, ratio, candidates, lbound=lbound,
                                              threads=cfg.search.latency_threads, seed=cfg.seed)
            except Exception as exc:  # an optimization: never fail a run on it (the run's multiple was checked)
                log.warning("task %s: channel rounding could not be timed (%s); using round_to=%d", t.name, exc,
                            round_to)
                chosen = TaskRounding(round_to, {}, source="run")
            meta = {**chosen.meta, "landing": landing(graph, ratio, chosen.round_to, lbound),
                    "finest_landing": finest_landing}
            out[t.name] = TaskRounding(chosen.round_to, chosen.scores, source=chosen.source, meta=meta)
    return out


def landing_warnings(cfg: PruneConfig, rounding: dict[str, dict[str, Any]]) -> list[str]:
    """One line per FLOPs task whose episodes cannot land within
    :data:`~autostruct.prune.budget.LANDING_WARNING` below its budget (``rounding``: :func:`choose_task_rounding`'s
    answer as dicts): the search then spends less than the budget, and the user should know before it starts."""
    lines = []
    for name, r in rounding.items():
        meta = (r.get("meta") or {}) if r else {}
        got, finer = meta.get("landing"), meta.get("finest_landing")
        if got is None or got >= 1 - B.LANDING_WARNING:
            continue
        if finer is None or finer < got + 0.02:
            why = "no multiple lands closer (lbound and the model's structure are the limit)"
        elif cfg.search.round_to == "auto":
            why = (f"round_to 1 would land at {finer:.2f}, but multiples finer than {r['round_to']} run slowly on "
                   "this host (its rounding sweep), so the pruned model could end slower than the base; set "
                   "search.round_to to land closer anyway")
        else:
            why = (f"round_to 1 would land at {finer:.2f}; search.round_to: auto takes a finer multiple where a "
                   "budget needs it and the host runs it fast, or set a smaller one")
        lines.append(f"task {name}: with channels in multiples of {r['round_to']} its episodes land at "
                     f"{got:.2f} of the FLOPs budget at most; {why}.")
    return lines
