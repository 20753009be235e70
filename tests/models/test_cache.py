"""The trained-model cache: a second call is a hit, keys are readable, damaged files are retrained."""

from __future__ import annotations

import time

import pytest
import torch

from autostruct.errors import AutostructError
from autostruct.models.cache import cache_dir, cache_key, get_or_train
from autostruct.models.train import TrainConfig, evaluate

ARGS = dict(width=0.25, epochs=1, seed=0, progress=False)


def test_cache_dir_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" / "models"
    monkeypatch.delenv("AUTOSTRUCT_CACHE")
    assert cache_dir().parts[-3:] == (".cache", "autostruct", "models")


def test_key_is_readable_and_distinct():
    base = dict(classes=None, width=1.0, epochs=3, seed=0, val_size=5000)
    key = cache_key("resnet20", "fashion-mnist", **base)
    assert key.startswith("resnet20-fashion-mnist-w1-e3-s0-")
    assert cache_key("resnet20", "fashion-mnist", **(base | {"classes": [9, 5, 7]})).startswith(
        "resnet20-fashion-mnist-c5.7.9-w1-e3-s0-"
    )
    keys = {
        key,
        cache_key("resnet20", "fashion-mnist", **(base | {"seed": 1})),
        cache_key("resnet20", "fashion-mnist", **(base | {"val_size": 100})),
        cache_key("resnet20", "fashion-mnist", **base, train_settings={"lr": 0.05}),
    }
    assert len(keys) == 4


def test_second_call_is_a_hit(digits, monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path))
    model, info = get_or_train("resnet20", "digits", dataset=digits, **ARGS)
    assert not info.hit and info.path.parent == tmp_path / "models" and info.path.is_file()
    assert info.path.name.startswith("resnet20-digits-w0.25-e1-s0-")
    assert 0 <= info.metrics["test_accuracy"] <= 1 and len(info.metrics["history"]) == 1

    t0 = time.perf_counter()
    again, info2 = get_or_train("resnet20", "digits", dataset=None, **ARGS)  # a hit never loads data
    assert info2.hit and info2.path == info.path and time.perf_counter() - t0 < 5
    assert info2.metrics == info.metrics
    with torch.no_grad():
        torch.testing.assert_close(again(digits.test.x), model(digits.test.x))
    assert evaluate(again, digits.test).accuracy == pytest.approx(info.metrics["test_accuracy"])

    # A different recipe is a different entry.
    _, info3 = get_or_train("resnet20", "digits", dataset=digits, train_config=TrainConfig(lr=0.05), **ARGS)
    assert not info3.hit and info3.path != info.path


def test_damaged_file_is_retrained(digits, monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path))
    _, info = get_or_train("resnet20", "digits", dataset=digits, **ARGS)
    info.path.write_bytes(b"garbage")
    _, info2 = get_or_train("resnet20", "digits", dataset=digits, **ARGS)
    assert not info2.hit and info2.path == info.path
    _, info3 = get_or_train("resnet20", "digits", dataset=digits, **ARGS)
    assert info3.hit
    assert [p.name for p in (tmp_path / "models").iterdir()] == [info.path.name]  # no temp files left


def test_non_positive_epochs(digits):
    with pytest.raises(AutostructError, match="epochs"):
        get_or_train("resnet20", "digits", dataset=digits, width=0.25, epochs=0)


def _get_or_train_in_child(digits, barrier, results):
    barrier.wait()
    _, info = get_or_train("resnet20", "digits", dataset=digits, **ARGS)
    results.put(info.hit)


def test_runs_that_need_one_model_at_once_train_it_once(digits, monkeypatch, tmp_path):
    import multiprocessing as mp

    monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path))
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_get_or_train_in_child, args=(digits, barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    hits = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert hits == [False, True]  # the second waited for the first's model instead of training its own
    assert len(list((tmp_path / "models").iterdir())) == 1
