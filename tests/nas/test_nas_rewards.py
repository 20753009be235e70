from __future__ import annotations

import pytest

from autostruct.errors import AutostructError
from autostruct.nas.rewards import RewardSpec, meets, mnas_hard, mnas_soft, tunas_abs


def test_mnas_soft_penalizes_over_target_and_paper_setting_rewards_under():
    t = {"flops": 10.0}
    assert mnas_soft(0.8, {"flops": 10.0}, t) == pytest.approx(0.8)
    assert mnas_soft(0.8, {"flops": 20.0}, t) == pytest.approx(0.8 * 2**-0.07)
    assert mnas_soft(0.8, {"flops": 5.0}, t) == pytest.approx(0.8)
    assert mnas_soft(0.8, {"flops": 5.0}, t, alpha=-0.07) == pytest.approx(0.8 * 0.5**-0.07)


def test_mnas_hard_only_penalizes_over_budget():
    t = {"latency_ms": 2.0}
    assert mnas_hard(0.9, {"latency_ms": 1.0}, t) == pytest.approx(0.9)
    assert mnas_hard(0.9, {"latency_ms": 4.0}, t) == pytest.approx(0.45)


def test_abs_pulls_to_target_and_costs_combine():
    t = {"flops": 10.0, "params": 100.0}
    c = {"flops": 12.0, "params": 50.0}
    assert tunas_abs(0.9, c, t, beta=-0.5) == pytest.approx(0.9 - 0.5 * (0.2 + 0.5))
    assert mnas_soft(0.9, c, t, alpha=-0.07) == pytest.approx(0.9 * 1.2**-0.07 * 0.5**-0.07)
    assert not meets(c, t) and meets({"flops": 10.0, "params": 100.0}, t)


def test_reward_spec_defaults_and_errors():
    assert RewardSpec("mnas_hard").exponents == (0.0, -1.0)
    assert RewardSpec("mnas_soft").exponents == (0.0, -0.07)
    assert RewardSpec("mnas_soft", alpha=-0.07).exponents == (-0.07, -0.07)
    assert RewardSpec("abs", beta=-1.0)(0.5, {"flops": 2.0}, {"flops": 1.0}) == pytest.approx(-0.5)
    with pytest.raises(AutostructError, match="Unknown reward 'mnas'"):
        RewardSpec("mnas")
    with pytest.raises(AutostructError, match="No measured cost"):
        mnas_soft(0.5, {"flops": 1.0}, {"latency_ms": 1.0})
