"""Pure split helpers and the Split type: stratified carving, val-size rules, class selection, batching."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from autostruct.data import Split, load_dataset, splits
from autostruct.data.splits import (
    channel_stats,
    resolve_classes,
    resolve_val_size,
    select_classes,
    stratified_holdout,
)
from autostruct.errors import AutostructError

NAMES = ("a", "b", "c", "d", "e")


def test_stratified_holdout_partitions_and_balances():
    y = np.repeat(np.arange(4), [50, 30, 15, 5])
    keep, held = stratified_holdout(y, 20, seed=3)
    assert len(held) == 20 and len(keep) == 80
    assert np.intersect1d(keep, held).size == 0
    assert np.array_equal(np.sort(np.concatenate([keep, held])), np.arange(100))
    # Proportional per class: 50/30/15/5 of 100 -> 10/6/3/1 of 20.
    assert np.bincount(y[held], minlength=4).tolist() == [10, 6, 3, 1]


def test_stratified_holdout_is_deterministic_per_seed():
    y = np.random.default_rng(0).integers(0, 7, size=500)
    a = stratified_holdout(y, 77, seed=1)
    b = stratified_holdout(y, 77, seed=1)
    c = stratified_holdout(y, 77, seed=2)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])
    assert len(c[1]) == 77


@pytest.mark.parametrize("n", [0, 1, 99, 100])
def test_stratified_holdout_edges(n):
    y = np.arange(100) % 3
    keep, held = stratified_holdout(y, n, seed=0)
    assert len(held) == n and len(keep) == 100 - n


def test_val_size_rules(caplog, monkeypatch):
    monkeypatch.setattr(splits, "_CLAMPS_REPORTED", set())
    assert resolve_val_size(0, 100, "x") == 0
    assert resolve_val_size(30, 100, "x") == 30
    assert resolve_val_size(0.25, 100, "x") == 25
    with caplog.at_level(logging.WARNING):
        assert resolve_val_size(5000, 1000, "digits") == 500
    assert "more than half" in caplog.text and "digits" in caplog.text
    for bad in (-1, 2.5, "10", True):
        with pytest.raises(AutostructError, match="val_size"):
            resolve_val_size(bad, 100, "x")


def test_val_size_clamp_is_reported_once_per_process(caplog, monkeypatch):
    # One run loads digits several times with the default val_size=5000 (checks, base model, envs).
    monkeypatch.setattr(splits, "_CLAMPS_REPORTED", set())
    with caplog.at_level(logging.WARNING, logger="autostruct.data"):
        sizes = [len(load_dataset("digits", val_size=5000).val) for _ in range(3)]
        assert sizes == [719] * 3 and caplog.text.count("more than half") == 1
        load_dataset("digits", val_size=4000)  # another setting is news
        load_dataset("digits", val_size=5000, classes=[0, 1])  # so is another training set
    assert caplog.text.count("more than half") == 3


def test_resolve_classes_accepts_indices_and_names():
    assert resolve_classes(None, NAMES, "toy") is None
    assert resolve_classes([3, 1], NAMES, "toy") == (3, 1)
    assert resolve_classes(["E", 0], NAMES, "toy") == (4, 0)
    assert resolve_classes((np.int64(2),), NAMES, "toy") == (2,)


@pytest.mark.parametrize(
    ("classes", "pattern"),
    [
        ([5], r"classes entry 5 is out of range: valid class indices for toy are 0\.\.4"),
        ([-1], r"entry -1 is out of range"),
        ([1, 2, 1], r"entry 1 appears twice"),
        ([], r"empty"),
        (["zebra"], r"Unknown toy class 'zebra'"),
        ([1.5], r"not a class index"),
        ("1,2", r"must be a list"),
    ],
)
def test_resolve_classes_errors(classes, pattern):
    with pytest.raises(AutostructError, match=pattern):
        resolve_classes(classes, NAMES, "toy")


def test_select_classes_relabels_in_given_order():
    x = np.arange(10)[:, None, None, None].astype(np.uint8)
    y = np.arange(10) % 5
    sx, sy = select_classes(x, y, (4, 1), 5)
    assert sy.tolist() == [1, 0, 1, 0]
    assert sx.ravel().tolist() == [1, 4, 6, 9]


def test_channel_stats_matches_numpy_and_guards_constant_channels():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 256, size=(40, 3, 5, 5)).astype(np.float32))
    x[:, 2] = 7.0
    mean, std = channel_stats(x)
    ref = x.double().numpy()
    np.testing.assert_allclose(mean, ref.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(std[:2], ref.std(axis=(0, 2, 3))[:2], rtol=1e-5)
    assert std[2] == 1.0


def _split(n=10):
    return Split(torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1), torch.arange(n) % 3)


def test_split_batches_cover_every_sample_once():
    s = _split(10)
    plain = [yb.tolist() for _, yb in s.batches(4)]
    assert [len(b) for b in plain] == [4, 4, 2] and s.num_batches(4) == 3
    assert [len(b) for _, b in s.batches(4, drop_last=True)] == [4, 4] and s.num_batches(
        4, drop_last=True
    ) == 2
    seen = torch.cat([xb.view(-1) for xb, _ in s.batches(3, shuffle=True, seed=5)])
    assert sorted(seen.tolist()) == list(range(10))
    again = torch.cat([xb.view(-1) for xb, _ in s.batches(3, shuffle=True, seed=5)])
    other = torch.cat([xb.view(-1) for xb, _ in s.batches(3, shuffle=True, seed=6)])
    assert torch.equal(seen, again) and not torch.equal(seen, other)
    for xb, yb in s.batches(3, shuffle=True):
        assert torch.equal(yb, xb.view(-1).long() % 3)  # x and y stay paired


def test_split_subset_and_validation():
    s = _split(10)
    sub = s.subset(4, seed=1)
    assert len(sub) == 4 and torch.equal(sub.x, s.subset(4, seed=1).x)
    assert sub.x.view(-1).tolist() == sorted(sub.x.view(-1).tolist())
    assert s.subset(50) is s
    with pytest.raises(AutostructError):
        s.subset(-1)
    with pytest.raises(AutostructError):
        next(s.batches(0))
    with pytest.raises(ValueError):
        Split(torch.zeros(3, 1, 2, 2), torch.zeros(4, dtype=torch.long))
    assert s.class_counts(3).tolist() == [4, 3, 3]
