"""A surrogate shared by all tasks that screens the policy's proposals before one is evaluated (``rl.screen``).

An evaluation (pruning, recalibrating, scoring images) costs hundreds of times more than a policy step, and
tasks of one model share what decides an evaluation's outcome: which layers are sensitive. So every logged
episode of every task trains one model of the reward, ``f(task features, design) -> reward standardized per
task`` (the design is what the episode built: the kept fraction of every decided group), and before each
episode an actor samples ``rl.screen`` candidate episodes from its policy *without evaluating them* (the env
plans the design, :class:`PlanningEnv`), scores them with the surrogate and plays the one with the highest
upper confidence bound ``mean + rl.screen_kappa * std`` for real. The policy still learns from what was played
(V-trace); the surrogate only decides which of its samples is worth an evaluation. This is multi-task Bayesian
optimization's idea (Swersky, Snoek and Adams, NeurIPS 2013: a surrogate fitted on correlated tasks needs fewer
evaluations per task) with the RL policy as the proposal distribution.

The surrogate is a small bootstrap ensemble of MLPs: its spread is the uncertainty, it shrinks where a task
has evidence, so exploration narrows per task as the run goes. Targets are standardized per task (each task's
rewards minus its mean, over its std) so tasks at different budgets and base accuracies share one scale: the
surrogate learns which designs are *better for their task*, which is what transfers between tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

#: Prefix of the surrogate's tensors in the dict the learner publishes next to the policy weights.
SCREEN_PREFIX = "__screen__."
#: The surrogate's input width: task features and design, zero-padded. Fixed, so the published tensors keep one
#: shape for the whole run (process backends share them in preallocated memory); a model whose design does not
#: fit is not screened.
INPUT_SIZE = 256


@runtime_checkable
class PlanningEnv(Protocol):
    """An env that can play an episode's steps without its (expensive) evaluation, to propose candidates.

    ``plan_step`` behaves as ``step`` (same walls, observations and ``done``) but never evaluates: at the last
    step it returns ``(obs, 0.0, True, {})``. After a planned episode, :meth:`planned_design` is the design
    vector it built. Finished real episodes carry ``info["design"]`` and ``info["task_features"]``. An env may
    also offer ``plan_batch(n)``, ``n`` planned episodes stepped together (``prune.env.PlannedEpisodes``: the
    same steps, priced in one call); without it the actor plans one shallow copy per candidate.
    """

    def plan_step(self, action: Any) -> tuple[np.ndarray, float, bool, dict[str, Any]]: ...

    def planned_design(self) -> np.ndarray: ...

    def task_features(self) -> list[float]: ...


def screen_inputs(info: dict[str, Any]) -> np.ndarray | None:
    """The surrogate's input of a finished episode, or None if the env gave no design (or a too long one)."""
    if "design" not in info or "task_features" not in info:
        return None
    return pad_inputs(info["task_features"], info["design"])


def pad_inputs(task_features: Sequence[float], design: Sequence[float]) -> np.ndarray | None:
    """Task features, then the design, zero-padded to :data:`INPUT_SIZE` (None when they do not fit)."""
    x = np.zeros(INPUT_SIZE, dtype=np.float32)
    n, m = len(task_features), len(design)
    if n + m > INPUT_SIZE:
        return None
    x[:n] = task_features
    x[n : n + m] = design
    return x


def used_columns(x: np.ndarray) -> np.ndarray:
    """``x`` without its trailing all-zero columns (the padding), at least one column kept."""
    nonzero = np.flatnonzero(np.any(x != 0, axis=tuple(range(x.ndim - 1))))
    return x[..., : int(nonzero[-1]) + 1 if len(nonzero) else 1]


def standardize_per_task(task_ids: Sequence[int], rewards: Sequence[float], min_std: float = 1e-3) -> np.ndarray:
    """Each reward minus its task's mean, over its task's std (``min_std`` at least); 0 for a task's lone episode."""
    t = np.asarray(task_ids, dtype=np.int64)
    r = np.asarray(rewards, dtype=np.float64)
    z = np.zeros_like(r)
    for task in np.unique(t):
        sel = t == task
        if sel.sum() >= 2:
            z[sel] = (r[sel] - r[sel].mean()) / max(float(r[sel].std()), min_std)
    return z.astype(np.float32)


class Ensemble(nn.Module):
    """``members`` MLPs with one hidden layer pair each, evaluated together (weights stacked for ``bmm``)."""

    def __init__(self, input_size: int, members: int = 5, hidden: int = 64, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.input_size, self.members, self.hidden = input_size, members, hidden
        sizes = [(input_size, hidden), (hidden, hidden), (hidden, 1)]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in sizes:
            bound = 1.0 / np.sqrt(fan_in)
            self.weights.append(nn.Parameter(torch.empty(members, fan_in, fan_out).uniform_(-bound, bound, generator=gen)))
            self.biases.append(nn.Parameter(torch.zeros(members, 1, fan_out)))

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``[N, in]`` (all members see it) or ``[members, N, in]``; returns ``[members, N]``.

        ``in`` may be narrower than ``input_size``: the missing columns are the zero padding, which the first
        layer's rows past ``in`` would only multiply by zero (a model's design fills ~20 of the 256 columns).
        """
        h = x.expand(self.members, *x.shape) if x.dim() == 2 else x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w[:, : h.shape[-1]] if i == 0 else w)
            if i < last:
                h = torch.relu(h)
        return h.squeeze(-1)


@dataclass
class Surrogate:
    """A fitted ensemble and the data size it was fitted on; see the module docstring."""

    model: Ensemble
    fitted_on: int = 0

    @classmethod
    def create(cls, input_size: int = INPUT_SIZE, members: int = 5, hidden: int = 64, seed: int = 0) -> Surrogate:
        return cls(Ensemble(input_size, members, hidden, seed))

    def fit(self, x: np.ndarray, z: np.ndarray, steps: int = 150, lr: float = 3e-3, seed: int = 0) -> float:
        """Warm-started full-batch Adam on a bootstrap resample per member; returns the final training loss."""
        xt = torch.as_tensor(used_columns(np.asarray(x)), dtype=torch.float32)
        zt = torch.as_tensor(z, dtype=torch.float32)
        n = len(xt)
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randint(0, n, (self.model.members, n), generator=gen)
        xb, zb = xt[idx], zt[idx]
        opt = torch.optim.Adam(self.model.parameters(), lr=lr, weight_decay=1e-4)
        loss = torch.tensor(0.0)
        with torch.enable_grad():
            for _ in range(steps):
                opt.zero_grad()
                loss = ((self.model(xb) - zb) ** 2).mean()
                loss.backward()
                opt.step()
        self.fitted_on = n
        return float(loss.detach())

    def predict(self, x: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and std per row of ``x`` (standardized reward units)."""
        with torch.no_grad():
            out = self.model(torch.as_tensor(used_columns(np.asarray(x)), dtype=torch.float32))
        return out.mean(0).numpy(), out.std(0).numpy()

    def tensors(self) -> dict[str, Tensor]:
        """What the learner publishes (under :data:`SCREEN_PREFIX`) for the actors to rebuild it."""
        out = {SCREEN_PREFIX + k: v.detach().clone() for k, v in self.model.state_dict().items()}
        out[SCREEN_PREFIX + "shape"] = torch.tensor([self.model.input_size, self.model.members, self.model.hidden,
                                                     self.fitted_on])
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor]) -> Surrogate:
        size, members, hidden, fitted_on = (int(v) for v in tensors[SCREEN_PREFIX + "shape"])
        model = Ensemble(size, members, hidden)
        model.load_state_dict({k[len(SCREEN_PREFIX):]: v for k, v in tensors.items()
                               if k.startswith(SCREEN_PREFIX) and k != SCREEN_PREFIX + "shape"})
        return cls(model, fitted_on)


def pop_screen(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], Surrogate | None]:
    """Split a published dict into the policy's weights and the surrogate (None when none was published)."""
    screen = {k: v for k, v in state.items() if k.startswith(SCREEN_PREFIX)}
    rest = {k: v for k, v in state.items() if not k.startswith(SCREEN_PREFIX)}
    return rest, (Surrogate.from_tensors(screen) if screen else None)


class ScreenData:
    """Every logged episode's surrogate input and reward, by task; refits the surrogate when asked."""

    COLD_STEPS, WARM_STEPS = 200, 50
    #: A refit waits until the data grew by this fraction since the last fit. 0: every publication refits, as
    #: in the sharing benchmark's measured runs (a warm refit costs ~0.1-0.3 s per batch of episodes, small next
    #: to the evaluations; docs/benchmark-mtacp.md).
    REFIT_GROWTH = 0.0

    def __init__(self, members: int = 5, hidden: int = 64, seed: int = 0) -> None:
        self.x: list[np.ndarray] = []
        self.task_ids: list[int] = []
        self.rewards: list[float] = []
        self.members, self.hidden, self.seed = members, hidden, seed
        self.surrogate: Surrogate | None = None

    def add(self, task_id: int, reward: float, info: dict[str, Any]) -> None:
        """Keep an episode's input and reward (an episode without a design that fits is left out)."""
        x = screen_inputs(info)
        if x is not None:
            self.x.append(x)
            self.task_ids.append(int(task_id))
            self.rewards.append(float(reward))

    def __len__(self) -> int:
        return len(self.x)

    def refit(self) -> Surrogate:
        """Fit on every episode so far: from scratch the first time, then warm-started with fewer steps (the
        data grows by a batch between refits, so the previous fit is close). Returns the last fit unchanged
        while the data has grown by less than :attr:`REFIT_GROWTH` since it."""
        if self.surrogate is not None and self.surrogate.fitted_on > 0 and (
                len(self.x) < self.surrogate.fitted_on * (1 + self.REFIT_GROWTH)):
            return self.surrogate
        x = np.stack(self.x)
        steps = self.WARM_STEPS if self.surrogate is not None and self.surrogate.fitted_on else self.COLD_STEPS
        self.placeholder()
        z = standardize_per_task(self.task_ids, self.rewards)
        self.surrogate.fit(x, z, steps=steps, seed=self.seed + len(self.x))  # type: ignore[union-attr]
        return self.surrogate  # type: ignore[return-value]

    def placeholder(self) -> Surrogate:
        """The surrogate as it stands, unfitted (``fitted_on == 0``: actors do not screen with it) before data."""
        if self.surrogate is None:
            self.surrogate = Surrogate.create(members=self.members, hidden=self.hidden, seed=self.seed)
        return self.surrogate


def choose(surrogate: Surrogate, task_features: np.ndarray, designs: Sequence[np.ndarray], kappa: float) -> int:
    """Index of the candidate design with the highest ``mean + kappa * std`` under the surrogate (0 when it is
    not fitted yet or the designs do not fit its input)."""
    rows = [pad_inputs(task_features, d) for d in designs]
    if surrogate.fitted_on == 0 or any(r is None for r in rows):
        return 0
    x = np.stack(rows)  # type: ignore[arg-type]
    mean, std = surrogate.predict(x)
    return int(np.argmax(mean + kappa * std))
