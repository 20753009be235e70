from __future__ import annotations

import numpy as np
import pytest
import torch

from autostruct.export import export, load_model
from autostruct.measure import count_flops
from autostruct.models.registry import create_model
from autostruct.nas.costs import all_block_shapes, arch_cost, block_costs
from autostruct.nas.space import get_space, mobilenetv2_space
from autostruct.nas.supernet import MODEL_NAME, Supernet, extract


def _randomize_bn(net: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.weight.shape, generator=g))


@pytest.mark.parametrize("image_size, in_channels", [(28, 1), (8, 1), (32, 3)])
def test_extract_equals_supernet_forward(image_size, in_channels):
    torch.manual_seed(0)
    space = mobilenetv2_space(image_size)
    net = Supernet(space, num_classes=10, in_channels=in_channels)
    _randomize_bn(net)
    net.eval()
    rng = np.random.default_rng(image_size)
    x = torch.randn(3, in_channels, image_size, image_size)
    for arch in [space.smallest(), space.largest(), *(space.sample(rng) for _ in range(3))]:
        child = extract(net, arch, image_size=image_size).eval()
        with torch.no_grad():
            assert torch.allclose(net(x, arch), child(x), atol=1e-5)


def test_extracted_model_rebuilds_from_its_spec():
    space = mobilenetv2_space(28)
    net = Supernet(space, 10, 1).eval()
    arch = space.sample(np.random.default_rng(1))
    child = extract(net, arch, image_size=28).eval()
    spec = child.autostruct_spec
    assert spec["name"] == MODEL_NAME
    rebuilt = create_model(spec["name"], **spec["kwargs"])
    rebuilt.load_state_dict(child.state_dict())
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), child(x))


@pytest.mark.parametrize("image_size, in_channels, classes", [(28, 1, 10), (8, 1, 3), (32, 3, 100)])
def test_flops_formula_equals_count_flops(image_size, in_channels, classes):
    space = mobilenetv2_space(image_size)
    net = Supernet(space, classes, in_channels)
    x = torch.zeros(1, in_channels, image_size, image_size)
    for arch in [space.smallest(), space.largest(), space.sample(np.random.default_rng(2))]:
        got = count_flops(extract(net, arch, image_size=image_size), x)
        cost = arch_cost(arch, in_channels, image_size, classes)
        assert (got.flops, got.params) == (cost.flops, cost.params)


def test_export_roundtrip_and_onnx(tmp_path):
    import onnxruntime as ort

    space = mobilenetv2_space(28)
    net = Supernet(space, 10, 1).eval()
    child = extract(net, space.sample(np.random.default_rng(4)), image_size=28).eval()
    x = torch.randn(2, 1, 28, 28)
    paths = export(child, tmp_path / "out", x[:1], metadata={"arch": list(child.autostruct_spec["kwargs"]["arch"])})
    model, meta = load_model(paths.model_pt)
    with torch.no_grad():
        assert torch.allclose(model(x), child(x), atol=1e-6)
    sess = ort.InferenceSession(str(paths.onnx), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    assert np.allclose(out, child(x).detach().numpy(), atol=1e-4)


def test_block_keys_are_covered_by_all_block_shapes():
    space = get_space(
        {"stages": [{"channels": 8, "stride": 2, "depths": [1, 3]}, {"channels": 16, "stride": 2}], "head_channels": 32}
    )
    keys = {b.key for b in all_block_shapes(space, 1, 16, 4)}
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert {b.key for b in block_costs(space.sample(rng), 1, 16, 4)} <= keys
