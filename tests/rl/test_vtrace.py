"""V-trace against a slow reference written straight from the paper's sum (Espeholt et al. 2018, eq. 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autostruct.rl.env import BoxSpec, CategoricalSpec
from autostruct.rl.policy import Policy, PolicyOutput, PolicySpec
from autostruct.rl.vtrace import vtrace, vtrace_from_log_rhos


def vtrace_reference(log_rhos, discounts, rewards, values, bootstrap, rho_bar, c_bar, pg_rho_bar, lam):
    """v_s = V(x_s) + sum_{t=s}^{T-1} (prod_{k=s}^{t-1} gamma_k c_k) delta_t, in float64 double loops."""
    log_rhos, discounts, rewards, values, bootstrap = (
        np.asarray(x, dtype=np.float64) for x in (log_rhos, discounts, rewards, values, bootstrap)
    )
    T, B = values.shape
    rhos = np.exp(log_rhos)
    values_ext = np.concatenate([values, bootstrap[None]], axis=0)
    vs = np.zeros((T, B))
    for b in range(B):
        for s in range(T):
            v = values[s, b]
            for t in range(s, T):
                weight = 1.0
                for k in range(s, t):
                    weight *= discounts[k, b] * lam * min(c_bar, rhos[k, b])
                delta = min(rho_bar, rhos[t, b]) * (rewards[t, b] + discounts[t, b] * values_ext[t + 1, b] - values[t, b])
                v += weight * delta
            vs[s, b] = v
    vs_ext = np.concatenate([vs, bootstrap[None]], axis=0)
    pg = np.minimum(pg_rho_bar, rhos) * (rewards + discounts * vs_ext[1:] - values)
    return vs, pg


def _inputs(T, B, seed):
    g = torch.Generator().manual_seed(seed)
    # Per-column discounts, with an episode end (discount 0) in some columns.
    discounts = (0.9 + 0.09 * torch.rand(T, B, generator=g)).double()
    discounts[2, ::2] = 0.0
    rewards = torch.randn(T, B, generator=g).double()
    values = torch.randn(T, B, generator=g).double()
    bootstrap = torch.randn(B, generator=g).double()
    return discounts, rewards, values, bootstrap


PARAMS = [
    dict(rho_bar=1.0, c_bar=1.0, pg_rho_bar=1.0, lam=1.0),
    dict(rho_bar=2.0, c_bar=0.8, pg_rho_bar=1.5, lam=0.9),
    dict(rho_bar=0.7, c_bar=1.3, pg_rho_bar=3.0, lam=0.5),
]


@pytest.mark.parametrize("B", [1, 5])
@pytest.mark.parametrize("p", PARAMS)
def test_vtrace_matches_sum_definition(B, p):
    T = 5
    # rho from exp(-2.5) ~ 0.08 to exp(2.5) ~ 12, as in the IMPALA paper's test.
    log_rhos = (5 * (torch.arange(T * B, dtype=torch.float64) / (T * B) - 0.5)).view(T, B)
    discounts, rewards, values, bootstrap = _inputs(T, B, seed=B)
    got = vtrace_from_log_rhos(log_rhos, discounts, rewards, values, bootstrap, rho_bar=p["rho_bar"],
                               c_bar=p["c_bar"], pg_rho_bar=p["pg_rho_bar"], lambda_=p["lam"])
    vs, pg = vtrace_reference(log_rhos, discounts, rewards, values, bootstrap, p["rho_bar"], p["c_bar"],
                              p["pg_rho_bar"], p["lam"])
    np.testing.assert_allclose(got.vs.numpy(), vs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got.pg_advantages.numpy(), pg, rtol=1e-10, atol=1e-10)
    assert rhos_span(log_rhos) == pytest.approx((np.exp(-2.5), np.exp(2.5 - 5 / (T * B))), rel=1e-6)


def rhos_span(log_rhos):
    r = torch.exp(log_rhos)
    return float(r.min()), float(r.max())


def _heads(kind, T, B):
    """Behaviour and target distribution parameters that differ, plus actions sampled from behaviour."""
    g = torch.Generator().manual_seed(3)
    if kind == "gaussian":
        spec = PolicySpec(4, BoxSpec(dim=2), use_lstm=False, hidden_sizes=(8,))
        mu_b, mu_t = torch.rand(T, B, 2, generator=g), torch.rand(T, B, 2, generator=g)
        var_b, var_t = 0.1 + torch.rand(T, B, 2, generator=g), 0.1 + torch.rand(T, B, 2, generator=g)
        behaviour = PolicyOutput(value=torch.zeros(T, B), mu=mu_b, var=var_b)
        target = PolicyOutput(value=torch.zeros(T, B), mu=mu_t, var=var_t)
    else:
        spec = PolicySpec(4, CategoricalSpec(choices=(5,) * T), use_lstm=False, hidden_sizes=(8,))
        behaviour = PolicyOutput(value=torch.zeros(T, B), logits=torch.randn(T, B, 5, generator=g))
        target = PolicyOutput(value=torch.zeros(T, B), logits=2 * torch.randn(T, B, 5, generator=g))
    policy = Policy(spec)
    actions = policy.sample(behaviour, g)
    return policy.log_prob(behaviour, actions), policy.log_prob(target, actions)


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
@pytest.mark.parametrize("B", [1, 5])
def test_vtrace_with_policy_heads(kind, B):
    T = 5
    blogp, tlogp = _heads(kind, T, B)
    assert not torch.allclose(blogp, tlogp)
    discounts, rewards, values, bootstrap = (x.float() for x in _inputs(T, B, seed=7))
    p = PARAMS[1]
    got = vtrace(blogp, tlogp, discounts, rewards, values, bootstrap, rho_bar=p["rho_bar"], c_bar=p["c_bar"],
                 pg_rho_bar=p["pg_rho_bar"], lambda_=p["lam"])
    vs, pg = vtrace_reference(tlogp - blogp, discounts, rewards, values, bootstrap, p["rho_bar"], p["c_bar"],
                              p["pg_rho_bar"], p["lam"])
    np.testing.assert_allclose(got.vs.numpy(), vs, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got.pg_advantages.numpy(), pg, rtol=1e-4, atol=1e-4)


def test_on_policy_vtrace_is_n_step_return():
    T, B, gamma = 5, 3, 0.9
    g = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(T, B, generator=g).double(), torch.randn(T, B, generator=g).double()
    bootstrap = torch.randn(B, generator=g).double()
    logp = torch.randn(T, B, generator=g).double()
    out = vtrace(logp, logp, torch.full((T, B), gamma, dtype=torch.float64), rewards, values, bootstrap)
    for s in range(T):
        n_step = sum(gamma ** (t - s) * rewards[t] for t in range(s, T)) + gamma ** (T - s) * bootstrap
        torch.testing.assert_close(out.vs[s], n_step)


def test_vtrace_carries_no_gradient_and_checks_shapes():
    T, B = 3, 2
    values = torch.zeros(T, B, requires_grad=True)
    z = torch.zeros(T, B)
    out = vtrace(z, z, z, z, values, torch.zeros(B))
    assert not out.vs.requires_grad and not out.pg_advantages.requires_grad
    with pytest.raises(ValueError, match="bootstrap_value"):
        vtrace(z, z, z, z, z, torch.zeros(B + 1))
