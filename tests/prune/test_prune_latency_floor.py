"""The latency floor's branch and bound against brute force on small chains (pure math, no torch)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from test_prune_latency_model import random_model, walk

from autostruct.prune import budget as B
from autostruct.prune.latency_floor import latency_floor


def chain(seed: int, groups: int = 4, step: int = 8):
    """A random latency model over a conv chain and the FLOP model of the same layers (random spatial sizes)."""
    lat, allowed = random_model(seed, groups=groups, step=step)
    rng = np.random.default_rng(seed + 1000)
    p = rng.choice([9.0 * 28 * 28, 9.0 * 14 * 14, 9.0 * 7 * 7], size=len(lat.tables))
    zeros = np.zeros(len(lat.tables))
    fm = B.FlopModel(lat.in_const, lat.in_coef, lat.out_const, lat.out_coef, p, zeros, zeros, zeros)
    full = np.asarray([a[-1] for a in allowed], dtype=np.int64)
    floor = np.asarray([B.ceil_to_allowed(0.2, int(a[-1]), a) for a in allowed], dtype=np.int64)
    # The env's walls never go below a group's floor (lbound): only the counts at or above it are choices.
    allowed = [a[a >= f] for a, f in zip(allowed, floor, strict=True)]
    return lat, fm, allowed, full, floor


def reachable(fm, allowed, full, floor, target, wall):
    """Every strategy an episode can end on: all wall choices at every step, enumerated."""
    out = []

    def rec(g, counts):
        if g == len(allowed):
            out.append(counts.copy())
            return
        later = np.arange(g + 1, len(allowed))
        if wall == "exact":
            lo, hi = B.exact_wall(fm, counts, g, allowed[g], later, floor, full, target)
        else:
            lo, hi = int(floor[g]), B.amc_cap(fm, counts, g, allowed[g], later, floor, target)
        for v in allowed[g][(allowed[g] >= lo) & (allowed[g] <= hi)]:
            counts[g] = v
            rec(g + 1, counts)
        counts[g] = full[g]

    rec(0, full.copy())
    return np.asarray(out)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("wall", ["exact", "amc"])
def test_floor_and_ceiling_match_brute_force_over_every_reachable_strategy(seed, ratio, wall):
    lat, fm, allowed, full, floor = chain(seed)
    target = ratio * fm(full)
    if fm(floor) > target:
        pytest.skip("budget below the floor for this chain")
    leaves = reachable(fm, allowed, full, floor, target, wall)
    costs = lat(leaves)
    best = latency_floor(lat, fm, allowed, full, floor, ratio, wall=wall)
    worst = latency_floor(lat, fm, allowed, full, floor, ratio, wall=wall, worst=True)
    assert best.exact and worst.exact
    assert best.latency_ms == pytest.approx(costs.min(), rel=1e-12)
    assert worst.latency_ms == pytest.approx(costs.max(), rel=1e-12)
    assert any((leaf == best.counts).all() for leaf in leaves)  # a strategy an episode can reach
    assert best.flops_ratio <= ratio * (1 + 1e-9)
    # The search cuts branches: fewer nodes than the tree it stands for.
    assert best.nodes < len(leaves) * len(allowed)


def test_amc_floor_is_the_least_latency_of_any_strategy_within_budget():
    lat, fm, allowed, full, floor = chain(3, groups=4)
    grid = [a[a >= f] for a, f in zip(allowed, floor, strict=True)]
    configs = np.asarray(list(itertools.product(*grid)), dtype=np.float64)
    ok = fm(configs) <= 0.5 * fm(full) * (1 + 1e-12)
    best = latency_floor(lat, fm, allowed, full, floor, 0.5, wall="amc")
    assert best.latency_ms == pytest.approx(lat(configs[ok]).min(), rel=1e-12)


def test_no_random_episode_beats_the_floor_or_the_ceiling():
    lat, fm, allowed, full, floor = chain(5, groups=6)
    best = latency_floor(lat, fm, allowed, full, floor, 0.5)
    worst = latency_floor(lat, fm, allowed, full, floor, 0.5, worst=True)
    rng = np.random.default_rng(0)
    for _ in range(200):
        counts = walk(fm, allowed, rng.uniform(size=len(allowed)), 0.5 * fm(full), floor, full)
        assert best.latency_ms - 1e-12 <= lat(counts) <= worst.latency_ms + 1e-12


def test_node_budget_returns_a_reachable_strategy_marked_inexact():
    lat, fm, allowed, full, floor = chain(1, groups=6)
    capped = latency_floor(lat, fm, allowed, full, floor, 0.5, max_nodes=3)
    exact = latency_floor(lat, fm, allowed, full, floor, 0.5)
    assert not capped.exact and exact.exact
    assert capped.latency_ms >= exact.latency_ms - 1e-12


def test_unreachable_budget_and_unknown_wall_are_refused():
    lat, fm, allowed, full, floor = chain(0)
    with pytest.raises(Exception, match="cannot be met"):
        latency_floor(lat, fm, allowed, full, floor, 1e-4)
    with pytest.raises(Exception, match="wall must be one of"):
        latency_floor(lat, fm, allowed, full, floor, 0.5, wall="soft")


def test_any_monotone_callable_is_a_cost_model_too():
    lat, fm, allowed, full, floor = chain(2, groups=5)
    tabulated = latency_floor(lat, fm, allowed, full, floor, 0.5)
    plain = latency_floor(lambda counts: lat(counts), fm, allowed, full, floor, 0.5)
    assert plain.counts.tolist() == tabulated.counts.tolist()
    assert plain.latency_ms == pytest.approx(tabulated.latency_ms, rel=1e-12)
