"""Small real datasets for the model tests: scikit-learn digits (always there) and a Fashion-MNIST subset."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class TinySplit:
    """The part of autostruct.data.Split that training uses: whole-split x/y tensors."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


def _dataset(name: str, x: torch.Tensor, y: torch.Tensor, n_train: int, n_val: int, n_test: int):
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    mean, std = x[:n_train].mean(), x[:n_train].std()
    x = (x - mean) / std
    a, b, c = n_train, n_train + n_val, n_train + n_val + n_test
    return SimpleNamespace(
        name=name,
        train=TinySplit(x[:a], y[:a]),
        val=TinySplit(x[a:b], y[a:b]),
        test=TinySplit(x[b:c], y[b:c]),
        num_classes=int(y.max()) + 1,
        in_channels=x.shape[1],
        image_size=x.shape[-1],
    )


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits: 1200 train, 300 val, 297 test."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(d.target, dtype=torch.int64)
    return _dataset("digits", x, y, 1200, 300, 297)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@pytest.fixture(scope="session")
def fashion_subset():
    """3000 train / 500 val / 1000 test Fashion-MNIST images (autostruct.data if present, else raw IDX)."""
    try:
        from autostruct.data import load_dataset
    except ImportError:
        load_dataset = None
    if load_dataset is not None:
        ds = load_dataset("fashion-mnist", val_size=500, seed=0)
        return SimpleNamespace(
            name="fashion-mnist",
            train=ds.train.subset(3000, seed=0),
            val=ds.val,
            test=ds.test.subset(1000, seed=0),
            num_classes=ds.num_classes,
            in_channels=ds.in_channels,
            image_size=ds.image_size,
        )
    if not (FMNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST IDX files not installed (apt-get install dataset-fashion-mnist)")
    xtr = torch.tensor(_read_idx(FMNIST_DIR / "train-images-idx3-ubyte.gz")[:3500], dtype=torch.float32)
    ytr = torch.tensor(_read_idx(FMNIST_DIR / "train-labels-idx1-ubyte.gz")[:3500], dtype=torch.int64)
    xte = torch.tensor(_read_idx(FMNIST_DIR / "t10k-images-idx3-ubyte.gz")[:1000], dtype=torch.float32)
    yte = torch.tensor(_read_idx(FMNIST_DIR / "t10k-labels-idx1-ubyte.gz")[:1000], dtype=torch.int64)
    x = torch.cat([xtr, xte]).unsqueeze(1) / 255.0
    y = torch.cat([ytr, yte])
    ds = _dataset("fashion-mnist", x[:3500], y[:3500], 3000, 500, 0)
    mean, std = x[:3000].mean(), x[:3000].std()
    ds.test = TinySplit((x[3500:] - mean) / std, y[3500:])
    return ds
