"""count_flops against hand-counted multiply-accumulates (the convention is in autostruct.measure.flops)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autostruct.errors import AutostructError
from autostruct.measure import Cost, count_flops


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_conv_bn_relu_pool_linear_by_hand():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),  # 3x10x10 -> 8x10x10
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )
    conv = 3 * 3 * 3 * 8 * 10 * 10  # k*k*c_in*c_out*h_out*w_out
    bn = 2 * 8 * 10 * 10  # affine: 2 per element
    relu = 8 * 10 * 10  # 1 per output element
    pool = 8 * 10 * 10  # 1 per input element
    linear = 8 * 5 + 5  # in*out + bias
    cost = count_flops(net, torch.randn(1, 3, 10, 10))
    assert cost == Cost(flops=conv + bn + relu + pool + linear, params=n_params(net))
    assert cost.as_dict() == {"flops": cost.flops, "params": cost.params}


def test_odd_channels_stride_and_bias():
    net = nn.Sequential(nn.Conv2d(3, 7, 3, stride=2, padding=1, bias=True))  # 9x9 -> 5x5
    cost = count_flops(net, torch.zeros(1, 3, 9, 9))
    assert cost.flops == 3 * 3 * 3 * 7 * 5 * 5 + 7 * 5 * 5
    assert cost.params == 3 * 3 * 3 * 7 + 7 == n_params(net)


def test_depthwise_separable_and_grouped_conv():
    depthwise = nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False)  # 6x8x8 -> 6x8x8
    pointwise = nn.Conv2d(6, 5, 1, bias=False)
    assert count_flops(nn.Sequential(depthwise, pointwise), torch.zeros(1, 6, 8, 8)).flops == (
        3 * 3 * 6 * 8 * 8 + 6 * 5 * 8 * 8
    )
    grouped = nn.Conv2d(6, 9, 3, groups=3, bias=False)  # 6x7x7 -> 9x5x5, k*k*c_in/groups*c_out*h*w
    cost = count_flops(grouped, torch.zeros(1, 6, 7, 7))
    assert cost.flops == 3 * 3 * (6 // 3) * 9 * 5 * 5
    assert cost.params == n_params(grouped)


def test_functional_ops_are_free_and_results_per_example():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 1, bias=False)

        def forward(self, x):
            return torch.relu(self.conv(x)) + x  # functional relu and the add count zero

    net = Residual()
    one = count_flops(net, torch.zeros(1, 4, 6, 6))
    assert one.flops == 4 * 4 * 6 * 6
    assert count_flops(net, torch.zeros(8, 4, 6, 6)) == one  # batch does not change the per-example count


def test_model_left_untouched():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    count_flops(net, torch.randn(2, 1, 5, 5))
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not any(m._forward_hooks for m in net.modules())


def test_wrong_input_shape_is_a_user_error():
    with pytest.raises(AutostructError, match="example inputs of shape"):
        count_flops(nn.Conv2d(3, 4, 3), torch.zeros(1, 1, 8, 8))


def test_subclasses_count_as_their_base_class():
    class BNAct(nn.BatchNorm2d):  # a fused activation: the BN and its ReLU both count
        def __init__(self, c):
            super().__init__(c)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(super().forward(x))

    class Scaled(nn.Linear):
        pass

    net = nn.Sequential(BNAct(3), nn.Flatten(), Scaled(3 * 4 * 4, 5))
    assert count_flops(net, torch.zeros(1, 3, 4, 4)).flops == 2 * 48 + 48 + 48 * 5 + 5


def test_hand_written_attention_counts_its_matrix_products():
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(8, 24, bias=False)

        def forward(self, x):  # x: (B, N, 8)
            q, k, v = self.qkv(x).chunk(3, -1)
            return (q @ k.transpose(-2, -1)).softmax(-1) @ v

    n = 5
    qkv, scores, mix = n * 8 * 24, n * n * 8, n * n * 8
    assert count_flops(Attn(), torch.zeros(2, n, 8)).flops == qkv + scores + mix


def test_multihead_attention_by_hand():
    e, n = 8, 6
    mha = nn.MultiheadAttention(e, 2, batch_first=True)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x, need_weights=False)[0]

    projections = 3 * n * e * e + 3 * n * e  # q, k, v with bias
    attention = 2 * n * n * e
    out = n * e * e + n * e
    assert count_flops(Net(), torch.zeros(1, n, e)).flops == projections + attention + out


@pytest.mark.parametrize("name", ["resnet20", "mobilenetv2", "vgg11"])
def test_zoo_models_count_as_torch_pruning_does(name):
    import torch_pruning as tp

    from autostruct.models import create_model

    model = create_model(name, num_classes=10, in_channels=3, image_size=16, width=0.25)
    x = torch.zeros(1, 3, 16, 16)
    assert count_flops(model, x).flops == int(tp.utils.count_ops_and_params(model, x)[0])
