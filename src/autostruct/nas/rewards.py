"""Multi-objective NAS rewards: accuracy combined with one or several costs against their targets.

Pure functions, named as in the papers. With ``Q`` the accuracy, ``T`` a cost and ``T0`` its target:

- ``mnas_soft`` (MnasNet, Tan et al. 2019): ``Q * prod (T / T0) ** w``, ``w = alpha`` if ``T <= T0`` else
  ``beta``. Defaults: ``beta = -0.07`` and ``alpha = 0``: no bonus for being under the target, so within budget
  the reward is the accuracy and the search looks for the most accurate network that fits (what a deployment
  wants). MnasNet's paper setting ``alpha = beta = -0.07`` (a net at half the target gains ~5%, trading
  accuracy for cost on both sides) is ``reward_alpha: -0.07``.
- ``mnas_hard``: the same with ``alpha = 0, beta = -1`` (MnasNet's hard constraint; TuNAS ``mnas_hard`` is
  ``Q * min((T / T0) ** beta, 1)``, identical for ``alpha = 0``).
- ``abs`` (TuNAS, Bender et al. 2020): ``Q + beta * sum |T / T0 - 1|``, ``beta < 0``: hits the target from both
  sides in one search. Default ``beta = -0.07``; a larger ``|beta|`` pulls harder towards the target.

Several costs multiply (``mnas_*``) or add their penalties (``abs``).

>>> round(mnas_soft(0.9, {"flops": 2e7}, {"flops": 1e7}), 4)
0.8574
>>> mnas_soft(0.9, {"flops": 5e6}, {"flops": 1e7})
0.9
>>> mnas_hard(0.9, {"flops": 5e6}, {"flops": 1e7})
0.9
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from autostruct.errors import AutostructError, unknown_name

RewardKind = Literal["mnas_soft", "mnas_hard", "abs"]
REWARDS: tuple[str, ...] = ("mnas_soft", "mnas_hard", "abs")

#: (alpha, beta) per reward when the config leaves them unset.
DEFAULT_EXPONENTS: dict[str, tuple[float, float]] = {
    "mnas_soft": (0.0, -0.07),
    "mnas_hard": (0.0, -1.0),
    "abs": (0.0, -0.07),
}


def _check(costs: Mapping[str, float], targets: Mapping[str, float]) -> None:
    missing = [k for k in targets if k not in costs]
    if missing:
        raise AutostructError(f"No measured cost for budget(s) {missing}; costs available: {sorted(costs)}.")
    bad = [k for k, t in targets.items() if not t > 0]
    if bad:
        raise AutostructError(f"Budget targets must be > 0; got {[(k, targets[k]) for k in bad]}.")


def mnas(accuracy: float, costs: Mapping[str, float], targets: Mapping[str, float], alpha: float, beta: float) -> float:
    """``accuracy * prod_k (cost_k / target_k) ** (alpha if cost_k <= target_k else beta)``."""
    _check(costs, targets)
    reward = accuracy
    for name, target in targets.items():
        ratio = max(costs[name], 1e-12) / target
        reward *= ratio ** (alpha if ratio <= 1.0 else beta)
    return float(reward)


def mnas_soft(
    accuracy: float, costs: Mapping[str, float], targets: Mapping[str, float], alpha: float = 0.0, beta: float = -0.07
) -> float:
    """MnasNet's soft-constraint reward (``beta = -0.07`` over the target; ``alpha`` under it, default 0)."""
    return mnas(accuracy, costs, targets, alpha, beta)


def mnas_hard(
    accuracy: float, costs: Mapping[str, float], targets: Mapping[str, float], alpha: float = 0.0, beta: float = -1.0
) -> float:
    """MnasNet's hard-constraint reward: no bonus under the target, a steep penalty over it."""
    return mnas(accuracy, costs, targets, alpha, beta)


def tunas_abs(
    accuracy: float, costs: Mapping[str, float], targets: Mapping[str, float], alpha: float = 0.0, beta: float = -0.07
) -> float:
    """TuNAS' absolute-value reward ``Q + beta * sum |T / T0 - 1|`` (``alpha`` is unused)."""
    _check(costs, targets)
    return float(accuracy + beta * sum(abs(costs[k] / t - 1.0) for k, t in targets.items()))


@dataclass(frozen=True)
class RewardSpec:
    """Which reward and its exponents; ``alpha``/``beta`` default per kind (see :data:`DEFAULT_EXPONENTS`)."""

    kind: str = "mnas_soft"
    alpha: float | None = None
    beta: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in REWARDS:
            raise unknown_name("reward", self.kind, REWARDS)

    @property
    def exponents(self) -> tuple[float, float]:
        a, b = DEFAULT_EXPONENTS[self.kind]
        return (a if self.alpha is None else self.alpha, b if self.beta is None else self.beta)

    def __call__(self, accuracy: float, costs: Mapping[str, float], targets: Mapping[str, float]) -> float:
        alpha, beta = self.exponents
        if self.kind == "abs":
            return tunas_abs(accuracy, costs, targets, alpha, beta)
        return mnas(accuracy, costs, targets, alpha, beta)


def meets(costs: Mapping[str, float], targets: Mapping[str, float]) -> bool:
    """Whether every budgeted cost is at or under its target."""
    return all(costs[k] <= t for k, t in targets.items())
