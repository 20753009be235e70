"""Shared NAS fixtures: Digits (8x8, real data) and a supernet trained on it for a few seconds."""

from __future__ import annotations

import pytest
from nas_testdata import TINY_SUPERNET, VAL_SIZE

from autostruct.nas.space import mobilenetv2_space


@pytest.fixture(scope="session")
def digits():
    from autostruct.data import load_dataset

    return load_dataset("digits", val_size=VAL_SIZE, seed=0)


@pytest.fixture(scope="session")
def digits_supernet(digits):
    from autostruct.nas.train_supernet import get_or_train_supernet

    return get_or_train_supernet(mobilenetv2_space(8), digits, TINY_SUPERNET, val_size=VAL_SIZE, progress=False)


@pytest.fixture()
def make_env(digits, digits_supernet):
    """Build a NASEnv on Digits with the given budgets (default: FLOPs <= 1.5M of the 0.47M..2.4M range)."""
    from autostruct.nas.env import NASEnv, make_evaluator
    from autostruct.nas.evaluate import TaskCosts

    def build(budgets=None, **kw):
        net, _ = digits_supernet
        evaluator = make_evaluator(net, digits, 200, 2, 64, seed=0)
        costs = TaskCosts(digits.in_channels, digits.image_size, digits.num_classes, kw.pop("profile", None))
        return NASEnv(mobilenetv2_space(8), evaluator, costs, budgets or {"flops": 1.5e6}, **kw)

    return build
