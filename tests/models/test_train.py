"""Training, fine-tuning and evaluation on real data (Fashion-MNIST subset, scikit-learn digits)."""

from __future__ import annotations

import pytest
import torch

from autostruct.errors import AutostructError
from autostruct.models import create_model
from autostruct.models.train import (
    EvalResult,
    TrainConfig,
    augment_batch,
    evaluate,
    fine_tune,
    make_config,
    resolve_augment,
    train,
)


def _model(name="resnet20", seed=0, **kw):
    torch.manual_seed(seed)
    kw = {"num_classes": 10, "in_channels": 1, "image_size": 8, "width": 0.25} | kw
    return create_model(name, **kw)


def test_fashion_mnist_beats_chance(fashion_subset):
    # 3000 training images, 2 epochs: chance is 10%; this reaches ~80% in a few seconds on one core.
    model = _model("vgg11", image_size=28)
    result = train(model, fashion_subset, 2, batch_size=64, lr=0.05, progress=False)
    test = evaluate(model, fashion_subset.test)
    assert test.n == len(fashion_subset.test.y)
    assert test.accuracy >= 0.60, result.history
    assert len(result.history) == 2
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.val is not None and result.val.accuracy == result.history[-1].val_accuracy


def test_same_seed_same_run(digits):
    runs = []
    for _ in range(2):
        model = _model(seed=1)
        res = train(model, digits, 1, batch_size=100, seed=3, progress=False)
        runs.append((res.history[0].train_loss, res.history[0].val_accuracy, model.fc.weight.clone()))
    assert runs[0][0] == runs[1][0]
    assert runs[0][1] == runs[1][1]
    assert torch.equal(runs[0][2], runs[1][2])
    other = train(_model(seed=1), digits, 1, batch_size=100, seed=4, progress=False)
    assert other.history[0].train_loss != runs[0][0]


def test_train_leaves_global_rng_alone(digits):
    model = _model()
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    train(model, digits, 1, batch_size=200, progress=False, augment="crop")
    assert torch.rand(1) == expected


def test_fine_tune_and_callback(digits):
    model = _model()
    seen = []
    res = fine_tune(model, digits, 2, batch_size=200, progress=False, callback=seen.append)
    assert [s.epoch for s in seen] == [1, 2]
    assert res.config.lr == 0.01
    assert res.history[0].lr == pytest.approx(0.01)
    assert not model.training


def test_digits_learns(digits):
    model = _model()
    train(model, digits, 3, batch_size=32, lr=0.05, progress=False)
    assert evaluate(model, digits.test).accuracy > 0.5


@pytest.mark.parametrize("epochs", [0, -1])
def test_non_positive_epochs(digits, epochs):
    with pytest.raises(AutostructError, match="epochs"):
        train(_model(), digits, epochs, progress=False)


def test_config_errors_name_the_field():
    with pytest.raises(AutostructError, match="unknown key 'lrr'.*Did you mean 'lr'"):
        make_config(epochs=1, lrr=0.1)
    with pytest.raises(AutostructError, match="batch_size"):
        make_config(epochs=1, batch_size=0)
    with pytest.raises(AutostructError, match="nesterov"):
        make_config(epochs=1, momentum=0.0)
    cfg = make_config(TrainConfig(epochs=4, lr=0.2), batch_size=32)
    assert (cfg.epochs, cfg.lr, cfg.batch_size) == (4, 0.2, 32)


def test_augment():
    assert resolve_augment("auto", 3, 32) == "crop-flip"
    assert resolve_augment("auto", 1, 28) == "none"
    assert resolve_augment("crop", 1, 28) == "crop"
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    assert augment_batch(x, "none", torch.Generator()) is x
    a = augment_batch(x, "crop-flip", torch.Generator().manual_seed(0))
    b = augment_batch(x, "crop-flip", torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    # A crop is a shift: every non-padded value still comes from the same image and channel.
    for i in range(2):
        for c in range(3):
            kept = a[i, c][a[i, c] != 0]
            assert set(kept.tolist()) <= set(x[i, c].flatten().tolist())


def test_evaluate(digits):
    model = _model().train()
    res = evaluate(model, digits.test, batch_size=100)
    assert isinstance(res, EvalResult) and res.n == len(digits.test.y)
    assert 0.0 <= res.accuracy <= 1.0 and res.loss > 0
    assert model.training  # mode restored
    empty = type(digits.test)(digits.test.x[:0], digits.test.y[:0])
    with pytest.raises(AutostructError, match="empty"):
        evaluate(model, empty)


def test_training_without_val_split(digits):
    from types import SimpleNamespace

    res = train(_model(), SimpleNamespace(train=digits.train), 1, batch_size=300, progress=False)
    assert res.val is None and res.history[0].val_accuracy is None
