"""The latency floor of a pruning task: the least predicted latency any episode can reach (and the most).

Pure math, no torch. A FLOPs task with ``budget: exact`` lets an episode keep, group after group, any allowed
count inside the wall ``[lo_l, hi_l]`` of :func:`~autostruct.prune.budget.exact_wall`, so every finished
episode spends the FLOPs budget (up to rounding). Which of those strategies runs fastest is a question for a
latency model (:class:`~autostruct.prune.latency.LatencyModel`): if even the fastest one is slower than a
speed-up target, no search over that task can meet the target, however well it learns.

:func:`latency_floor` answers it exactly by branch and bound over the episode's decisions: a node fixes the
first ``d`` groups; since the predicted latency never drops when a group keeps more (the tables are monotone,
:func:`~autostruct.prune.latency.monotone_envelope`), every later group at its floor bounds the latency of
all the node's leaves from below (and every later group at full bounds it from above, for ``worst=True``).
Children are visited best bound first, so the first leaf is the greedy dive and later branches are cut as
soon as their bound cannot beat it. ``max_nodes`` caps the work on large graphs; the answer then says
``exact=False`` and is the best strategy found (an upper bound on the floor; the first dive always finishes).

>>> from autostruct.prune.budget import FlopModel
>>> from autostruct.prune.latency import LatencyModel, LayerTable
>>> fm = FlopModel.from_lists(in_const=[0.0, 0.0], in_coef=[[0.0, 0.0], [1.0, 0.0]], out_const=[0.0, 0.0],
...                           out_coef=[[1.0, 0.0], [0.0, 1.0]], p=[0.0, 1.0], q=[1.0, 0.0], r=[0.0, 0.0],
...                           s=[0.0, 0.0])  # flops = a + a * b
>>> grid = np.array([0.0, 8.0])
>>> lat = LatencyModel(fm.in_const, fm.in_coef, fm.out_const, fm.out_coef,
...                    (LayerTable(grid, grid, np.array([[0.0, 1.0], [0.0, 1.0]])),
...                     LayerTable(grid, grid, np.array([[0.0, 4.0], [0.0, 4.0]]))))  # a / 8 + b / 2
>>> f = latency_floor(lat, fm, [np.array([2, 4, 8]), np.array([2, 4, 8])], np.array([8, 8]),
...                   np.array([2, 2]), ratio=0.5)
>>> f.counts.tolist(), round(f.latency_ms, 3), f.exact
([8, 2], 2.0, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from autostruct.errors import AutostructError
from autostruct.prune import budget as B
from autostruct.prune.groups import group_allowed
from autostruct.prune.latency import LatencyModel

Wall = Literal["exact", "amc", "none"]
WALLS: tuple[str, ...] = ("exact", "amc", "none")


@dataclass(frozen=True)
class LatencyFloor:
    """The extreme strategy :func:`latency_floor` found: kept channels per group, its cost and FLOPs."""

    counts: np.ndarray
    latency_ms: float
    base_latency_ms: float
    flops_ratio: float
    exact: bool
    """True when the search finished: ``latency_ms`` is the optimum over every strategy the wall allows."""
    nodes: int

    @property
    def ratio(self) -> float:
        """Predicted latency over the base's predicted latency."""
        return self.latency_ms / self.base_latency_ms

    def as_dict(self) -> dict[str, Any]:
        return {"counts": [int(c) for c in self.counts], "latency_ms": self.latency_ms,
                "base_latency_ms": self.base_latency_ms, "ratio": self.ratio, "flops_ratio": self.flops_ratio,
                "exact": self.exact, "nodes": self.nodes}


def latency_floor(
    cost_model: Any,
    flop_model: B.FlopModel,
    allowed: Sequence[np.ndarray],
    full: np.ndarray,
    floor: np.ndarray,
    ratio: float,
    *,
    order: Sequence[int] | None = None,
    wall: Wall = "exact",
    worst: bool = False,
    max_nodes: int = 200_000,
) -> LatencyFloor:
    """The least (``worst=True``: the most) ``cost_model`` over the strategies an episode can reach.

    Args:
        cost_model: predicted latency of kept channels, ``(..., G) -> (...)``, never dropping as a count grows
            (a :class:`~autostruct.prune.latency.LatencyModel`; any monotone cost works).
        flop_model: the FLOPs of kept channels (the budget the wall holds).
        allowed: per group, its allowed counts in increasing order (:func:`~autostruct.prune.surgery.group_allowed`).
        full, floor: per group, all its channels and the least it may keep (``lbound``, rounded up).
        ratio: the FLOPs budget over the base's FLOPs.
        order: the groups an episode decides, in its order (default: every group with more than one allowed
            count, as the env's ``decidable``); the others stay at ``full``.
        wall: ``exact`` (the env's ``budget: exact``: strategies that fill the budget), ``amc`` (any strategy
            within the budget) or ``none`` (any strategy at all).
        worst: find the slowest strategy instead of the fastest.
        max_nodes: stop after this many search nodes (the answer then has ``exact=False``).
    """
    if wall not in WALLS:
        raise AutostructError(f"wall must be one of {', '.join(WALLS)}, got {wall!r}.")
    full = np.asarray(full, dtype=np.int64)
    floor = np.asarray(floor, dtype=np.int64)
    allowed = [np.asarray(a)[np.asarray(a) >= f] for a, f in zip(allowed, floor, strict=True)]  # as the env's walls
    if order is None:
        order = [g for g, a in enumerate(allowed) if len(a) > 1]
    order = np.asarray(order, dtype=np.int64)
    base_flops = float(flop_model(full))
    target = ratio * base_flops * (1 + 1e-12)
    if wall != "none" and float(flop_model(floor)) > target:
        raise AutostructError(f"FLOPs ratio {ratio:g} cannot be met: every group at its floor keeps "
                              f"{float(flop_model(floor)) / base_flops:.3f} of the FLOPs.")
    # Counts as indices into ``allowed``: the floor is index 0 and a group's full count its last index.
    sizes = np.asarray([len(a) for a in allowed])
    last = sizes - 1
    flops = _Discrete(flop_model, allowed)
    cost = _Discrete(cost_model, allowed)
    sign = -1.0 if worst else 1.0
    fill = last if worst else np.zeros_like(last)  # undecided groups in a bound: least (most) cost

    best_cost = np.inf
    best_idx = last.copy()
    nodes = 0
    finished = True

    def visit(depth: int, idx: np.ndarray) -> None:
        nonlocal best_cost, best_idx, nodes, finished
        g = int(order[depth])
        later = order[depth + 1 :]
        values = np.arange(sizes[g])
        rows = np.repeat(idx[None, :], len(values), axis=0)
        rows[:, g] = values
        if wall != "none":
            # The walls of :func:`~autostruct.prune.budget.exact_wall` / ``amc_cap``, on all of g's counts at once.
            rows[:, later] = 0
            ok = np.nonzero(flops(rows) <= target)[0]
            hi = int(ok[-1]) if len(ok) else 0
            lo = 0
            if wall == "exact":
                rows[:, later] = last[later]
                reach = np.nonzero(flops(rows) >= target * (1 - 2e-12))[0]
                lo = min(int(reach[0]) if len(reach) else int(last[g]), hi)
            values, rows = values[lo : hi + 1], rows[lo : hi + 1]
        rows[:, later] = fill[later]
        bounds = sign * cost(rows)
        for i in np.argsort(bounds, kind="stable"):
            if bounds[i] >= best_cost - 1e-12:
                break  # sorted: no later child can beat the incumbent either
            if len(later) == 0:
                best_cost, best_idx = float(bounds[i]), rows[i].copy()  # a leaf's bound is its cost
                continue
            if nodes >= max_nodes and np.isfinite(best_cost):
                finished = False  # out of budget, but only once there is a strategy to return
                return
            nodes += 1
            child = idx.copy()
            child[g] = values[i]
            visit(depth + 1, child)

    if len(order):
        visit(0, last.copy())
    counts = np.asarray([a[i] for a, i in zip(allowed, best_idx, strict=True)], dtype=np.int64)
    return LatencyFloor(counts=counts, latency_ms=float(cost_model(counts)), base_latency_ms=float(cost_model(full)),
                        flops_ratio=float(flop_model(counts)) / base_flops, exact=finished, nodes=nodes)


class _Discrete:
    """A cost over allowed-count indices, summed from small dense tables: one per set of groups a layer reads.

    A :class:`~autostruct.prune.budget.FlopModel` or :class:`~autostruct.prune.latency.LatencyModel` costs each
    layer call from its input and output channels, which read one or two groups each: the calls that read the
    same groups share one precomputed table, and a configuration costs one lookup per table instead of a
    bilinear interpolation per layer (what makes the branch and bound fast). Any other cost model is called
    on the counts as it is.
    """

    def __init__(self, model: Any, allowed: Sequence[np.ndarray]) -> None:
        self.model = model
        self.allowed = [np.asarray(a, dtype=np.float64) for a in allowed]
        self.terms: list[tuple[tuple[int, ...], np.ndarray]] = []
        self.const = 0.0
        per_call = _per_call(model)
        if per_call is None:
            return
        deps = (np.abs(model.in_coef) + np.abs(model.out_coef)) > 0
        by_deps: dict[tuple[int, ...], list[int]] = {}
        for layer in range(deps.shape[0]):
            by_deps.setdefault(tuple(int(g) for g in np.nonzero(deps[layer])[0]), []).append(layer)
        if any(np.prod([len(allowed[g]) for g in d]) > 1_000_000 for d in by_deps):
            self.terms = []
            return  # a layer reads too many groups to tabulate: fall back to calling the model
        full = np.asarray([a[-1] for a in self.allowed])
        for d, layers in by_deps.items():
            grids = np.meshgrid(*[self.allowed[g] for g in d], indexing="ij") if d else []
            shape = grids[0].shape if d else ()
            counts = np.broadcast_to(full, (*shape, len(full))).copy()
            for g, grid in zip(d, grids, strict=True):
                counts[..., g] = grid
            table = per_call(counts, np.asarray(layers)).sum(axis=-1)
            if d:
                self.terms.append((d, table))
            else:
                self.const += float(table)
        self.scale = float(getattr(model, "scale", 1.0))
        self.offset = float(getattr(model, "overhead", 0.0))

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        """The cost of configurations given as indices, shape ``(..., G) -> (...)``."""
        if not self.terms:
            counts = np.stack([self.allowed[g][idx[..., g]] for g in range(idx.shape[-1])], axis=-1)
            return np.asarray(self.model(counts), dtype=np.float64)
        total = np.full(idx.shape[:-1], self.const)
        for d, table in self.terms:
            total = total + table[tuple(idx[..., g] for g in d)]
        return self.offset + self.scale * total


def _per_call(model: Any) -> Any:
    """``f(counts, layers) -> (..., len(layers))``: the unscaled cost of each listed layer call, or None."""
    if isinstance(model, B.FlopModel):
        def flop_calls(counts: np.ndarray, layers: np.ndarray) -> np.ndarray:
            c_in = model.in_const[layers] + counts @ model.in_coef[layers].T
            c_out = model.out_const[layers] + counts @ model.out_coef[layers].T
            return model.p[layers] * c_in * c_out + model.q[layers] * c_out + model.r[layers] * c_in + model.s[layers]

        return flop_calls
    if isinstance(model, LatencyModel):
        def layer_calls(counts: np.ndarray, layers: np.ndarray) -> np.ndarray:
            c_in, c_out = model.layer_counts(counts)
            return np.stack([model.tables[int(i)](c_in[..., i], c_out[..., i]) for i in layers], axis=-1)

        return layer_calls
    return None


def graph_latency_floor(graph: Any, cost_model: Any, ratio: float, round_to: int = 1, lbound: float = 0.2, *,
                        wall: Wall = "exact", worst: bool = False, max_nodes: int = 200_000) -> LatencyFloor:
    """:func:`latency_floor` for a :class:`~autostruct.prune.graph.PruningGraph`, with the env's allowed counts,
    floors and order of decisions (as a :class:`~autostruct.prune.env.PruningEnv` of this ``round_to`` and
    ``lbound`` builds them)."""
    allowed = [group_allowed(g, round_to) for g in graph.groups]
    full = np.asarray(graph.channels, dtype=np.int64)
    floor = full.copy()
    for i, a in enumerate(allowed):
        if len(a) > 1:
            floor[i] = B.ceil_to_allowed(lbound, int(full[i]), a)
    return latency_floor(cost_model, graph.flop_model, allowed, full, floor, ratio, wall=wall, worst=worst,
                         max_nodes=max_nodes)


__all__ = ["WALLS", "LatencyFloor", "graph_latency_floor", "latency_floor"]
