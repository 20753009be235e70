"""Bring your own model: third-party-style architectures prune, save, reload with identical outputs, and run in
onnxruntime.

The blocks (``tests/byo_archs.py``) are written in the style of popular model libraries (norm layers with a
fused activation, ``Linear`` and ``LayerNorm`` subclasses, squeeze-excite, inverted residuals, dense
concatenation, grouped convolutions, a small attention block), registered with ``@register_model`` and pruned
with :func:`autostruct.prune.apply_keep_ratios`. The pruning-to-budget matrix is
``tests/prune/test_architecture_matrix.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from autostruct.errors import AutostructError
from autostruct.export import export, load_model, save_model
from autostruct.models import create_model, register_model
from autostruct.prune import apply_keep_ratios
from byo_archs import ARCHS, TinyViT, n_params, onnx_out, randomize


@pytest.mark.parametrize("name", list(ARCHS))
def test_pruned_architecture_round_trips(tmp_path, name):
    model = randomize(create_model(name, num_classes=5, in_channels=2, image_size=16))
    x = torch.randn(3, 2, 16, 16, generator=torch.Generator().manual_seed(1))
    pruned = apply_keep_ratios(model, x[:1], 0.5).eval()
    assert n_params(pruned) < n_params(model), "expected pruning to remove channels"
    with torch.no_grad():
        expected = pruned(x)
    paths = export(pruned, tmp_path / "out", x[:1], metadata={"arch": name})

    rebuilt, metadata = load_model(paths.model_pt)
    assert metadata == {"arch": name}
    # The rebuilt modules keep their own classes (no subclass is swapped for its torch base class).
    assert [type(m) for m in rebuilt.modules()] == [type(m) for m in pruned.modules()]
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), expected, atol=1e-5, rtol=1e-5)
    scale = max(1.0, float(expected.abs().max()))  # random weights: outputs of hundreds in the deeper nets
    np.testing.assert_allclose(onnx_out(paths.onnx, x), expected.numpy(), atol=1e-4 * scale, rtol=1e-4)


def test_pruned_subclass_attributes_are_restored(tmp_path):
    model = randomize(create_model("byo-grouped-layernorm2d", num_classes=5, in_channels=2, image_size=16))
    x = torch.randn(2, 2, 16, 16)
    pruned = apply_keep_ratios(model, x[:1], 0.5)
    # The LayerNorm-coupled channels are pruned too (issue 13, item 3).
    assert pruned.norm.normalized_shape == (12,) and pruned.grouped[0].out_channels < 16
    rebuilt, _ = load_model(save_model(pruned, tmp_path / "m.pt"))
    assert rebuilt.norm.normalized_shape == pruned.norm.normalized_shape
    assert isinstance(rebuilt.norm.normalized_shape, tuple)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), pruned.eval()(x))
    for a, b in zip(rebuilt.modules(), pruned.modules(), strict=True):
        for attr in ("in_channels", "out_channels", "groups", "in_features", "out_features", "num_features"):
            assert getattr(a, attr, None) == getattr(b, attr, None)


class Tied(nn.Module):
    """Two linears sharing one weight, and a non-persistent buffer (not in the state dict)."""

    def __init__(self, num_classes, in_channels, image_size, width=1.0):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.b.weight = self.a.weight
        self.register_buffer("table", torch.arange(4.0), persistent=False)

    def forward(self, x):
        return self.b(self.a(x)) + self.table


register_model("byo-tied")(Tied)


def test_tied_and_non_persistent_tensors_survive(tmp_path):
    model = create_model("byo-tied", num_classes=4, in_channels=1, image_size=8)
    with torch.no_grad():  # a pruning-like in-place resize of the shared weight and the buffer
        model.a.weight = model.b.weight = nn.Parameter(torch.randn(3, 4)[:, :3].contiguous())
        model.a.in_features = model.a.out_features = 3
        model.a.bias = nn.Parameter(torch.randn(3))
        model.b.bias = nn.Parameter(torch.randn(3))
        model.table = torch.tensor([5.0, 6.0, 7.0])
    rebuilt, _ = load_model(save_model(model, tmp_path / "m.pt"))
    assert rebuilt.a.weight is rebuilt.b.weight
    x = torch.randn(2, 3)
    torch.testing.assert_close(rebuilt(x), model(x))


def test_plain_module_export_writes_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(AutostructError, match="register_model"):
        export(TinyViT(1, 3), out, torch.zeros(1, 1, 8, 8))
    assert not out.exists()


def test_failed_onnx_export_leaves_no_folder(tmp_path):
    model = create_model("byo-bnact", num_classes=3, in_channels=1, image_size=8)
    out = tmp_path / "out"
    with pytest.raises(Exception):  # noqa: B017  (wrong input channels: torch's own error)
        export(model, out, torch.zeros(1, 3, 8, 8))
    assert not out.exists()


def test_mismatch_names_module_and_both_shapes(tmp_path):
    model = create_model("byo-bnact", num_classes=3, in_channels=1, image_size=8)
    path = save_model(model, tmp_path / "m.pt")
    ckpt = torch.load(path, weights_only=True)
    ckpt["state_dict"]["features.1.0.weight"] = torch.zeros(5, 32, 3, 3)  # disagrees with the module record
    torch.save(ckpt, path)
    with pytest.raises(AutostructError, match=r"module 'features.1.0' 'weight': checkpoint shape \[5, 32, 3, 3\], "
                       r"rebuilt model shape \[64, 32, 3, 3\]"):
        load_model(path)


def test_changed_module_type_is_named(tmp_path):
    model = create_model("byo-bnact", num_classes=3, in_channels=1, image_size=8)
    path = save_model(model, tmp_path / "m.pt")
    ckpt = torch.load(path, weights_only=True)
    ckpt["modules"]["features.0.1"]["type"] = "GroupNorm"
    torch.save(ckpt, path)
    with pytest.raises(AutostructError, match="'features.0.1' was saved as a GroupNorm.*BatchNormAct2d"):
        load_model(path)
