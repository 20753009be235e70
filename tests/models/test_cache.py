"""The trained-model cache: a second call is a hit, keys are readable, damaged files are retrained."""

from __future__ import annotations

import time
from pathlib import Path

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


def test_a_shipped_model_is_used_only_for_its_own_key(digits, monkeypatch, tmp_path):
    import shutil

    from autostruct.models import shipped

    monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path / "trainer"))
    _, made = get_or_train("resnet20", "digits", dataset=digits, **ARGS)
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path / "package")
    (tmp_path / "package").mkdir()
    shutil.copyfile(made.path, tmp_path / "package" / made.path.name)

    monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path / "user"))  # a new user: empty cache
    _, info = get_or_train("resnet20", "digits", dataset=None, **ARGS)  # no data needed: nothing is trained
    assert info.hit and info.source == "shipped" and info.path == tmp_path / "package" / made.path.name
    assert info.metrics == made.metrics and not (tmp_path / "user" / "models").exists()  # not copied into the cache

    # Any field of the key that differs (here the seed or the recipe) trains, as does shipped=False.
    for changed in ({"seed": 1}, {"train_config": TrainConfig(lr=0.05)}, {"shipped": False}):
        _, other = get_or_train("resnet20", "digits", dataset=digits, **(ARGS | changed))
        assert other.source == "trained" and other.path.parent == tmp_path / "user" / "models", changed
    # What this user trained under the shipped key is theirs from then on.
    _, again = get_or_train("resnet20", "digits", dataset=None, **ARGS)
    assert again.source == "cache"


def test_the_demo_gets_every_base_model_from_the_package(monkeypatch, tmp_path):
    # What `make demo` runs: with an empty cache every base model comes from the package, none is trained.
    from types import SimpleNamespace

    from autostruct.config import PruneConfig, load_yaml
    from autostruct.models import cache
    from autostruct.models.shipped import SHIPPED_DIR
    from autostruct.mtacp import run
    from autostruct.mtacp.run import prepare_bases
    from autostruct.mtacp.tasks import expand_tasks

    def no_training(*args, **kwargs):
        raise AssertionError("a demo base model would be trained: its key matches no shipped file")

    monkeypatch.setattr(cache, "train", no_training)
    # Where each model comes from is the question; its test accuracy (three ResNet-20 passes over 10k images,
    # most of this test's time) is measured by the demo itself.
    monkeypatch.setattr(run, "evaluate", lambda *a, **k: SimpleNamespace(accuracy=0.0))
    monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path / "cache"))
    cfg = load_yaml(PruneConfig, Path(__file__).resolve().parents[2] / "configs" / "quickstart-prune.yaml")
    cfg = cfg.model_copy(update={"latency_runs": 1})
    keys, _ = expand_tasks(cfg)
    bases = prepare_bases(cfg, tmp_path / "run", keys, progress=False)
    for key, base in bases.items():
        assert base["source"] == "shipped" and Path(base["checkpoint"]).parent == SHIPPED_DIR, key
    assert not (tmp_path / "cache" / "models").exists()


def test_a_class_subset_starts_from_the_full_model(digits, monkeypatch, tmp_path):
    from types import SimpleNamespace

    from autostruct.models import create_model
    from autostruct.models.cache import init_from_full

    monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path))
    full, info = get_or_train("resnet20", "digits", dataset=digits, **ARGS)
    classes = [7, 2, 4]

    def only(split):  # the split's images of ``classes``, relabelled 0, 1, 2 in that order
        match = split.y[:, None] == torch.tensor(classes)
        keep = match.any(1)
        return SimpleNamespace(x=split.x[keep], y=match[keep].int().argmax(1))

    subset = SimpleNamespace(**{**vars(digits), "num_classes": 3, "train": only(digits.train), "val": only(digits.val),
                                "test": only(digits.test)})
    sub = create_model("resnet20", num_classes=3, in_channels=1, image_size=8, width=0.25).eval()
    init_from_full(sub, full, classes)
    with torch.no_grad():
        torch.testing.assert_close(sub(subset.val.x), full(subset.val.x)[:, classes])
    with pytest.raises(AutostructError, match="shape"):
        init_from_full(sub, full, classes[:2])

    # Through the cache: the full model's key is part of the subset's, and it starts where the full one is.
    _, from_full = get_or_train("resnet20", "digits", dataset=subset, **ARGS, classes=classes,
                                      init=(full, info.path.stem))
    _, scratch = get_or_train("resnet20", "digits", dataset=subset, **ARGS, classes=classes)
    assert from_full.path != scratch.path and from_full.source == scratch.source == "trained"
    assert torch.load(from_full.path, weights_only=True)["metadata"]["init"] == info.path.stem
