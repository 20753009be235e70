"""fashion-mnist and digits end to end: shapes, label ranges, disjoint deterministic splits, subsets, ids."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from autostruct.data import Dataset, Split, dataset_id, dataset_status, list_datasets, load_dataset
from autostruct.data.formats import read_idx
from autostruct.data.readers import DEBIAN_FASHION_MNIST, find_idx_files, read_digits
from autostruct.errors import AutostructError

HAVE_FASHION = find_idx_files(DEBIAN_FASHION_MNIST) is not None
needs_fashion = pytest.mark.skipif(not HAVE_FASHION, reason="dataset-fashion-mnist is not installed")


def raw_rows(split: Split, data: Dataset) -> Counter:
    """Multiset of the split's samples in raw pixel units (undoes the normalization), as bytes."""
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    raw = (split.x * std + mean).round().clamp(0, 255).to(torch.uint8).reshape(len(split), -1).numpy()
    return Counter(row.tobytes() for row in raw)


@pytest.fixture(scope="module")
def fashion() -> Dataset:
    if not HAVE_FASHION:
        pytest.skip("dataset-fashion-mnist is not installed")
    return load_dataset("fashion-mnist", download=False)


@needs_fashion
def test_fashion_mnist_shapes_and_labels(fashion):
    assert (len(fashion.train), len(fashion.val), len(fashion.test)) == (55000, 5000, 10000)
    assert (fashion.num_classes, fashion.in_channels, fashion.image_size) == (10, 1, 28)
    assert fashion.dataset_id == 0 and fashion.classes is None and fashion.key == "fashion-mnist"
    assert fashion.class_names[9] == "Ankle boot"
    for split in (fashion.train, fashion.val, fashion.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.shape[1:] == (1, 28, 28) and split.x.is_contiguous()
        assert int(split.y.min()) == 0 and int(split.y.max()) == 9
    # Normalized with the training split's statistics; val is stratified (500 per class).
    assert abs(float(fashion.train.x.mean())) < 1e-3 and abs(float(fashion.train.x.std()) - 1) < 1e-3
    assert fashion.val.class_counts(10).tolist() == [500] * 10
    assert fashion.example_input(2).shape == (2, 1, 28, 28)


@needs_fashion
def test_fashion_mnist_splits_partition_train_and_keep_test(fashion):
    files = find_idx_files(DEBIAN_FASHION_MNIST)
    train_raw = read_idx(files["train_x"]).reshape(60000, -1)
    test_raw = read_idx(files["test_x"]).reshape(10000, -1)
    # train + val is exactly the official training set (as multisets: no sample lost or used twice) ...
    assert raw_rows(fashion.train, fashion) + raw_rows(fashion.val, fashion) == Counter(
        r.tobytes() for r in train_raw
    )
    # ... and test is the official test set, in order.
    mean, std = fashion.mean[0], fashion.std[0]
    back = (fashion.test.x.reshape(10000, -1) * std + mean).round().to(torch.uint8).numpy()
    assert np.array_equal(back, test_raw)


@needs_fashion
def test_fashion_mnist_seeded_val_and_class_subset(fashion):
    again = load_dataset("fashion-mnist", download=False)
    other = load_dataset("fashion-mnist", seed=1, val_size=2000, download=False)
    assert torch.equal(again.val.x, fashion.val.x) and torch.equal(again.train.y, fashion.train.y)
    assert len(other.val) == 2000 and not torch.equal(other.val.x, fashion.val.x[:2000])
    assert torch.equal(other.test.y, fashion.test.y)  # the test split never depends on the seed

    shoes = load_dataset("fashion-mnist", classes=[5, 7, 9], val_size=600, download=False)
    assert shoes.num_classes == 3 and shoes.classes == (5, 7, 9) and shoes.key == "fashion-mnist[5,7,9]"
    assert shoes.class_names == ("Sandal", "Sneaker", "Ankle boot")
    assert len(shoes.train) + len(shoes.val) == 18000 and len(shoes.test) == 3000
    assert shoes.val.class_counts(3).tolist() == [200, 200, 200]
    # Relabelled in the order given: test label 0 are the official class-5 samples, in their original order.
    test_y = read_idx(find_idx_files(DEBIAN_FASHION_MNIST)["test_y"])
    kept = test_y[np.isin(test_y, [5, 7, 9])]
    assert shoes.test.y.tolist() == [{5: 0, 7: 1, 9: 2}[int(v)] for v in kept]
    assert shoes.dataset_id == dataset_id("fashion-mnist", (5, 7, 9)) >= 1000
    assert dataset_id("fashion-mnist", (9, 7, 5)) != shoes.dataset_id


def test_digits_shapes_splits_and_clamped_val():
    data = load_dataset("digits", val_size=300, seed=0)
    assert (data.num_classes, data.in_channels, data.image_size, data.dataset_id) == (10, 1, 8, 1)
    assert (len(data.train), len(data.val), len(data.test)) == (1138, 300, 359)
    raw = read_digits(None)
    total = Counter(r.tobytes() for r in raw.train_x.reshape(len(raw.train_x), -1))
    parts = raw_rows(data.train, data) + raw_rows(data.val, data) + raw_rows(data.test, data)
    assert parts == total  # train, val and the carved test are a partition of the 1797 images
    for split in (data.train, data.val, data.test):
        assert set(split.y.tolist()) == set(range(10))

    other = load_dataset("digits", val_size=300, seed=1)
    assert raw_rows(other.test, other) == raw_rows(data.test, data)  # fixed test carve
    assert raw_rows(other.val, other) != raw_rows(data.val, data)
    assert len(load_dataset("digits").val) == 719  # 5000 is clamped to half of the 1438 training images
    none = load_dataset("digits", val_size=0)
    assert len(none.val) == 0 and len(none.train) == 1438 and none.val.x.shape[1:] == (1, 8, 8)


def test_digits_class_subset_by_name_and_index():
    data = load_dataset("digits", classes=["3", 8], val_size=20)
    assert data.num_classes == 2 and data.classes == (3, 8) and data.class_names == ("3", "8")
    assert set(data.train.y.tolist()) == {0, 1}
    # All classes in natural order is the full dataset: same id.
    assert load_dataset("digits", classes=list(range(10)), val_size=10).dataset_id == 1


def test_errors_for_bad_names_classes_and_options():
    with pytest.raises(
        AutostructError, match=r"Unknown dataset 'fashion_mnist'. Did you mean 'fashion-mnist'\?"
    ):
        load_dataset("fashion_mnist")
    with pytest.raises(
        AutostructError, match=r"classes entry 10 is out of range: valid class indices for digits are 0\.\.9"
    ):
        load_dataset("digits", classes=[1, 10])
    with pytest.raises(AutostructError, match=r"appears twice"):
        load_dataset("digits", classes=[2, 2])
    with pytest.raises(AutostructError, match=r"has no option 'image_size'"):
        load_dataset("digits", image_size=16)
    with pytest.raises(AutostructError, match=r"seed must be an integer"):
        load_dataset("digits", seed="0")


def test_registry_listing_and_status(tmp_path):
    assert list_datasets() == sorted(
        ["cifar10", "cifar100", "digits", "fashion-mnist", "imagefolder", "mnist"]
    )
    status = dataset_status()
    assert set(status) == set(list_datasets())
    assert status["digits"].startswith("built in")
    assert "needs --data-root" in status["imagefolder"]
    if HAVE_FASHION:
        assert status["fashion-mnist"].startswith("found:")
    assert "not found" in dataset_status(tmp_path)["cifar10"]


def test_a_clamped_default_hold_out_is_no_warning_but_a_chosen_one_is(caplog, monkeypatch):
    import logging

    from autostruct.config import PruneConfig
    from autostruct.data import splits

    monkeypatch.setattr(splits, "_CLAMPS_REPORTED", set())
    unset = PruneConfig(tasks=[{"dataset": "digits", "ratios": [0.5]}]).search.holdout  # the user set nothing
    with caplog.at_level(logging.INFO, logger="autostruct.data"):
        assert len(load_dataset("digits", val_size=unset).val) == 719
        assert len(load_dataset("digits").val) == 719
    assert [r.levelno for r in caplog.records if "more than half" in r.message] == [logging.INFO]
    caplog.clear()
    chosen = PruneConfig(tasks=[{"dataset": "digits", "ratios": [0.5]}], search={"holdout_size": 5000}).search.holdout
    with caplog.at_level(logging.INFO, logger="autostruct.data"):
        load_dataset("digits", val_size=chosen)
    assert [r.levelno for r in caplog.records if "more than half" in r.message] == [logging.WARNING]
