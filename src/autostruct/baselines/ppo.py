"""Single-task PPO (Schulman et al. 2017, "Proximal Policy Optimization Algorithms"), the MTACP paper's ablation.

Written from the paper: collect ``episodes_per_update`` whole episodes with the current policy, compute
generalized advantage estimates (GAE, Schulman et al. 2016) with the value head, then run ``update_epochs``
passes of minibatch Adam on the clipped surrogate

    L = E[min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)] - c_v L_value + c_e H,   r_t = pi(a_t|s_t) / pi_old(a_t|s_t)

with advantages normalized per minibatch, a clipped value loss and a global gradient-norm clip (the usual
PPO implementation details). The agent is MTACP's network without the LSTM: an MLP torso, the previous
action and reward concatenated, a Gaussian head (``mu``, ``sigma^2``) and a value head, actions squashed with
``(tanh(u) + 1) / 2`` (:class:`autostruct.rl.policy.Policy` with ``use_lstm=False``). Log-probs are those of the
pre-squash sample, so the squash's Jacobian cancels in ``r_t``.

The env maps each action into its own budget wall, so PPO is compared with the other searchers on the same
MDP, evaluation subset and episode budget. Like every searcher here it keeps the best episode it has seen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from autostruct.baselines.common import BestTracker, SearchResult
from autostruct.errors import AutostructError
from autostruct.rl.env import BoxSpec, Env
from autostruct.rl.policy import PolicyInputs, PolicySpec, make_policy


@dataclass(frozen=True)
class PPOConfig:
    """PPO settings: the paper's (and common implementations') defaults, sized for episodes of ~10-60 steps."""

    #: Whole episodes collected between two updates (the "K" of "update every K episodes").
    episodes_per_update: int = 8
    update_epochs: int = 10
    minibatches: int = 4
    lr: float = 3e-4
    #: Discount and GAE lambda. The reward is sparse (at the last step), so gamma < 1 only shortens credit.
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    #: Clip the value loss around the old values as well (PPO2 implementations do this by default).
    clip_value: bool = True
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    max_grad_norm: float = 0.5
    normalize_advantages: bool = True
    #: Stop an update's epochs early once the approximate KL to the old policy passes this (None: never).
    target_kl: float | None = None
    hidden_sizes: tuple[int, ...] = (100, 400, 300)
    #: As in the MTACP agent by default; ``tanh`` widens the greedy action range (see PolicySpec).
    mu_activation: Literal["sigmoid", "tanh"] = "sigmoid"
    min_variance: float = 0.01

    def validate(self) -> None:
        for name in ("episodes_per_update", "update_epochs", "minibatches"):
            if getattr(self, name) < 1:
                raise AutostructError(f"PPOConfig.{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("lr", "clip_eps", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise AutostructError(f"PPOConfig.{name} must be > 0, got {getattr(self, name)}.")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise AutostructError(f"PPOConfig.{name} must be in [0, 1], got {getattr(self, name)}.")
        if self.value_coef < 0 or self.entropy_coef < 0:
            raise AutostructError("PPOConfig.value_coef and entropy_coef must be >= 0.")


def gae(
    rewards: np.ndarray, values: np.ndarray, dones: np.ndarray, bootstrap_value: float, gamma: float, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """Generalized advantage estimates and value targets over one time-ordered stream of steps.

    ``A_t = sum_k (gamma lam)^k delta_{t+k}`` with ``delta_t = r_t + gamma V(s_{t+1}) (1 - done_t) - V(s_t)``,
    cut at episode ends; ``bootstrap_value`` is ``V`` after the last step (ignored if that step ends an episode).
    Returns ``(advantages, returns)`` with ``returns = advantages + values``.
    """
    n = len(rewards)
    adv = np.zeros(n, dtype=np.float64)
    next_value, next_adv = float(bootstrap_value), 0.0
    for t in reversed(range(n)):
        nonterminal = 0.0 if dones[t] else 1.0
        delta = rewards[t] + gamma * next_value * nonterminal - values[t]
        next_adv = delta + gamma * lam * nonterminal * next_adv
        adv[t] = next_adv
        next_value = values[t]
    return adv, adv + np.asarray(values, dtype=np.float64)


class _Rollouts:
    """Steps of the episodes since the last update, flat and in time order."""

    def __init__(self) -> None:
        self.obs: list[np.ndarray] = []
        self.prev_action: list[np.ndarray] = []
        self.prev_reward: list[float] = []
        self.action: list[np.ndarray] = []
        self.log_prob: list[float] = []
        self.value: list[float] = []
        self.reward: list[float] = []
        self.done: list[bool] = []

    def __len__(self) -> int:
        return len(self.reward)

    def inputs(self) -> PolicyInputs:
        # Without an LSTM every step is independent: lay the steps out as one time step of a batch.
        n = len(self.obs)
        return PolicyInputs(
            obs=torch.from_numpy(np.stack(self.obs))[None],
            prev_action=torch.from_numpy(np.stack(self.prev_action))[None],
            prev_reward=torch.tensor(self.prev_reward, dtype=torch.float32)[None],
            first=torch.ones(1, n, dtype=torch.bool),
            step=torch.zeros(1, n, dtype=torch.int64),
        )


def _one_step(obs: np.ndarray, prev_action: np.ndarray, prev_reward: float) -> PolicyInputs:
    return PolicyInputs(
        obs=torch.from_numpy(obs).view(1, 1, -1),
        prev_action=torch.from_numpy(prev_action).view(1, 1, -1),
        prev_reward=torch.tensor([[prev_reward]], dtype=torch.float32),
        first=torch.ones(1, 1, dtype=torch.bool),
        step=torch.zeros(1, 1, dtype=torch.int64),
    )


def ppo_search(env: Env, episodes: int, *, seed: int = 0, config: PPOConfig | None = None) -> SearchResult:
    """Run PPO for ``episodes`` episodes in ``env`` (continuous actions in [0, 1]) and keep the best episode.

    Updates happen after every ``config.episodes_per_update`` episodes (not after the last batch, which
    nothing would use). ``best_info`` is the env's info dict of the best episode.
    """
    cfg = config or PPOConfig()
    cfg.validate()
    if episodes < 1:
        raise AutostructError(f"episodes must be >= 1, got {episodes}.")
    if not isinstance(env.action_spec, BoxSpec):
        raise AutostructError("ppo_search needs an env with continuous actions (BoxSpec), e.g. a PruningEnv.")
    spec = PolicySpec.from_env(env, use_lstm=False, hidden_sizes=tuple(cfg.hidden_sizes),
                               mu_activation=cfg.mu_activation, min_variance=cfg.min_variance)
    policy = make_policy(spec, seed)
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr, eps=1e-5)
    generator = torch.Generator().manual_seed(seed)
    shuffle = np.random.default_rng(seed)
    tracker = BestTracker()
    buf = _Rollouts()
    start = time.perf_counter()

    def update() -> None:
        inputs_all = buf.inputs()
        adv, ret = gae(np.asarray(buf.reward), np.asarray(buf.value), np.asarray(buf.done), 0.0, cfg.gamma,
                       cfg.gae_lambda)
        adv_t, ret_t = torch.as_tensor(adv, dtype=torch.float32), torch.as_tensor(ret, dtype=torch.float32)
        old_logp = torch.tensor(buf.log_prob, dtype=torch.float32)
        old_value = torch.tensor(buf.value, dtype=torch.float32)
        actions = torch.from_numpy(np.stack(buf.action))
        n = len(buf)
        size = max(1, n // cfg.minibatches)
        for _ in range(cfg.update_epochs):
            order = shuffle.permutation(n)
            kls = []
            for lo in range(0, n, size):
                mb = torch.from_numpy(order[lo : lo + size])
                inputs = PolicyInputs(*(t[:, mb] if t is not None else None for t in inputs_all))
                out, _ = policy(inputs)
                logp = policy.log_prob(out, actions[mb][None])[0]
                log_ratio = logp - old_logp[mb]
                ratio = log_ratio.exp()
                a = adv_t[mb]
                if cfg.normalize_advantages and len(mb) > 1:
                    a = (a - a.mean()) / (a.std() + 1e-8)
                pg_loss = torch.max(-a * ratio, -a * ratio.clamp(1 - cfg.clip_eps, 1 + cfg.clip_eps)).mean()
                value = out.value[0]
                if cfg.clip_value:
                    clipped = old_value[mb] + (value - old_value[mb]).clamp(-cfg.clip_eps, cfg.clip_eps)
                    v_loss = 0.5 * torch.max((value - ret_t[mb]) ** 2, (clipped - ret_t[mb]) ** 2).mean()
                else:
                    v_loss = 0.5 * ((value - ret_t[mb]) ** 2).mean()
                entropy = policy.entropy(out)[0].mean()
                loss = pg_loss + cfg.value_coef * v_loss - cfg.entropy_coef * entropy
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
                optimizer.step()
                with torch.no_grad():
                    # The low-variance KL estimator (ratio - 1) - log ratio.
                    kls.append(float(((ratio - 1) - log_ratio).mean()))
            if cfg.target_kl is not None and np.mean(kls) > cfg.target_kl:
                break

    for episode in range(episodes):
        obs = np.asarray(env.reset(), dtype=np.float32)
        prev_action = np.zeros(spec.action_input_size, dtype=np.float32)
        prev_reward, done, reward, info = 0.0, False, 0.0, {}
        for _ in range(int(env.max_episode_steps)):
            buf.obs.append(obs)
            buf.prev_action.append(prev_action)
            buf.prev_reward.append(prev_reward)
            with torch.no_grad():
                out, _ = policy(_one_step(obs, prev_action, prev_reward))
                u = policy.sample(out, generator)
                buf.log_prob.append(float(policy.log_prob(out, u)[0, 0]))
                buf.value.append(float(out.value[0, 0]))
            buf.action.append(u[0, 0].numpy().copy())
            env_action = policy.to_env_action(u[0, 0])
            obs, reward, done, info = env.step(env_action)
            obs = np.asarray(obs, dtype=np.float32)
            buf.reward.append(float(reward))
            buf.done.append(bool(done))
            if done:
                break
            prev_action, prev_reward = policy.encode_prev_action(env_action), float(reward)
        if not done:
            raise AutostructError(f"Env did not finish within max_episode_steps={env.max_episode_steps}.")
        tracker.add(reward, info)
        if (episode + 1) % cfg.episodes_per_update == 0 and episode + 1 < episodes:
            update()
            buf = _Rollouts()
    return tracker.result(time.perf_counter() - start, "ppo")
