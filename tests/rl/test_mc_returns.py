"""Monte Carlo returns and truncated importance weights on a hand-computed episode."""

from __future__ import annotations

import math

import pytest
import torch

from autostruct.rl.returns import (
    MovingAverageBaseline,
    discounted_returns,
    mc_policy_gradient_loss,
    truncated_importance_weights,
)

# One episode of 3 steps, reward only at the end (as NAS), gamma = 0.9.
REWARDS = torch.tensor([[0.0], [0.0], [1.0]])
DISCOUNTS = torch.full((3, 1), 0.9)
RATIOS = torch.tensor([[2.0], [0.5], [1.5]])  # pi/mu per step; product = 1.5


def test_discounted_returns_by_hand():
    g = discounted_returns(REWARDS, DISCOUNTS)
    torch.testing.assert_close(g, torch.tensor([[0.81], [0.9], [1.0]]))
    # With a bootstrap: G_2 = 1 + 0.9 * 2 = 2.8, G_1 = 0.9 * 2.8, G_0 = 0.81 * 2.8.
    g = discounted_returns(REWARDS, DISCOUNTS, torch.tensor([2.0]))
    torch.testing.assert_close(g, torch.tensor([[0.81 * 2.8], [0.9 * 2.8], [2.8]]))


def test_truncated_weights_per_step_and_per_trajectory():
    log_rhos = RATIOS.log()
    torch.testing.assert_close(truncated_importance_weights(log_rhos, 1.0, "step"), torch.tensor([[1.0], [0.5], [1.0]]))
    torch.testing.assert_close(truncated_importance_weights(log_rhos, 1.8, "step"), torch.tensor([[1.8], [0.5], [1.5]]))
    torch.testing.assert_close(truncated_importance_weights(log_rhos, 1.0, "trajectory"), torch.ones(3, 1))
    torch.testing.assert_close(truncated_importance_weights(log_rhos, 2.0, "trajectory"), torch.full((3, 1), 1.5))
    # Padding steps neither count in the product nor get a weight.
    padded = torch.cat([log_rhos, torch.tensor([[5.0]])])
    valid = torch.tensor([[True], [True], [True], [False]])
    w = truncated_importance_weights(padded, 2.0, "trajectory", valid)
    torch.testing.assert_close(w, torch.tensor([[1.5], [1.5], [1.5], [0.0]]))
    with pytest.raises(ValueError, match="mode"):
        truncated_importance_weights(log_rhos, 1.0, "episode")  # type: ignore[arg-type]


def test_policy_gradient_loss_by_hand():
    logp = torch.log(torch.tensor([[0.4], [0.2], [0.6]])).requires_grad_()
    returns = discounted_returns(REWARDS, DISCOUNTS)
    baseline = torch.tensor([[0.5], [0.5], [0.5]])
    w = truncated_importance_weights(RATIOS.log(), 1.0, "step")
    loss = mc_policy_gradient_loss(logp, returns, baseline, w)
    expected = -(1.0 * 0.31 * math.log(0.4) + 0.5 * 0.4 * math.log(0.2) + 1.0 * 0.5 * math.log(0.6))
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
    loss.backward()
    torch.testing.assert_close(logp.grad, -torch.tensor([[0.31], [0.2], [0.5]]))


def test_moving_average_baseline():
    b = MovingAverageBaseline(decay=0.5)
    tasks, steps = torch.tensor([0]), torch.tensor([[0], [1], [2]])
    valid = torch.ones(3, 1, dtype=torch.bool)
    assert b.value(tasks, steps).abs().sum() == 0
    b.update(torch.tensor([[0.81], [0.9], [1.0]]), tasks, steps, valid)
    b.update(torch.tensor([[0.0], [0.0], [0.0]]), tasks, steps, valid)
    torch.testing.assert_close(b.value(tasks, steps), torch.tensor([[0.405], [0.45], [0.5]]))
    assert float(b.value(torch.tensor([1]), steps).abs().sum()) == 0  # other task: unseen
    c = MovingAverageBaseline(0.5)
    c.load_state_dict(b.state_dict())
    assert c.averages == b.averages
