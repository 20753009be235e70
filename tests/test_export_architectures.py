"""Bring your own model: third-party-style architectures prune, save, reload with identical outputs, and run in
onnxruntime.

The blocks are written here in the style of popular model libraries (norm layers with a fused activation,
``Linear`` and ``LayerNorm`` subclasses, squeeze-excite, inverted residuals, dense concatenation, grouped
convolutions, a small attention block), registered with ``@register_model`` and pruned with
:func:`autostruct.prune.apply_keep_ratios`. Inputs are 8x8 to 16x16 with a few channels so the matrix runs in
seconds.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autostruct.errors import AutostructError
from autostruct.export import export, load_model, save_model
from autostruct.models import create_model, register_model
from autostruct.prune import apply_keep_ratios

# ---------------------------------------------------------------------------------------------- building blocks


class BatchNormAct2d(nn.BatchNorm2d):
    """Batch norm with the activation fused into the module (a subclass: its type is not ``BatchNorm2d``)."""

    def __init__(self, num_features: int, act: bool = True):
        super().__init__(num_features)
        self.act = nn.ReLU() if act else nn.Identity()

    def forward(self, x):
        return self.act(super().forward(x))


class ScaledLinear(nn.Linear):
    """A ``Linear`` subclass with an extra learnt output scale that pruning must resize too."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features)
        self.scale = nn.Parameter(torch.ones(out_features))

    def forward(self, x):
        return super().forward(x) * self.scale


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor; reads ``normalized_shape`` in forward."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def conv_bn_act(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), BatchNormAct2d(cout, act))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, rd: int):
        super().__init__()
        self.conv_reduce = nn.Conv2d(channels, rd, 1)
        self.conv_expand = nn.Conv2d(rd, channels, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.conv_expand(F.relu(self.conv_reduce(s))))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, stride: int = 1, se: bool = False):
        super().__init__()
        mid = cin * expand
        self.conv_pw = conv_bn_act(cin, mid, 1)
        self.conv_dw = conv_bn_act(mid, mid, 3, stride, groups=mid)
        self.se = SqueezeExcite(mid, max(2, mid // 4)) if se else nn.Identity()
        self.conv_pwl = conv_bn_act(mid, cout, 1, act=False)
        self.has_skip = stride == 1 and cin == cout

    def forward(self, x):
        y = self.conv_pwl(self.se(self.conv_dw(self.conv_pw(x))))
        return x + y if self.has_skip else y


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.norm = BatchNormAct2d(cin)
        self.conv = nn.Conv2d(cin, growth, 3, 1, 1, bias=False)

    def forward(self, x):
        return torch.cat([x, self.conv(self.norm(x))], 1)


class Attention(nn.Module):
    """Multi-head self-attention over tokens; head count and width come from the module's attributes."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.head_dim**-0.5
        x = (attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, self.num_heads * self.head_dim)
        return self.proj(x)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: int = 2):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim * mlp_ratio)
        self.fc2 = nn.Linear(dim * mlp_ratio, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Head(nn.Module):
    def __init__(self, cin: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ------------------------------------------------------------------------------------------------- architectures


class BnActNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(conv_bn_act(in_channels, 8), conv_bn_act(8, 16, stride=2), conv_bn_act(16, 16))
        self.head = Head(16, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


class LinearSubclassNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.stem = conv_bn_act(in_channels, 8, stride=2)
        self.fc1 = ScaledLinear(8 * 4 * 4, 24)
        self.fc2 = ScaledLinear(24, 16)
        self.out = nn.Linear(16, num_classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.stem(x), 4).flatten(1)
        return self.out(F.relu(self.fc2(F.relu(self.fc1(x)))))


class SENet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.stem = conv_bn_act(in_channels, 16)
        self.conv = conv_bn_act(16, 16)
        self.se = SqueezeExcite(16, 4)
        self.head = Head(16, num_classes)

    def forward(self, x):
        x = self.stem(x)
        return self.head(x + self.se(self.conv(x)))


class InvertedResidualNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.stem = conv_bn_act(in_channels, 8)
        self.blocks = nn.Sequential(
            InvertedResidual(8, 8, 3, se=True), InvertedResidual(8, 16, 3, stride=2), InvertedResidual(16, 16, 2)
        )
        self.head = Head(16, num_classes)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


class DenseNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 8, 3, 1, 1, bias=False)
        self.block = nn.Sequential(DenseLayer(8, 6), DenseLayer(14, 6), DenseLayer(20, 6))
        self.transition = nn.Sequential(BatchNormAct2d(26), nn.Conv2d(26, 12, 1, bias=False), nn.AvgPool2d(2))
        self.norm = BatchNormAct2d(12)
        self.head = Head(12, num_classes)

    def forward(self, x):
        return self.head(self.norm(self.transition(self.block(self.stem(x)))))


class GroupedNet(nn.Module):
    """ResNeXt-style: 1x1 reduce, grouped 3x3 (4 groups), 1x1 expand, residual add; then ConvNeXt-style norm."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.stem = conv_bn_act(in_channels, 16)
        self.reduce = conv_bn_act(16, 16, 1)
        self.grouped = conv_bn_act(16, 16, 3, groups=4)
        self.expand = conv_bn_act(16, 16, 1, act=False)
        self.down = nn.Conv2d(16, 24, 2, 2)
        self.norm = LayerNorm2d(24)
        self.head = Head(24, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = F.relu(x + self.expand(self.grouped(self.reduce(x))))
        return self.head(self.norm(self.down(x)))


class TinyViT(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, dim: int = 16):
        super().__init__()
        self.patch = nn.Conv2d(in_channels, dim, 4, 4)
        self.block = TransformerBlock(dim, num_heads=2)
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        return self.fc(self.norm(self.block(x)).mean(1))


ARCHS = {
    "byo-bnact": BnActNet,
    "byo-linear-subclass": LinearSubclassNet,
    "byo-se": SENet,
    "byo-inverted-residual": InvertedResidualNet,
    "byo-dense": DenseNet,
    "byo-grouped-layernorm2d": GroupedNet,
    "byo-vit": TinyViT,
}


def _register(name: str, cls: type[nn.Module]) -> None:
    def build(num_classes, in_channels, image_size, width=1.0):
        return cls(in_channels, num_classes)

    register_model(name)(build)


for _name, _cls in ARCHS.items():
    _register(_name, _cls)


def _randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial weights and norm statistics so that a wrong channel or buffer shows in the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            for p in m.parameters(recurse=False):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model.eval()


def _onnx_out(path, x: torch.Tensor) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list(ARCHS))
def test_pruned_architecture_round_trips(tmp_path, name):
    model = _randomize(create_model(name, num_classes=5, in_channels=2, image_size=16))
    x = torch.randn(3, 2, 16, 16, generator=torch.Generator().manual_seed(1))
    pruned = apply_keep_ratios(model, x[:1], 0.5).eval()
    assert _params(pruned) < _params(model), "expected pruning to remove channels"
    with torch.no_grad():
        expected = pruned(x)
    paths = export(pruned, tmp_path / "out", x[:1], metadata={"arch": name})

    rebuilt, metadata = load_model(paths.model_pt)
    assert metadata == {"arch": name}
    # The rebuilt modules keep their own classes (no subclass is swapped for its torch base class).
    assert [type(m) for m in rebuilt.modules()] == [type(m) for m in pruned.modules()]
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(_onnx_out(paths.onnx, x), expected.numpy(), atol=1e-4, rtol=1e-4)


def test_pruned_subclass_attributes_are_restored(tmp_path):
    model = _randomize(create_model("byo-grouped-layernorm2d", num_classes=5, in_channels=2, image_size=16))
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
    ckpt["state_dict"]["features.1.0.weight"] = torch.zeros(5, 8, 3, 3)  # disagrees with the module record
    torch.save(ckpt, path)
    with pytest.raises(AutostructError, match=r"module 'features.1.0' 'weight': checkpoint shape \[5, 8, 3, 3\], "
                       r"rebuilt model shape \[16, 8, 3, 3\]"):
        load_model(path)


def test_changed_module_type_is_named(tmp_path):
    model = create_model("byo-bnact", num_classes=3, in_channels=1, image_size=8)
    path = save_model(model, tmp_path / "m.pt")
    ckpt = torch.load(path, weights_only=True)
    ckpt["modules"]["features.0.1"]["type"] = "GroupNorm"
    torch.save(ckpt, path)
    with pytest.raises(AutostructError, match="'features.0.1' was saved as a GroupNorm.*BatchNormAct2d"):
        load_model(path)
