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
    distillation_loss,
    distillation_targets,
    evaluate,
    fine_tune,
    fine_tune_cycles,
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


def test_fine_tune_cycles_run_again_only_while_under_the_target(digits):
    from types import SimpleNamespace

    kw = dict(batch_size=300, progress=False)
    once = _model()
    plain = fine_tune(once, digits, 1, **kw)
    model = _model()
    # No target, or one the first cycle reaches: one cycle, the same run as fine_tune's.
    res = fine_tune_cycles(model, digits, 1, target_val_accuracy=0.0, max_cycles=3, **kw)
    assert len(res) == 1 and res[0].val.accuracy == plain.val.accuracy
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), once.state_dict().values(), strict=True))
    assert len(fine_tune_cycles(_model(), digits, 1, max_cycles=3, **kw)) == 1
    # A target out of reach: every cycle runs, each a full schedule from the peak learning rate again.
    seen = []
    res = fine_tune_cycles(_model(), digits, 1, target_val_accuracy=1.01, max_cycles=3, callback=seen.append, **kw)
    assert len(res) == 3 and [s.lr for s in seen] == [pytest.approx(0.01)] * 3
    # Without a validation split there is nothing to check: one cycle.
    no_val = SimpleNamespace(train=digits.train)
    assert len(fine_tune_cycles(_model(), no_val, 1, target_val_accuracy=1.01, max_cycles=3, **kw)) == 1


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


def _slow_distillation_loss(logits, targets, teacher_logits, weight, temperature):
    """The distillation loss written from its definition, one example and one class at a time."""
    import math

    total = 0.0
    for z, y, v in zip(logits.tolist(), targets.tolist(), teacher_logits.tolist(), strict=True):
        log_norm = math.log(sum(math.exp(zj) for zj in z))
        hard = log_norm - z[y]
        p_s = [math.exp(zj / temperature) for zj in z]
        p_t = [math.exp(vj / temperature) for vj in v]
        p_s = [p / sum(p_s) for p in p_s]
        p_t = [p / sum(p_t) for p in p_t]
        kl = sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(p_t, p_s, strict=True))
        total += (1 - weight) * hard + weight * temperature**2 * kl
    return total / len(targets)


@pytest.mark.parametrize("weight,temperature", [(0.0, 4.0), (0.5, 4.0), (1.0, 2.0), (0.3, 1.0)])
def test_distillation_loss_matches_its_definition(weight, temperature):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 5, generator=g, dtype=torch.float64) * 3
    teacher = torch.randn(7, 5, generator=g, dtype=torch.float64) * 3
    targets = torch.randint(0, 5, (7,), generator=g)
    got = distillation_loss(logits, targets, teacher, weight=weight, temperature=temperature)
    assert got.item() == pytest.approx(_slow_distillation_loss(logits, targets, teacher, weight, temperature), rel=1e-9)
    # A student that already matches its teacher pays only the hard term.
    same = distillation_loss(logits, targets, logits, weight=weight, temperature=temperature)
    assert same.item() == pytest.approx((1 - weight) * torch.nn.functional.cross_entropy(logits, targets).item())


def test_fine_tune_with_a_teacher_moves_the_student_towards_it(digits):
    teacher = _model(seed=0)
    train(teacher, digits, 2, batch_size=100, progress=False)
    before = [p.detach().clone() for p in teacher.parameters()]
    student = _model(seed=1)

    def gap() -> float:  # the soft term on the validation images
        student.eval()
        with torch.no_grad():
            x = digits.val.x
            return distillation_loss(student(x), digits.val.y, teacher(x), weight=1.0).item()

    start = gap()
    fine_tune(student, digits, 3, lr=0.05, batch_size=100, progress=False, teacher=teacher, distill=1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters(), strict=True))  # the teacher is left alone
    assert gap() < 0.5 * start  # distillation only (distill=1.0): the student learnt the teacher's outputs


def test_precomputed_teacher_outputs_train_as_the_teacher_does(digits):
    teacher = _model(seed=0)
    train(teacher, digits, 1, batch_size=100, progress=False)
    soft = distillation_targets(teacher, digits)
    assert soft.shape == (len(digits.train.y), 10)
    kw = dict(batch_size=100, lr=0.05, progress=False, teacher=teacher, distill=0.5)
    live, read = _model(seed=1), _model(seed=1)
    fine_tune(live, digits, 2, **kw)
    fine_tune(read, digits, 2, teacher_logits=soft, **kw)
    for a, b in zip(live.state_dict().values(), read.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-4), (a - b).abs().max()
    flat = _model(seed=1)  # the given outputs are what it learns from: a uniform teacher teaches otherwise
    fine_tune(flat, digits, 2, teacher_logits=torch.zeros_like(soft), **kw)
    assert not torch.allclose(flat.state_dict()["fc.weight"], live.state_dict()["fc.weight"], atol=1e-3)
    # With augmentation the teacher must see each augmented batch: no targets, and given ones are refused.
    assert distillation_targets(teacher, digits, augment="crop-flip") is None
    with pytest.raises(AutostructError, match="without augmentation"):
        fine_tune(_model(seed=1), digits, 1, augment="crop-flip", teacher_logits=soft, **kw)
    with pytest.raises(AutostructError, match="rows for"):
        fine_tune(_model(seed=1), digits, 1, teacher_logits=soft[:-1], **kw)


def test_one_progress_line_per_epoch_when_stderr_is_not_a_terminal(digits, capsys):
    train(_model(), digits, 2, batch_size=200, label="train digits")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 2, lines
    assert lines[0].startswith("train digits epoch 1/2 (6 steps): loss ") and " val " in lines[0] and "left" in lines[0]
    assert lines[1].startswith("train digits epoch 2/2 (6 steps): loss ")
    train(_model(), digits, 1, batch_size=200, progress=False)
    assert capsys.readouterr().err == ""
