"""The in-memory dataset types: :class:`Split` (tensors) and :class:`Dataset` (three splits plus metadata).

Everything is held as normalized ``float32`` tensors so that batching is tensor indexing, never per-sample
Python work. Both types are frozen; methods that change something return a new object.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from autostruct.errors import AutostructError


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset: ``x`` is ``(N, C, H, W)`` float32 (normalized), ``y`` is ``(N,)`` int64.

    >>> s = Split(torch.zeros(10, 1, 8, 8), torch.arange(10) % 2)
    >>> [xb.shape[0] for xb, _ in s.batches(4)]
    [4, 4, 2]
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.ndim != 4:
            raise ValueError(f"Split.x must be (N, C, H, W), got shape {tuple(self.x.shape)}")
        if self.y.ndim != 1 or self.y.shape[0] != self.x.shape[0]:
            raise ValueError(
                f"Split.y must be (N,) with N={self.x.shape[0]}, got shape {tuple(self.y.shape)}"
            )

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, n: int, seed: int = 0) -> Split:
        """``n`` samples drawn without replacement (deterministic per ``seed``), in their original order.

        ``n`` at or above the split's size returns the split itself.
        """
        if n < 0:
            raise AutostructError(f"subset size must be >= 0, got {n}.")
        if n >= len(self):
            return self
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=g)[:n].sort().values
        return Split(self.x[idx], self.y[idx])

    def batches(
        self, batch_size: int, shuffle: bool = False, seed: int = 0, drop_last: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x, y)`` batches. Without shuffling the batches are views; with it, one gather per batch."""
        if batch_size < 1:
            raise AutostructError(f"batch_size must be >= 1, got {batch_size}.")
        n = len(self)
        stop = n - n % batch_size if drop_last else n
        if shuffle:
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
            for start in range(0, stop, batch_size):
                idx = perm[start : start + batch_size]
                yield self.x[idx], self.y[idx]
        else:
            for start in range(0, stop, batch_size):
                yield self.x[start : start + batch_size], self.y[start : start + batch_size]

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """How many batches :meth:`batches` yields (for progress bars and schedules)."""
        return len(self) // batch_size if drop_last else -(-len(self) // batch_size)

    def to(self, device: str | torch.device) -> Split:
        """The same split on ``device`` (returns ``self`` when already there)."""
        device = torch.device(device)
        if self.x.device == device and self.y.device == device:
            return self
        return Split(self.x.to(device), self.y.to(device))

    def class_counts(self, num_classes: int) -> np.ndarray:
        """Samples per class label, length ``num_classes``."""
        return np.bincount(self.y.cpu().numpy(), minlength=num_classes)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset: train / val / test splits plus what models and the RL state need to know.

    ``val`` is carved from the original training set (as AMC does) and is disjoint from ``train``; ``test`` is
    the dataset's own test set (or, for datasets without one, a fixed carve that does not depend on the seed).
    ``classes`` is the class subset in the caller's order (``None`` for all classes); labels are relabelled to
    ``0..num_classes-1`` in that order. ``mean`` / ``std`` are the per-channel statistics of ``train`` in the
    reader's raw units (0..255 for images) that were used to normalize every split.
    """

    name: str
    classes: tuple[int, ...] | None
    train: Split
    val: Split
    test: Split
    num_classes: int
    in_channels: int
    image_size: int
    dataset_id: int
    class_names: tuple[str, ...]
    mean: tuple[float, ...] = field(default=())
    std: tuple[float, ...] = field(default=())

    @property
    def key(self) -> str:
        """A readable task key: ``"fashion-mnist"`` or ``"fashion-mnist[5,7,9]"`` (for logs and file names)."""
        if self.classes is None:
            return self.name
        return f"{self.name}[{','.join(str(c) for c in self.classes)}]"

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one sample."""
        return (self.in_channels, self.image_size, self.image_size)

    def example_input(self, batch: int = 1) -> torch.Tensor:
        """A zero tensor of shape ``(batch, C, H, W)``: enough to trace, count FLOPs or export a model."""
        return torch.zeros(batch, *self.input_shape)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.key!r}, id={self.dataset_id}, classes={self.num_classes}, "
            f"shape={self.input_shape}, train={len(self.train)}, val={len(self.val)}, test={len(self.test)})"
        )


@dataclass(frozen=True, eq=False)
class RawData:
    """What a dataset reader returns: un-normalized arrays, before class selection and splitting.

    ``*_x`` are ``(N, C, H, W)`` with square images, ``uint8`` for images (preferred: exact, fast statistics)
    or any float dtype; ``*_y`` are integer labels in ``0..len(class_names)-1``. Readers of datasets without an
    official test set leave ``test_x`` / ``test_y`` as ``None``; :func:`~autostruct.data.load_dataset` then
    carves a fixed, stratified 20% test split that does not depend on the seed. ``source`` says where the
    data came from (a folder, a URL, a package) for logs and ``autostruct info``.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray | None
    test_y: np.ndarray | None
    class_names: tuple[str, ...]
    source: str = ""
