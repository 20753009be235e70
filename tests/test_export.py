"""model.pt and model.onnx round trips, including models pruned to odd widths, and clear errors."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch_pruning as tp
from torch import nn

from autostruct.errors import AutostructError
from autostruct.export import FORMAT, export, export_onnx, load_model, save_model
from autostruct.models import create_model


def _randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and a larger head, so outputs are O(1) and buffers matter."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
        elif isinstance(m, nn.Linear):
            m.weight.data.copy_(torch.randn(m.weight.shape, generator=g) * 0.3)
    return model.eval()


def _prune(model: nn.Module, x: torch.Tensor, ratio: float) -> nn.Module:
    head = model.fc if hasattr(model, "fc") else model.classifier
    pruner = tp.pruner.MagnitudePruner(
        model,
        x,
        importance=tp.importance.MagnitudeImportance(p=1),
        pruning_ratio=ratio,
        ignored_layers=[head],
    )
    pruner.step()
    return model


def _onnx_out(path, x: torch.Tensor) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]


@pytest.mark.parametrize(
    ("name", "ratio"),
    [("resnet20", 0.0), ("resnet20", 0.37), ("mobilenetv2", 0.3), ("vgg11", 0.45), ("mobilenet", 0.3)],
)
def test_round_trip(tmp_path, name, ratio):
    torch.manual_seed(0)
    model = _randomize(create_model(name, num_classes=10, in_channels=1, image_size=16, width=0.5))
    x = torch.randn(3, 1, 16, 16)
    if ratio:
        _prune(model, x, ratio)
        widths = {m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)}
        assert any(w % 2 for w in widths), "expected odd widths after pruning"
    with torch.no_grad():
        expected = model(x)
    paths = export(model, tmp_path / "out", x[:1], metadata={"task": "demo", "ratio": ratio})
    assert paths.model_pt.name == "model.pt" and paths.onnx.name == "model.onnx"

    raw = torch.load(paths.model_pt, weights_only=True)
    assert raw["format"] == FORMAT
    assert raw["spec"]["name"] == name

    rebuilt, metadata = load_model(paths.model_pt)
    assert metadata == {"task": "demo", "ratio": ratio}
    assert not rebuilt.training
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), expected, atol=1e-4, rtol=0)
    # ONNX: dynamic batch axis, same outputs.
    np.testing.assert_allclose(_onnx_out(paths.onnx, x), expected.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(_onnx_out(paths.onnx, x[:1]), expected[:1].numpy(), atol=1e-4, rtol=0)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.onnx", "model.pt"]


def test_save_to_folder_and_rng_untouched(tmp_path):
    model = create_model("resnet20", num_classes=3, in_channels=1, image_size=8, width=0.25)
    path = save_model(model, tmp_path)
    assert path == tmp_path / "model.pt"
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    load_model(tmp_path)  # a folder works too
    assert torch.rand(1) == expected


def test_export_keeps_training_mode(tmp_path):
    model = create_model("resnet20", num_classes=3, in_channels=1, image_size=8, width=0.25).train()
    export_onnx(model, torch.zeros(1, 1, 8, 8), tmp_path / "m.onnx")
    assert model.training


def test_missing_file(tmp_path):
    with pytest.raises(AutostructError, match="does not exist"):
        load_model(tmp_path / "nope.pt")


def test_garbage_file(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(AutostructError, match="damaged or not an autostruct checkpoint"):
        load_model(bad)


def test_truncated_file(tmp_path):
    path = save_model(
        create_model("resnet20", num_classes=3, in_channels=1, image_size=8, width=0.25), tmp_path / "m.pt"
    )
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AutostructError, match="Could not read checkpoint"):
        load_model(path)


def test_plain_state_dict_is_rejected_with_advice(tmp_path):
    model = create_model("resnet20", num_classes=3, in_channels=1, image_size=8, width=0.25)
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(AutostructError, match="not an autostruct model checkpoint.*load_state_dict"):
        load_model(tmp_path / "sd.pt")


def test_model_without_spec():
    with pytest.raises(AutostructError, match="register_model"):
        save_model(nn.Linear(2, 2), "unused.pt")


def test_unregistered_model_in_checkpoint(tmp_path):
    model = create_model("resnet20", num_classes=3, in_channels=1, image_size=8, width=0.25)
    path = save_model(model, tmp_path / "m.pt")
    ckpt = torch.load(path, weights_only=True)
    ckpt["spec"]["name"] = "my-private-net"
    torch.save(ckpt, path)
    with pytest.raises(AutostructError, match="not registered.*@register_model"):
        load_model(path)


def test_bad_metadata_leaves_no_file(tmp_path):
    model = create_model("resnet20", num_classes=3, in_channels=1, image_size=8, width=0.25)
    with pytest.raises(AutostructError, match="JSON-like"):
        save_model(model, tmp_path / "m.pt", metadata={"tensor": torch.zeros(2)})
    assert list(tmp_path.iterdir()) == []


def test_format_1_checkpoint_still_loads(tmp_path):
    """``autostruct.model/1`` recorded constructor arguments of Conv/Linear/BatchNorm layers only."""
    model = _randomize(create_model("mobilenetv2", num_classes=4, in_channels=1, image_size=16, width=0.5))
    x = torch.randn(2, 1, 16, 16)
    _prune(model, x, 0.3)
    path = save_model(model, tmp_path / "m.pt")
    ckpt = torch.load(path, weights_only=True)
    args = {"Conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups"),
            "BatchNorm2d": ("num_features", "eps", "momentum", "affine", "track_running_stats"),
            "Linear": ("in_features", "out_features")}
    layers = {name: {"type": rec["type"], **{k: rec["attrs"][k] for k in args[rec["type"]]}}
              for name, rec in ckpt.pop("modules").items() if rec["type"] in args}
    del ckpt["buffers"]
    torch.save({**ckpt, "format": "autostruct.model/1", "layers": layers}, path)
    rebuilt, _ = load_model(path)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), atol=1e-4, rtol=0)
