"""The learner: turns batches of trajectories into one optimizer step and a new weight version.

Loss (IMPALA; sums over time and batch, as in the paper's implementation)::

    loss = policy_gradient + baseline_cost * 0.5 * sum (target - V)^2 - entropy_cost * sum entropy

Before the loss, rewards are centred per task (``rl.reward_norm="task"``, a per-task baseline): the running
mean ``m_i`` of task ``i``'s recent episode returns is subtracted at each episode's last step, so tasks at FLOPs
ratio 0.3 and 0.7 (returns around 0.5 and 0.9) give advantages on one footing and the value head starts near its
target. Returns are not divided by their std: as a policy converges that std shrinks, the targets the value head
learned keep changing scale, and the toy tasks were learned clearly worse (greedy reward 0.79-0.86 against
0.97-0.98 centred only). ``algorithm="critic"`` does divide by it (its critic is refit on replay at every step), and so does
``rl.reward_norm="task_std"``: the NAS controller's default, where an architecture's reward spread is anything
from 1 to 20 points and the entropy cost should weigh the same against it.
Steps the env marked forced take no part in the policy-gradient and entropy terms (``rl.mask_forced``); the
value head still learns from them.

``algorithm="vtrace"`` uses V-trace targets and advantages (pruning: n-step unrolls across episodes);
``algorithm="mc"`` uses Monte Carlo returns of whole episodes with truncated importance weights (NAS);
``algorithm="critic"`` is the multi-task off-policy actor-critic of ``rl/critic.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from autostruct.config import RLConfig
from autostruct.errors import AutostructError
from autostruct.rl.critic import Critic, actor_loss, critic_loss
from autostruct.rl.policy import Policy
from autostruct.rl.returns import (
    MovingAverageBaseline,
    discounted_returns,
    mc_policy_gradient_loss,
    truncated_importance_weights,
)
from autostruct.rl.trajectory import Trajectory, collate
from autostruct.rl.vtrace import vtrace

Algorithm = Literal["vtrace", "mc", "critic"]
ALGORITHMS = ("vtrace", "mc", "critic")


class TaskRewardStats:
    """Running mean and std of episode returns per task id (exponential, horizon ``window`` episodes).

    The first episodes of a task are averaged plainly (weight ``1/n``) so early statistics are not dominated by
    the first sample; after ``window`` episodes each new one weighs ``1/window``.
    """

    #: Episodes of a task before its std is trusted; until then returns are centred but not scaled (a std from
    #: two or three samples can be tiny and blow the first advantages up by orders of magnitude).
    MIN_COUNT = 5

    def __init__(self, window: int, min_std: float = 1e-3) -> None:
        self.window, self.min_std = window, min_std
        self.count: dict[int, int] = {}
        self.mean: dict[int, float] = {}
        self.var: dict[int, float] = {}

    def observe(self, task_id: int, value: float) -> None:
        n = self.count.get(task_id, 0) + 1
        self.count[task_id] = n
        if n == 1:
            self.mean[task_id], self.var[task_id] = float(value), 0.0
            return
        w = max(1.0 / n, 1.0 / self.window)
        delta = float(value) - self.mean[task_id]
        self.mean[task_id] += w * delta
        self.var[task_id] = (1 - w) * (self.var[task_id] + w * delta * delta)

    def scale(self, task_id: int) -> tuple[float, float]:
        """``(mean, std)`` of ``task_id``; (0, 1) before its first episode, std floored at ``min_std``."""
        if task_id not in self.count:
            return 0.0, 1.0
        std = self.var[task_id] ** 0.5 if self.count[task_id] >= self.MIN_COUNT else 1.0
        return self.mean[task_id], max(std, self.min_std)

    def state_dict(self) -> dict[str, Any]:
        return {"count": dict(self.count), "mean": dict(self.mean), "var": dict(self.var)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = {int(k): int(v) for k, v in state["count"].items()}
        self.mean = {int(k): float(v) for k, v in state["mean"].items()}
        self.var = {int(k): float(v) for k, v in state["var"].items()}


def task_scales(task_id: torch.Tensor, stats: TaskRewardStats) -> tuple[torch.Tensor, torch.Tensor]:
    """Per batch column: the running mean and std of its task's episode returns, shapes ``[B]``."""
    means, stds = zip(*(stats.scale(int(t)) for t in task_id), strict=True)
    return torch.tensor(means, dtype=torch.float32), torch.tensor(stds, dtype=torch.float32)


class Learner:
    """Owns the trained policy and its optimizer; :attr:`version` counts updates (the weight version)."""

    def __init__(self, policy: Policy, rl: RLConfig, algorithm: Algorithm = "vtrace", seed: int = 0) -> None:
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
        self.reward_stats = TaskRewardStats(rl.reward_norm_window)
        self.critic: Critic | None = None
        self._critic_optimizer: torch.optim.Optimizer | None = None
        if algorithm == "critic":
            if not policy.spec.continuous:
                raise AutostructError(
                    "rl.algorithm 'critic' needs continuous (Box) actions, as pruning has; for categorical ones (NAS) "
                    "use 'mc'."
                )
            # Seeded apart from the global RNG, so a run's result does not depend on what the process drew before.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.critic = Critic(policy.spec.observation_size, policy.spec.action_input_size)
            self._critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=rl.learning_rate, eps=rl.adam_eps)
            self._noise = torch.Generator().manual_seed(seed)

    def observe_episode(self, task_id: int, episode_return: float) -> None:
        """Feed one finished episode's return into the per-task reward statistics."""
        self.reward_stats.observe(int(task_id), float(episode_return))

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        # Built on first use: the first optimizer of a process imports torch._dynamo (seconds), which run_impala
        # overlaps with the actors' start-up.
        if self._optimizer is None:
            rl = self.rl
            if rl.optimizer == "adam":
                self._optimizer = torch.optim.Adam(self.policy.parameters(), lr=rl.learning_rate, eps=rl.adam_eps)
            else:
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

    def update(self, trajectories: Sequence[Trajectory], replayed: bool = False) -> dict[str, float]:
        """One gradient step on ``trajectories``; returns scalar stats (losses, entropy, policy lag, ...).

        ``replayed``: the trajectories were learned from before; the moving-average baseline then does not
        average their returns again (it would drift towards old policies' returns and count them twice).
        """
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
        # Steps whose action changed nothing carry no policy gradient, only noise.
        chosen = (valid & ~batch.forced) if rl.mask_forced else valid
        chosenf = chosen.to(values.dtype)
        discounts = rl.discount * (~batch.done).to(values.dtype)
        reward = batch.reward
        if rl.reward_norm in ("task", "task_std"):
            mean, std = task_scales(batch.task_id, self.reward_stats)
            reward = reward - batch.done.to(reward.dtype) * mean
            if self.algorithm == "critic" or rl.reward_norm == "task_std":
                reward = reward / std
        log_rhos = (target_log_prob.detach() - batch.behaviour_log_prob) * validf

        critic_stats: dict[str, float] = {}
        if self.algorithm == "critic":
            assert self.critic is not None and self._critic_optimizer is not None
            returns = discounted_returns(reward * validf, (~batch.done).to(values.dtype) * validf)
            noise = torch.randn(step_out.mu.shape, generator=self._noise)
            u = step_out.mu + step_out.var.sqrt() * noise
            obs = batch.inputs.obs[:T]
            q_loss = critic_loss(self.critic, obs, (torch.tanh(batch.action) + 1) / 2, returns, valid)
            self._critic_optimizer.zero_grad(set_to_none=True)
            q_loss.backward()
            nn.utils.clip_grad_norm_(self.critic.parameters(), rl.grad_clip)
            self._critic_optimizer.step()
            # The actor ascends the critic as it is after this step.
            pg_loss, critic_stats = actor_loss(self.critic, obs, (torch.tanh(u) + 1) / 2, entropy, chosen,
                                               rl.entropy_cost)
            critic_stats["critic_loss"] = float(q_loss.detach())
            targets, value_weights = returns, validf
        elif self.algorithm == "vtrace":
            vt = vtrace(
                batch.behaviour_log_prob,
                target_log_prob.detach(),
                discounts,
                reward,
                values[:T].detach(),
                values[T].detach(),
                rho_bar=rl.rho_bar,
                c_bar=rl.c_bar,
                pg_rho_bar=rl.pg_rho_bar,
                lambda_=rl.vtrace_lambda,
            )
            targets = vt.vs
            pg_loss = -(vt.pg_advantages * target_log_prob * chosenf).sum()
            value_weights = validf
        else:
            targets = discounted_returns(reward * validf, discounts * validf)
            weights = truncated_importance_weights(log_rhos, rl.is_truncation, rl.is_mode, valid)
            if self.baseline is not None:
                base = self.baseline.value(batch.task_id, batch.inputs.step[:T])
                if not replayed:
                    self.baseline.update(targets, batch.task_id, batch.inputs.step[:T], valid)
            else:
                base = values[:T].detach()
            pg_loss = mc_policy_gradient_loss(target_log_prob, targets, base, weights, chosen)
            # The value head regresses on the behaviour policy's returns, reweighted towards the target policy.
            value_weights = weights
        baseline_loss = 0.5 * (((targets - values[:T]) ** 2) * value_weights).sum()
        entropy_sum = (entropy * chosenf).sum()
        if self.algorithm == "critic":  # the entropy term is inside the actor loss (per-step means)
            loss = pg_loss + rl.baseline_cost * baseline_loss / max(float(validf.sum()), 1.0)
        else:
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
            "entropy": float(entropy_sum.detach()) / max(float(chosenf.sum()), 1.0),
            "forced_share": 1.0 - float(chosenf.sum()) / max(n_valid, 1.0),
            "grad_norm": float(grad_norm),
            "policy_lag_mean": float(lag.mean()),
            "policy_lag_max": float(lag.max()),
            "rho_mean": float((log_rhos.exp() * validf).sum()) / max(n_valid, 1.0),
            "value_mean": float((values[:T].detach() * validf).sum()) / max(n_valid, 1.0),
            "batch_steps": n_valid,
            **critic_stats,
            **({} if out.var is None else {
                "policy_sigma2": float((step_out.var.detach().mean(-1) * validf).sum()) / max(n_valid, 1.0),
                "policy_mu_abs": float((step_out.mu.detach().abs().mean(-1) * validf).sum()) / max(n_valid, 1.0),
            }),
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
            "reward_stats": self.reward_stats.state_dict(),
            "critic": None if self.critic is None else self.critic.state_dict(),
            "critic_optimizer": None if self._critic_optimizer is None else self._critic_optimizer.state_dict(),
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
        if state.get("reward_stats") is not None:
            self.reward_stats.load_state_dict(state["reward_stats"])
        if self.critic is not None and state.get("critic") is not None:
            self.critic.load_state_dict(state["critic"])
            self._critic_optimizer.load_state_dict(state["critic_optimizer"])  # type: ignore[union-attr]
