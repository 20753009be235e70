"""The multi-task off-policy actor-critic (``algorithm="critic"``): one critic for all tasks, learned on replay.

AMC's DDPG learns one task at a time; the issue that asked for a learning engine measured that a DDPG-style
learner with *one* critic conditioned on the task's features (ratio, dataset) and a shared replay beat both
per-task learners and the on-policy V-trace learner at a few hundred episodes. This module is that learner on
IMPALA's actors: actors play whole episodes with the stochastic policy; the learner

- regresses ``Q(s_t, a_t)`` (``a_t`` the executed action in [0, 1]) on the return that followed, ``G_t``,
  standardized per task (AMC's credit assignment: with the reward at the last step, every step of an episode
  is credited with its final reward; no bootstrapping, so no target network);
- moves the policy up the critic: ``a = (tanh(mu + sigma * eps) + 1) / 2`` (reparameterized), loss
  ``-Q(s, a) - entropy_cost * H(a)``, with the executed action's entropy and forced steps left out.

Replayed trajectories are used as they are (the critic estimates returns under the replay's mixture of recent
policies, as AMC's does), so ``rl.replay_ratio`` sets how many gradient steps each fresh batch buys.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Critic(nn.Module):
    """``Q(obs, action)``: an MLP over the observation (which carries the task's features) and the action."""

    def __init__(self, observation_size: int, action_size: int, hidden: tuple[int, ...] = (256, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = observation_size + action_size
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: Tensor, action: Tensor) -> Tensor:
        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1)


def critic_loss(critic: Critic, obs: Tensor, executed: Tensor, returns: Tensor, valid: Tensor) -> Tensor:
    """Mean squared error of ``Q(s_t, a_t)`` against the returns that followed (time-major ``[T, B, ...]``)."""
    validf = valid.float()
    return (((critic(obs, executed) - returns) ** 2) * validf).sum() / validf.sum().clamp(min=1.0)


def actor_loss(critic: Critic, obs: Tensor, policy_action: Tensor, entropy: Tensor, chosen: Tensor,
               entropy_cost: float) -> tuple[Tensor, dict[str, float]]:
    """``-mean(Q(s, a) + entropy_cost * H)`` over the steps whose action mattered (``chosen``).

    ``policy_action``: reparameterized actions of the current policy, so the gradient reaches the policy through
    them; the critic's parameters are frozen while it is evaluated.
    """
    chosenf = chosen.float()
    m = chosenf.sum().clamp(min=1.0)
    for p in critic.parameters():
        p.requires_grad_(False)
    try:
        q_pi = critic(obs, policy_action)
    finally:
        for p in critic.parameters():
            p.requires_grad_(True)
    loss = -((q_pi * chosenf).sum() + entropy_cost * (entropy * chosenf).sum()) / m
    return loss, {"q_policy_mean": float((q_pi.detach() * chosenf).sum() / m)}
