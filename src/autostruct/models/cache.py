"""Cache of trained base models, so every later command (prune, NAS, benchmarks) reuses them.

A checkpoint is keyed by (model, dataset, classes, width, epochs, seed, val_size, training settings); its file
name reads like ``resnet20-fashion-mnist-c5.7.9-w1-e3-s0-1a2b3c4d.pt`` (the hash covers everything, the rest
is for people). Files are :mod:`autostruct.models.checkpoint` checkpoints, written atomically, so a killed run never leaves
a half-written model, and they load with ``torch.load(weights_only=True)``. Runs that need the same model at once
train it once (:func:`~autostruct.utils.cache.entry_lock`).

The folder is ``$AUTOSTRUCT_CACHE/models`` when the variable is set, else ``~/.cache/autostruct/models``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autostruct.data import load_dataset
from autostruct.errors import AutostructError
from autostruct.models.checkpoint import load_model, save_model
from autostruct.models.registry import check_model_input, create_model
from autostruct.models.shipped import shipped_model
from autostruct.models.train import TrainConfig, evaluate, make_config, train
from autostruct.utils.cache import cache_root, entry_lock
from autostruct.utils.device import resolve_device

log = logging.getLogger(__name__)

_KEY_VERSION = 1


@dataclass(frozen=True)
class CacheInfo:
    """Where the checkpoint is, whether it was already there, and the metrics recorded when it was trained.

    ``source``: ``"cache"`` (trained here before), ``"shipped"`` (trained by the project, shipped with the
    package: :mod:`autostruct.models.shipped`) or ``"trained"`` (trained by this call).
    """

    path: Path
    hit: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    source: str = "cache"


def cache_dir() -> Path:
    """``$AUTOSTRUCT_CACHE/models`` if the variable is set, else ``~/.cache/autostruct/models``."""
    return cache_root() / "models"


def cache_key(
    model_name: str,
    dataset_name: str,
    *,
    classes: list[int] | None,
    width: float,
    epochs: int,
    seed: int,
    val_size: int,
    train_settings: dict[str, Any] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    init: str | None = None,
) -> str:
    """The file stem for these settings: readable fields plus an 8-hex-digit hash of all of them (``init``: the
    key of the model the weights start from, see :func:`init_from_full`)."""
    fields: dict[str, Any] = {
        "version": _KEY_VERSION,
        "model": model_name,
        "dataset": dataset_name,
        "classes": sorted(classes) if classes else None,
        "width": float(width),
        "epochs": int(epochs),
        "seed": int(seed),
        "val_size": int(val_size),
        "train": train_settings or {},
    }
    if model_kwargs:  # only when given, so the keys of zoo models stay what they were
        fields["model_kwargs"] = model_kwargs
    if init:
        fields["init"] = init
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:8]
    cls = f"-c{'.'.join(str(c) for c in fields['classes'])}" if classes else ""
    readable = model_name.replace(":", "-").replace("/", "-")  # package.module:function names
    return f"{readable}-{dataset_name}{cls}-w{width:g}-e{epochs}-s{seed}-{digest}"


def _build_seeded(
    model_name: str, dataset: Any, width: float, seed: int, model_kwargs: dict[str, Any] | None = None
) -> nn.Module:
    # Seed the init without disturbing the caller's global RNG stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_model(
            model_name,
            num_classes=dataset.num_classes,
            in_channels=dataset.in_channels,
            image_size=dataset.image_size,
            width=width,
            **(model_kwargs or {}),
        )


def init_from_full(model: nn.Module, full: nn.Module, classes: list[int]) -> None:
    """Start ``model`` (built for the class subset ``classes``) from ``full`` (the same architecture trained on
    every class): tensors of equal shape are copied, and a tensor whose first dimension is the full model's class
    count (the classifier's weight and bias) keeps the rows of ``classes``, in the subset's label order. The
    subset model then ranks its classes as the full model does before any step, so a short fine-tune replaces
    training from scratch.
    """
    n_full = full.autostruct_spec["kwargs"]["num_classes"] if hasattr(full, "autostruct_spec") else None
    source = full.state_dict()
    state = model.state_dict()
    rows = torch.tensor(list(classes))
    for name, tensor in state.items():
        src = source.get(name)
        if src is None:
            raise AutostructError(f"Cannot start the class-subset model from the full one: '{name}' is missing.")
        if src.shape != tensor.shape:
            if src.dim() == 0 or src.shape[0] != n_full or src.shape[1:] != tensor.shape[1:] or len(rows) != len(tensor):
                raise AutostructError(f"Cannot start the class-subset model from the full one: '{name}' has shape "
                                      f"{tuple(src.shape)} there and {tuple(tensor.shape)} here.")
            src = src[rows]
        state[name] = src.clone()
    model.load_state_dict(state)


def get_or_train(
    model_name: str,
    dataset_name: str,
    *,
    classes: list[int] | None = None,
    width: float = 1.0,
    epochs: int,
    seed: int = 0,
    root: str | os.PathLike[str] | None = None,
    val_size: int = 5000,
    device: str = "cpu",
    progress: bool = True,
    train_config: Any = None,
    dataset: Any = None,
    model_kwargs: dict[str, Any] | None = None,
    shipped: bool = True,
    init: tuple[nn.Module, str] | None = None,
) -> tuple[nn.Module, CacheInfo]:
    """Return the trained model for these settings, training and caching it on the first call.

    ``seed`` seeds the split, the init and the shuffling. ``train_config`` (a :class:`TrainConfig`) changes
    the recipe (its epochs, seed and device are taken from the arguments) and is part of the key. Pass an
    already loaded ``dataset`` (the result of ``load_dataset(dataset_name, root, val_size, seed, classes)``) to
    avoid loading it twice; it is only used on a miss. An unreadable cache file is logged and retrained.
    ``model_name`` may be ``package.module:function`` (see :func:`~autostruct.models.registry.resolve_model`);
    ``model_kwargs`` go to its builder and are part of the key. On a cache miss a model shipped with the package
    under the same key is loaded (``shipped=False``: trained instead); it is not copied into the cache.
    ``init``: (the full dataset's trained model, its cache key) to start a class subset's model from
    (:func:`init_from_full`) instead of a seeded init; the key is part of this model's.
    The model comes back in eval mode on ``device``.
    """
    if epochs <= 0:
        raise AutostructError(f"epochs must be a positive integer, got {epochs}. Example: epochs=3.")
    dev = resolve_device(device)
    base = train_config if train_config is not None else TrainConfig()
    settings = {k: v for k, v in base.model_dump().items() if k not in ("epochs", "seed", "device")}
    # Only settings that differ from the defaults enter the key, so adding a new TrainConfig field later does
    # not invalidate every cached model.
    defaults = TrainConfig().model_dump()
    changed = {k: v for k, v in settings.items() if v != defaults.get(k)}
    key = cache_key(
        model_name,
        dataset_name,
        classes=classes,
        width=width,
        epochs=epochs,
        seed=seed,
        val_size=val_size,
        train_settings=changed,
        model_kwargs=model_kwargs,
        init=init[1] if init else None,
    )
    path = cache_dir() / f"{key}.pt"

    # Two runs that need this model at once train it once: the second waits, then loads it.
    with entry_lock(path, f"loading or training {path.name}"):
        if path.is_file():
            try:
                model, metadata = load_model(path, map_location=dev)
                log.info("cache hit: %s", path)
                return model, CacheInfo(path=path, hit=True, metrics=metadata.get("metrics", {}))
            except AutostructError as exc:
                log.warning("cached model %s is unreadable, training it again: %s", path, exc)
        packaged = shipped_model(key) if shipped else None
        if packaged is not None:
            model, metadata = load_model(packaged, map_location=dev)
            log.info("shipped model: %s", packaged)
            return model, CacheInfo(path=packaged, hit=True, metrics=metadata.get("metrics", {}), source="shipped")

        if dataset is None:
            dataset = load_dataset(dataset_name, root=root, val_size=val_size, seed=seed, classes=classes)
        model = _build_seeded(model_name, dataset, width, seed, model_kwargs)
        if init is not None:
            init_from_full(model, init[0], list(classes or []))
        check_model_input(model, model_name, dataset.num_classes, dataset.in_channels, dataset.image_size)
        cfg = make_config(base, epochs=epochs, seed=seed, device=str(dev))
        cls = f" classes {','.join(map(str, classes))}" if classes else ""
        result = train(model, dataset, config=cfg, progress=progress, label=f"train {model_name} on {dataset_name}{cls}")
        test = evaluate(model, dataset.test)
        metrics = {
            "val_accuracy": result.val.accuracy if result.val else None,
            "val_loss": result.val.loss if result.val else None,
            "test_accuracy": test.accuracy,
            "test_loss": test.loss,
            "train_seconds": result.seconds,
            "history": result.as_dict()["history"],
        }
        metadata = {
            "kind": "base-model",
            "model": model_name,
            "dataset": dataset_name,
            "classes": list(classes) if classes else None,
            "width": width,
            "model_kwargs": dict(model_kwargs or {}),
            "init": init[1] if init else None,
            "epochs": epochs,
            "seed": seed,
            "val_size": val_size,
            "train_config": cfg.model_dump(),
            "metrics": metrics,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        save_model(model, path, metadata)
        log.info("trained and cached %s (test accuracy %.4f)", path, test.accuracy)
        return model, CacheInfo(path=path, hit=False, metrics=metrics, source="trained")
