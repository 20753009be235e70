"""The Python API: what the CLI calls and what users call from their own code.

>>> import autostruct
>>> summary = autostruct.train("resnet20", "fashion-mnist", epochs=3)          # doctest: +SKIP
>>> result = autostruct.prune("configs/quickstart-prune.yaml")                  # doctest: +SKIP
>>> result = autostruct.search("configs/quickstart-nas.yaml")                   # doctest: +SKIP

Every command of the CLI is one call here (``autostruct info`` is :func:`system_info`, ``measure`` is
:func:`measure`, ``export`` is :func:`export`, ``nas build-lut`` is :func:`build_nas_lut`, ``prune build-lut`` is
:func:`build_prune_lut`, ``report`` is :func:`render_report`, ``--import`` is :func:`import_modules`), so what
the CLI does a script can do too.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import onnxruntime
import torch
import torch_pruning
import yaml

import autostruct
from autostruct.data import dataset_status, load_dataset
from autostruct.errors import AutostructError, unknown_name
from autostruct.export import ExportPaths
from autostruct.export import export as _export
from autostruct.measure import compare_latency, count_flops, measure_latency
from autostruct.models import create_model, is_factory_name, list_models
from autostruct.models import import_modules as _import_modules
from autostruct.models.cache import cache_dir, get_or_train
from autostruct.mtacp import build_prune_lut as _build_prune_lut
from autostruct.mtacp import zero_shot_prune as _zero_shot_prune
from autostruct.mtacp.run import PruneSearch, run_prune
from autostruct.nas.custom import CustomSpace, evaluator_name, load_space
from autostruct.nas.custom_search import CustomNASSearch, CustomRunResult
from autostruct.nas.lut import build_lut, check_lut, save_profile
from autostruct.nas.search import NASSearch
from autostruct.nas.search import search as _nas_search
from autostruct.nas.space import get_space
from autostruct.pipeline import SearchKind
from autostruct.pipeline import run_search as _run_search
from autostruct.pipeline.assets import load_any_model
from autostruct.report import render_report
from autostruct.utils.device import resolve_device
from autostruct.utils.runs import RunResult

#: The searches :func:`run_search` runs by name, each a :class:`~autostruct.pipeline.SearchKind`.
KINDS: dict[str, type] = {"prune": PruneSearch, "nas": NASSearch, "nas-custom": CustomNASSearch}


@dataclass(frozen=True)
class TrainSummary:
    """What :func:`train` returns: where the checkpoint is and how good the model is."""

    model: str
    dataset: str
    classes: list[int] | None
    width: float
    epochs: int
    seed: int
    checkpoint: str
    cache_hit: bool
    val_accuracy: float | None
    test_accuracy: float
    flops: int
    params: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def train(
    model: str,
    dataset: str,
    *,
    epochs: int = 3,
    classes: list[int] | None = None,
    width: float = 1.0,
    seed: int = 0,
    root: str | None = None,
    val_size: int = 5000,
    device: str = "cpu",
    progress: bool = True,
    model_kwargs: dict[str, Any] | None = None,
) -> TrainSummary:
    """Train (or fetch from the cache) a model on a dataset and evaluate it on the test split.

    ``model`` is a registered name or ``package.module:function``; ``model_kwargs`` go to its builder."""

    if epochs <= 0:
        raise AutostructError(f"epochs must be a positive integer, got {epochs}. Example: --epochs 3.")
    resolve_device(device)  # a device that is not there fails before any data is loaded
    # The cache records the test and validation accuracy measured right after training, so a hit needs
    # neither the dataset nor another evaluation.
    net, info = get_or_train(
        model,
        dataset,
        classes=classes,
        width=width,
        epochs=epochs,
        seed=seed,
        root=root,
        val_size=val_size,
        device=device,
        progress=progress,
        model_kwargs=model_kwargs,
    )
    cost = count_flops(net, example_input_for(net))
    return TrainSummary(
        model=model,
        dataset=dataset,
        classes=list(classes) if classes else None,
        width=width,
        epochs=epochs,
        seed=seed,
        checkpoint=str(info.path),
        cache_hit=bool(info.hit),
        val_accuracy=info.metrics.get("val_accuracy"),
        test_accuracy=info.metrics["test_accuracy"],
        flops=int(cost.flops),
        params=int(cost.params),
    )


def example_input_for(model: torch.nn.Module, batch: int = 1) -> torch.Tensor:
    """A zero input of the shape a zoo/exported model was built for (from its ``autostruct_spec``)."""
    spec = getattr(model, "autostruct_spec", None)
    if not spec:
        raise AutostructError("This model has no autostruct_spec; build it with autostruct.models.create_model.")
    kw = spec["kwargs"]
    return torch.zeros(batch, kw["in_channels"], kw["image_size"], kw["image_size"])


def prune(config: Any, *, resume: bool = False, overwrite: bool = False, progress: bool = True) -> Any:
    """Run a multi-task pruning search (MTACP). ``config``: a YAML path, a dict, or a :class:`PruneConfig`."""
    return run_prune(config, resume=resume, overwrite=overwrite, progress=progress)


def build_prune_lut(config: Any, out: str | Path, **kwargs: Any) -> Any:
    """Measure the pruning latency table of ``config``'s model on this machine; write it to ``out`` (JSON).

    The file is what ``search.latency_table: <out>`` takes to price ``latency_ms`` tasks for this device
    (see :func:`autostruct.mtacp.build_prune_lut` for ``dataset``, ``threads`` and ``device_name``).
    """
    return _build_prune_lut(config, out, **kwargs)


def zero_shot_prune(policy: str | Path, dataset: str, ratio: float, **kwargs: Any) -> dict[str, Any]:
    """Prune for a new (dataset, ratio) with a trained MTACP policy in one greedy episode, no search."""
    return _zero_shot_prune(policy, dataset, ratio, **kwargs)


def search(config: Any, *, resume: bool = False, overwrite: bool = False, progress: bool = True, **kwargs: Any) -> Any:
    """Run a multi-task NAS search (MTNAS). ``config``: a YAML path, a dict, or a :class:`NASConfig`."""
    return _nas_search(config, resume=resume, overwrite=overwrite, progress=progress, **kwargs)


def search_custom(
    space: Any,
    evaluator: Any,
    tasks: list[dict[str, Any]],
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    **settings: Any,
) -> Any:
    """NAS on your own search space with your own evaluator (see docs/nas.md, "Your own search space").

    ``space``: a :class:`~autostruct.nas.custom.CustomSpace`, a mapping ``{decisions: [{name, choices, when?}]}``
    or ``"module:object"``. ``evaluator``: a callable ``(arch, dataset) -> {"accuracy", "flops"?, "params"?,
    "latency_ms"?}`` or ``"module:function"``. ``tasks``: ``[{"dataset": ..., "budgets": {...}}, ...]``.
    ``settings``: the other fields of :class:`~autostruct.nas.config.CustomNASConfig` (``output_dir``,
    ``search``, ``rl``, ``backend``, ``seed``, ``name``, ``import_paths``). Returns a ``CustomRunResult``.

    >>> result = autostruct.search_custom(space, evaluate, [{"dataset": "a", "budgets": {"flops": 2e6}}],
    ...                                   output_dir="runs/mine", search={"episodes": 100})  # doctest: +SKIP
    """
    space_obj = space if isinstance(space, CustomSpace) else None
    if space_obj is None and not isinstance(space, str):
        space_obj = load_space(space)
    config = {
        **settings,
        "space": space if isinstance(space, str) else space_obj.to_dict(),  # type: ignore[union-attr]
        "evaluator": evaluator_name(evaluator),
        "tasks": tasks,
    }
    kind = CustomNASSearch(space_obj, None if isinstance(evaluator, str) else evaluator)
    return _run_search(config, kind, resume=resume, overwrite=overwrite, progress=progress,
                       result_type=CustomRunResult)


def run_search(
    config: Any, kind: str | SearchKind, *, resume: bool = False, overwrite: bool = False, progress: bool = True,
    **options: Any,
) -> RunResult:
    """Run any search through the one pipeline: ``kind`` is ``"prune"``, ``"nas"``, ``"nas-custom"`` (``options``
    go to the kind, e.g. ``from_scratch`` for ``"nas"``, ``space``/``evaluator`` objects for ``"nas-custom"``) or a
    :class:`~autostruct.pipeline.SearchKind` object. :func:`prune` and :func:`search` are this with their kind."""
    if isinstance(kind, str):
        if kind not in KINDS:
            raise unknown_name("search kind", kind, tuple(KINDS))
        kind = KINDS[kind](**options)
    elif options:
        raise AutostructError(f"Options {sorted(options)} go to a kind given by name; this one is an object.")
    return _run_search(config, kind, resume=resume, overwrite=overwrite, progress=progress)


# --- the tool commands: what `autostruct info`, `measure`, `export`, `nas build-lut`, `report` and `--import` run ---


def import_modules(modules: Iterable[str], *, option: str = "imports") -> None:
    """Import user modules (dotted names or ``.py`` files), e.g. ones that register models with ``@register_model``.

    ``option`` names the source in errors: a config key (``"imports"`` gives ``'imports.0'``) or a CLI option
    (``"--import"``). A module that cannot be imported is an :class:`~autostruct.errors.AutostructError` that says
    which one and how to fix it.
    """
    _import_modules(list(modules), option)


@dataclass(frozen=True)
class SystemInfo:
    """What :func:`system_info` returns (``autostruct info``): versions, datasets found, models, the model cache."""

    versions: dict[str, Any]
    datasets: dict[str, str]
    models: list[str]
    cache: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def system_info(data_root: str | None = None) -> SystemInfo:
    """Versions of autostruct and its engines, each dataset's status on this machine (``data_root``: an extra
    folder to look in), the registered model names, and the model cache's folder."""
    return SystemInfo(
        versions={
            "autostruct": autostruct.__version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_pruning": getattr(torch_pruning, "__version__", "?"),
            "onnxruntime": onnxruntime.__version__,
            "cuda_available": torch.cuda.is_available(),
        },
        datasets=dataset_status(data_root),
        models=list_models(),
        cache=str(cache_dir()),
    )


def load_model(
    source: str | Path, *, num_classes: int = 10, in_channels: int = 1, image_size: int = 28
) -> torch.nn.Module:
    """A model from ``source``: an existing ``model.pt`` (or a folder holding one, or a cached checkpoint), else a
    zoo/registered name or ``package.module:function`` built untrained for the given input and classes."""
    if Path(source).exists():
        return load_any_model(source)[0]
    name = str(source)
    if name in list_models() or is_factory_name(name):
        return create_model(name, num_classes=num_classes, in_channels=in_channels, image_size=image_size)
    raise AutostructError(
        f"'{name}' is neither an existing file nor a zoo model. Pass a model.pt path or one of: "
        + ", ".join(list_models())
        + "."
    )


@dataclass(frozen=True)
class Measurement:
    """What :func:`measure` returns (``autostruct measure``); :meth:`as_dict` is the command's JSON.

    ``latency_ms`` maps each backend (``torch``, ``onnxruntime``) to its ``{"median", "p90"}`` in ms;
    ``onnxruntime_speedup`` is torch's median over onnxruntime's. ``base`` (when a base was given): its
    ``flops`` and ``params`` and the interleaved onnxruntime timing of base vs this model (``latency_ms``,
    ``latency_p90_ms``, ``base_latency_ms``, ``base_latency_p90_ms``, ``speedup``).
    """

    flops: int
    params: int
    input_shape: list[int]
    latency_ms: dict[str, dict[str, float]]
    onnxruntime_speedup: float
    base: dict[str, Any] | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if out["base"] is None:
            del out["base"]
        return out


def measure(
    model: str | Path | torch.nn.Module,
    *,
    runs: int = 50,
    threads: int = 1,
    batch: int = 1,
    base: str | Path | torch.nn.Module | None = None,
    num_classes: int = 10,
    in_channels: int = 1,
    image_size: int = 28,
) -> Measurement:
    """FLOPs (multiply-accumulates) and params of ``model``, and its latency in torch and onnxruntime (median and
    p90 of ``runs`` timed runs on ``threads`` intra-op threads, input batch ``batch``).

    ``model`` and ``base``: a module, a ``model.pt`` path or a zoo name (see :func:`load_model`; ``num_classes``,
    ``in_channels`` and ``image_size`` build a zoo name). With ``base``, the base and this model are also timed
    in one process with interleaved onnxruntime runs (:func:`~autostruct.measure.compare_latency`).
    """
    if runs < 1:
        raise AutostructError(f"runs must be >= 1, got {runs}.")
    shape = {"num_classes": num_classes, "in_channels": in_channels, "image_size": image_size}
    net = model if isinstance(model, torch.nn.Module) else load_model(model, **shape)
    x = example_input_for(net, batch=batch)
    cost = count_flops(net, x[:1])
    lat = {
        backend: measure_latency(net, x, backend=backend, runs=runs, threads=threads)
        for backend in ("torch", "onnxruntime")
    }
    base_fields = None
    if base is not None:
        base_net = base if isinstance(base, torch.nn.Module) else load_model(base, **shape)
        base_cost = count_flops(base_net, x[:1])
        cmp = compare_latency(base_net, net, x, runs=runs, threads=threads)
        base_fields = {"flops": int(base_cost.flops), "params": int(base_cost.params), **cmp.as_fields()}
    return Measurement(
        flops=int(cost.flops),
        params=int(cost.params),
        input_shape=list(x.shape),
        latency_ms={b: {"median": s.median_ms, "p90": s.p90_ms} for b, s in lat.items()},
        onnxruntime_speedup=lat["torch"].median_ms / max(lat["onnxruntime"].median_ms, 1e-9),
        base=base_fields,
    )


def export(checkpoint: str | Path | torch.nn.Module, out: str | Path = "exported", *, opset: int = 17) -> ExportPaths:
    """Write ``out/model.pt`` (state dict + structure, loads with ``weights_only=True``) and ``out/model.onnx`` of
    a checkpoint (an autostruct ``model.pt``, a folder holding one, or a cached checkpoint) or a zoo-built module,
    and check that they agree. Returns the two paths."""
    if isinstance(checkpoint, torch.nn.Module):
        net, metadata = checkpoint, None
    else:
        net, metadata = load_any_model(checkpoint)
    return _export(net, out, example_input_for(net), metadata=metadata, opset=opset)


def _space_spec(space: str | Path | Mapping[str, Any]) -> Any:
    """A space name or mapping as is; a ``.yaml``/``.yml``/``.json`` path read into its mapping."""
    if isinstance(space, Mapping):
        return space
    path = Path(space)
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        if not path.is_file():
            raise AutostructError(f"Space file '{space}' does not exist.")
        return yaml.safe_load(path.read_text())
    return str(space)


def build_nas_lut(
    out: str | Path,
    *,
    space: str | Path | Mapping[str, Any] = "mobilenetv2",
    dataset: str | None = None,
    classes: list[int] | None = None,
    image_size: int | None = None,
    in_channels: int | None = None,
    num_classes: int | None = None,
    width: float = 1.0,
    device_name: str = "host",
    threads: int = 1,
    runs: int = 30,
    warmup: int = 10,
    rounds: int = 3,
    check: int = 30,
    seed: int = 0,
) -> dict[str, Any]:
    """Measure every block of a NAS search space with onnxruntime on this machine; write the device profile to
    ``out`` (JSON, what a NAS config's ``device_profile`` takes).

    ``space``: a space name, a YAML/JSON file or a mapping describing one; ``width`` scales its channels (as the
    config's ``width``). The input shape and class count come from ``dataset`` (with ``classes``) or from
    ``image_size``, ``in_channels`` and ``num_classes``. With ``check >= 2``, that many sampled networks compare
    the table's prediction with a measured latency (Spearman's rho, target 0.9). Returns the summary that
    ``autostruct nas build-lut`` prints (``profile``, ``device``, ``blocks``, ``overhead_ms``, and the check's fields).
    """
    if dataset is not None:
        data = load_dataset(dataset, val_size=0, classes=classes)
        image_size = image_size or data.image_size
        in_channels = in_channels or data.in_channels
        num_classes = num_classes or data.num_classes
    missing = [n for n, v in (("image_size", image_size), ("in_channels", in_channels), ("num_classes", num_classes))
               if v is None]
    if missing:
        raise AutostructError(f"Give dataset, or all of image_size, in_channels and num_classes (missing {', '.join(missing)}).")
    for name, value, low in (("threads", threads, 1), ("runs", runs, 1), ("warmup", warmup, 0), ("rounds", rounds, 1)):
        if value < low:
            raise AutostructError(f"{name} must be >= {low}, got {value}.")
    assert image_size is not None and in_channels is not None and num_classes is not None  # for the type checker
    sp = get_space(_space_spec(space), image_size).scaled(width)
    profile = build_lut(sp, image_size, in_channels, num_classes, device=device_name, threads=threads, warmup=warmup,
                        runs=runs, rounds=rounds, seed=seed)
    summary: dict[str, Any] = {"profile": str(out), "device": device_name, "blocks": len(profile.blocks),
                               "overhead_ms": round(profile.overhead_ms, 4)}
    if check >= 2:
        result = check_lut(profile, sp, check, seed=seed, threads=threads, warmup=warmup, runs=runs, rounds=rounds)
        profile = profile.with_meta(check=result.as_dict())
        summary.update(checked_networks=check, spearman=round(result.spearman, 4), target=0.9,
                       meets_target=result.spearman >= 0.9,
                       predicted_ms_range=[round(min(result.predicted_ms), 4), round(max(result.predicted_ms), 4)],
                       measured_ms_range=[round(min(result.measured_ms), 4), round(max(result.measured_ms), 4)])
    save_profile(profile, out)
    return summary


__all__ = [
    "KINDS",
    "Measurement",
    "SystemInfo",
    "TrainSummary",
    "build_nas_lut",
    "build_prune_lut",
    "example_input_for",
    "export",
    "import_modules",
    "load_any_model",
    "load_model",
    "measure",
    "prune",
    "render_report",
    "run_search",
    "search",
    "search_custom",
    "system_info",
    "train",
    "zero_shot_prune",
]
