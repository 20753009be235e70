"""The NAS baselines on any env of the documented protocol: the custom-space env, a toy env, and NASEnv
(here with a stand-in evaluator, so no supernet is trained)."""

from __future__ import annotations

import numpy as np
import pytest
from nas_table import SPACE, best, evaluate

from autostruct.baselines.nas_cem import CategoricalCEMConfig, categorical_cem_search
from autostruct.baselines.nas_common import play, random_episode
from autostruct.baselines.nas_evolution import mutate, regularized_evolution
from autostruct.baselines.nas_random import random_search
from autostruct.baselines.nas_reinforce import reinforce_search
from autostruct.nas.custom import CustomNASEnv
from autostruct.rl.toy_envs import ChoiceEnv

SEARCHES = [
    (random_search, {}),
    (regularized_evolution, {"population": 5, "sample_size": 2}),
    (reinforce_search, {"lr": 0.05}),
    (categorical_cem_search, {"config": CategoricalCEMConfig(population=8)}),
]


class _StubAccuracy:
    """NASEnv's evaluator interface without a supernet: a fixed function of the architecture."""

    def accuracy(self, arch):
        return 0.5 + 0.01 * sum(arch.indices) / len(arch.indices), False


def _nas_env():
    from autostruct.nas.env import NASEnv
    from autostruct.nas.evaluate import TaskCosts
    from autostruct.nas.space import mobilenetv2_space

    return NASEnv(mobilenetv2_space(8), _StubAccuracy(), TaskCosts(1, 8, 10), {"flops": 1.2e6}, name="stub")


def _custom_env():
    return CustomNASEnv(SPACE, evaluate, {"flops": 1.5e6}, dataset="hard", name="hard")


@pytest.mark.parametrize(("search", "kw"), SEARCHES, ids=lambda x: getattr(x, "__name__", ""))
def test_baselines_on_the_custom_env(search, kw):
    env = _custom_env()
    result = search(env, 40, seed=0, **kw)
    assert result.evaluations == 40 and result.task == "hard"
    assert result.best_record["meets_budgets"] and result.best_record["flops"] <= 1.5e6
    assert SPACE.decode(result.best_arch) == result.best_record["arch"]
    assert result.best_reward >= best("hard", 1.5e6) - 0.08
    curve = result.best_so_far()
    assert curve == sorted(curve) and curve[-1] == result.best_reward


@pytest.mark.parametrize(("search", "kw"), SEARCHES, ids=lambda x: getattr(x, "__name__", ""))
def test_baselines_on_a_toy_env(search, kw):
    env = ChoiceEnv(1)
    result = search(env, 60, seed=0, **kw)  # ChoiceEnv raises on a masked option, so masks are respected
    assert result.evaluations == 60 and result.task == "task1"
    assert result.best_reward == 1.0
    assert result.best_arch == [env.best(t) for t in range(3)]


@pytest.mark.parametrize(("search", "kw"), SEARCHES, ids=lambda x: getattr(x, "__name__", ""))
def test_baselines_still_run_on_nasenv(search, kw):
    env = _nas_env()
    result = search(env, 8, seed=0, **kw)
    assert result.evaluations == 8
    assert result.best_record["meets_budgets"] and result.best_record["flops"] <= 1.2e6
    assert result.best_arch == result.best_record["arch"]  # actions are the canonical indices


def test_mutation_replays_the_parent_with_one_change():
    env = _custom_env()
    rng = np.random.default_rng(0)
    for _ in range(30):
        parent = random_episode(env, rng)
        child = play(env, mutate(parent, rng), rng)
        diff = [t for t in range(5) if child.actions[t] != parent.actions[t]]
        # one free decision changed; a depth change may add (op4 drawn) or drop (op4 forced to 0) one more
        assert 1 <= len(diff) <= 2
        assert len(diff) == 1 or diff[0] == 3
        assert all(a in opts for a, opts in zip(child.actions, child.allowed, strict=True))
