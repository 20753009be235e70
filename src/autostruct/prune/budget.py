"""FLOPs of a pruned model as a function of kept channels, and the action walls that keep an episode on budget.

Pure math, no torch: :class:`FlopModel` is exact for Torch-Pruning's counter (what
:func:`autostruct.measure.count_flops` reports) because every counted layer costs a bilinear function of the
channel counts of its input and output, and each of those counts is an affine function of the kept channels
of the pruning groups (one channel of a group appears ``m`` times in a tensor: once after a conv, ``h * w``
times after a flatten, at an offset after a concat).

The walls (issue 7): at step ``l`` of an episode the groups before ``l`` are decided and the later ones are
not. AMC's cap ``hi_l`` is the most group ``l`` may keep so that the budget stays reachable if every later
group drops to its floor (``lbound``). The lower wall ``lo_l`` is the least it may keep so that the budget can
still be *filled* if every later group keeps everything. Mapping the policy's output onto ``[lo_l, hi_l]``
makes every finished episode spend the whole budget (up to channel rounding, and never over it).

Channel rounding (multiples of 8 or 16) leaves few counts per group; after an early choice the last groups'
steps can then be too coarse to land close to the budget (the wall only guarantees "never over"), though
another early choice would have let them. :func:`wall_choices` therefore looks ahead: when the later groups
have few enough count combinations (:data:`LOOKAHEAD`), it keeps only the counts inside the wall from which
some completion lands within :data:`LANDING_TOLERANCE` below the budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from autostruct.errors import AutostructError


@dataclass(frozen=True, eq=False)
class FlopModel:
    """FLOPs as a function of the kept channels ``k`` (one count per pruning group).

    For every counted layer call ``c``: ``in_c = in_const[c] + in_coef[c] @ k`` and likewise ``out_c``; its
    cost is ``p[c] * in_c * out_c + q[c] * out_c + r[c] * in_c + s[c]``. The total is the sum over calls.

    >>> fm = FlopModel.from_lists(in_const=[3.0], in_coef=[[0.0]], out_const=[0.0], out_coef=[[1.0]],
    ...                           p=[9.0], q=[0.0], r=[0.0], s=[0.0])  # a 3x3 conv, 3 -> k channels, 1x1 out
    >>> float(fm(np.array([4])))
    108.0
    """

    in_const: np.ndarray
    in_coef: np.ndarray
    out_const: np.ndarray
    out_coef: np.ndarray
    p: np.ndarray
    q: np.ndarray
    r: np.ndarray
    s: np.ndarray

    @classmethod
    def from_lists(cls, **arrays) -> FlopModel:
        return cls(**{k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()})

    @property
    def num_groups(self) -> int:
        return self.in_coef.shape[1]

    @cached_property
    def _quadratic(self) -> tuple[np.ndarray, np.ndarray, float]:
        """The total as ``k @ Q @ k + l @ k + c``: summed over calls once, so pricing a row costs ``G**2`` rather
        than (calls x G); the walls' look-ahead prices thousands of rows per step (rl.screen plans dozens of
        episodes per evaluated one)."""
        a, u, b, v = self.in_const, self.in_coef, self.out_const, self.out_coef
        quad = (u * self.p[:, None]).T @ v
        lin = (self.p * b + self.r) @ u + (self.p * a + self.q) @ v
        const = float(np.sum(self.p * a * b + self.q * b + self.r * a + self.s))
        return quad, lin, const

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        """FLOPs for ``counts`` of shape ``(..., G)``; returns shape ``(...)``."""
        counts = np.asarray(counts, dtype=np.float64)
        quad, lin, const = self._quadratic
        return ((counts @ quad + lin) * counts).sum(axis=-1) + const

    def flops(self, counts) -> int:
        """FLOPs of one configuration, as the integer the counter reports."""
        return int(round(float(self(np.asarray(counts)))))


def allowed_counts(channels: int, step: int = 1, minimum: int = 1) -> np.ndarray:
    """Channel counts a group of ``channels`` may keep: multiples of ``step`` (at least ``minimum``) and all.

    >>> allowed_counts(20, step=8).tolist()
    [8, 16, 20]
    """
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    step = max(1, int(step))
    first = max(step, math.ceil(max(1, minimum) / step) * step)
    values = list(range(first, channels, step))
    return np.asarray([*values, channels], dtype=np.int64)


def ceil_to_allowed(ratio: float, channels: int, allowed: np.ndarray) -> int:
    """The smallest allowed count keeping at least ``ratio * channels`` channels (``ceil`` as MTACP)."""
    # The epsilon absorbs float noise so that ratio = k / channels maps back to exactly k.
    want = math.ceil(ratio * channels - 1e-9)
    idx = int(np.searchsorted(allowed, want, side="left"))
    return int(allowed[min(idx, len(allowed) - 1)])


def nearest_allowed(count: float, allowed: np.ndarray) -> int:
    """The allowed count nearest to ``count`` (ties go down, which never costs budget)."""
    idx = int(np.argmin(np.abs(allowed.astype(np.float64) - count + 1e-9)))
    return int(allowed[idx])


def _priced(cost_model: Any, rows: np.ndarray, group: int, values: np.ndarray, later: np.ndarray,
            later_values: np.ndarray) -> np.ndarray:
    """Cost ``[n, len(values)]`` of each row of ``rows`` (``[n, G]``) with ``group`` set to each of ``values`` and
    the ``later`` groups to ``later_values``."""
    rows = np.asarray(rows, dtype=np.float64)
    values = np.asarray(values)
    grid = np.repeat(rows, len(values), axis=0)
    grid[:, later] = np.asarray(later_values, dtype=np.float64)[later]
    grid[:, group] = np.tile(values, len(rows))
    return np.asarray(cost_model(grid)).reshape(len(rows), len(values))


def _caps(cost_model: Any, rows: np.ndarray, group: int, allowed: np.ndarray, later: np.ndarray, floor: np.ndarray,
          target: float) -> np.ndarray:
    """:func:`amc_cap` for every row of ``rows`` (``[n, G]``) with one pricing call."""
    fits = _priced(cost_model, rows, group, allowed, later, floor) <= target * (1 + 1e-12)
    return np.where(fits.any(axis=1), allowed[len(allowed) - 1 - np.argmax(fits[:, ::-1], axis=1)], allowed[0])


def amc_cap(
    flop_model: FlopModel,
    counts: np.ndarray,
    group: int,
    allowed: np.ndarray,
    later: np.ndarray,
    floor: np.ndarray,
    target: float,
) -> int:
    """AMC's action limit: the largest allowed count for ``group`` that keeps the target reachable.

    ``counts`` holds the decided counts of earlier groups (and the fixed ones); ``later`` lists the groups still
    to decide, which are assumed at their ``floor``. If even the smallest allowed count overshoots (only possible
    when earlier decisions broke the rule), the smallest is returned.
    """
    return int(_caps(flop_model, np.asarray(counts)[None, :], group, np.asarray(allowed), later, floor, target)[0])


def exact_wall(
    flop_model: FlopModel,
    counts: np.ndarray,
    group: int,
    allowed: np.ndarray,
    later: np.ndarray,
    floor: np.ndarray,
    full: np.ndarray,
    target: float,
) -> tuple[int, int]:
    """The two-sided wall ``(lo, hi)`` of issue 7 for ``group``, as allowed channel counts.

    ``hi`` is :func:`amc_cap`. ``lo`` is the least allowed count from which the target can still be reached
    if every ``later`` group keeps ``full``; for the last group (``later`` empty) that is the count landing on
    the target. When channel granularity makes ``lo > hi``, the wall collapses to ``hi`` so the episode stays
    under budget.
    """
    lo, hi = exact_walls(flop_model, np.asarray(counts)[None, :], group, allowed, later, floor, full, target)
    return int(lo[0]), int(hi[0])


def exact_walls(
    cost_model: Any,
    counts: np.ndarray,
    group: int,
    allowed: np.ndarray,
    later: np.ndarray,
    floor: np.ndarray,
    full: np.ndarray,
    target: float,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`exact_wall` for every row of ``counts`` (``[n, G]``) with one pricing call per side: arrays
    ``lo`` and ``hi`` of length ``n`` (rl.screen plans dozens of episodes per evaluated one)."""
    allowed = np.asarray(allowed)
    hi = _caps(cost_model, counts, group, allowed, later, floor, target)
    reach = _priced(cost_model, counts, group, allowed, later, full) >= target * (1 - 1e-12)
    lo = np.where(reach.any(axis=1), allowed[np.argmax(reach, axis=1)], allowed[-1])
    return np.minimum(lo, hi), hi


LANDING_TOLERANCE = 0.03
"""An exact-budget episode should spend at least this close to its budget (from below): :func:`wall_choices`
steers towards it, and ``round_to: auto`` takes a finer channel multiple where the coarse one cannot land there."""

LANDING_WARNING = 0.10
"""A pruning run warns before its search when a task's episodes cannot land within this much below its budget
(the multiple leaves no closer strategy), and records it in results.json and the report."""

LOOKAHEAD = 4096
""":func:`wall_choices` enumerates the later groups' count combinations when, times the counts inside the wall,
there are at most this many configurations to price (milliseconds per step with the FLOP model); with more, the
later groups are many or fine enough to land."""


def wall_choices(
    cost_model: Any,
    counts: np.ndarray,
    group: int,
    allowed: Sequence[np.ndarray],
    later: np.ndarray,
    floor: np.ndarray,
    full: np.ndarray,
    target: float,
    tolerance: float = LANDING_TOLERANCE,
    limit: int = LOOKAHEAD,
) -> np.ndarray:
    """The counts an exact-budget episode may keep for ``group`` at this step, in increasing order.

    Without lookahead, the allowed counts inside :func:`exact_wall`. With it (the ``later`` groups' count
    combinations, times this group's counts up to the wall's ``hi``, are at most ``limit``), the counts inside
    the wall from which some combination lands in ``[(1 - tolerance) target, target]``; when none inside can,
    such counts below the wall's ``lo`` (``lo`` asks that the later groups at full width reach the budget
    itself, which channel rounding can make impossible where landing just under it is not); when none at all
    can, those from which the landing is closest. ``allowed`` holds every group's counts (indexed by group), already cut at its
    floor as the env's walls use them.
    """
    return wall_choices_rows(cost_model, np.asarray(counts)[None, :], group, allowed, later, floor, full, target,
                             tolerance, limit)[0]


def wall_choices_rows(
    cost_model: Any,
    counts: np.ndarray,
    group: int,
    allowed: Sequence[np.ndarray],
    later: np.ndarray,
    floor: np.ndarray,
    full: np.ndarray,
    target: float,
    tolerance: float = LANDING_TOLERANCE,
    limit: int = LOOKAHEAD,
) -> list[np.ndarray]:
    """:func:`wall_choices` for every row of ``counts`` (``[n, G]``): the walls priced for all rows at once, the
    look-ahead (late steps only) row by row."""
    own = np.asarray(allowed[group])
    later = np.asarray(later, dtype=np.int64)
    lows, highs = exact_walls(cost_model, counts, group, own, later, floor, full, target)
    sizes = math.prod(len(allowed[g]) for g in later)
    out = []
    for row, lo, hi in zip(np.asarray(counts), lows, highs, strict=True):
        inside = own[(own >= lo) & (own <= hi)]
        candidates = own[own <= hi]
        if len(later) == 0 or len(candidates) <= 1 or len(candidates) * sizes > limit:
            out.append(inside)
        else:
            out.append(_landing_counts(cost_model, row, group, candidates, lo, allowed, later, target, tolerance))
    return out


def _landing_counts(cost_model: Any, counts: np.ndarray, group: int, candidates: np.ndarray, lo: int,
                    allowed: Sequence[np.ndarray], later: np.ndarray, target: float, tolerance: float) -> np.ndarray:
    """The look-ahead of :func:`wall_choices`: the ``candidates`` from which some completion of the ``later``
    groups lands within ``tolerance`` below ``target`` (or lands closest), inside the wall (``>= lo``) where any do."""
    grid = np.stack(np.meshgrid(*[np.asarray(allowed[g]) for g in later], indexing="ij"), -1).reshape(-1, len(later))
    rows = np.repeat(np.asarray(counts, dtype=np.float64)[None, :], len(candidates) * len(grid), axis=0)
    rows[:, group] = np.repeat(candidates, len(grid))
    rows[:, later] = np.tile(grid, (len(candidates), 1))
    cost = np.asarray(cost_model(rows)).reshape(len(candidates), len(grid))
    best = np.where(cost <= target * (1 + 1e-12), cost, -np.inf).max(axis=1)
    want = min(target * (1 - tolerance), float(best.max()))
    lands = best >= want * (1 - 1e-12)
    # Inside the wall where possible: its lower side keeps episodes filling the budget rather than stopping at
    # the tolerance.
    return candidates[lands & (candidates >= lo)] if np.any(lands & (candidates >= lo)) else candidates[lands]


def check_reachable(flop_model: FlopModel, floor: np.ndarray, base_flops: float, ratio: float, lbound: float) -> None:
    """Raise if the FLOPs target cannot be met even with every group at its floor, saying by how much."""
    least = float(flop_model(floor))
    if least > ratio * base_flops * (1 + 1e-12):
        raise AutostructError(unreachable_message(ratio, least, base_flops, lbound))


def unreachable_message(ratio: float, least: float, base_flops: float, lbound: float) -> str:
    """Why a FLOPs ratio is out of reach when ``lbound`` is the limit: ``least`` FLOPs with every group at it."""
    target = ratio * base_flops
    least_ratio = least / base_flops
    return (f"FLOPs target ratio {ratio:g} cannot be met: with every prunable group at lbound={lbound:g} the model "
            f"still has {least_ratio:.3f} of its FLOPs ({least:,.0f} > target {target:,.0f}, "
            f"{(least - target) / base_flops:.3f} of base FLOPs over). Use a ratio >= "
            f"{math.ceil(least_ratio * 1000) / 1000:g} or a smaller lbound.")


def uniform_wall_counts(
    cost_model: Any,
    channels: np.ndarray,
    allowed: Sequence[np.ndarray],
    order: np.ndarray,
    floor: np.ndarray,
    target: float,
) -> tuple[float, np.ndarray]:
    """The uniform strategy played as an exact-budget episode: ``(ratio, counts)``.

    ``ratio`` is :func:`uniform_counts`' (the largest single keep ratio within ``target``); then group after
    group (``order``) keeps the count of :func:`wall_choices` nearest to ``ratio`` of its channels, so the
    strategy spends the budget as an episode does: the groups are pruned alike and the last ones take up what
    rounding left. ``allowed`` is cut at ``floor`` here, as in the env's walls.
    """
    full = np.asarray(channels, dtype=np.int64)
    order = np.asarray(order, dtype=np.int64)
    walled = [np.asarray(a)[np.asarray(a) >= f] for a, f in zip(allowed, floor, strict=True)]
    ratio, _ = uniform_counts(cost_model, full, allowed, order, target)
    counts = full.copy()
    for step, g in enumerate(order):
        choices = wall_choices(cost_model, counts, int(g), walled, order[step + 1 :], floor, full, target)
        counts[g] = nearest_allowed(ratio * float(full[g]), choices)
    return ratio, counts


def uniform_counts(
    flop_model: FlopModel,
    channels: np.ndarray,
    allowed: list[np.ndarray],
    decidable: np.ndarray,
    target: float,
    iters: int = 40,
) -> tuple[float, np.ndarray]:
    """The largest single keep ratio (applied to every decidable group) whose FLOPs stay within ``target``.

    Returns ``(ratio, counts)``. Bisection on the ratio; counts are ``ceil``-rounded to allowed values.
    """

    def counts_for(ratio: float) -> np.ndarray:
        out = channels.astype(np.int64).copy()
        for g in decidable:
            out[g] = ceil_to_allowed(ratio, int(channels[g]), allowed[g])
        return out

    lo, hi = 0.0, 1.0
    if flop_model(counts_for(1.0)) <= target:
        return 1.0, counts_for(1.0)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if flop_model(counts_for(mid)) <= target:
            lo = mid
        else:
            hi = mid
    return lo, counts_for(lo)
