"""The engine learns small multi-task problems on every backend (fixed episode budgets, greedy evaluation)."""

from __future__ import annotations

import functools
import json

import pytest

from autostruct.config import BackendConfig, RLConfig
from autostruct.rl import PolicySpec, rollout, run_impala
from autostruct.rl.toy_envs import ChoiceEnv, TargetEnv

# Budgets are small on purpose (2 shared CPU cores); the optimum of both envs is a reward of 1.0 per task.
# A task-agnostic policy scores 0.8 on TargetEnv and 2/3 on ChoiceEnv. queue_size=2 bounds the policy lag
# (actors of these instant envs otherwise run ~4 updates ahead of the learner).
BOX = dict(factories=[functools.partial(TargetEnv, i) for i in range(2)], algorithm="vtrace", episodes=300,
           rl=RLConfig(actors=2, unroll_length=3, batch_size=2, learning_rate=5e-4, queue_size=2), use_lstm=False,
           min_variance=0.03)
# Asynchronous actors of these instant envs run ahead of the learner; replayed updates multiply the policy lag
# (measured 18 updates on Ray with 8 per batch, greedy rewards 0.84-0.88), so the async cases do not replay,
# step smaller and run longer (5 seeds on local: greedy 0.90-0.99).
BOX_ASYNC = dict(BOX, episodes=1000, rl=BOX["rl"].model_copy(update={"replay_ratio": 0.0, "learning_rate": 2e-4}))
# Two replayed updates per fresh one (the default is 8) learn these cases in a third of the time: measured greedy
# 1.0 on both tasks (choice) and 0.985, 0.964 (the LSTM box case); with learning rate 0 (a policy that does
# not learn) 0.0, 0.33 and 0.8, 0.4, under the bar.
CHOICE = dict(factories=[functools.partial(ChoiceEnv, i) for i in range(2)], algorithm="mc", episodes=160,
              rl=RLConfig(actors=2, batch_size=2, learning_rate=1e-3, replay_ratio=2.0), use_lstm=True)
CHOICE_ASYNC = dict(CHOICE, rl=CHOICE["rl"].model_copy(update={"replay_ratio": 0.0}))


def train(case, backend, run_dir, **kw):
    factories = case["factories"]
    spec = PolicySpec.from_env(factories[0](), use_lstm=case["use_lstm"], min_variance=case.get("min_variance", 0.01))
    result = run_impala(factories, spec, rl=kw.pop("rl", case["rl"]), backend=BackendConfig(name=backend),
                        algorithm=case["algorithm"], total_episodes=kw.pop("episodes", case["episodes"]),
                        run_dir=run_dir, progress=False, **kw)
    greedy = [rollout(result.policy, f()).reward for f in factories]
    return result, greedy


def train_async(case, backend, run_dir, attempts=3):
    """``train`` on an asynchronous backend, with one more attempt if the greedy policy misses the bar.

    Actors of these instant envs race the learner; how far ahead they run depends on the OS scheduler, so under
    CPU contention (a loaded 2-core machine) one run in a few ends with one task unlearned (measured: greedy
    [1.0, 0.67] at a mean policy lag of 3.7; and once both of two attempts at [0.84, 0.85], lag 2.3, while other
    tests ran beside the CI run: so three attempts). A learner that does not learn misses the bar on every attempt
    (a task-agnostic policy scores 0.8 on TargetEnv).
    """
    for attempt in range(attempts):
        result, greedy = train(case, backend, run_dir / f"attempt{attempt}", tensorboard=False)
        if min(greedy) >= 0.85 and sum(greedy) / len(greedy) >= 0.9:
            break
    return result, greedy


def check_learned(result, greedy, case):
    lag = result.learner_stats.get("policy_lag_mean")
    assert min(greedy) >= 0.85 and sum(greedy) / len(greedy) >= 0.9, f"greedy rewards {greedy}, policy lag {lag}"
    assert len(result.episodes) == case["episodes"]
    assert [e.episode_index for e in result.episodes] == list(range(case["episodes"]))
    assert {e.task_id for e in result.episodes} == {0, 1}


@pytest.mark.parametrize("case", [BOX, CHOICE], ids=["box-vtrace", "choice-mc"])
def test_learns_inline(case, tmp_path):
    result, greedy = train(case, "inline", tmp_path, tensorboard=True)
    check_learned(result, greedy, case)
    files = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "episodes.jsonl", "metrics.jsonl", "events.jsonl", "checkpoint.pt", "policy.pt",
            "result.json", "tb"} <= files
    assert any((tmp_path / "tb").iterdir())
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # One line per fresh batch; the replayed updates that followed it are summarized in the same line.
    assert metrics[-1]["update"] == result.updates
    assert sum(1 + m.get("replay_updates", 0) for m in metrics) == result.updates
    keys = ["loss", "entropy", "policy_lag_mean", "episodes_per_s", "actor_utilization", "rewards/task_0"]
    if case["algorithm"] == "vtrace":
        keys += ["action_mean/task_0", "action_std/task_1", "greedy/task_0", "replay_updates", "policy_sigma2"]
    for key in keys:
        assert any(key in m for m in metrics), key
    assert result.greedy and all("task_episodes" in g.info for g in result.greedy)


def test_lstm_continuous_learns_inline(tmp_path):
    case = dict(BOX, use_lstm=True, episodes=400, rl=RLConfig(unroll_length=3, batch_size=2, learning_rate=2e-3,
                                                                     replay_ratio=2.0),
                min_variance=0.01)
    result, greedy = train(case, "inline", tmp_path, tensorboard=False)
    check_learned(result, greedy, case)


def test_inline_is_deterministic(tmp_path):
    case = dict(CHOICE, episodes=24)
    a, _ = train(case, "inline", tmp_path / "a", tensorboard=False, seed=3)
    b, _ = train(case, "inline", tmp_path / "b", tensorboard=False, seed=3)
    assert [(e.task_id, e.actions, e.reward) for e in a.episodes] == [(e.task_id, e.actions, e.reward) for e in b.episodes]


@pytest.mark.slow
@pytest.mark.parametrize("case", [BOX_ASYNC, CHOICE_ASYNC], ids=["box-vtrace", "choice-mc"])
def test_learns_local(case, tmp_path):
    result, greedy = train_async(case, "local", tmp_path)
    check_learned(result, greedy, case)
    assert result.learner_stats["policy_lag_max"] >= 0
