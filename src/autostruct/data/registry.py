"""The dataset registry and :func:`load_dataset`.

A reader turns ``(root, **options)`` into :class:`~autostruct.data.types.RawData`; :func:`load_dataset` does
the rest the same way for every dataset: class subset, test carve (if the dataset has no test set),
validation carve, per-channel normalization with the training split's statistics, tensors.

Dataset ids (the ``beta`` feature of the pruning state) are stable integers, never Python's ``hash()``:

* a full dataset has its reader's fixed index: fashion-mnist 0, digits 1, mnist 2, cifar10 3, cifar100 4,
  imagefolder 5; user-registered readers get an ``index`` >= 100 (given, or ``100 + crc32(name) % 900``);
* a class subset gets ``1000 + crc32("<name>:<c1>,<c2>,...") % (2**31 - 1000)``, so the same subset in the
  same order has the same id in every process and on every machine. Selecting all classes in their
  natural order is the full dataset and keeps its index.
"""

from __future__ import annotations

import inspect
import logging
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from autostruct.config import DefaultSize
from autostruct.data import store
from autostruct.data.splits import (
    channel_stats,
    normalize_,
    resolve_classes,
    resolve_val_size,
    select_classes,
    stratified_holdout,
    to_tensor,
)
from autostruct.data.types import Dataset, RawData, Split
from autostruct.errors import AutostructError, unknown_name

log = logging.getLogger(__name__)

#: Fixed ids of the built-in datasets (the order they were added to autostruct; never renumber).
BUILTIN_INDEX = {"fashion-mnist": 0, "digits": 1, "mnist": 2, "cifar10": 3, "cifar100": 4, "imagefolder": 5}
USER_INDEX_START = 100
SUBSET_ID_START = 1000
#: Share of the samples held out as test set for datasets without one (seeded by TEST_SEED, never the user's seed).
TEST_FRACTION = 0.2
TEST_SEED = 0


class Reader(Protocol):
    def __call__(self, root: Path | None, **options: Any) -> RawData: ...


StatusFn = Callable[[Path | None], str]
#: ``sources(root, **options)``: the files a reader would read for these arguments (None: not known yet).
SourcesFn = Callable[..., Sequence[Path] | None]


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its reader, its fixed index, a function that says where its files are, and one that
    lists the files it reads (which lets processes share its prepared splits, see :mod:`autostruct.data.store`)."""

    name: str
    reader: Reader
    index: int
    status: StatusFn | None = None
    description: str = ""
    sources: SourcesFn | None = None


_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(
    name: str,
    reader: Reader | None = None,
    *,
    index: int | None = None,
    status: StatusFn | None = None,
    description: str = "",
    sources: SourcesFn | None = None,
) -> Any:
    """Register a dataset reader under ``name``; usable as a decorator or as a plain call.

    ``reader(root, **options) -> RawData`` gets the ``root`` the user passed (a :class:`~pathlib.Path` or
    ``None``) and any extra keyword arguments of :func:`load_dataset`. ``index`` is the dataset's fixed id
    (>= 100 for user datasets; default ``100 + crc32(name) % 900``). ``status(root) -> str`` is shown by
    ``autostruct info``. ``sources(root, **options) -> [Path, ...]`` lists the files the reader would read
    (``None`` while they are not there yet): a dataset that has it is prepared once and memory-mapped by every
    process that loads it (:mod:`autostruct.data.store`); one without it is loaded privately by each process.

    >>> @register_dataset("my-scans", index=101)                      # doctest: +SKIP
    ... def read_scans(root, **options):
    ...     return RawData(train_x, train_y, test_x, test_y, class_names=("ok", "defect"))
    """

    def decorator(fn: Reader) -> Reader:
        idx = USER_INDEX_START + zlib.crc32(name.encode()) % 900 if index is None else int(index)
        if BUILTIN_INDEX.get(name) != idx and not USER_INDEX_START <= idx < SUBSET_ID_START:
            raise AutostructError(
                f"Dataset index {idx} of '{name}' is out of range: user datasets take {USER_INDEX_START}.."
                f"{SUBSET_ID_START - 1} (lower ones are the built-in datasets', higher ones class subsets')."
            )
        old = _REGISTRY.get(name)
        if old is not None and old.reader is not fn:
            raise AutostructError(f"Dataset '{name}' is already registered; pick another name.")
        for other in _REGISTRY.values():
            if other.index == idx and other.name != name:
                raise AutostructError(
                    f"Dataset index {idx} of '{name}' is already used by '{other.name}'; "
                    f"pass register_dataset('{name}', index=N) with an unused N >= {USER_INDEX_START}."
                )
        _REGISTRY[name] = DatasetSpec(
            name, fn, idx, status, description or (fn.__doc__ or "").strip().split("\n")[0], sources
        )
        return fn

    if reader is not None:
        return decorator(reader)
    return decorator


def list_datasets() -> list[str]:
    """Names of all registered datasets, sorted."""
    return sorted(_REGISTRY)


def get_dataset_spec(name: str) -> DatasetSpec:
    """The registered :class:`DatasetSpec` for ``name``, or an error listing the valid names."""
    if name not in _REGISTRY:
        raise unknown_name("dataset", name, _REGISTRY)
    return _REGISTRY[name]


def dataset_id(name: str, classes: Sequence[int] | None = None, num_classes: int | None = None) -> int:
    """The stable integer id of a dataset or of a class subset of it (see the module docstring)."""
    spec = get_dataset_spec(name)
    if classes is None or (num_classes is not None and tuple(classes) == tuple(range(num_classes))):
        return spec.index
    key = f"{name}:{','.join(str(int(c)) for c in classes)}"
    return SUBSET_ID_START + zlib.crc32(key.encode()) % (2**31 - SUBSET_ID_START)


def dataset_status(root: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """``{dataset: where it was found, or why not and how to get it}`` for every registered dataset."""
    path = Path(root).expanduser() if root else None
    out = {}
    for name in list_datasets():
        spec = _REGISTRY[name]
        if spec.status is None:
            out[name] = "registered (no status check)"
            continue
        try:
            out[name] = spec.status(path)
        except Exception as exc:  # a broken status check must not break `autostruct info`
            out[name] = f"status check failed: {exc}"
    return out


def _check_options(spec: DatasetSpec, options: dict[str, Any]) -> None:
    params = inspect.signature(spec.reader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    # Everything after ``root`` that can be passed by keyword is an option.
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    valid = [n for n, p in list(params.items())[1:] if p.kind in kinds]
    for key in options:
        if key not in valid:
            hint = f" Valid options: {', '.join(valid)}." if valid else " It takes no options."
            raise AutostructError(f"Dataset '{spec.name}' has no option '{key}'.{hint}")


def _check_raw(raw: RawData, name: str) -> None:
    pairs = [("train", raw.train_x, raw.train_y)]
    if (raw.test_x is None) != (raw.test_y is None):
        raise ValueError(f"reader of '{name}' returned only one of test_x / test_y")
    if raw.test_x is not None:
        pairs.append(("test", raw.test_x, raw.test_y))
    for split, x, y in pairs:
        if x.ndim != 4 or x.shape[2] != x.shape[3] or y.ndim != 1 or len(x) != len(y):
            raise ValueError(
                f"reader of '{name}' returned {split} x{list(x.shape)}, y{list(y.shape)}; "
                "expected x (N, C, S, S) and y (N,)"
            )
        if len(y) and (y.min() < 0 or y.max() >= len(raw.class_names)):
            raise ValueError(
                f"reader of '{name}' returned {split} labels outside 0..{len(raw.class_names) - 1}"
            )
    if raw.test_x is not None and raw.test_x.shape[1:] != raw.train_x.shape[1:]:
        raise ValueError(
            f"reader of '{name}' returned test images {raw.test_x.shape[1:]} != train {raw.train_x.shape[1:]}"
        )


def load_dataset(
    name: str,
    root: str | os.PathLike[str] | None = None,
    val_size: int | float = DefaultSize(5000),
    seed: int = 0,
    classes: Sequence[int | str] | None = None,
    **options: Any,
) -> Dataset:
    """Load a registered dataset as normalized in-memory tensors with train / val / test splits.

    Args:
        name: a registered dataset (:func:`list_datasets`): fashion-mnist, digits, mnist, cifar10, cifar100,
            imagefolder, or one added with :func:`register_dataset`.
        root: where the files are. Optional for fashion-mnist (``$AUTOSTRUCT_DATA``, Debian's
            ``/usr/share/datasets/fashion-mnist``, the download cache, then a download) and digits (built in);
            required for the others unless ``$AUTOSTRUCT_DATA`` holds them.
        val_size: samples carved from the training set for validation (stratified, deterministic per
            ``seed``, disjoint from train); ``0`` for none, a float in (0, 1) for a fraction. More than half
            of the training set is clamped to half with a logged warning (an INFO line for the default).
        seed: seeds the validation carve only; the test split never depends on it.
        classes: a subset of class indices (or names), relabelled ``0..k-1`` in the given order.
        **options: reader options, e.g. ``image_size=64`` for imagefolder, ``download=False`` for fashion-mnist.

    Datasets whose reader lists its files (every built-in one) are prepared once and kept as memory-mapped
    files under the data cache, so every process that loads the same request shares one copy of the tensors
    (:mod:`autostruct.data.store`; ``AUTOSTRUCT_SHARED_DATA=0`` turns that off). Writing into the tensors is
    allowed and stays private to the process.

    >>> data = load_dataset("fashion-mnist", classes=[5, 7, 9])       # doctest: +SKIP
    >>> data.num_classes, data.train.x.shape[1:], len(data.val)        # doctest: +SKIP
    (3, torch.Size([1, 28, 28]), 5000)
    """
    spec = get_dataset_spec(name)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise AutostructError(f"seed must be an integer, got {seed!r}.")
    _check_options(spec, options)
    path = Path(root).expanduser() if root not in (None, "") else None
    key = _store_key(spec, path, val_size, int(seed), classes, options)
    if key is not None:
        hit = store.load_entry(key)
        if hit is not None:
            dataset, meta = hit
            resolve_val_size(val_size, meta["train_pool"], name)  # the same clamp report as a fresh load
            return dataset
    dataset, train_pool = _prepare(spec, path, val_size, int(seed), classes, options)
    if key is not None:
        dataset = store.save_entry(key, dataset, {"train_pool": train_pool})
    return dataset


def _store_key(
    spec: DatasetSpec, path: Path | None, val_size: Any, seed: int, classes: Any, options: dict[str, Any]
) -> str | None:
    """The store key of this request, or None when its prepared splits are not shared between processes."""
    if spec.sources is None or not store.shared_enabled():
        return None
    sources = spec.sources(path, **options)
    if sources is None:
        return None
    request = {
        "root": str(path.resolve()) if path is not None else None,
        "val_size": val_size,
        "seed": seed,
        "classes": None if classes is None else [c.lower() if isinstance(c, str) else c for c in classes],
        "options": options,
    }
    return store.entry_key(spec.name, sources, request)


def _prepare(
    spec: DatasetSpec, path: Path | None, val_size: int | float, seed: int, classes: Any, options: dict[str, Any]
) -> tuple[Dataset, int]:
    """Read, select, carve and normalize; returns the dataset and the size of the pool ``val`` was carved from."""
    name = spec.name
    raw = spec.reader(path, **options)
    _check_raw(raw, name)
    class_idx = resolve_classes(classes, raw.class_names, name)

    train_x, train_y = raw.train_x, np.asarray(raw.train_y, dtype=np.int64)
    if raw.test_x is None:
        keep, held = stratified_holdout(train_y, int(round(TEST_FRACTION * len(train_y))), TEST_SEED)
        test_x, test_y = train_x[held], train_y[held]
        train_x, train_y = train_x[keep], train_y[keep]
    else:
        test_x, test_y = raw.test_x, np.asarray(raw.test_y, dtype=np.int64)

    class_names = tuple(raw.class_names)
    if class_idx is not None:
        train_x, train_y = select_classes(train_x, train_y, class_idx, len(raw.class_names))
        test_x, test_y = select_classes(test_x, test_y, class_idx, len(raw.class_names))
        class_names = tuple(raw.class_names[i] for i in class_idx)
    if len(train_y) == 0:
        raise AutostructError(
            f"Dataset '{name}' has no training samples for classes {list(class_idx or [])}."
        )

    n_val = resolve_val_size(val_size, len(train_y), name)
    keep, held = stratified_holdout(train_y, n_val, int(seed))
    x_fit = to_tensor(train_x[keep])
    mean, std = channel_stats(x_fit)

    def split(x: np.ndarray | torch.Tensor, y: np.ndarray) -> Split:
        x = x if isinstance(x, torch.Tensor) else to_tensor(x)
        return Split(normalize_(x, mean, std), torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)))

    dataset = Dataset(
        name=name,
        classes=class_idx,
        train=split(x_fit, train_y[keep]),
        val=split(train_x[held], train_y[held]),
        test=split(test_x, test_y),
        num_classes=len(class_names),
        in_channels=int(train_x.shape[1]),
        image_size=int(train_x.shape[2]),
        dataset_id=dataset_id(name, class_idx, len(raw.class_names)),
        class_names=class_names,
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
    )
    return dataset, len(train_y)
