"""Every registered model builds and forwards at any input size/channels, and Torch-Pruning can prune it."""

from __future__ import annotations

import pytest
import torch
import torch_pruning as tp
from torch import nn

from autostruct.errors import AutostructError
from autostruct.models import create_model, list_models, register_model
from autostruct.models.zoo._common import plan_downsampling, scale_channels

ZOO = ["mobilenet", "mobilenetv2", "resnet20", "resnet32", "resnet56", "vgg11", "vgg16"]


def test_zoo_is_registered():
    assert set(ZOO) <= set(list_models())
    assert list_models("resnet*") == ["resnet20", "resnet32", "resnet56"]


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize(("channels", "size"), [(1, 28), (1, 8), (3, 32)])
def test_forward_shapes(name, channels, size):
    model = create_model(name, num_classes=7, in_channels=channels, image_size=size, width=0.25).eval()
    with torch.no_grad():
        out = model(torch.randn(2, channels, size, size))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    assert model.autostruct_spec == {
        "name": name,
        "kwargs": {"num_classes": 7, "in_channels": channels, "image_size": size, "width": 0.25},
    }


@pytest.mark.parametrize("name", ZOO)
def test_full_width_forward_and_train_step(name):
    model = create_model(name, num_classes=10, in_channels=3, image_size=8)
    out = model(torch.randn(2, 3, 8, 8))
    out.sum().backward()
    assert out.shape == (2, 10)


def test_large_input_and_odd_sizes():
    for size in (224, 13, 9):
        model = create_model("resnet20", num_classes=3, in_channels=4, image_size=size, width=0.25).eval()
        with torch.no_grad():
            assert model(torch.randn(1, 4, size, size)).shape == (1, 3)
    model = create_model("mobilenetv2", num_classes=5, in_channels=3, image_size=224, width=0.25).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 5)


def test_reference_sizes():
    # ResNet-20 on CIFAR-10: 0.27M params, ~41M MACs (He et al.; Torch-Pruning's counter).
    model = create_model("resnet20", num_classes=10, in_channels=3, image_size=32)
    macs, params = tp.utils.count_ops_and_params(model, torch.zeros(1, 3, 32, 32))
    assert 0.26e6 < params < 0.28e6
    assert 40e6 < macs < 42e6


def test_width_scaling():
    assert scale_channels(16, 0.25) == 4
    assert scale_channels(16, 0.01) == 1
    assert scale_channels(32, 0.25, divisor=8) == 8
    assert scale_channels(24, 0.75, divisor=8) == 24  # 18 -> 16 would drop > 10%, so round up
    narrow = create_model("mobilenet", num_classes=10, width=0.5)
    assert narrow.stem[0].out_channels == 16
    assert narrow.classifier.in_features == 512


def test_downsampling_plan():
    assert plan_downsampling(32, 5, min_size=2) == [False, True, True, True, True]
    assert plan_downsampling(224, 5, min_size=2) == [True] * 5
    assert plan_downsampling(8, 5, min_size=2) == [False, False, False, True, True]
    assert plan_downsampling(28, 5, min_size=1) == [True] * 5


def test_unknown_model_lists_valid_names():
    with pytest.raises(AutostructError) as err:
        create_model("resnt20", num_classes=10)
    msg = str(err.value)
    assert "Unknown model 'resnt20'" in msg
    assert "Did you mean 'resnet20'" in msg
    for name in ZOO:
        assert name in msg


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_classes=0),
        dict(num_classes=10, in_channels=0),
        dict(num_classes=10, image_size=7),
        dict(num_classes=10, width=0),
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(AutostructError):
        create_model("resnet20", **kwargs)


def test_register_user_model():
    @register_model("test-tiny-net")
    def tiny(num_classes, in_channels, image_size, width, hidden=3):
        return nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(hidden, num_classes),
        )

    model = create_model("test-tiny-net", num_classes=4, in_channels=1, image_size=8, hidden=5)
    assert model(torch.zeros(1, 1, 8, 8)).shape == (1, 4)
    assert model.autostruct_spec["kwargs"]["hidden"] == 5
    with pytest.raises(ValueError, match="already registered"):
        register_model("test-tiny-net")(lambda **kw: None)


@pytest.mark.parametrize("name", ZOO)
def test_prunable_with_torch_pruning(name):
    # Forward code must read no hard-coded widths: prune ~40% of channels and run again.
    model = create_model(name, num_classes=10, in_channels=1, image_size=8, width=0.5).eval()
    x = torch.randn(2, 1, 8, 8)
    head = model.fc if hasattr(model, "fc") else model.classifier
    before = tp.utils.count_ops_and_params(model, x[:1])[0]
    pruner = tp.pruner.MagnitudePruner(
        model, x, importance=tp.importance.MagnitudeImportance(p=1), pruning_ratio=0.4, ignored_layers=[head]
    )
    pruner.step()
    after = tp.utils.count_ops_and_params(model, x[:1])[0]
    assert model(x).shape == (2, 10)
    assert after < 0.8 * before
