"""The prepared-dataset store: one memory-mapped copy per request, shared by every process that loads it."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from autostruct.data import RawData, load_dataset, register_dataset, splits, store
from autostruct.data.registry import _REGISTRY


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(store.ENV_SHARED, raising=False)
    return tmp_path / "cache" / "data" / "prepared"


@pytest.fixture
def counted(tmp_path):
    """A registered dataset read from one .npz file, counting its reads; ``sources`` lists that file."""
    path = tmp_path / "tiny.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.integers(0, 255, (120, 1, 6, 6), dtype=np.uint8), y=np.arange(120) % 3)
    reads = []

    def reader(root):
        reads.append(1)
        with np.load(path) as f:
            return RawData(f["x"], f["y"], None, None, ("a", "b", "c"))

    register_dataset("store-test", reader, index=777, sources=lambda root: [path])
    yield path, reads
    _REGISTRY.pop("store-test")


def _same(a, b):
    for split in ("train", "val", "test"):
        sa, sb = getattr(a, split), getattr(b, split)
        assert torch.equal(sa.x, sb.x) and torch.equal(sa.y, sb.y), split
    assert (a.mean, a.std, a.dataset_id, a.class_names, a.classes) == (b.mean, b.std, b.dataset_id, b.class_names,
                                                                      b.classes)


def test_second_load_maps_the_stored_copy_and_equals_a_private_load(cache, counted, monkeypatch):
    _, reads = counted
    first = load_dataset("store-test", val_size=20, seed=1, classes=[2, 0])
    second = load_dataset("store-test", val_size=20, seed=1, classes=[2, 0])
    assert len(reads) == 1 and len(list(cache.iterdir())) == 1
    monkeypatch.setenv(store.ENV_SHARED, "0")
    private = load_dataset("store-test", val_size=20, seed=1, classes=[2, 0])
    assert len(reads) == 2
    _same(first, private)
    _same(second, private)
    # Another request is another entry.
    load_dataset("store-test", val_size=20, seed=2, classes=[2, 0])
    assert len(list(cache.iterdir())) == 1  # sharing is off: nothing new was stored
    monkeypatch.delenv(store.ENV_SHARED)
    load_dataset("store-test", val_size=20, seed=2, classes=[2, 0])
    assert len(list(cache.iterdir())) == 2


def test_tensors_are_file_mapped_and_writes_stay_private(cache, counted):
    if not Path("/proc/self/maps").exists():
        pytest.skip("needs Linux /proc")
    data = load_dataset("store-test", val_size=20)
    (entry,) = cache.iterdir()
    assert str(entry / "train_x.npy") in Path("/proc/self/maps").read_text()
    before = data.train.x[0].clone()
    data.train.x[0] += 1.0
    again = load_dataset("store-test", val_size=20)
    assert torch.equal(again.train.x[0], before)


def test_changed_source_file_is_prepared_again(cache, counted):
    path, reads = counted
    load_dataset("store-test", val_size=20)
    stamp = path.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(stamp, stamp))
    load_dataset("store-test", val_size=20)
    assert len(reads) == 2 and len(list(cache.iterdir())) == 2


def test_dataset_without_sources_is_not_stored(cache, monkeypatch):
    reads = []

    def reader(root):
        reads.append(1)
        return RawData(np.zeros((40, 1, 4, 4), np.uint8), np.arange(40) % 2, None, None, ("a", "b"))

    register_dataset("store-test-private", reader, index=778)
    try:
        load_dataset("store-test-private", val_size=4)
        load_dataset("store-test-private", val_size=4)
    finally:
        _REGISTRY.pop("store-test-private")
    assert len(reads) == 2 and not cache.exists()


def test_clamp_is_reported_on_a_stored_load_too(cache, counted, caplog, monkeypatch):
    with caplog.at_level(logging.WARNING, logger="autostruct.data"):
        monkeypatch.setattr(splits, "_CLAMPS_REPORTED", set())
        load_dataset("store-test", val_size=5000)
        monkeypatch.setattr(splits, "_CLAMPS_REPORTED", set())  # as a fresh process that finds the entry
        data = load_dataset("store-test", val_size=5000)
    assert caplog.text.count("more than half") == 2 and len(data.val) == 48


def test_eviction_drops_least_recently_used_entries(cache, counted):
    for seed in range(3):
        load_dataset("store-test", val_size=20, seed=seed)
    entries = sorted(cache.iterdir(), key=lambda p: (p / "meta.json").stat().st_mtime)
    now = time.time()
    for i, e in enumerate(entries):
        os.utime(e / "meta.json", (now - 100 + i, now - 100 + i))
    size = sum(f.stat().st_size for f in entries[0].iterdir())
    store._evict(cache, keep=entries[0].name, limit=2 * size + 1024)  # meta.json sizes differ by a few bytes
    left = sorted(p.name for p in cache.iterdir())
    assert left == sorted([entries[0].name, entries[2].name])  # the oldest other one went; `keep` stays


def test_damaged_entry_is_rebuilt(cache, counted):
    _, reads = counted
    load_dataset("store-test", val_size=20)
    (entry,) = cache.iterdir()
    (entry / "val_x.npy").write_bytes(b"not an array")
    data = load_dataset("store-test", val_size=20)
    assert len(reads) == 2 and len(data.val) == 20


def _load_in_child(barrier, results):
    barrier.wait()
    data = load_dataset("store-test", val_size=20)
    results.put(data.train.x.sum().item())


def test_processes_preparing_one_entry_at_once_agree(cache, counted):
    # No lock: each process writes its own temporary folder and renames it into place; a loser of the rename
    # keeps the winner's identical files. The race costs one extra preparation, never a half-read entry.
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_load_in_child, args=(barrier, results)) for _ in range(3)]
    for p in procs:
        p.start()
    sums = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(set(sums)) == 1
    assert len(list(cache.iterdir())) == 1  # one entry, no temporary folder left
