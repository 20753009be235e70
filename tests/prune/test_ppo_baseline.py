"""The PPO baseline: GAE against its definition, learning on a toy task, a tiny search through a real PruningEnv."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from prune_testnets import LOCAL_NETS

from autostruct.baselines.ppo import PPOConfig, gae, ppo_search
from autostruct.data import load_dataset
from autostruct.errors import AutostructError
from autostruct.prune.env import PruningEnv
from autostruct.rl.toy_envs import ChoiceEnv, TargetEnv


def test_gae_matches_its_definition():
    rng = np.random.default_rng(0)
    n, gamma, lam = 12, 0.9, 0.8
    rewards, values = rng.normal(size=n), rng.normal(size=n)
    dones = np.zeros(n, dtype=bool)
    dones[[3, 8]] = True  # three episodes; the last one is cut off and bootstrapped
    bootstrap = 0.7
    adv, ret = gae(rewards, values, dones, bootstrap, gamma, lam)
    # Straight from the sum: A_t = sum_k (gamma lam)^k delta_{t+k}, stopping after the step that ends an episode.
    v_next = np.append(values[1:], bootstrap)
    delta = rewards + gamma * v_next * (~dones) - values
    for t in range(n):
        expect, w = 0.0, 1.0
        for k in range(t, n):
            expect += w * delta[k]
            if dones[k]:
                break
            w *= gamma * lam
        assert adv[t] == pytest.approx(expect, abs=1e-12)
    np.testing.assert_allclose(ret, adv + values)


def test_ppo_learns_a_toy_target():
    torch.manual_seed(0)
    result = ppo_search(TargetEnv(1, length=3), 120, seed=1, config=PPOConfig(episodes_per_update=6, lr=1e-3))
    rewards = np.asarray(result.rewards_per_episode)
    assert len(rewards) == 120 and result.method == "ppo"
    # Random actions score about 0.65 here; a policy that found the target scores near 1.
    assert rewards[-24:].mean() > rewards[:24].mean() + 0.15
    assert rewards[-24:].mean() > 0.85
    assert result.best_reward == rewards.max() and rewards[result.episodes_to_best - 1] == result.best_reward


@pytest.fixture(scope="module")
def digits_env():
    ds = load_dataset("digits", val_size=300)
    up = lambda s: (F.interpolate(s.x, size=16, mode="bilinear"), s.y)  # noqa: E731
    torch.manual_seed(0)
    return PruningEnv(LOCAL_NETS["residual"](), (up(ds.train), up(ds.val)), 0.5, val_size=64, recal_batches=1,
                      batch_size=32)


def test_ppo_search_through_a_pruning_env(digits_env):
    cfg = PPOConfig(episodes_per_update=2, update_epochs=2, minibatches=2)
    result = ppo_search(digits_env, 6, seed=0, config=cfg)
    assert len(result.rewards_per_episode) == 6
    assert result.best_reward == max(result.rewards_per_episode)
    info = result.best_info
    assert info["accuracy"] == result.best_reward  # reward "acc"
    assert 0.97 <= info["flops_over_target"] <= 1.0  # budget "exact": every episode lands on the budget
    assert len(result.best_strategy) == len(digits_env.channels) and result.seconds > 0
    again = ppo_search(digits_env, 6, seed=0, config=cfg)
    assert again.rewards_per_episode == result.rewards_per_episode  # seeded: same episodes


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"episodes_per_update": 0}, "episodes_per_update"), ({"clip_eps": 0.0}, "clip_eps"), ({"gamma": 1.5}, "gamma")],
)
def test_bad_settings_are_user_errors(kwargs, match):
    with pytest.raises(AutostructError, match=match):
        ppo_search(TargetEnv(0), 2, config=PPOConfig(**kwargs))
    with pytest.raises(AutostructError, match="episodes"):
        ppo_search(TargetEnv(0), 0)
    with pytest.raises(AutostructError, match="continuous"):
        ppo_search(ChoiceEnv(0), 2)
