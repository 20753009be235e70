"""AMC-style DDPG (He et al., ECCV 2018), single task, written from the paper's description.

Actor and critic are MLPs with two hidden layers of 300 units. The first ``warmup`` episodes act uniformly at
random; afterwards actions are the actor's output plus truncated-normal noise (sigma 0.5, times 0.95 per
episode after the warm-up), truncated to [0, 1]. The episode's final reward, minus a moving-average baseline,
is given to every step of the episode; transitions go to a replay buffer and the networks are updated once per
step (soft target updates with tau 0.01; Adam, lr 1e-4 actor, 1e-3 critic; discount 1).

The env maps each action into its own budget walls, so the agent is compared with random search and MTACP on
exactly the same MDP, evaluation subset and episode budget.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from autostruct.baselines.common import BestTracker, SearchResult
from autostruct.errors import AutostructError
from autostruct.rl.env import Env


@dataclass(frozen=True)
class DDPGConfig:
    """AMC's DDPG settings (the paper's values by default)."""

    hidden: int = 300
    lr_actor: float = 1e-4
    lr_critic: float = 1e-3
    tau: float = 0.01
    discount: float = 1.0
    batch_size: int = 64
    buffer_size: int = 2000
    init_sigma: float = 0.5
    sigma_decay: float = 0.95
    #: Weight of the old value in the reward baseline: b <- alpha * b + (1 - alpha) * R.
    moving_alpha: float = 0.5


def _mlp(inp: int, hidden: int, out: int, squash: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(inp, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                               nn.Linear(hidden, out)]
    if squash:
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def truncated_normal(rng: np.random.Generator, mean: float, sigma: float, low: float = 0.0, high: float = 1.0) -> float:
    """One sample of N(mean, sigma) truncated to [low, high] (rejection; falls back to clipping)."""
    for _ in range(100):
        x = rng.normal(mean, sigma)
        if low <= x <= high:
            return float(x)
    return float(np.clip(mean, low, high))


class _Replay:
    def __init__(self, size: int, obs_dim: int):
        self.obs = np.zeros((size, obs_dim), np.float32)
        self.next_obs = np.zeros((size, obs_dim), np.float32)
        self.act = np.zeros((size, 1), np.float32)
        self.rew = np.zeros((size, 1), np.float32)
        self.done = np.zeros((size, 1), np.float32)
        self.size, self.n, self.i = size, 0, 0

    def add(self, obs, act, rew, next_obs, done) -> None:
        self.obs[self.i], self.act[self.i], self.rew[self.i] = obs, act, rew
        self.next_obs[self.i], self.done[self.i] = next_obs, float(done)
        self.i = (self.i + 1) % self.size
        self.n = min(self.n + 1, self.size)

    def sample(self, rng: np.random.Generator, batch: int):
        idx = rng.integers(0, self.n, size=batch)
        return tuple(torch.from_numpy(a[idx]) for a in (self.obs, self.act, self.rew, self.next_obs, self.done))


def ddpg_search(
    env: Env,
    episodes: int,
    warmup: int = 100,
    *,
    seed: int = 0,
    config: DDPGConfig | None = None,
) -> SearchResult:
    """Run AMC's DDPG agent for ``episodes`` episodes (the first ``warmup`` random) and keep the best one."""
    if episodes < 1 or warmup < 0:
        raise AutostructError(f"episodes must be >= 1 and warmup >= 0, got {episodes} and {warmup}.")
    cfg = config or DDPGConfig()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    obs_dim = env.observation_size
    actor = _mlp(obs_dim, cfg.hidden, 1, squash=True)
    critic = _mlp(obs_dim + 1, cfg.hidden, 1, squash=False)
    actor_target, critic_target = copy.deepcopy(actor), copy.deepcopy(critic)
    actor_opt = torch.optim.Adam(actor.parameters(), lr=cfg.lr_actor)
    critic_opt = torch.optim.Adam(critic.parameters(), lr=cfg.lr_critic)
    replay = _Replay(cfg.buffer_size, obs_dim)
    tracker = BestTracker()
    baseline: float | None = None
    sigma = cfg.init_sigma
    start = time.perf_counter()

    def update() -> None:
        obs, act, rew, next_obs, done = replay.sample(rng, min(cfg.batch_size, replay.n))
        with torch.no_grad():
            next_q = critic_target(torch.cat([next_obs, actor_target(next_obs)], 1))
            y = rew + cfg.discount * (1.0 - done) * next_q
        critic_loss = nn.functional.mse_loss(critic(torch.cat([obs, act], 1)), y)
        critic_opt.zero_grad()
        critic_loss.backward()
        critic_opt.step()
        actor_loss = -critic(torch.cat([obs, actor(obs)], 1)).mean()
        actor_opt.zero_grad()
        actor_loss.backward()
        actor_opt.step()
        with torch.no_grad():
            for net, target in ((actor, actor_target), (critic, critic_target)):
                for p, tp in zip(net.parameters(), target.parameters(), strict=True):
                    tp.mul_(1.0 - cfg.tau).add_(cfg.tau * p)

    for episode in range(episodes):
        obs = env.reset()
        steps = []
        done, reward, info = False, 0.0, {}
        while not done:
            if episode < warmup:
                action = float(rng.random())
            else:
                with torch.no_grad():
                    mu = float(actor(torch.as_tensor(obs, dtype=torch.float32)[None])[0, 0])
                action = truncated_normal(rng, mu, sigma)
            next_obs, reward, done, info = env.step(np.array([action], dtype=np.float32))
            steps.append((obs, action, next_obs, done))
            obs = next_obs
        tracker.add(reward, info)
        # AMC: every step gets the episode's reward minus a moving-average baseline (variance reduction).
        baseline = reward if baseline is None else baseline
        advantage = reward - baseline
        baseline = cfg.moving_alpha * baseline + (1.0 - cfg.moving_alpha) * reward
        for s, a, s2, d in steps:
            replay.add(s, a, advantage, s2, d)
        if episode >= warmup:
            sigma *= cfg.sigma_decay
            for _ in steps:
                update()
    return tracker.result(time.perf_counter() - start, "ddpg")
