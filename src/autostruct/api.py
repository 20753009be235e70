"""The Python API: what the CLI calls and what users call from their own code.

>>> import autostruct
>>> summary = autostruct.train("resnet20", "fashion-mnist", epochs=3)          # doctest: +SKIP
>>> result = autostruct.prune("configs/quickstart-prune.yaml")                  # doctest: +SKIP
>>> result = autostruct.search("configs/quickstart-nas.yaml")                   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from autostruct.errors import AutostructError, unknown_name
from autostruct.mtacp.run import PruneSearch, run_prune
from autostruct.nas.custom_search import CustomNASSearch, CustomRunResult
from autostruct.nas.search import NASSearch
from autostruct.nas.search import search as _nas_search
from autostruct.pipeline import SearchKind
from autostruct.pipeline import run_search as _run_search
from autostruct.pipeline.assets import load_any_model
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
    from autostruct.measure import count_flops
    from autostruct.models.cache import get_or_train

    if epochs <= 0:
        raise AutostructError(f"epochs must be a positive integer, got {epochs}. Example: --epochs 3.")
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
    from autostruct.mtacp import build_prune_lut as _build

    return _build(config, out, **kwargs)


def zero_shot_prune(policy: str | Path, dataset: str, ratio: float, **kwargs: Any) -> dict[str, Any]:
    """Prune for a new (dataset, ratio) with a trained MTACP policy in one greedy episode, no search."""
    from autostruct.mtacp import zero_shot_prune as _zero_shot

    return _zero_shot(policy, dataset, ratio, **kwargs)


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
    from autostruct.nas.custom import CustomSpace, evaluator_name, load_space

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


__all__ = ["KINDS", "TrainSummary", "build_prune_lut", "example_input_for", "load_any_model", "prune", "run_search",
           "search", "search_custom", "train", "zero_shot_prune"]
