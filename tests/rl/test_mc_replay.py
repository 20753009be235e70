"""Replay with ``algorithm="mc"``: replayed episodes are importance-weighted, and the moving-average baseline
averages each episode's returns once (on its fresh update), not again on every replay."""

from __future__ import annotations

import functools

import pytest
import torch

from autostruct.config import RLConfig
from autostruct.rl.actor import Actor, ActorSpec
from autostruct.rl.learner import Learner
from autostruct.rl.policy import PolicySpec, make_policy
from autostruct.rl.toy_envs import TableEnv


def episodes(n: int, spec: PolicySpec) -> list:
    actor = Actor(ActorSpec(0, (functools.partial(TableEnv, 0, 0),), spec, algorithm="mc", seed=0))
    actor.set_weights(make_policy(spec, 0).state_dict(), 0)
    return [actor.unroll() for _ in range(n)]


@pytest.mark.parametrize("baseline", ["moving_average", "value"])
def test_replayed_update_leaves_the_moving_average_alone(baseline):
    spec = PolicySpec.from_env(TableEnv(0, 0), use_lstm=False, hidden_sizes=(16,))
    rl = RLConfig(mc_baseline=baseline, reward_norm="none")
    learner = Learner(make_policy(spec, 0), rl, "mc")
    batch = episodes(4, spec)
    learner.update(batch)
    before = None if learner.baseline is None else dict(learner.baseline.averages)
    stats = learner.update(batch, replayed=True)
    assert learner.version == 2 and torch.isfinite(torch.tensor(stats["loss"]))
    if baseline == "moving_average":
        assert learner.baseline.averages == before  # type: ignore[union-attr]
        learner.update(batch)
        assert learner.baseline.averages != before  # type: ignore[union-attr]
    # The policy moved after the first update, so the replayed episodes are off-policy: ratios are not all 1.
    assert stats["rho_mean"] != pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("norm", ["task", "task_std"])
def test_reward_norm_centres_and_optionally_scales_per_task(norm):
    spec = PolicySpec.from_env(TableEnv(0, 0), use_lstm=False, hidden_sizes=(16,))
    learner = Learner(make_policy(spec, 0), RLConfig(mc_baseline="moving_average", reward_norm=norm, discount=1.0), "mc")
    for r in (0.2, 0.4, 0.6, 0.8, 1.0):  # mean 0.6; std over the window 0.2 * sqrt(2)
        learner.observe_episode(0, r)
    mean, std = learner.reward_stats.scale(0)
    assert mean == pytest.approx(0.6) and std == pytest.approx(0.2 * 2**0.5)
    (tr,) = episodes(1, spec)
    learner.update([tr])
    expected = (float(tr.reward[-1]) - mean) / (std if norm == "task_std" else 1.0)
    # The baseline's first sight of (task 0, last step) is that step's (normalized) return itself.
    assert learner.baseline.averages[(0, TableEnv(0, 0).decisions - 1)] == pytest.approx(expected, rel=1e-5)  # type: ignore[union-attr]
