"""Budget math as pure functions: the FLOP model, allowed counts, AMC's cap and the two-sided wall."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autostruct.errors import AutostructError
from autostruct.prune import budget as B


def chain_model(channels: list[int], spatial: list[int]) -> B.FlopModel:
    """A plain conv chain 3 -> c1 -> c2 ... -> 10 (the last layer a classifier), 3x3 kernels."""
    g = len(channels)
    rows = []
    for i in range(g + 1):
        in_coef, out_coef = np.zeros(g), np.zeros(g)
        in_const = 3.0 if i == 0 else 0.0
        if i > 0:
            in_coef[i - 1] = 1.0
        out_const = 10.0 if i == g else 0.0
        if i < g:
            out_coef[i] = 1.0
        rows.append((in_const, in_coef, out_const, out_coef, 9.0 * spatial[min(i, g - 1)] ** 2))
    return B.FlopModel.from_lists(
        in_const=[r[0] for r in rows], in_coef=[r[1] for r in rows], out_const=[r[2] for r in rows],
        out_coef=[r[3] for r in rows], p=[r[4] for r in rows], q=[0.0] * len(rows), r=[0.0] * len(rows),
        s=[0.0] * len(rows),
    )


def test_flop_model_of_a_chain_is_the_sum_of_conv_macs():
    fm = chain_model([4, 8], [4, 2])
    expected = 9 * 16 * 3 * 4 + 9 * 4 * 4 * 8 + 9 * 4 * 8 * 10
    assert fm.flops([4, 8]) == expected
    assert fm.flops([2, 8]) == 9 * 16 * 3 * 2 + 9 * 4 * 2 * 8 + 9 * 4 * 8 * 10
    assert fm(np.array([[4, 8], [2, 8]])).shape == (2,)


def test_allowed_counts_round_to_multiples_and_keep_all():
    assert B.allowed_counts(20, 8).tolist() == [8, 16, 20]
    assert B.allowed_counts(16, 8).tolist() == [8, 16]
    assert B.allowed_counts(5, 8).tolist() == [5]
    assert B.allowed_counts(4).tolist() == [1, 2, 3, 4]
    assert B.ceil_to_allowed(0.5, 20, B.allowed_counts(20, 8)) == 16
    assert B.ceil_to_allowed(0.01, 20, B.allowed_counts(20, 8)) == 8
    assert B.ceil_to_allowed(3 / 7, 7, B.allowed_counts(7)) == 3  # no float drift past an exact count


def test_unreachable_budget_says_by_how_much():
    fm = chain_model([8, 8], [4, 4])
    floor = np.array([2, 2])
    with pytest.raises(AutostructError, match=r"cannot be met.*over"):
        B.check_reachable(fm, floor, fm.flops([8, 8]), 0.01, 0.2)
    B.check_reachable(fm, floor, fm.flops([8, 8]), 0.5, 0.2)


chains = st.lists(st.integers(4, 40), min_size=2, max_size=7).flatmap(
    lambda cs: st.tuples(st.just(cs), st.lists(st.integers(1, 8), min_size=len(cs), max_size=len(cs)))
)


@settings(max_examples=40, deadline=None)
@given(chain=chains, alpha=st.sampled_from([0.3, 0.5, 0.7]), seed=st.integers(0, 10_000))
def test_walls_keep_every_random_episode_on_budget(chain, alpha, seed):
    channels, spatial = chain
    fm = chain_model(channels, sorted(spatial, reverse=True))
    full = np.asarray(channels)
    allowed = [B.allowed_counts(c) for c in channels]
    floor = np.asarray([B.ceil_to_allowed(0.2, c, a) for c, a in zip(channels, allowed, strict=True)])
    target = alpha * fm.flops(full)
    if fm.flops(floor) > target:
        return  # unreachable budgets are rejected up front (tested above)
    rng = np.random.default_rng(seed)
    order = np.arange(len(channels))
    for mode in ("exact", "amc"):
        counts = full.copy()
        for step, g in enumerate(order):
            later = order[step + 1 :]
            if mode == "exact":
                lo, hi = B.exact_wall(fm, counts, g, allowed[g], later, floor, full, target)
            else:
                lo, hi = int(floor[g]), B.amc_cap(fm, counts, g, allowed[g], later, floor, target)
            assert lo <= hi
            choices = allowed[g][(allowed[g] >= lo) & (allowed[g] <= hi)]
            counts[g] = B.nearest_allowed(lo + rng.random() * (hi - lo), choices)
        used = fm.flops(counts)
        assert used <= target * (1 + 1e-9), (mode, used / target)
        if mode == "exact":
            # Never over; under only by what one channel of the last group costs.
            last = order[-1]
            one_more = counts.copy()
            one_more[last] = min(counts[last] + 1, full[last])
            assert used >= target - (fm.flops(one_more) - used) - 1e-6 or counts[last] == full[last]


def test_uniform_counts_is_the_largest_ratio_within_budget():
    fm = chain_model([16, 32, 64], [8, 4, 2])
    full = np.array([16, 32, 64])
    allowed = [B.allowed_counts(c) for c in full]
    target = 0.5 * fm.flops(full)
    ratio, counts = B.uniform_counts(fm, full, allowed, np.arange(3), target)
    assert fm.flops(counts) <= target
    bigger = np.asarray([B.ceil_to_allowed(ratio + 0.02, c, a) for c, a in zip(full, allowed, strict=True)])
    assert fm.flops(bigger) > target


def test_dataset_id_is_normalized_and_clipped_for_unseen_datasets():
    from autostruct.prune.features import normalized_dataset_id

    assert normalized_dataset_id(0, 1) == 0.0
    assert normalized_dataset_id(1, 3) == 0.5
    assert normalized_dataset_id(3, 3) == 1.0  # zero-shot: a dataset the run did not see
    assert normalized_dataset_id(1, 1) == 1.0
    with pytest.raises(ValueError):
        normalized_dataset_id(-1, 2)


def _walk(fm, full, walled, floor, target, rng):
    counts = full.copy()
    order = np.arange(len(full))
    for step, g in enumerate(order):
        choices = B.wall_choices(fm, counts, g, walled, order[step + 1 :], floor, full, target)
        lo, hi = float(choices[0]), float(choices[-1])
        counts[g] = B.nearest_allowed(lo + rng.random() * (hi - lo), choices)
    return counts


coarse_chains = st.lists(st.integers(8, 32), min_size=2, max_size=4).flatmap(
    lambda cs: st.tuples(st.just(cs), st.lists(st.integers(1, 8), min_size=len(cs), max_size=len(cs)))
)


@settings(max_examples=60, deadline=None)
@given(chain=coarse_chains, alpha=st.sampled_from([0.3, 0.5, 0.7]), seed=st.integers(0, 10_000))
def test_lookahead_lands_within_tolerance_wherever_a_strategy_does(chain, alpha, seed):
    # Multiples of 8 leave 1-4 counts per group: the plain wall can end far under the budget; looking ahead,
    # every episode ends within LANDING_TOLERANCE of it whenever some strategy inside the walls can.
    channels, spatial = chain
    fm = chain_model(channels, sorted(spatial, reverse=True))
    full = np.asarray(channels)
    allowed = [B.allowed_counts(c, 8) for c in channels]
    floor = np.asarray([B.ceil_to_allowed(0.2, c, a) for c, a in zip(channels, allowed, strict=True)])
    walled = [a[a >= f] for a, f in zip(allowed, floor, strict=True)]
    target = alpha * fm.flops(full)
    if fm.flops(floor) > target:
        return
    grid = np.stack(np.meshgrid(*walled, indexing="ij"), -1).reshape(-1, len(channels))
    cost = fm(grid)
    best = cost[cost <= target * (1 + 1e-12)].max() / target
    used = fm.flops(_walk(fm, full, walled, floor, target, np.random.default_rng(seed))) / target
    assert used <= 1 + 1e-9
    if best >= 1 - B.LANDING_TOLERANCE:
        assert used >= 1 - B.LANDING_TOLERANCE, (best, used)


def test_uniform_wall_counts_spend_what_plain_uniform_leaves():
    # Three groups of 16/32/32 channels at multiples of 8: one keep ratio for all reaches 0.63 of the budget;
    # played under the exact wall, the same ratio with the last groups taking up the rest reaches >= 0.97.
    fm = chain_model([16, 32, 32], [16, 8, 8])
    full = np.array([16, 32, 32])
    allowed = [B.allowed_counts(c, 8) for c in full]
    floor = np.asarray([B.ceil_to_allowed(0.2, c, a) for c, a in zip(full, allowed, strict=True)])
    target = 0.5 * fm.flops(full)
    ratio, plain = B.uniform_counts(fm, full, allowed, np.arange(3), target)
    same_ratio, walled = B.uniform_wall_counts(fm, full, allowed, np.arange(3), floor, target)
    assert same_ratio == ratio
    assert fm.flops(plain) / target < 0.97 <= fm.flops(walled) / target <= 1.0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), calls=st.integers(1, 40), groups=st.integers(1, 12))
def test_flop_model_quadratic_form_matches_the_sum_over_calls(seed, calls, groups):
    """The pricing used everywhere (one quadratic form) against the per-call sum it is derived from."""
    rng = np.random.default_rng(seed)
    ints = lambda *shape: rng.integers(0, 9, shape).astype(np.float64)  # noqa: E731
    fm = B.FlopModel.from_lists(in_const=ints(calls), in_coef=ints(calls, groups), out_const=ints(calls),
                                out_coef=ints(calls, groups), p=ints(calls), q=ints(calls), r=ints(calls),
                                s=ints(calls))
    counts = rng.integers(1, 65, (7, groups)).astype(np.float64)
    c_in = fm.in_const + counts @ fm.in_coef.T
    c_out = fm.out_const + counts @ fm.out_coef.T
    slow = (fm.p * c_in * c_out + fm.q * c_out + fm.r * c_in + fm.s).sum(axis=-1)
    np.testing.assert_array_equal(fm(counts), slow)  # integer-valued: exact in float64
    assert [fm.flops(c) for c in counts] == [int(v) for v in slow]


def test_exact_walls_of_many_rows_match_the_definition_row_by_row():
    """lo / hi straight from their definitions, one allowed count at a time, for every row of a batch."""
    rng = np.random.default_rng(0)
    channels = [12, 20, 16, 24, 8]
    fm = chain_model(channels, [8, 8, 4, 4, 2])
    full, floor = np.array(channels), np.array([2, 2, 2, 2, 2])
    allowed = [B.allowed_counts(c, 2) for c in channels]
    target = 0.45 * fm.flops(full)

    def cost(row, group, later, value, rest):
        k = row.astype(float).copy()
        k[later], k[group] = rest[later], value
        return fm(k)

    for group in range(len(channels)):
        later = np.arange(group + 1, len(channels))
        rows = np.array([[rng.choice(a) if g < group else c for g, (a, c) in enumerate(zip(allowed, channels,
                                                                                          strict=True))]
                         for _ in range(9)])
        lows, highs = B.exact_walls(fm, rows, group, allowed[group], later, floor, full, target)
        for row, lo, hi in zip(rows, lows, highs, strict=True):
            fits = [v for v in allowed[group] if cost(row, group, later, v, floor) <= target * (1 + 1e-12)]
            reach = [v for v in allowed[group] if cost(row, group, later, v, full) >= target * (1 - 1e-12)]
            want_hi = fits[-1] if fits else allowed[group][0]
            want_lo = min(reach[0] if reach else allowed[group][-1], want_hi)
            assert (lo, hi) == (want_lo, want_hi) == B.exact_wall(fm, row, group, allowed[group], later, floor,
                                                                   full, target)
        choices = B.wall_choices_rows(fm, rows, group, allowed, later, floor, full, target)
        for row, c in zip(rows, choices, strict=True):
            np.testing.assert_array_equal(c, B.wall_choices(fm, row, group, allowed, later, floor, full, target))
