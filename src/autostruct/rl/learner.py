"""The learner: turns batches of trajectories into one RMSProp step and a new weight version.

Loss (IMPALA; sums over time and batch, as in the paper's implementation)::

    loss = policy_gradient + baseline_cost * 0.5 * sum (target - V)^2 - entropy_cost * sum entropy

``algorithm="vtrace"`` uses V-trace targets and advantages (pruning: n-step unrolls across episodes);
``algorithm="mc"`` uses Monte Carlo returns of whole episodes with truncated importance weights (NAS).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from autostruct.config import RLConfig
from autostruct.rl.policy import Policy
from autostruct.rl.returns import (
    MovingAverageBaseline,
    discounted_returns,
    mc_policy_gradient_loss,
    truncated_importance_weights,
)
from autostruct.rl.trajectory import Trajectory, collate
from autostruct.rl.vtrace import vtrace

Algorithm = Literal["vtrace", "mc"]
ALGORITHMS = ("vtrace", "mc")


class Learner:
    """Owns the trained policy and its optimizer; :attr:`version` counts updates (the weight version)."""

    def __init__(self, policy: Policy, rl: RLConfig, algorithm: Algorithm = "vtrace") -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got '{algorithm}'")
        self.policy = policy
        self.rl = rl
        self.algorithm = algorithm
        self._optimizer: torch.optim.Optimizer | None = None
        self._pending_optimizer_state: dict[str, Any] | None = None
        self.version = 0
        self.baseline = (
            MovingAverageBaseline(rl.baseline_decay) if algorithm == "mc" and rl.mc_baseline == "moving_average" else None
        )

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        # Built on first use: the first optimizer of a process imports torch._dynamo (seconds), which run_impala
        # overlaps with the actors' start-up.
        if self._optimizer is None:
            rl = self.rl
            self._optimizer = torch.optim.RMSprop(
                self.policy.parameters(),
                lr=rl.learning_rate,
                alpha=rl.rmsprop_decay,
                eps=rl.rmsprop_eps,
                momentum=rl.rmsprop_momentum,
            )
            if self._pending_optimizer_state is not None:
                self._optimizer.load_state_dict(self._pending_optimizer_state)
                self._pending_optimizer_state = None
        return self._optimizer

    def update(self, trajectories: Sequence[Trajectory]) -> dict[str, float]:
        """One gradient step on ``trajectories``; returns scalar stats (losses, entropy, policy lag, ...)."""
        batch = collate(list(trajectories))
        rl = self.rl
        self.policy.train()
        out, _ = self.policy(batch.inputs, batch.core_state)
        T = batch.reward.shape[0]
        step_out = type(out)(*(None if x is None else x[:T] for x in out))
        target_log_prob = self.policy.log_prob(step_out, batch.action)
        entropy = self.policy.entropy(step_out)
        values = out.value
        valid = batch.valid
        validf = valid.to(values.dtype)
        discounts = rl.discount * (~batch.done).to(values.dtype)
        log_rhos = (target_log_prob.detach() - batch.behaviour_log_prob) * validf

        if self.algorithm == "vtrace":
            vt = vtrace(
                batch.behaviour_log_prob,
                target_log_prob.detach(),
                discounts,
                batch.reward,
                values[:T].detach(),
                values[T].detach(),
                rho_bar=rl.rho_bar,
                c_bar=rl.c_bar,
                pg_rho_bar=rl.pg_rho_bar,
                lambda_=rl.vtrace_lambda,
            )
            targets = vt.vs
            pg_loss = -(vt.pg_advantages * target_log_prob * validf).sum()
            value_weights = validf
        else:
            targets = discounted_returns(batch.reward * validf, discounts * validf)
            weights = truncated_importance_weights(log_rhos, rl.is_truncation, rl.is_mode, valid)
            if self.baseline is not None:
                base = self.baseline.value(batch.task_id, batch.inputs.step[:T])
                self.baseline.update(targets, batch.task_id, batch.inputs.step[:T], valid)
            else:
                base = values[:T].detach()
            pg_loss = mc_policy_gradient_loss(target_log_prob, targets, base, weights, valid)
            # The value head regresses on the behaviour policy's returns, reweighted towards the target policy.
            value_weights = weights
        baseline_loss = 0.5 * (((targets - values[:T]) ** 2) * value_weights).sum()
        entropy_sum = (entropy * validf).sum()
        loss = pg_loss + rl.baseline_cost * baseline_loss - rl.entropy_cost * entropy_sum

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.policy.parameters(), rl.grad_clip)
        self.optimizer.step()
        self.version += 1

        n_valid = float(validf.sum())
        lag = (self.version - 1 - batch.policy_version).to(torch.float32)
        return {
            "loss": float(loss.detach()),
            "pg_loss": float(pg_loss.detach()),
            "baseline_loss": float(baseline_loss.detach()),
            "entropy": float(entropy_sum.detach()) / max(n_valid, 1.0),
            "grad_norm": float(grad_norm),
            "policy_lag_mean": float(lag.mean()),
            "policy_lag_max": float(lag.max()),
            "rho_mean": float((log_rhos.exp() * validf).sum()) / max(n_valid, 1.0),
            "value_mean": float((values[:T].detach() * validf).sum()) / max(n_valid, 1.0),
            "batch_steps": n_valid,
        }

    def weights(self) -> dict[str, torch.Tensor]:
        """The current weights (detached views; copy them before handing them to another thread)."""
        return {k: v.detach() for k, v in self.policy.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "version": self.version,
            "baseline": self.baseline.state_dict() if self.baseline is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        if self._optimizer is None:
            self._pending_optimizer_state = state["optimizer"]
        else:
            self._optimizer.load_state_dict(state["optimizer"])
        self.version = int(state["version"])
        if self.baseline is not None and state.get("baseline") is not None:
            self.baseline.load_state_dict(state["baseline"])
