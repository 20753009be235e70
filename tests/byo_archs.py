"""Architectures in the style of popular model libraries, written here for the bring-your-own-model tests.

Norm layers with a fused activation, ``Linear`` and ``LayerNorm`` subclasses, squeeze-excite, inverted
residuals, dense concatenation, grouped convolutions, Ghost modules, a hand-written attention block (ViT and
MobileViT style) and ``nn.MultiheadAttention``; each is registered with ``@register_model`` as ``byo-*``. Inputs
are 16x16 with 2 channels so every test over them runs in seconds. Not a test module: tests import it by name
(``tests/`` is on ``sys.path`` through its conftest).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch import nn

from autostruct.models import register_model

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
        self.features = nn.Sequential(conv_bn_act(in_channels, 16), conv_bn_act(16, 32, stride=2), conv_bn_act(32, 32))
        self.head = Head(32, num_classes)

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
        self.stem = conv_bn_act(in_channels, 32)
        self.conv = conv_bn_act(32, 32)
        self.se = SqueezeExcite(32, 8)
        self.head = Head(32, num_classes)

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


class GhostModule(nn.Module):
    """GhostNet: a primary 1x1 conv makes half the channels, a cheap depthwise conv the other half, then a slice."""

    def __init__(self, cin: int, cout: int, act: bool = True):
        super().__init__()
        self.cout = cout
        init = (cout + 1) // 2
        self.primary = conv_bn_act(cin, init, 1, act=act)
        self.cheap = conv_bn_act(init, init, 3, groups=init, act=act)

    def forward(self, x):
        y = self.primary(x)
        return torch.cat([y, self.cheap(y)], 1)[:, : self.cout]


class GhostBottleneck(nn.Module):
    """GhostNet's bottleneck: ghost expand, a strided depthwise conv, squeeze-excite, ghost project, and a
    depthwise + pointwise shortcut when the shape changes."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int = 1, se: bool = False):
        super().__init__()
        self.ghost1 = GhostModule(cin, mid)
        self.conv_dw = (nn.Sequential(nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid))
                        if stride > 1 else nn.Identity())
        self.se = SqueezeExcite(mid, max(4, mid // 4)) if se else nn.Identity()
        self.ghost2 = GhostModule(mid, cout, act=False)
        if cin == cout and stride == 1:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(conv_bn_act(cin, cin, 3, stride, groups=cin, act=False),
                                          conv_bn_act(cin, cout, 1, act=False))

    def forward(self, x):
        return self.shortcut(x) + self.ghost2(self.se(self.conv_dw(self.ghost1(x))))


class GhostNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.stem = conv_bn_act(in_channels, 16, stride=2)
        self.blocks = nn.Sequential(GhostBottleneck(16, 16, 16), GhostBottleneck(16, 48, 24, stride=2, se=True),
                                    GhostBottleneck(24, 72, 24, se=True))
        self.conv_head = conv_bn_act(24, 64, 1)
        self.head = Head(64, num_classes)

    def forward(self, x):
        return self.head(self.conv_head(self.blocks(self.stem(x))))


class MobileViTBlock(nn.Module):
    """MobileViT: local conv, 1x1 into the transformer width, unfold 2x2 patches into token sequences, a
    transformer block, fold back, 1x1 out, concat with the input and fuse with a 3x3 conv."""

    def __init__(self, channels: int, dim: int, patch: int = 2):
        super().__init__()
        self.patch = patch
        self.conv_kxk = conv_bn_act(channels, channels, 3)
        self.conv_1x1 = nn.Conv2d(channels, dim, 1, bias=False)
        self.transformer = TransformerBlock(dim, num_heads=2)
        self.norm = nn.LayerNorm(dim)
        self.conv_proj = conv_bn_act(dim, channels, 1)
        self.conv_fusion = conv_bn_act(2 * channels, channels, 3)

    def forward(self, x):
        shortcut = x
        y = self.conv_1x1(self.conv_kxk(x))
        b, d, h, w = y.shape
        p = self.patch
        # (B, D, H, W) -> (B * p * p, H/p * W/p, D): one sequence per position inside the patch.
        y = y.reshape(b, d, h // p, p, w // p, p).permute(0, 3, 5, 2, 4, 1).reshape(b * p * p, -1, d)
        y = self.norm(self.transformer(y))
        y = y.reshape(b, p, p, h // p, w // p, d).permute(0, 5, 3, 1, 4, 2).reshape(b, d, h, w)
        return self.conv_fusion(torch.cat([shortcut, self.conv_proj(y)], 1))


class MobileViTNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.stem = conv_bn_act(in_channels, 16, stride=2)
        self.mv2 = InvertedResidual(16, 16, 2)
        self.vit = MobileViTBlock(16, 24)
        self.head = Head(16, num_classes)

    def forward(self, x):
        return self.head(self.vit(self.mv2(self.stem(x))))


class SplitQKVAttention(nn.Module):
    """Attention with separate q/k/v ``Linear`` layers, heads split by ``reshape(b, n, heads, -1)``; scores by
    ``q @ k^T`` and ``attn @ v``, or by ``F.scaled_dot_product_attention`` (HF / torchvision style)."""

    def __init__(self, dim: int, num_heads: int, sdpa: bool = False):
        super().__init__()
        self.num_heads, self.sdpa = num_heads, sdpa
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = (f(x).reshape(b, n, self.num_heads, -1).transpose(1, 2) for f in (self.q, self.k, self.v))
        if self.sdpa:
            y = F.scaled_dot_product_attention(q, k, v)
        else:
            y = ((q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5).softmax(-1) @ v
        return self.out(y.transpose(1, 2).reshape(b, n, -1))


class SplitQKVViT(nn.Module):
    """Two pre-norm blocks on :class:`SplitQKVAttention` (matmul, then SDPA), each with an MLP."""

    def __init__(self, in_channels: int, num_classes: int, dim: int = 16):
        super().__init__()
        self.patch = nn.Conv2d(in_channels, dim, 4, 4)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(4))
        self.attn = nn.ModuleList([SplitQKVAttention(dim, 2), SplitQKVAttention(dim, 2, sdpa=True)])
        self.mlp = nn.ModuleList(nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
                                 for _ in range(2))
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        for i in range(2):
            x = x + self.attn[i](self.norms[2 * i](x))
            x = x + self.mlp[i](self.norms[2 * i + 1](x))
        return self.fc(x.mean(1))


class MHABlock(nn.Module):
    """A pre-norm transformer block on ``nn.MultiheadAttention`` (torchvision's ViT style)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.self_attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        h = self.ln_1(x)
        x = x + self.self_attention(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class MHAViT(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, dim: int = 16):
        super().__init__()
        self.conv_proj = nn.Conv2d(in_channels, dim, 4, 4)
        self.encoder = nn.Sequential(MHABlock(dim, 2), MHABlock(dim, 2))
        self.ln = nn.LayerNorm(dim)
        self.heads = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        return self.heads(self.ln(self.encoder(x))[:, 0])


ARCHS = {
    "byo-bnact": BnActNet,
    "byo-linear-subclass": LinearSubclassNet,
    "byo-se": SENet,
    "byo-inverted-residual": InvertedResidualNet,
    "byo-dense": DenseNet,
    "byo-grouped-layernorm2d": GroupedNet,
    "byo-vit": TinyViT,
}
#: The pruning matrix (issue 13): the export architectures plus Ghost modules, a MobileViT block, a ViT on
#: ``nn.MultiheadAttention`` and one on q/k/v linears with matmul and SDPA attention.
MATRIX = {**ARCHS, "byo-ghost": GhostNet, "byo-mobilevit": MobileViTNet, "byo-mha-vit": MHAViT,
          "byo-split-qkv-vit": SplitQKVViT}


def _register(name: str, cls: type[nn.Module]) -> None:
    def build(num_classes, in_channels, image_size, width=1.0):
        return cls(in_channels, num_classes)

    register_model(name)(build)


for _name, _cls in MATRIX.items():
    _register(_name, _cls)


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
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


def onnx_out(path, x: torch.Tensor) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


