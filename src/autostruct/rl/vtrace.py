"""V-trace off-policy targets (Espeholt et al., "IMPALA", ICML 2018, section 4).

With ``rho_t = min(rho_bar, pi(a_t|x_t) / mu(a_t|x_t))`` and ``c_i = lambda * min(c_bar, pi / mu)``::

    delta_t = rho_t * (r_t + gamma_t * V(x_{t+1}) - V(x_t))
    v_s     = V(x_s) + delta_s + gamma_s * c_s * (v_{s+1} - V(x_{s+1})),     v_T = V(x_T) (bootstrap)
    A_s     = min(pg_rho_bar, pi / mu)_s * (r_s + gamma_s * v_{s+1} - V(x_s))

``gamma_t`` is a per-step discount (``discount * (1 - done_t)``), so an unroll may cross episode boundaries.
All inputs are time-major ``[T, B]``; ``bootstrap_value`` is ``[B]``. Nothing here carries gradient.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class VTraceReturns(NamedTuple):
    vs: Tensor  # [T, B] value targets
    pg_advantages: Tensor  # [T, B] advantages for the policy gradient


@torch.no_grad()
def vtrace(
    behaviour_log_probs: Tensor,
    target_log_probs: Tensor,
    discounts: Tensor,
    rewards: Tensor,
    values: Tensor,
    bootstrap_value: Tensor,
    *,
    rho_bar: float = 1.0,
    c_bar: float = 1.0,
    pg_rho_bar: float = 1.0,
    lambda_: float = 1.0,
) -> VTraceReturns:
    """V-trace targets ``vs`` and policy-gradient advantages from behaviour and target log-probs.

    Example (on-policy, lambda = 1: ``vs`` are n-step returns)::

        >>> z = torch.zeros(2, 1)
        >>> vtrace(z, z, torch.full((2, 1), 0.5), torch.ones(2, 1), z, torch.tensor([4.0])).vs
        tensor([[2.5000],
                [3.0000]])
    """
    log_rhos = target_log_probs - behaviour_log_probs
    return vtrace_from_log_rhos(
        log_rhos, discounts, rewards, values, bootstrap_value,
        rho_bar=rho_bar, c_bar=c_bar, pg_rho_bar=pg_rho_bar, lambda_=lambda_,
    )


@torch.no_grad()
def vtrace_from_log_rhos(
    log_rhos: Tensor,
    discounts: Tensor,
    rewards: Tensor,
    values: Tensor,
    bootstrap_value: Tensor,
    *,
    rho_bar: float = 1.0,
    c_bar: float = 1.0,
    pg_rho_bar: float = 1.0,
    lambda_: float = 1.0,
) -> VTraceReturns:
    """:func:`vtrace` given ``log_rhos = log pi - log mu`` directly."""
    if not (log_rhos.shape == discounts.shape == rewards.shape == values.shape):
        raise ValueError(
            f"vtrace inputs must share shape [T, B]; got log_rhos {tuple(log_rhos.shape)}, discounts "
            f"{tuple(discounts.shape)}, rewards {tuple(rewards.shape)}, values {tuple(values.shape)}"
        )
    if bootstrap_value.shape != values.shape[1:]:
        raise ValueError(f"bootstrap_value must be [B]={tuple(values.shape[1:])}, got {tuple(bootstrap_value.shape)}")
    rhos = torch.exp(log_rhos)
    clipped_rhos = rhos.clamp(max=rho_bar)
    cs = lambda_ * rhos.clamp(max=c_bar)
    values_tp1 = torch.cat([values[1:], bootstrap_value.unsqueeze(0)], dim=0)
    deltas = clipped_rhos * (rewards + discounts * values_tp1 - values)

    acc = torch.zeros_like(bootstrap_value)
    vs_minus_v = torch.empty_like(values)
    for t in range(values.shape[0] - 1, -1, -1):
        acc = deltas[t] + discounts[t] * cs[t] * acc
        vs_minus_v[t] = acc
    vs = values + vs_minus_v

    vs_tp1 = torch.cat([vs[1:], bootstrap_value.unsqueeze(0)], dim=0)
    pg_advantages = rhos.clamp(max=pg_rho_bar) * (rewards + discounts * vs_tp1 - values)
    return VTraceReturns(vs=vs, pg_advantages=pg_advantages)
