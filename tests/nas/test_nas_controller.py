"""The engine's categorical controller, trained with MC returns + truncated importance weights through NASEnv,
learns a synthetic two-task problem whose best architecture differs per task (so it must read the task)."""

from __future__ import annotations

import functools

import numpy as np

from autostruct.nas.env import NASEnv
from autostruct.nas.evaluate import TaskCosts
from autostruct.nas.rewards import RewardSpec
from autostruct.nas.space import get_space

TINY = {
    "name": "tiny",
    "stem_channels": 8,
    "head_channels": 16,
    "stages": [
        {"channels": 8, "stride": 2, "depths": [1, 2], "kernels": [3, 5], "expands": [2, 3]},
        {"channels": 16, "stride": 2, "depths": [1, 2], "kernels": [3, 5], "expands": [2, 3]},
    ],
}


class MatchEvaluator:
    """Synthetic 'accuracy': the share of decisions equal to the task's preferred option (1 for task 0, 0 for 1)."""

    def __init__(self, preferred: int) -> None:
        self.preferred = preferred

    def accuracy(self, arch):
        return float(np.mean([i == self.preferred for i in arch.indices])), False


def make_env(task_id: int) -> NASEnv:
    space = get_space(TINY)
    return NASEnv(space, MatchEvaluator(1 - task_id), TaskCosts(1, 16, 4), {"params": 1e9}, task_id=task_id,
                  reward=RewardSpec("mnas_hard"),
                  dataset_index=task_id, num_datasets=2, name=f"synthetic{task_id}")


def test_controller_learns_task_dependent_choices(tmp_path):
    from autostruct.config import BackendConfig, RLConfig
    from autostruct.rl import CategoricalSpec, PolicySpec, run_impala

    env = make_env(0)
    spec = PolicySpec(env.observation_size, CategoricalSpec(env.space.choice_counts), hidden_sizes=(64,), lstm_size=64)
    rl_cfg = RLConfig(actors=2, batch_size=4, learning_rate=3e-3, entropy_cost=0.001)
    res = run_impala([functools.partial(make_env, 0), functools.partial(make_env, 1)], spec, total_episodes=400,
                     run_dir=tmp_path / "run", rl=rl_cfg, backend=BackendConfig(name="inline"), algorithm="mc",
                     seed=0, progress=False, tensorboard=False)
    for task in (0, 1):
        rewards = [e.reward for e in res.episodes if e.task_id == task]
        early, late = np.mean(rewards[:30]), np.mean(rewards[-30:])
        assert late > early + 0.15 and late > 0.75, (task, early, late)
