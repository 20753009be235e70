from __future__ import annotations

import numpy as np
import pytest

from autostruct.baselines.nas_evolution import mutate, regularized_evolution
from autostruct.baselines.nas_random import random_search
from autostruct.baselines.nas_reinforce import reinforce_search


@pytest.mark.parametrize(
    "search, kw",
    [(random_search, {}), (regularized_evolution, {"population": 4, "sample_size": 2}), (reinforce_search, {})],
)
def test_baselines_share_the_env_and_result(make_env, search, kw):
    env = make_env({"flops": 1.2e6})
    result = search(env, 10, seed=0, **kw)
    assert result.evaluations == 10 and len(result.records) == 10
    assert result.best_record["meets_budgets"] and result.best_record["flops"] <= 1.2e6
    curve = result.best_so_far()
    assert curve == sorted(curve) and curve[-1] == result.best_reward
    assert result.best_reward == max(result.rewards)
    assert 1 <= result.episodes_to_best <= 10
    assert result.as_dict()["evaluations"] == 10


def test_mutation_changes_one_active_decision(make_env):
    from autostruct.baselines.nas_common import random_episode

    env = make_env()
    space = env.space
    rng = np.random.default_rng(0)
    for _ in range(20):
        parent = random_episode(env, rng)
        assert parent.actions == parent.info["arch"]
        child = space.arch(mutate(parent, rng)).indices
        # a depth change may also (un)hide blocks; otherwise exactly one index differs
        diff = [t for t in range(space.num_decisions) if child[t] != parent.actions[t]]
        assert len(diff) >= 1
        assert len(diff) == 1 or space.decisions[diff[0]].kind == "depth"
