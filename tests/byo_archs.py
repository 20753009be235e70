"""Architectures in the style of popular model libraries, written here for the bring-your-own-model tests.

Norm layers with a fused activation, ``Linear`` and ``LayerNorm`` subclasses, squeeze-excite, inverted
residuals, dense concatenation, grouped convolutions, Ghost modules, hand-written attention blocks (ViT and
MobileViT style), ``nn.MultiheadAttention``, and tiny copies of zoo layouts (timm's ViT with class token,
position embedding, fused-qkv attention and layer scale; timm's MobileViT; MobileNetV3-small; EfficientNet-B0;
RepVGG; ConvNeXt; a ResNet-50-style bottleneck net); each is registered with ``@register_model`` as ``byo-*``.
Inputs are 16x16 with 2 channels so every test over them runs in seconds, and widths are large enough (32-384
channels) that a model pruned to half its FLOPs runs measurably faster in onnxruntime. Not a test module: tests
import it by name (``tests/`` is on ``sys.path`` through its conftest).
"""

from __future__ import annotations

import inspect

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


# -------------------------------------------------------- zoo-faithful blocks (timm / torchvision layouts, tiny)


class FusedAttention(nn.Module):
    """timm's ``Attention``: one ``qkv`` linear, heads split by reshape, SDPA (or ``q @ k^T`` when not fused), and
    the heads joined back with ``reshape(B, N, C)``, ``C`` the *input* width."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, fused_attn: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.fused_attn = fused_attn
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.q_norm, self.k_norm = nn.Identity(), nn.Identity()
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(0.0)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            x = self.attn_drop(attn) @ v
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


class LayerScale(nn.Module):
    """A learnt per-channel ``gamma`` (an ``nn.Parameter`` of no prunable layer)."""

    def __init__(self, dim: int, init_values: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.drop1 = nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0)
        self.norm, self.fc2, self.drop2 = nn.Identity(), nn.Linear(hidden, dim), nn.Dropout(0.0)

    def forward(self, x):
        return self.drop2(self.fc2(self.norm(self.drop1(self.act(self.fc1(x))))))


class VitBlock(nn.Module):
    """timm's ``Block``: pre-norm attention and MLP, each with an optional layer scale."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, init_values: float | None = None,
                 fused_attn: bool = True):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = FusedAttention(dim, num_heads, fused_attn=fused_attn)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class SEModule(nn.Module):
    """timm's efficientnet ``SqueezeExcite``: reduce, act, expand, gate (hard sigmoid for MobileNetV3)."""

    def __init__(self, channels: int, rd: int, act: type[nn.Module] = nn.ReLU, gate: type[nn.Module] = nn.Sigmoid):
        super().__init__()
        self.conv_reduce = nn.Conv2d(channels, rd, 1)
        self.act1 = act()
        self.conv_expand = nn.Conv2d(rd, channels, 1)
        self.gate = gate()

    def forward(self, x):
        s = self.conv_expand(self.act1(self.conv_reduce(x.mean((2, 3), keepdim=True))))
        return x * self.gate(s)


class ConvBnAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1,
                 act: type[nn.Module] | None = nn.ReLU):
        super().__init__(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                         act() if act is not None else nn.Identity())


class MBConv(nn.Module):
    """MobileNetV3 / EfficientNet inverted residual: 1x1 expand (skipped at ratio 1), kxk depthwise, SE, 1x1
    project, residual when the shape allows."""

    def __init__(self, cin: int, mid: int, cout: int, k: int = 3, stride: int = 1, se_rd: int = 0,
                 act: type[nn.Module] = nn.ReLU, gate: type[nn.Module] = nn.Sigmoid):
        super().__init__()
        self.conv_pw = ConvBnAct(cin, mid, 1, act=act) if mid != cin else nn.Identity()
        self.conv_dw = ConvBnAct(mid, mid, k, stride, groups=mid, act=act)
        self.se = SEModule(mid, se_rd, act, gate) if se_rd else nn.Identity()
        self.conv_pwl = ConvBnAct(mid, cout, 1, act=None)
        self.has_skip = stride == 1 and cin == cout

    def forward(self, x):
        y = self.conv_pwl(self.se(self.conv_dw(self.conv_pw(x))))
        return x + y if self.has_skip else y


class RepVGGBlock(nn.Module):
    """RepVGG's training-time block: 3x3 conv-BN + 1x1 conv-BN + identity BN, summed, then ReLU.
    :meth:`reparameterize` fuses the three branches into one 3x3 conv (the deploy form)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.rbr_dense = ConvBnAct(cin, cout, 3, stride, act=None)
        self.rbr_1x1 = ConvBnAct(cin, cout, 1, stride, act=None)
        self.rbr_identity = nn.BatchNorm2d(cin) if cin == cout and stride == 1 else None
        self.act = nn.ReLU()
        self.reparam: nn.Conv2d | None = None

    def forward(self, x):
        if self.reparam is not None:
            return self.act(self.reparam(x))
        y = self.rbr_dense(x) + self.rbr_1x1(x)
        return self.act(y + self.rbr_identity(x) if self.rbr_identity is not None else y)

    @staticmethod
    def _fuse(weight: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
        std = (bn.running_var + bn.eps).sqrt()
        return weight * (bn.weight / std).reshape(-1, 1, 1, 1), bn.bias - bn.running_mean * bn.weight / std

    @torch.no_grad()
    def reparameterize(self) -> None:
        conv3, conv1 = self.rbr_dense[0], self.rbr_1x1[0]
        w, b = self._fuse(conv3.weight, self.rbr_dense[1])
        w1, b1 = self._fuse(F.pad(conv1.weight, [1, 1, 1, 1]), self.rbr_1x1[1])
        w, b = w + w1, b + b1
        if self.rbr_identity is not None:
            eye = torch.zeros_like(conv3.weight)
            eye[torch.arange(conv3.in_channels), torch.arange(conv3.in_channels), 1, 1] = 1.0
            wi, bi = self._fuse(eye, self.rbr_identity)
            w, b = w + wi, b + bi
        self.reparam = nn.Conv2d(conv3.in_channels, conv3.out_channels, 3, conv3.stride, 1)
        self.reparam.weight.copy_(w)
        self.reparam.bias.copy_(b)
        del self.rbr_dense, self.rbr_1x1, self.rbr_identity
        self.rbr_identity = None


class ConvNeXtBlock(nn.Module):
    """timm's ConvNeXt block: 7x7 depthwise, LayerNorm and MLP channels-last, ``gamma`` layer scale, residual."""

    def __init__(self, dim: int, mlp_ratio: int = 4):
        super().__init__()
        self.conv_dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp_ratio * dim)
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x):
        shortcut = x
        x = self.conv_dw(x).permute(0, 2, 3, 1)
        x = self.mlp(self.norm(x)).permute(0, 3, 1, 2)
        return x.mul(self.gamma.reshape(1, -1, 1, 1)) + shortcut


class Bottleneck(nn.Module):
    """torchvision's ResNet bottleneck: 1x1, 3x3 (stride), 1x1 expand x4, a 1x1 downsample when shapes change."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        cout = planes * self.expansion
        self.conv1, self.bn1 = nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = nn.Conv2d(planes, cout, 1, bias=False), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


# ------------------------------------------------------------------------------------------------- architectures


class BnActNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(conv_bn_act(in_channels, 32), conv_bn_act(32, 64, stride=2), conv_bn_act(64, 64))
        self.head = Head(64, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


class LinearSubclassNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.stem = conv_bn_act(in_channels, 32, stride=2)
        self.fc1 = ScaledLinear(32 * 4 * 4, 512)
        self.fc2 = ScaledLinear(512, 256)
        self.out = nn.Linear(256, num_classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.stem(x), 4).flatten(1)
        return self.out(F.relu(self.fc2(F.relu(self.fc1(x)))))


class SEBasicBlock(nn.Module):
    """SE-ResNet's basic block: two 3x3 convs, squeeze-excite on the second, residual add (a strided 1x1
    shortcut when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv_bn_act(cin, cout, stride=stride)
        self.conv2 = conv_bn_act(cout, cout, act=False)
        self.se = SqueezeExcite(cout, cout // 4)
        self.shortcut = conv_bn_act(cin, cout, 1, stride, act=False) if stride > 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return F.relu(self.shortcut(x) + self.se(self.conv2(self.conv1(x))))


class SENet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.stem = conv_bn_act(in_channels, 32)
        self.blocks = nn.Sequential(SEBasicBlock(32, 32), SEBasicBlock(32, 64, 2), SEBasicBlock(64, 64))
        self.head = Head(64, num_classes)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


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
    def __init__(self, in_channels: int, num_classes: int, dim: int = 64):
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
        self.stem = conv_bn_act(in_channels, 32, stride=2)
        self.mv2 = nn.Sequential(InvertedResidual(32, 48, 4), InvertedResidual(48, 48, 2))
        self.vit = MobileViTBlock(48, 64)
        self.final_conv = conv_bn_act(48, 128, 1)
        self.head = Head(128, num_classes)

    def forward(self, x):
        return self.head(self.final_conv(self.vit(self.mv2(self.stem(x)))))


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

    def __init__(self, in_channels: int, num_classes: int, dim: int = 64):
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
    def __init__(self, in_channels: int, num_classes: int, dim: int = 64):
        super().__init__()
        self.conv_proj = nn.Conv2d(in_channels, dim, 4, 4)
        self.encoder = nn.Sequential(MHABlock(dim, 2), MHABlock(dim, 2))
        self.ln = nn.LayerNorm(dim)
        self.heads = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        return self.heads(self.ln(self.encoder(x))[:, 0])


class VisionTransformer(nn.Module):
    """timm's ``VisionTransformer`` (DeiT-III layout): conv patch embedding, class token, learnt position
    embedding, pre-norm blocks with fused-qkv attention and layer scale, the class token into the head."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int = 16, patch: int = 4, dim: int = 96,
                 depth: int = 2, num_heads: int = 3):
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_channels, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, (image_size // patch) ** 2 + 1, dim) * 0.02)
        self.pos_drop = nn.Dropout(0.0)
        self.blocks = nn.Sequential(*(VitBlock(dim, num_heads, init_values=1e-5, fused_attn=i % 2 == 0)
                                      for i in range(depth)))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = self.pos_drop(x + self.pos_embed)
        return self.head(self.norm(self.blocks(x))[:, 0])


class MobileVitV1Block(nn.Module):
    """timm's ``MobileVitBlock``: local kxk conv, 1x1 into the transformer width, unfold into patches (channels
    reshaped into the batch), timm transformer blocks, fold, 1x1 out, concat with the input, kxk fusion."""

    def __init__(self, channels: int, dim: int, depth: int = 2, num_heads: int = 4, patch: int = 2):
        super().__init__()
        self.patch_size, self.patch_area = (patch, patch), patch * patch
        self.conv_kxk = ConvBnAct(channels, channels, 3, act=nn.SiLU)
        self.conv_1x1 = nn.Conv2d(channels, dim, 1, bias=False)
        self.transformer = nn.Sequential(*(VitBlock(dim, num_heads, mlp_ratio=2.0) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.conv_proj = ConvBnAct(dim, channels, 1, act=nn.SiLU)
        self.conv_fusion = ConvBnAct(2 * channels, channels, 3, act=nn.SiLU)

    def forward(self, x):
        shortcut = x
        x = self.conv_1x1(self.conv_kxk(x))
        patch_h, patch_w = self.patch_size
        B, C, H, W = x.shape
        num_patch_h, num_patch_w = H // patch_h, W // patch_w
        num_patches = num_patch_h * num_patch_w
        # [B, C, H, W] -> [B * C * n_h, n_w, p_h, p_w] -> [B * P, N, C]
        x = x.reshape(B * C * num_patch_h, patch_h, num_patch_w, patch_w).transpose(1, 2)
        x = x.reshape(B, C, num_patches, self.patch_area).transpose(1, 3).reshape(B * self.patch_area, num_patches, -1)
        x = self.norm(self.transformer(x))
        # [B * P, N, C] -> [B, C, H, W]
        x = x.contiguous().view(B, self.patch_area, num_patches, -1)
        x = x.transpose(1, 3).reshape(B * C * num_patch_h, num_patch_w, patch_h, patch_w)
        x = x.transpose(1, 2).reshape(B, C, num_patch_h * patch_h, num_patch_w * patch_w)
        return self.conv_fusion(torch.cat((shortcut, self.conv_proj(x)), dim=1))


class MobileViTV1(nn.Module):
    """MobileViT (v1, timm layout): stem, MobileNetV2 blocks, a MobileViT block, 1x1 head conv, classifier."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.stem = ConvBnAct(in_channels, 16, 3, 2, act=nn.SiLU)
        self.stages = nn.Sequential(MBConv(16, 64, 24, act=nn.SiLU), MBConv(24, 96, 24, act=nn.SiLU),
                                    MobileVitV1Block(24, 64))
        self.final_conv = ConvBnAct(24, 96, 1, act=nn.SiLU)
        self.head = Head(96, num_classes)

    def forward(self, x):
        return self.head(self.final_conv(self.stages(self.stem(x))))


class MobileNetV3Small(nn.Module):
    """MobileNetV3-small's layout: hard-swish stem, depthwise-separable SE block, inverted residuals (ReLU, then
    hard-swish with SE and hard-sigmoid gates), 1x1 head conv, pooled ``conv_head`` 1x1 without norm, classifier."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        hs, hsig = nn.Hardswish, nn.Hardsigmoid
        self.conv_stem = ConvBnAct(in_channels, 16, 3, 2, act=hs)
        self.blocks = nn.Sequential(
            MBConv(16, 16, 16, 3, 1, se_rd=8, gate=hsig),
            MBConv(16, 72, 24, 3, 2),
            MBConv(24, 88, 24, 3, 1),
            MBConv(24, 96, 40, 5, 1, se_rd=24, act=hs, gate=hsig),
            MBConv(40, 240, 40, 5, 1, se_rd=64, act=hs, gate=hsig),
            ConvBnAct(40, 240, 1, act=hs),
        )
        self.conv_head = nn.Conv2d(240, 256, 1)
        self.act2 = nn.Hardswish()
        self.classifier = nn.Linear(256, num_classes)

    def forward(self, x):
        x = self.blocks(self.conv_stem(x)).mean((2, 3), keepdim=True)
        return self.classifier(self.act2(self.conv_head(x)).flatten(1))


class EfficientNetB0(nn.Module):
    """EfficientNet-B0's layout (SiLU, SE on every block, reduction from the block input), two stages, head."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.conv_stem = ConvBnAct(in_channels, 32, 3, 2, act=nn.SiLU)
        self.blocks = nn.Sequential(
            MBConv(32, 32, 16, 3, 1, se_rd=8, act=nn.SiLU),
            MBConv(16, 96, 24, 3, 2, se_rd=4, act=nn.SiLU),
            MBConv(24, 144, 24, 3, 1, se_rd=6, act=nn.SiLU),
            MBConv(24, 144, 40, 5, 1, se_rd=6, act=nn.SiLU),
            MBConv(40, 240, 40, 5, 1, se_rd=10, act=nn.SiLU),
        )
        self.conv_head = ConvBnAct(40, 320, 1, act=nn.SiLU)
        self.classifier = nn.Linear(320, num_classes)

    def forward(self, x):
        return self.classifier(self.conv_head(self.blocks(self.conv_stem(x))).mean((2, 3)))


class RepVGG(nn.Module):
    """RepVGG (training-time branches; :meth:`reparameterize` fuses every block into a plain conv net)."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.stage0 = RepVGGBlock(in_channels, 32, 2)
        self.stage1 = nn.Sequential(RepVGGBlock(32, 48, 1), RepVGGBlock(48, 48))
        self.stage2 = nn.Sequential(RepVGGBlock(48, 96, 2), RepVGGBlock(96, 96))
        self.linear = nn.Linear(96, num_classes)

    def forward(self, x):
        return self.linear(self.stage2(self.stage1(self.stage0(x))).mean((2, 3)))

    def reparameterize(self) -> RepVGG:
        for m in self.modules():
            if isinstance(m, RepVGGBlock):
                m.reparameterize()
        return self


class ConvNeXt(nn.Module):
    """ConvNeXt's layout: patchify stem + LayerNorm2d, blocks, LayerNorm2d + 2x2 strided conv downsampling,
    pooled LayerNorm head."""

    def __init__(self, in_channels: int, num_classes: int, dims: tuple[int, int] = (32, 64)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, dims[0], 2, 2), LayerNorm2d(dims[0]))
        self.stage0 = ConvNeXtBlock(dims[0])
        self.downsample = nn.Sequential(LayerNorm2d(dims[0]), nn.Conv2d(dims[0], dims[1], 2, 2))
        self.stage1 = nn.Sequential(ConvNeXtBlock(dims[1]), ConvNeXtBlock(dims[1]))
        self.norm_pre = nn.LayerNorm(dims[1])
        self.fc = nn.Linear(dims[1], num_classes)

    def forward(self, x):
        x = self.stage1(self.downsample(self.stage0(self.stem(x))))
        return self.fc(self.norm_pre(x.mean((2, 3))))


class ResNetBottleneck(nn.Module):
    """ResNet-50's layout, two stages of bottlenecks (3x3 stem for small inputs)."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(in_channels, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(Bottleneck(32, 16), Bottleneck(64, 16))
        self.layer2 = nn.Sequential(Bottleneck(64, 32, 2), Bottleneck(128, 32))
        self.fc = nn.Linear(128, num_classes)

    def forward(self, x):
        x = self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class DepthwiseSE(nn.Module):
    """A residual depthwise block with squeeze-excite on a fixed-width trunk (MobileNet-like, no expansion)."""

    def __init__(self, channels: int):
        super().__init__()
        self.dw = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
                                nn.BatchNorm2d(channels), nn.ReLU())
        self.se_reduce, self.se_expand = nn.Conv2d(channels, channels // 4, 1), nn.Conv2d(channels // 4, channels, 1)
        self.pw = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x):
        y = self.dw(x)
        y = y * torch.sigmoid(self.se_expand(torch.relu(self.se_reduce(y.mean((2, 3), keepdim=True)))))
        return torch.relu(x + self.pw(y))


def se_trunk(num_classes: int, in_channels: int, trunk: int = 48, blocks: int = 3) -> nn.Module:
    """A user's own net (a factory, not in the matrix): one 48-channel trunk tied by every residual; with
    channels in multiples of 16 it keeps 16, 32 or 48 of them, too coarse to land near half the FLOPs."""
    return nn.Sequential(nn.Conv2d(in_channels, trunk, 3, padding=1, bias=False), nn.BatchNorm2d(trunk), nn.ReLU(),
                         *(DepthwiseSE(trunk) for _ in range(blocks)), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(trunk, num_classes))

ARCHS = {
    "byo-bnact": BnActNet,
    "byo-linear-subclass": LinearSubclassNet,
    "byo-se": SENet,
    "byo-inverted-residual": InvertedResidualNet,
    "byo-dense": DenseNet,
    "byo-grouped-layernorm2d": GroupedNet,
    "byo-vit": TinyViT,
}
#: The pruning matrix: the export architectures plus Ghost modules, a MobileViT block, a ViT on
#: ``nn.MultiheadAttention``, one on q/k/v linears with matmul and SDPA attention, and the zoo layouts.
MATRIX = {**ARCHS, "byo-ghost": GhostNet, "byo-mobilevit": MobileViTNet, "byo-mha-vit": MHAViT,
          "byo-split-qkv-vit": SplitQKVViT, "byo-vit-fused-qkv": VisionTransformer,
          "byo-mobilevit-v1": MobileViTV1, "byo-mobilenetv3-small": MobileNetV3Small,
          "byo-efficientnet-b0": EfficientNetB0, "byo-repvgg": RepVGG, "byo-convnext": ConvNeXt,
          "byo-resnet-bottleneck": ResNetBottleneck}


def _register(name: str, cls: type[nn.Module]) -> None:
    takes_size = "image_size" in inspect.signature(cls).parameters

    def build(num_classes, in_channels, image_size, width=1.0):
        return cls(in_channels, num_classes, image_size=image_size) if takes_size else cls(in_channels, num_classes)

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


