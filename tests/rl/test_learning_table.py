"""The NAS controller (``algorithm="mc"``, NASRLConfig defaults) learns a structured table faster than random search.

``TableEnv`` is a cell space like the public tabular NAS benchmarks (6 decisions x 5 options, masked options) for
two "datasets" that share most of their structure. Measured over these 5 seeds at 50 evaluations per task: the
controller's best-found accuracy is +7.9 pt over random search's (5 of 5 seeds); with ``learning_rate=1e-9`` it is
+1.2 pt (2 of 5), which fails the assertions.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from autostruct.config import BackendConfig
from autostruct.nas.config import NASRLConfig
from autostruct.rl import PolicySpec, run_impala
from autostruct.rl.toy_envs import TableEnv

FACTORIES = [functools.partial(TableEnv, i, i) for i in range(2)]
EVALUATIONS = 50  # per task


def random_best(factory, n: int, seed: int) -> float:
    """Noise-free accuracy of random search's pick (best noisy reward) after ``n`` masked-uniform architectures."""
    env, rng = factory(), np.random.default_rng(seed)
    best, best_acc = -np.inf, 0.0
    for _ in range(n):
        env.reset()
        done = False
        while not done:
            _, reward, done, info = env.step(int(rng.choice(np.flatnonzero(env.action_mask()))))
        if reward > best:
            best, best_acc = reward, info["accuracy"]
    return best_acc


@pytest.mark.slow
def test_controller_beats_random_search_on_a_table(tmp_path):
    diffs = []
    for seed in range(5):
        rl = NASRLConfig(actors=1)
        result = run_impala(FACTORIES, PolicySpec.from_env(FACTORIES[0](), use_lstm=rl.use_lstm),
                            total_episodes=EVALUATIONS * 2, run_dir=tmp_path / f"s{seed}", rl=rl,
                            backend=BackendConfig(name="inline"), algorithm="mc", seed=seed, progress=False,
                            tensorboard=False)
        found, rand = [], []
        for task, factory in enumerate(FACTORIES):
            eps = [e for e in result.episodes if e.task_id == task]
            assert len(eps) == EVALUATIONS
            found.append(max(eps, key=lambda e: e.reward).info["accuracy"])
            rand.append(random_best(factory, EVALUATIONS, seed + 100))
        diffs.append(100 * (np.mean(found) - np.mean(rand)))
    assert np.mean(diffs) >= 3.0 and sum(d > 0 for d in diffs) >= 4, diffs


def test_table_optimum_is_feasible_and_beats_random():
    env = FACTORIES[0]()
    arch, best = env.optimum()
    assert env.feasible(arch)
    assert best > random_best(FACTORIES[0], 30, 0)
