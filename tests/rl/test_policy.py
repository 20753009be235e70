"""The MTACP agent: architecture, distributions, masks, and actor/learner agreement on log-probs."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from autostruct.errors import AutostructError
from autostruct.rl.actor import Actor, ActorSpec, assign_tasks, rollout
from autostruct.rl.env import BoxSpec, CategoricalSpec
from autostruct.rl.policy import Policy, PolicyInputs, PolicySpec, load_policy, make_policy, save_policy
from autostruct.rl.toy_envs import ChoiceEnv, TargetEnv
from autostruct.rl.trajectory import collate


def test_mtacp_architecture():
    p = Policy(PolicySpec(13, BoxSpec(dim=1)))
    dims = [(m.in_features, m.out_features) for m in p.torso if isinstance(m, torch.nn.Linear)]
    assert dims == [(13, 100), (100, 400), (400, 300)]
    assert p.lstm.input_size == 302 and p.lstm.hidden_size == 302  # concat(300 features, a_{l-1}, r_{l-1})
    assert p.mu_head.out_features == 1 and p.var_head.out_features == 1 and p.value_head.out_features == 1
    no_lstm = Policy(PolicySpec(13, BoxSpec(dim=1), use_lstm=False))
    assert no_lstm.lstm is None and no_lstm.mu_head.in_features == 302


def _inputs(spec, T, B, mask=None):
    g = torch.Generator().manual_seed(0)
    return PolicyInputs(
        obs=torch.randn(T, B, spec.observation_size, generator=g),
        prev_action=torch.rand(T, B, spec.action_input_size, generator=g),
        prev_reward=torch.randn(T, B, generator=g),
        first=torch.zeros(T, B, dtype=torch.bool),
        step=torch.arange(T).view(T, 1).expand(T, B).clone(),
        mask=mask,
    )


def test_gaussian_head_ranges_and_squash():
    spec = PolicySpec(6, BoxSpec(dim=2), hidden_sizes=(16, 16), lstm_size=8)
    p = make_policy(spec, seed=0)
    out, core = p(_inputs(spec, 4, 3))
    assert out.mu.shape == (4, 3, 2) and out.value.shape == (4, 3) and core[0].shape == (3, 8)
    # Linear mean head, initialized near 0 (executed action 0.5); bounded variance starting at init_variance.
    assert out.mu.abs().max() < 0.2
    assert (out.var > spec.min_variance).all() and (out.var < spec.max_variance).all()
    torch.testing.assert_close(out.var, torch.full_like(out.var, spec.init_variance), atol=0.02, rtol=0)
    a = p.sample(out, torch.Generator().manual_seed(1))
    env_a = p.to_env_action(a[0, 0])
    assert env_a.shape == (2,) and ((env_a >= 0) & (env_a <= 1)).all()
    # Log-prob is the pre-squash Gaussian's: check against torch.distributions.
    ref = torch.distributions.Normal(out.mu, out.var.sqrt()).log_prob(a).sum(-1)
    torch.testing.assert_close(p.log_prob(out, a), ref)
    # Entropy is the executed action's, y = (tanh(u) + 1) / 2: H(u) + E[log dy/du], checked by Monte Carlo.
    u = out.mu + out.var.sqrt() * torch.randn((20000, *out.mu.shape), generator=torch.Generator().manual_seed(2))
    log_jac = torch.log((1 - torch.tanh(u) ** 2) / 2)
    mc = (torch.distributions.Normal(out.mu, out.var.sqrt()).entropy() + log_jac.mean(0)).sum(-1)
    torch.testing.assert_close(p.entropy(out).detach(), mc.detach(), atol=0.02, rtol=0)


def test_mtacp_heads_still_available():
    """MTACP's sigmoid mean and unbounded softplus variance stay selectable (and old policy files load so)."""
    spec = PolicySpec(6, BoxSpec(dim=1), hidden_sizes=(8,), lstm_size=4, mu_activation="sigmoid", max_variance=None)
    out, _ = make_policy(spec, seed=0)(_inputs(spec, 3, 2))
    assert (out.mu > 0).all() and (out.mu < 1).all() and (out.var > spec.min_variance).all()
    old = {k: v for k, v in spec.to_dict().items() if k not in ("max_variance", "init_variance")}
    assert PolicySpec.from_dict(old).max_variance is None


def test_categorical_heads_respect_step_choices_and_masks():
    spec = PolicySpec(5, CategoricalSpec(choices=(2, 4, 3)), hidden_sizes=(16,), lstm_size=8)
    p = make_policy(spec, seed=0)
    T, B = 3, 200
    mask = torch.ones(T, B, 4, dtype=torch.bool)
    mask[1, :, 0] = False  # the env forbids option 0 at step 1
    out, _ = p(_inputs(spec, T, B, mask))
    a = p.sample(out, torch.Generator().manual_seed(0))
    assert (a[0] < 2).all() and (a[2] < 3).all() and (a[1] != 0).all()
    probs = torch.softmax(out.logits, -1)
    assert float(probs[0, :, 2:].sum().detach()) == 0 and float(probs[1, :, 0].sum().detach()) == 0
    ent = p.entropy(out)
    assert torch.isfinite(ent).all() and (ent <= np.log(4) + 1e-6).all()
    assert torch.isfinite(p.log_prob(out, a)).all()
    # Different steps use different heads: same features, different logits.
    same = _inputs(spec, T, 1)._replace(obs=torch.zeros(T, 1, 5), prev_action=torch.zeros(T, 1, 4),
                                        prev_reward=torch.zeros(T, 1), first=torch.ones(T, 1, dtype=torch.bool))
    o, _ = p(same)
    assert not torch.allclose(o.logits[0, 0, :2], o.logits[1, 0, :2])


@pytest.mark.parametrize("kind", ["box", "categorical"])
@pytest.mark.parametrize("use_lstm", [True, False])
def test_learner_recomputes_the_actors_log_probs(kind, use_lstm):
    """Same weights => target log-probs equal behaviour log-probs, across episode boundaries (LSTM resets)."""
    factories = (
        (functools.partial(TargetEnv, 0),) if kind == "box" else (functools.partial(ChoiceEnv, 1),)
    )
    spec = PolicySpec.from_env(factories[0](), use_lstm=use_lstm, hidden_sizes=(32, 32), lstm_size=16)
    actor = Actor(ActorSpec(0, factories, spec, unroll_length=7, seed=3))
    learner_policy = make_policy(spec, seed=11)
    actor.set_weights(learner_policy.state_dict(), 0)
    trajs = [actor.unroll() for _ in range(3)]  # 21 steps of 3-step episodes: unrolls start mid-episode
    assert any(not tr.first[0] for tr in trajs) and all(tr.done.any() for tr in trajs)
    batch = collate(trajs)
    with torch.no_grad():
        out, _ = learner_policy(batch.inputs, batch.core_state)
        T = batch.reward.shape[0]
        step_out = type(out)(*(None if x is None else x[:T] for x in out))
        logp = learner_policy.log_prob(step_out, batch.action)
    torch.testing.assert_close(logp, batch.behaviour_log_prob, rtol=1e-4, atol=1e-4)
    assert sum(len(tr.episodes) for tr in trajs) == 7


def test_mc_unroll_is_one_episode():
    factories = (functools.partial(ChoiceEnv, 0),)
    spec = PolicySpec.from_env(factories[0](), hidden_sizes=(8,), lstm_size=8)
    actor = Actor(ActorSpec(0, factories, spec, algorithm="mc", seed=0))
    actor.set_weights(make_policy(spec, 0).state_dict(), 5)
    tr = actor.unroll()
    assert tr.length == 3 and tr.done.tolist() == [False, False, True] and tr.first[0]
    assert len(tr.episodes) == 1 and tr.episodes[0].policy_version == 5 and tr.episodes[0].length == 3


def test_save_load_policy_roundtrip(tmp_path):
    spec = PolicySpec(5, CategoricalSpec(choices=(3, 4, 3)), hidden_sizes=(16,), lstm_size=8)
    p = make_policy(spec, seed=0)
    path = save_policy(p, tmp_path / "policy.pt", {"note": "x"})
    torch.load(path, weights_only=True)  # plain types only
    q, meta = load_policy(path)
    assert q.spec == spec and meta == {"note": "x"}
    env = ChoiceEnv(0)
    assert rollout(p, env).actions == rollout(q, ChoiceEnv(0)).actions
    with pytest.raises(AutostructError, match="does not exist"):
        load_policy(tmp_path / "missing.pt")


def test_rollout_greedy_and_errors():
    env = TargetEnv(1)
    p = make_policy(PolicySpec.from_env(env, hidden_sizes=(8,), lstm_size=8), seed=0)
    rec = rollout(p, env)
    assert rec.length == 3 and rec.task_id == 1 and "mean_error" in rec.info
    assert rollout(p, TargetEnv(1)).actions == rec.actions  # greedy is deterministic
    wrong = make_policy(PolicySpec(3, BoxSpec(1), hidden_sizes=(8,), lstm_size=8))
    with pytest.raises(AutostructError, match="observation of size 5"):
        rollout(wrong, TargetEnv(1))


def test_assign_tasks():
    assert assign_tasks(4, 2) == [[0, 2], [1, 3]]
    assert assign_tasks(2, 3) == [[0], [1], [0]]
    assert assign_tasks(3, 3) == [[0], [1], [2]]


def test_spec_validation_and_dict_roundtrip():
    spec = PolicySpec(4, BoxSpec(dim=2, low=0.0, high=1.0), use_lstm=False, mu_activation="tanh")
    assert PolicySpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(AutostructError, match="choices"):
        PolicySpec(4, CategoricalSpec(choices=()))
    with pytest.raises(AutostructError, match="mu_activation"):
        PolicySpec(4, BoxSpec(), mu_activation="relu")  # type: ignore[arg-type]
