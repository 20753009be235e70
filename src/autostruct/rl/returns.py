"""Monte Carlo returns with truncated importance weights, for episodic (NAS) rewards.

Actors send whole episodes. The learner's policy pi has moved on since the behaviour policy mu sampled them, so
each term of the REINFORCE gradient is reweighted by a truncated importance weight (truncation ``c``):

* ``step``:       ``w_t = min(c, pi(a_t|s_t) / mu(a_t|s_t))`` (the per-step ratio, as V-trace's policy gradient);
* ``trajectory``: ``w   = min(c, prod_t pi(a_t|s_t) / mu(a_t|s_t))`` (one weight for the whole episode).

Loss: ``-sum_t w_t (G_t - b_t) log pi(a_t|s_t)`` with ``G_t = sum_k gamma^(k-t) r_k`` and a baseline ``b_t``,
either the value head (detached) or a moving average of returns per (task, step) (ENAS-style).
Inputs are time-major ``[T, B]``; ``valid`` marks real steps of padded episodes.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

ISMode = Literal["step", "trajectory"]


@torch.no_grad()
def discounted_returns(rewards: Tensor, discounts: Tensor, bootstrap_value: Tensor | None = None) -> Tensor:
    """``G_t = r_t + discounts_t * G_{t+1}``, ``G_T = bootstrap_value`` (zero by default)."""
    acc = torch.zeros_like(rewards[0]) if bootstrap_value is None else bootstrap_value.clone()
    out = torch.empty_like(rewards)
    for t in range(rewards.shape[0] - 1, -1, -1):
        acc = rewards[t] + discounts[t] * acc
        out[t] = acc
    return out


@torch.no_grad()
def truncated_importance_weights(
    log_rhos: Tensor, truncation: float, mode: ISMode = "step", valid: Tensor | None = None
) -> Tensor:
    """Importance weights ``[T, B]`` truncated at ``truncation``; zero on invalid (padding) steps."""
    if valid is not None:
        log_rhos = torch.where(valid, log_rhos, torch.zeros_like(log_rhos))
    if mode == "step":
        w = torch.exp(log_rhos).clamp(max=truncation)
    elif mode == "trajectory":
        # Sum in log space: a long episode's product of ratios over/underflows quickly.
        w = torch.exp(log_rhos.sum(0, keepdim=True)).clamp(max=truncation).expand_as(log_rhos).clone()
    else:
        raise ValueError(f"importance weight mode must be 'step' or 'trajectory', got '{mode}'")
    if valid is not None:
        w = w * valid.to(w.dtype)
    return w


def mc_policy_gradient_loss(
    target_log_probs: Tensor, returns: Tensor, baseline: Tensor, weights: Tensor, valid: Tensor | None = None
) -> Tensor:
    """``-sum w_t (G_t - b_t) log pi(a_t|s_t)`` over valid steps; gradient flows through the log-probs only."""
    advantages = (returns - baseline).detach() * weights.detach()
    terms = -advantages * target_log_probs
    if valid is not None:
        terms = terms * valid.to(terms.dtype)
    return terms.sum()


class MovingAverageBaseline:
    """Exponential moving average of returns per (task, step); ``decay`` weights the old average."""

    def __init__(self, decay: float = 0.9) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.averages: dict[tuple[int, int], float] = {}

    def value(self, task_ids: Tensor, steps: Tensor) -> Tensor:
        """Baseline ``[T, B]`` for episodes of tasks ``task_ids [B]`` at step indices ``steps [T, B]``; 0 when unseen."""
        T, B = steps.shape
        out = torch.zeros(T, B)
        for b in range(B):
            task = int(task_ids[b])
            for t in range(T):
                out[t, b] = self.averages.get((task, int(steps[t, b])), 0.0)
        return out

    def update(self, returns: Tensor, task_ids: Tensor, steps: Tensor, valid: Tensor) -> None:
        T, B = returns.shape
        for b in range(B):
            task = int(task_ids[b])
            for t in range(T):
                if not bool(valid[t, b]):
                    continue
                key = (task, int(steps[t, b]))
                g = float(returns[t, b])
                # First sight initialises the average to the return itself, so early advantages are not all G.
                self.averages[key] = g if key not in self.averages else self.decay * self.averages[key] + (1 - self.decay) * g

    def state_dict(self) -> dict[str, list[list[float]]]:
        return {"averages": [[k[0], k[1], v] for k, v in sorted(self.averages.items())]}

    def load_state_dict(self, state: dict[str, list[list[float]]]) -> None:
        self.averages = {(int(t), int(s)): float(v) for t, s, v in state["averages"]}
