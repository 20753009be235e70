from __future__ import annotations

import torch
from nas_testdata import TINY_SUPERNET, VAL_SIZE

from autostruct.models.bn import recalibrate_bn
from autostruct.nas.config import SupernetConfig
from autostruct.nas.space import mobilenetv2_space
from autostruct.nas.train_supernet import get_or_train_supernet, load_supernet, train_supernet


def test_supernet_is_cached_and_reloads(digits, digits_supernet):
    net, info = digits_supernet
    assert info.path.is_file() and info.path.parent.name == "supernets"
    assert info.metrics["loss_per_epoch"][-1] < info.metrics["loss_per_epoch"][0]
    again, info2 = get_or_train_supernet(mobilenetv2_space(8), digits, TINY_SUPERNET, val_size=VAL_SIZE, progress=False)
    assert info2.hit and info2.path == info.path
    for (k, a), b in zip(net.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    loaded = load_supernet(info.path, digits.num_classes, digits.in_channels)
    assert loaded.space == net.space


def test_training_is_seeded_and_sandwich_runs(digits):
    cfg = SupernetConfig(epochs=1, batch_size=64, train_size=128, sampling="sandwich", min_steps=0)
    a, m = train_supernet(mobilenetv2_space(8), digits, cfg, seed=1, progress=False)
    b, _ = train_supernet(mobilenetv2_space(8), digits, cfg, seed=1, progress=False)
    assert m["steps"] == 2 and m["train_images"] == 128
    _, m = train_supernet(mobilenetv2_space(8), digits, cfg.model_copy(update={"min_steps": 5, "sampling": "uniform"}),
                          progress=False)
    assert m["steps"] == 6 and m["epochs"] == 3  # small datasets get extra epochs up to min_steps
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_recalibrate_bn_uses_given_batches():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2)).eval()
    x = torch.randn(64, 1, 4, 4) * 3 + 5
    recalibrate_bn(net, [x])
    assert not net.training
    expected = net[0](x).mean(dim=(0, 2, 3))
    assert torch.allclose(net[1].running_mean, expected, atol=1e-5)


def test_a_truncated_cached_supernet_is_trained_again(digits, digits_supernet, tmp_path):
    _, info = digits_supernet
    root = tmp_path / "supernets"
    root.mkdir()
    copy = root / info.path.name
    copy.write_bytes(info.path.read_bytes()[: info.path.stat().st_size // 2])  # a write cut short
    net, info2 = get_or_train_supernet(mobilenetv2_space(8), digits, TINY_SUPERNET, val_size=VAL_SIZE, root=root,
                                       progress=False)
    assert not info2.hit and info2.path == copy
    assert get_or_train_supernet(mobilenetv2_space(8), digits, TINY_SUPERNET, val_size=VAL_SIZE, root=root,
                                 progress=False)[1].hit
