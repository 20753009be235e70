"""Single-task REINFORCE with an LSTM controller (ENAS-style; Pham et al. 2018, Zoph and Le 2017).

The controller is an LSTM that takes the previous decision (embedded) and emits one categorical distribution
per decision through a per-decision linear head; masked options get probability 0. After each architecture,
REINFORCE with a moving-average baseline: ``loss = -(R - b) * sum_t log pi(a_t) - entropy_weight * H``,
``b <- decay * b + (1 - decay) * R``. One task, on-policy, no importance weights: the comparison point for the
multi-task IMPALA search. Works on any env with a ``CategoricalSpec`` and ``action_mask()`` (the observation is
not used: one task).
"""

from __future__ import annotations

import torch
from torch import nn

from autostruct.baselines.nas_common import NASSearchResult, Stopwatch, env_name
from autostruct.rl.env import CategoricalSpec, Env


class LSTMController(nn.Module):
    """ENAS' controller: LSTM over decisions, input = embedding of the previous choice, one head per decision."""

    def __init__(self, choice_counts: tuple[int, ...], hidden: int = 64) -> None:
        super().__init__()
        self.max_choices = max(choice_counts)
        self.choice_counts = tuple(choice_counts)
        self.embed = nn.Embedding(self.max_choices + 1, hidden)  # last row: "start" token
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, self.max_choices) for _ in choice_counts)
        self.hidden = hidden

    def sample_episode(
        self, env: Env, generator: torch.Generator
    ) -> tuple[float, dict, torch.Tensor, torch.Tensor, list[int]]:
        """Play one episode in ``env``; return (reward, info, sum of log-probs, sum of entropies, actions)."""
        env.reset()
        h = c = torch.zeros(1, self.hidden)
        prev = torch.tensor([self.max_choices])
        logp = torch.zeros(())
        entropy = torch.zeros(())
        done, reward, info, t = False, 0.0, {}, 0
        actions: list[int] = []
        while not done:
            h, c = self.cell(self.embed(prev), (h, c))
            logits = self.heads[t](h)[0]
            mask = torch.arange(self.max_choices) < self.choice_counts[t]
            env_mask = env.action_mask()
            if env_mask is not None:
                mask &= torch.as_tensor(env_mask, dtype=torch.bool)
            logits = logits.masked_fill(~mask, float("-inf"))
            probs = torch.softmax(logits, -1)
            a = int(torch.multinomial(probs, 1, generator=generator))
            log_probs = torch.log_softmax(logits, -1)
            logp = logp + log_probs[a]
            entropy = entropy - (probs[mask] * log_probs[mask]).sum()
            _, reward, done, info = env.step(a)
            actions.append(a)
            prev = torch.tensor([a])
            t += 1
        return reward, info, logp, entropy, actions


def reinforce_search(
    env: Env,
    evaluations: int,
    *,
    lr: float = 3e-3,
    baseline_decay: float = 0.9,
    entropy_weight: float = 1e-3,
    hidden: int = 64,
    seed: int = 0,
    task: str | None = None,
) -> NASSearchResult:
    """Train an ENAS-style controller on one task for ``evaluations`` architectures."""
    if evaluations < 1:
        raise ValueError(f"evaluations must be >= 1, got {evaluations}")
    if not isinstance(env.action_spec, CategoricalSpec):
        raise TypeError(f"reinforce_search needs a CategoricalSpec env, got {type(env.action_spec).__name__}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    controller = LSTMController(env.action_spec.choices, hidden)
    opt = torch.optim.Adam(controller.parameters(), lr=lr)
    result = NASSearchResult("reinforce", task or env_name(env))
    clock = Stopwatch()
    baseline: float | None = None
    for _ in range(evaluations):
        reward, info, logp, entropy, actions = controller.sample_episode(env, gen)
        result.add(reward, info, actions)
        baseline = reward if baseline is None else baseline_decay * baseline + (1 - baseline_decay) * reward
        advantage = reward - baseline
        loss = -advantage * logp - entropy_weight * entropy
        opt.zero_grad()
        loss.backward()
        opt.step()
    result.seconds = clock()
    return result


__all__ = ["LSTMController", "reinforce_search"]
