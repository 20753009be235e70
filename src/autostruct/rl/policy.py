"""The agent: the MTACP actor-critic network, with a Gaussian head (pruning) or categorical heads (NAS).

Architecture (Ma and Fang, MTACP, IJCNN 2023)::

    obs -> FC100 -> FC400 -> FC300 (ReLU) -> concat(prev action, prev reward) -> LSTM(302) -> heads

Heads, continuous (:class:`~autostruct.rl.env.BoxSpec`): ``mu``, ``sigma^2`` and a value. The policy samples
``u ~ N(mu, sigma^2)`` and the env receives ``(tanh(u) + 1) / 2`` in [0, 1]. Log-probs are those of the
pre-squash sample ``u``, which is what trajectories store: the squash is a fixed bijection, so its Jacobian
cancels in every importance ratio pi/mu and V-trace sees the same ratios. The *entropy* is that of the executed
action (pre-squash entropy plus the expected log-Jacobian, by Gauss-Hermite quadrature): the pre-squash entropy
grows without bound with sigma^2 while the executed action turns bang-bang, so a bonus on it drives exploration
the wrong way (measured: sigma^2 rose to 15 and keep ratios went to 0 or 1).

The default mean head is linear (``mu_activation="linear"``): greedy actions cover (0, 1) and the initial
policy is centred on 0.5. MTACP's sigmoid head (greedy actions in [0.5, 0.88], initial samples averaging 0.72)
is kept as an option. The variance is bounded, ``min_variance + (max_variance - min_variance) * sigmoid(x)``,
so exploration can neither collapse nor explode.

Heads, categorical (:class:`~autostruct.rl.env.CategoricalSpec`): one linear head per decision step (step ``t``
has ``choices[t]`` options), logits masked by the step's valid options and the env's mask, and a value.

All tensors are time-major ``[T, B, ...]``. The LSTM state is reset to zeros wherever ``first`` is set (the
first step of an episode), so one forward pass can run over unrolls that span episode boundaries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autostruct.errors import AutostructError
from autostruct.rl.env import ActionSpec, BoxSpec, CategoricalSpec, Env
from autostruct.utils.io import torch_save_atomic

#: Masked logits get this value: exp() is exactly 0 in float32, yet no inf/nan appears in entropy or grads.
MASKED_LOGIT = -1e9

CoreState = tuple[Tensor, Tensor] | None


@dataclass(frozen=True)
class PolicySpec:
    """Everything needed to rebuild a :class:`Policy` (saved next to its weights)."""

    observation_size: int
    action_spec: ActionSpec
    use_lstm: bool = True
    hidden_sizes: tuple[int, ...] = (100, 400, 300)
    lstm_size: int = 302
    #: ``linear`` (default): unbiased, greedy actions cover (0, 1). ``sigmoid`` is MTACP's choice: greedy actions
    #: (tanh(mu) + 1) / 2 then lie in [0.5, 0.88]; ``tanh`` widens that to [0.12, 0.88].
    mu_activation: Literal["linear", "sigmoid", "tanh"] = "linear"
    #: Floor of sigma^2 (pre-squash): 0.01 (sigma >= 0.1) keeps about +-0.04 of action noise mid-range, so the
    #: policy keeps exploring until it tells tasks apart; greedy actions are unaffected.
    min_variance: float = 0.01
    #: Ceiling of sigma^2 (pre-squash); None: softplus without a ceiling (MTACP). 1.0 is about where the executed
    #: action is most spread out: beyond it the squash piles samples at 0 and 1.
    max_variance: float | None = 1.0
    #: sigma^2 at initialization (bounded head only): wide enough to explore like random search at first.
    init_variance: float = 0.3

    def __post_init__(self) -> None:
        if self.observation_size < 1:
            raise AutostructError(f"PolicySpec.observation_size must be >= 1, got {self.observation_size}.")
        if isinstance(self.action_spec, CategoricalSpec):
            if not self.action_spec.choices or min(self.action_spec.choices) < 1:
                raise AutostructError(
                    f"CategoricalSpec.choices must be a non-empty tuple of counts >= 1, got {self.action_spec.choices}."
                )
        elif isinstance(self.action_spec, BoxSpec):
            if self.action_spec.dim < 1:
                raise AutostructError(f"BoxSpec.dim must be >= 1, got {self.action_spec.dim}.")
        else:
            raise AutostructError(f"action_spec must be a BoxSpec or CategoricalSpec, got {type(self.action_spec).__name__}.")
        if not self.min_variance > 0:
            raise AutostructError(f"PolicySpec.min_variance must be > 0, got {self.min_variance}.")
        if self.mu_activation not in ("linear", "sigmoid", "tanh"):
            raise AutostructError(f"mu_activation must be 'linear', 'sigmoid' or 'tanh', got '{self.mu_activation}'.")
        if self.max_variance is not None and not self.min_variance < self.init_variance < self.max_variance:
            raise AutostructError(
                f"PolicySpec needs min_variance < init_variance < max_variance, got {self.min_variance}, "
                f"{self.init_variance}, {self.max_variance}."
            )

    @property
    def continuous(self) -> bool:
        return isinstance(self.action_spec, BoxSpec)

    @property
    def action_input_size(self) -> int:
        """Width of the previous-action input: the action values (Box) or a one-hot (Categorical)."""
        spec = self.action_spec
        return spec.dim if isinstance(spec, BoxSpec) else spec.max_choices

    @classmethod
    def from_env(cls, env: Env, **kwargs: Any) -> PolicySpec:
        """The spec matching ``env``'s observation size and action spec; ``kwargs`` override the defaults."""
        return cls(observation_size=int(env.observation_size), action_spec=env.action_spec, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        spec = self.action_spec
        action = (
            {"kind": "box", "dim": spec.dim, "low": spec.low, "high": spec.high}
            if isinstance(spec, BoxSpec)
            else {"kind": "categorical", "choices": list(spec.choices)}
        )
        return {
            "observation_size": self.observation_size,
            "action_spec": action,
            "use_lstm": self.use_lstm,
            "hidden_sizes": list(self.hidden_sizes),
            "lstm_size": self.lstm_size,
            "mu_activation": self.mu_activation,
            "min_variance": self.min_variance,
            "max_variance": self.max_variance,
            "init_variance": self.init_variance,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PolicySpec:
        a = d["action_spec"]
        action: ActionSpec = (
            BoxSpec(dim=int(a["dim"]), low=float(a["low"]), high=float(a["high"]))
            if a["kind"] == "box"
            else CategoricalSpec(choices=tuple(int(c) for c in a["choices"]))
        )
        return cls(
            observation_size=int(d["observation_size"]),
            action_spec=action,
            use_lstm=bool(d["use_lstm"]),
            hidden_sizes=tuple(int(h) for h in d["hidden_sizes"]),
            lstm_size=int(d["lstm_size"]),
            mu_activation=d.get("mu_activation", "sigmoid"),
            min_variance=float(d.get("min_variance", 0.01)),
            # Files written before the bounded head existed hold MTACP's unbounded softplus head.
            max_variance=None if d.get("max_variance") is None else float(d["max_variance"]),
            init_variance=float(d.get("init_variance", 0.3)),
        )


class PolicyInputs(NamedTuple):
    """One time-major batch of policy inputs; shapes ``[T, B, ...]``."""

    obs: Tensor  # [T, B, observation_size] float32
    prev_action: Tensor  # [T, B, action_input_size] float32 (zeros at the first step of an episode)
    prev_reward: Tensor  # [T, B] float32 (zero at the first step)
    first: Tensor  # [T, B] bool: this step starts an episode (resets the LSTM state)
    step: Tensor  # [T, B] int64: index of the step inside its episode (selects the categorical head)
    mask: Tensor | None = None  # [T, B, max_choices] bool: valid options (categorical only)


class PolicyOutput(NamedTuple):
    """Distribution parameters and value for every input step."""

    value: Tensor  # [T, B]
    mu: Tensor | None = None  # [T, B, dim]
    var: Tensor | None = None  # [T, B, dim], sigma^2
    logits: Tensor | None = None  # [T, B, max_choices], masked entries at MASKED_LOGIT


class Policy(nn.Module):
    """Actor-critic network of MTACP; see the module docstring."""

    def __init__(self, spec: PolicySpec) -> None:
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = []
        width = spec.observation_size
        for h in spec.hidden_sizes:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.torso = nn.Sequential(*layers)
        core_in = width + spec.action_input_size + 1
        self.lstm = nn.LSTMCell(core_in, spec.lstm_size) if spec.use_lstm else None
        head_in = spec.lstm_size if spec.use_lstm else core_in
        self.value_head = nn.Linear(head_in, 1)
        spec_a = spec.action_spec
        if isinstance(spec_a, BoxSpec):
            self.mu_head = nn.Linear(head_in, spec_a.dim)
            self.var_head = nn.Linear(head_in, spec_a.dim)
            if spec.max_variance is not None:
                # Start every action at mean 0.5 and sigma^2 = init_variance, whatever the input.
                with torch.no_grad():
                    for head in (self.mu_head, self.var_head):
                        head.weight.mul_(0.01)
                        head.bias.zero_()
                    frac = (spec.init_variance - spec.min_variance) / (spec.max_variance - spec.min_variance)
                    self.var_head.bias.fill_(math.log(frac / (1 - frac)))
        else:
            steps, k = len(spec_a.choices), spec_a.max_choices
            # One head per decision step, stored as one matrix; step t's head is rows [t*k, (t+1)*k).
            self.logit_heads = nn.Linear(head_in, steps * k)
            valid = torch.arange(k)[None, :] < torch.tensor(spec_a.choices)[:, None]
            self.register_buffer("step_valid", valid, persistent=False)

    # -- network ------------------------------------------------------------------------------------------------
    def initial_state(self, batch_size: int = 1) -> CoreState:
        if self.lstm is None:
            return None
        z = torch.zeros(batch_size, self.spec.lstm_size)
        return (z, z.clone())

    def forward(self, inputs: PolicyInputs, core_state: CoreState = None) -> tuple[PolicyOutput, CoreState]:
        T, B = inputs.obs.shape[:2]
        x = self.torso(inputs.obs)
        x = torch.cat([x, inputs.prev_action, inputs.prev_reward.unsqueeze(-1)], dim=-1)
        if self.lstm is not None:
            h, c = core_state if core_state is not None else self.initial_state(B)
            outs = []
            for t in range(T):
                keep = (~inputs.first[t]).to(x.dtype).unsqueeze(-1)
                h, c = self.lstm(x[t], (h * keep, c * keep))
                outs.append(h)
            x = torch.stack(outs)
            core_state = (h, c)
        value = self.value_head(x).squeeze(-1)
        if self.spec.continuous:
            pre = self.mu_head(x)
            act = self.spec.mu_activation
            mu = pre if act == "linear" else torch.sigmoid(pre) if act == "sigmoid" else torch.tanh(pre)
            v = self.var_head(x)
            if self.spec.max_variance is None:
                var = F.softplus(v) + self.spec.min_variance
            else:
                var = self.spec.min_variance + (self.spec.max_variance - self.spec.min_variance) * torch.sigmoid(v)
            return PolicyOutput(value=value, mu=mu, var=var), core_state
        k = self.spec.action_spec.max_choices  # type: ignore[union-attr]
        steps = self.step_valid.shape[0]
        all_logits = self.logit_heads(x).view(T, B, steps, k)
        step = inputs.step.clamp(0, steps - 1)
        logits = all_logits.gather(2, step[..., None, None].expand(T, B, 1, k)).squeeze(2)
        valid = self.step_valid[step]
        if inputs.mask is not None:
            valid = valid & inputs.mask
        logits = logits.masked_fill(~valid, MASKED_LOGIT)
        return PolicyOutput(value=value, logits=logits), core_state

    # -- distributions ------------------------------------------------------------------------------------------
    def log_prob(self, out: PolicyOutput, action: Tensor) -> Tensor:
        """Log-prob of stored actions: pre-squash ``u`` ``[T, B, dim]`` (Box) or indices ``[T, B]`` (Categorical)."""
        if out.mu is not None:
            var = out.var
            return (-((action - out.mu) ** 2) / (2 * var) - 0.5 * torch.log(2 * math.pi * var)).sum(-1)
        logp = F.log_softmax(out.logits, dim=-1)
        return logp.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self, out: PolicyOutput) -> Tensor:
        """Entropy of the executed action: categorical, or the squashed Gaussian's (see the module docstring)."""
        if out.mu is not None:
            return squashed_gaussian_entropy(out.mu, out.var).sum(-1)
        logp = F.log_softmax(out.logits, dim=-1)
        return -(logp.exp() * logp).sum(-1)

    def sample(self, out: PolicyOutput, generator: torch.Generator | None = None) -> Tensor:
        if out.mu is not None:
            noise = torch.randn(out.mu.shape, generator=generator, dtype=out.mu.dtype)
            return out.mu + out.var.sqrt() * noise
        probs = F.softmax(out.logits, dim=-1)
        flat = probs.reshape(-1, probs.shape[-1])
        return torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])

    def greedy(self, out: PolicyOutput) -> Tensor:
        return out.mu if out.mu is not None else out.logits.argmax(-1)

    # -- env side -----------------------------------------------------------------------------------------------
    def to_env_action(self, action: Tensor) -> Any:
        """What the env receives for one stored action: float32 array in [0, 1] (Box) or an int (Categorical)."""
        return self.to_env_actions(action.unsqueeze(0))[0]

    def to_env_actions(self, actions: Tensor) -> list[Any]:
        """:meth:`to_env_action` of every row of ``actions`` ``[N, ...]`` (one tensor op for a continuous policy)."""
        if self.spec.continuous:
            executed = ((torch.tanh(actions) + 1) / 2).detach().numpy().astype(np.float32).reshape(len(actions), -1)
            return list(executed)
        return [int(a) for a in actions]

    def encode_prev_action(self, env_action: Any) -> np.ndarray:
        """The previous-action input for the next step: the env action itself (Box) or its one-hot (Categorical)."""
        if self.spec.continuous:
            return np.asarray(env_action, dtype=np.float32).reshape(-1)
        onehot = np.zeros(self.spec.action_input_size, dtype=np.float32)
        onehot[int(env_action)] = 1.0
        return onehot


_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite.hermgauss(16)


def squashed_gaussian_entropy(mu: Tensor, var: Tensor) -> Tensor:
    """Differential entropy of ``y = (tanh(u) + 1) / 2`` for ``u ~ N(mu, var)``, elementwise.

    ``H(y) = H(u) + E[log dy/du]`` with ``log dy/du = log(1 - tanh(u)^2) - log 2 = log 2 - 2 (u + softplus(-2u))``;
    the expectation is a 16-point Gauss-Hermite sum, so it is deterministic and differentiable in mu and var.
    """
    nodes = torch.as_tensor(_GH_NODES, dtype=mu.dtype)
    weights = torch.as_tensor(_GH_WEIGHTS / math.sqrt(math.pi), dtype=mu.dtype)
    u = mu.unsqueeze(-1) + torch.sqrt(2 * var).unsqueeze(-1) * nodes
    log_jac = math.log(2.0) - 2.0 * (u + F.softplus(-2.0 * u))
    return 0.5 * torch.log(2 * math.pi * math.e * var) + (log_jac * weights).sum(-1)


def make_policy(spec: PolicySpec, seed: int | None = None) -> Policy:
    """Build a policy; with ``seed`` its initial weights are reproducible without touching the global RNG."""
    if seed is None:
        return Policy(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Policy(spec)


def save_policy(policy: Policy, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``policy`` (spec + state dict, plain types only) atomically; loads with ``weights_only=True``."""
    payload = {
        "format": "autostruct.policy/1",
        "spec": policy.spec.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in policy.state_dict().items()},
        "metadata": metadata or {},
    }
    return torch_save_atomic(payload, path)


def load_policy(path: str | Path) -> tuple[Policy, dict[str, Any]]:
    """Rebuild a policy written by :func:`save_policy`; returns ``(policy, metadata)``."""
    path = Path(path)
    if not path.is_file():
        raise AutostructError(f"Policy file '{path}' does not exist. Pass the policy.pt written by a search run.")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != "autostruct.policy/1":
        raise AutostructError(f"'{path}' is not an autostruct policy file (written by save_policy).")
    policy = Policy(PolicySpec.from_dict(payload["spec"]))
    policy.load_state_dict(payload["state_dict"])
    return policy, dict(payload.get("metadata", {}))
