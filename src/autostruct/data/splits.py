"""Pure functions that turn raw arrays into the splits of a :class:`~autostruct.data.types.Dataset`.

Class selection, stratified hold-out carving and per-channel normalization, all vectorized with NumPy.
None of them read files or keep state.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Sequence

import numpy as np
import torch

from autostruct.config import DefaultSize
from autostruct.errors import AutostructError, unknown_name

log = logging.getLogger(__name__)

#: The largest share of the training set that ``val_size`` may take; larger requests are clamped to it.
MAX_VAL_FRACTION = 0.5

# (dataset, training samples, requested count) of every clamp already reported by this process: one run loads
# the same dataset several times (checks, base model, envs), and the warning says nothing new after the first.
_CLAMPS_REPORTED: set[tuple[str, int, int, bool]] = set()


def resolve_classes(
    classes: Sequence[int | str] | None, class_names: Sequence[str], dataset: str
) -> tuple[int, ...] | None:
    """Validate a class subset and return it as indices, in the caller's order.

    Entries are class indices or class names (matched case-insensitively). ``None`` means all classes.

    >>> resolve_classes([7, "sandal"], ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
    ...                 "Shirt", "Sneaker", "Bag", "Ankle boot"], "fashion-mnist")
    (7, 5)
    """
    if classes is None:
        return None
    if isinstance(classes, str | bytes) or not isinstance(classes, Sequence):
        raise AutostructError(
            f"classes for {dataset} must be a list of class indices such as [5, 7, 9], got {classes!r}."
        )
    n = len(class_names)
    valid = f"valid class indices for {dataset} are 0..{n - 1}"
    if len(classes) == 0:
        raise AutostructError(
            f"classes for {dataset} is empty; give at least one class ({valid}), or None for all."
        )
    lower = {name.lower(): i for i, name in enumerate(class_names)}
    out: list[int] = []
    for entry in classes:
        if isinstance(entry, str):
            if entry.lower() not in lower:
                raise unknown_name(f"{dataset} class", entry, class_names)
            idx = lower[entry.lower()]
        elif isinstance(entry, numbers.Integral) and not isinstance(entry, bool):
            idx = int(entry)
            if not 0 <= idx < n:
                raise AutostructError(
                    f"classes entry {idx} is out of range: {valid} ({_name_list(class_names)})."
                )
        else:
            raise AutostructError(f"classes entry {entry!r} is not a class index: {valid}.")
        if idx in out:
            raise AutostructError(
                f"classes entry {entry!r} appears twice in {list(classes)}; each class may be selected once ({valid})."
            )
        out.append(idx)
    return tuple(out)


def _name_list(class_names: Sequence[str], limit: int = 12) -> str:
    shown = [f"{i}={n}" for i, n in enumerate(class_names[:limit])]
    return ", ".join(shown) + (", ..." if len(class_names) > limit else "")


def select_classes(
    x: np.ndarray, y: np.ndarray, classes: Sequence[int], num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Keep only samples of ``classes`` and relabel them ``0..k-1`` in the order given."""
    remap = np.full(num_classes, -1, dtype=np.int64)
    remap[np.asarray(classes, dtype=np.int64)] = np.arange(len(classes))
    new_y = remap[y]
    mask = new_y >= 0
    return x[mask], new_y[mask]


def stratified_holdout(y: np.ndarray, n_holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices ``0..len(y)-1`` into ``(keep, holdout)`` with ``len(holdout) == n_holdout``.

    Every class gives its share of the hold-out (largest-remainder rounding), chosen at random for ``seed``.
    Both index arrays are sorted, disjoint, and together cover every index.
    """
    n = len(y)
    if not 0 <= n_holdout <= n:
        raise ValueError(f"n_holdout must be in [0, {n}], got {n_holdout}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    order = np.argsort(y[perm], kind="stable")
    grouped = perm[order]  # indices grouped by class, random order within each class
    _, starts, counts = np.unique(y[grouped], return_index=True, return_counts=True)
    quota = counts * (n_holdout / max(n, 1))
    take = np.floor(quota).astype(np.int64)
    short = n_holdout - int(take.sum())
    if short > 0:
        # Largest fractional parts first; ties go to the larger class, then the lower label (stable sort).
        frac_order = np.lexsort((-counts, -(quota - take)))
        take[frac_order[:short]] += 1
    rank = np.arange(n) - np.repeat(starts, counts)
    hold = rank < np.repeat(take, counts)
    return np.sort(grouped[~hold]), np.sort(grouped[hold])


def resolve_val_size(val_size: int | float, n_train: int, dataset: str) -> int:
    """Number of validation samples to carve from ``n_train`` training samples.

    ``val_size`` is a count (``0`` allowed) or a fraction in ``(0, 1)``. Counts above half of the training set
    are clamped to half, with a logged warning (once per process for each dataset and count), so that small
    datasets (``digits``, class subsets) still load with the default ``val_size=5000``; a
    :class:`~autostruct.config.DefaultSize` (a default nobody set) is clamped with an INFO line instead.
    """
    if isinstance(val_size, bool) or not isinstance(val_size, numbers.Real):
        raise AutostructError(f"val_size must be a sample count or a fraction in (0, 1), got {val_size!r}.")
    if val_size < 0:
        raise AutostructError(f"val_size must be >= 0, got {val_size}. Use 0 for no validation split.")
    if isinstance(val_size, numbers.Integral) or val_size >= 1:
        if not float(val_size).is_integer():
            raise AutostructError(
                f"val_size must be a whole number of samples or a fraction in (0, 1), got {val_size}."
            )
        n_val = int(val_size)
    else:
        n_val = int(round(float(val_size) * n_train))
    cap = int(n_train * MAX_VAL_FRACTION)
    if n_val > cap:
        chosen = not isinstance(val_size, DefaultSize)
        key = (dataset, n_train, n_val, chosen)
        report = log.debug if key in _CLAMPS_REPORTED else log.warning if chosen else log.info
        _CLAMPS_REPORTED.add(key)
        report(
            "val_size=%d is more than half of the %d training samples of %s; using %d for validation instead.",
            n_val,
            n_train,
            dataset,
            cap,
        )
        n_val = cap
    return n_val


def to_tensor(x: np.ndarray) -> torch.Tensor:
    """A fresh contiguous float32 tensor of ``x`` (``x`` may be a read-only array shared through the parse cache)."""
    return torch.from_numpy(np.array(x, dtype=np.float32, order="C", copy=True))


def channel_stats(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) standard deviation of ``x`` (``(N, C, H, W)`` float32).

    A constant channel gets std 1 so that normalizing never divides by zero.
    """
    c = x.shape[1]
    if x.shape[0] == 0:
        return np.zeros(c), np.ones(c)
    # One pass over the float32 data; torch's cascaded reduction keeps it accurate to ~1e-6 on 40M values.
    var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
    std = var.double().sqrt().numpy()
    return mean.double().numpy(), np.where(std > 1e-6, std, 1.0)


def normalize_(x: torch.Tensor, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """``(x - mean) / std`` per channel, in place; returns ``x``."""
    shape = (1, -1, 1, 1)
    x.sub_(torch.as_tensor(mean, dtype=torch.float32).view(shape))
    x.div_(torch.as_tensor(std, dtype=torch.float32).view(shape))
    return x
