"""CEM baseline: adapts on a landscape with a known optimum, and follows the searchers' protocol."""

from __future__ import annotations

import numpy as np
import pytest

from autostruct.baselines import cem_search, random_search
from autostruct.baselines.cem import CEMConfig
from autostruct.errors import AutostructError
from autostruct.rl.env import BoxSpec


class PeakEnv:
    """Sparse reward at the last step, peaked at known per-step actions: ``1 - mean_t (a_t - target_t)^2 * 4``."""

    def __init__(self, targets: tuple[float, ...] = (0.15, 0.85, 0.3, 0.7, 0.9, 0.1, 0.5, 0.25)) -> None:
        self.targets = np.asarray(targets)
        self.observation_size = 2
        self.action_spec = BoxSpec(dim=1)
        self.max_episode_steps = len(targets)
        self.task_id = 0
        self.episodes = 0

    def reset(self, seed: int | None = None) -> np.ndarray:
        self.actions: list[float] = []
        return np.zeros(2, dtype=np.float32)

    def action_mask(self) -> None:
        return None

    def step(self, action):
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        assert a.shape == (1,) and 0.0 <= a[0] <= 1.0
        self.actions.append(float(a[0]))
        obs = np.asarray([len(self.actions) / len(self.targets), a[0]], dtype=np.float32)
        if len(self.actions) < len(self.targets):
            return obs, 0.0, False, {}
        self.episodes += 1
        err = float(np.mean((np.asarray(self.actions) - self.targets) ** 2))
        return obs, 1.0 - 4.0 * err, True, {"actions": list(self.actions), "channels": [self.episodes]}


def test_cem_beats_random_search_on_a_known_peak():
    episodes = 150
    cem, rnd = [], []
    for seed in range(5):
        c = cem_search(PeakEnv(), episodes, seed=seed)
        r = random_search(PeakEnv(), episodes, seed=seed)
        assert len(c.rewards_per_episode) == len(r.rewards_per_episode) == episodes
        cem.append(c.best_reward)
        rnd.append(r.best_reward)
        # Adapting means the later episodes are better than the first (random) generation on average.
        assert np.mean(c.rewards_per_episode[-20:]) > np.mean(c.rewards_per_episode[:10]) + 0.1
    assert all(c > r for c, r in zip(cem, rnd, strict=True)), (cem, rnd)
    assert np.mean(cem) > 0.97  # close to the optimum 1.0; random's best of 150 stays well below


def test_cem_best_episode_and_budget():
    res = cem_search(PeakEnv(), 23, seed=1, population=5, elite_frac=0.4)
    assert res.method == "cem" and len(res.rewards_per_episode) == 23  # last generation cut short
    assert res.best_reward == max(res.rewards_per_episode)
    assert res.rewards_per_episode[res.episodes_to_best - 1] == res.best_reward
    assert res.best_info["actions"] and all(0.0 <= a <= 1.0 for a in res.best_info["actions"])
    again = cem_search(PeakEnv(), 23, seed=1, population=5, elite_frac=0.4)
    assert again.rewards_per_episode == res.rewards_per_episode  # seeded


@pytest.mark.parametrize("kwargs", [{"population": 1}, {"elite_frac": 0.0}, {"elite_frac": 1.5}])
def test_cem_rejects_bad_settings(kwargs):
    with pytest.raises(AutostructError):
        cem_search(PeakEnv(), 5, **kwargs)
    with pytest.raises(AutostructError):
        cem_search(PeakEnv(), 0)
    assert CEMConfig(population=10, elite_frac=0.25).num_elites == 3
