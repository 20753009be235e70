"""Datasets as normalized in-memory tensors with seeded train / val / test splits.

>>> from autostruct.data import load_dataset
>>> data = load_dataset("digits", val_size=200, seed=0)
>>> data.num_classes, data.in_channels, data.image_size, data.dataset_id
(10, 1, 8, 1)
>>> xb, yb = next(data.train.batches(64, shuffle=True))
>>> tuple(xb.shape)
(64, 1, 8, 8)

Built-in datasets: ``fashion-mnist`` (Debian's IDX files, ``$AUTOSTRUCT_DATA``, a root, or a download),
``digits`` (scikit-learn), ``mnist`` (IDX), ``cifar10`` / ``cifar100`` (python batches), ``imagefolder``
(one folder per class). Add your own with :func:`register_dataset`.
"""

from autostruct.data import readers as _readers  # noqa: F401  (registers the built-in readers)
from autostruct.data.download import data_cache_dir
from autostruct.data.registry import (
    DatasetSpec,
    dataset_id,
    dataset_status,
    get_dataset_spec,
    list_datasets,
    load_dataset,
    register_dataset,
)
from autostruct.data.types import Dataset, RawData, Split

__all__ = [
    "Dataset",
    "DatasetSpec",
    "RawData",
    "Split",
    "data_cache_dir",
    "dataset_id",
    "dataset_status",
    "get_dataset_spec",
    "list_datasets",
    "load_dataset",
    "register_dataset",
]
