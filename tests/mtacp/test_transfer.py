"""New scenarios from a run (mtacp/transfer.py): every answer lands on its budget, the nearest task is the nearest,
the surrogate's pick is what it ranks best, and the CLI's few-shot mode runs end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autostruct.data import load_dataset
from autostruct.models import create_model
from autostruct.mtacp.transfer import (
    counts_toward,
    few_shot,
    nearest_task_counts,
    propose,
    rescale_design,
    screen_data,
    solved_strategies,
    transferred_counts,
)
from autostruct.prune.env import PruningEnv
from autostruct.rl import PolicySpec
from autostruct.rl.policy import make_policy
from autostruct.rl.trajectory import EpisodeRecord


@pytest.fixture(scope="module")
def digits16():
    ds = load_dataset("digits", val_size=300)
    up = lambda s: (F.interpolate(s.x, size=16, mode="bilinear"), s.y)  # noqa: E731
    return up(ds.train), up(ds.val)


def _env(data, ratio: float, beta: float = 0.0) -> PruningEnv:
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, in_channels=1, image_size=16, width=0.5)
    return PruningEnv(model, data, ratio, val_size=64, rescore_size=64, recal_batches=1,
                      batch_size=32, beta=beta, round_to=1)


def _flops_ratio(env: PruningEnv, counts: np.ndarray) -> float:
    return float(env.graph.flop_model(counts)) / env.base_flops


def _episodes(env: PruningEnv, n: int, seed: int) -> list[EpisodeRecord]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        env.reset()
        done = False
        while not done:
            _, reward, done, info = env.step(rng.random(1))
        out.append(EpisodeRecord(task_id=env.task_id, episode_index=len(out), actions=[], reward=reward, info=info,
                                 policy_version=0, wall_time=0.0, length=env.max_episode_steps))
    return out


def test_rescaled_profiles_land_on_the_budget(digits16):
    env = _env(digits16, 0.4)
    design = np.linspace(0.3, 1.0, len(env.channels))
    for target in (0.3, 0.4, 0.6):
        env = _env(digits16, target)
        counts = counts_toward(env, rescale_design(env, design))
        assert 0.9 * target <= _flops_ratio(env, counts) <= target + 1e-9


def test_nearest_task_is_the_nearest_and_fits_the_new_budget(digits16):
    env = _env(digits16, 0.6)
    n = len(env.channels)
    rising, falling = np.linspace(0.4, 1.0, n), np.linspace(1.0, 0.4, n)
    solved = {0: (np.array([0.3, 0.0]), falling), 1: (np.array([0.7, 0.0]), rising)}
    counts = nearest_task_counts(env, solved)
    assert 0.85 * 0.6 <= _flops_ratio(env, counts) <= 0.6 + 1e-9
    frac = counts / env.channels
    assert frac[0] < frac[-1]  # the 0.7 task's rising profile, not the 0.3 task's falling one
    far = nearest_task_counts(_env(digits16, 0.35), solved)
    assert far[0] / env.channels[0] > frac[0]
    assert solved_strategies([]) == {}


def test_few_shot_starts_from_the_nearest_solved_tasks_and_zero_shot_weighs_them(digits16):
    new = _env(digits16, 0.35)
    n = len(new.channels)
    rising, falling = np.linspace(0.4, 1.0, n), np.linspace(1.0, 0.4, n)
    solved = {0: (np.array([0.3, 0.0]), falling), 1: (np.array([0.7, 0.0]), rising)}
    two = transferred_counts(new, solved, 2)
    assert len(two) == 2 and np.array_equal(two[0], nearest_task_counts(new, solved))
    assert not np.array_equal(two[0], two[1])
    policy = make_policy(PolicySpec.from_env(new), 0)
    src = _env(digits16, 0.5)
    run = _episodes(src, 12, seed=0)
    scored = few_shot(policy, new, screen_data(run), episodes=3, candidates=8, solved=solved)
    assert [list(info["channels"]) for _, info in scored[:2]] == [list(c) for c in two]
    assert all(info["flops_ratio"] <= 0.35 + 1e-9 for _, info in scored)
    # Zero-shot: with a surrogate that rewards a wide last group, the rising profile (a transfer) beats every
    # policy sample whose last group is narrower; with the opposite surrogate the rising one is never picked.
    for ep in run:
        ep.reward = ep.info["design"][-1] - ep.info["design"][0]
    pick = propose(policy, new, screen_data(run), candidates=8, solved=solved)
    plain = propose(policy, new, screen_data(run), candidates=8)
    assert pick[-1] / new.channels[-1] >= plain[-1] / new.channels[-1]
    for ep in run:
        ep.reward = ep.info["design"][0] - ep.info["design"][-1]
    assert not np.array_equal(propose(policy, new, screen_data(run), candidates=8, solved={1: solved[1]}), two[1])


def test_propose_and_few_shot_meet_the_budget_and_learn_from_the_run(digits16):
    src = _env(digits16, 0.5)
    run = _episodes(src, 12, seed=0)
    assert all("design" in ep.info and ep.info["task_features"] == [0.5, 0.0] for ep in run)
    data = screen_data(run)
    assert len(data) == 12
    new = _env(digits16, 0.35)
    policy = make_policy(PolicySpec.from_env(new), 0)
    counts = propose(policy, new, data, candidates=32)
    assert _flops_ratio(new, counts) <= 0.35 + 1e-9
    # The pick follows the surrogate: fitted to prefer a wide first group, then a narrow one, it picks opposite ends.
    for ep in run:
        ep.reward = ep.info["design"][0]
    wide = propose(policy, new, screen_data(run), candidates=64)
    for ep in run:
        ep.reward = -ep.info["design"][0]
    narrow = propose(policy, new, screen_data(run), candidates=64)
    g = 0
    assert wide[g] > narrow[g], (wide, narrow)
    scored = few_shot(policy, new, screen_data(run), episodes=3, candidates=8)
    assert len(scored) == 3 and all(info["flops_ratio"] <= 0.35 + 1e-9 for _, info in scored)
    # A run without scored designs still gives an answer: the policy's greedy episode.
    assert _flops_ratio(new, propose(policy, new, screen_data([]))) <= 0.35 + 1e-9
