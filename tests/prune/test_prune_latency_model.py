"""The latency cost model as pure math: interpolation, the monotone envelope, calibration, and the wall on it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autostruct.prune import budget as B
from autostruct.prune.latency import LatencyModel, LayerTable, fit_calibration, monotone_envelope


def random_model(seed: int, groups: int = 5, step: int = 8, monotone: bool = True) -> tuple[LatencyModel, list]:
    """A conv chain: layer i maps group i-1's channels to group i's, each with a random (noisy, steppy) table."""
    rng = np.random.default_rng(seed)
    channels = rng.choice([16, 24, 32, 48, 64], size=groups)
    allowed = [B.allowed_counts(int(c), step) for c in channels]
    tables, in_const, in_coef, out_const, out_coef = [], [], [], [], []
    for i in range(groups + 1):
        ic, oc = np.zeros(groups), np.zeros(groups)
        if i > 0:
            ic[i - 1] = 1.0
        if i < groups:
            oc[i] = 1.0
        in_grid = allowed[i - 1].astype(float) if i > 0 else np.array([3.0])
        out_grid = allowed[i].astype(float) if i < groups else np.array([10.0])
        # Latency grows with in * out but with noise and odd-count bumps, as measured tables do.
        raw = 0.01 + 1e-4 * np.outer(in_grid, out_grid) * rng.uniform(0.6, 1.4, (len(in_grid), len(out_grid)))
        tables.append(LayerTable(in_grid, out_grid, monotone_envelope(raw) if monotone else raw))
        in_const.append(3.0 if i == 0 else 0.0)
        out_const.append(10.0 if i == groups else 0.0)
        in_coef.append(ic)
        out_coef.append(oc)
    model = LatencyModel(np.array(in_const), np.array(in_coef), np.array(out_const), np.array(out_coef),
                         tuple(tables), scale=float(rng.uniform(0.5, 1.5)), overhead=float(rng.uniform(0, 0.1)))
    return model, allowed


def walk(model, allowed, actions, target, floor, full, budget="exact"):
    """One episode as PruningEnv plays it: each group's count from the action mapped onto the wall."""
    counts = full.copy()
    g_all = np.arange(len(allowed))
    for g, a in enumerate(actions):
        later = g_all[g + 1:]
        if budget == "exact":
            lo, hi = B.exact_wall(model, counts, g, allowed[g], later, floor, full, target)
        else:
            lo, hi = int(floor[g]), B.amc_cap(model, counts, g, allowed[g], later, floor, target)
        choices = allowed[g][(allowed[g] >= lo) & (allowed[g] <= hi)]
        counts[g] = B.nearest_allowed(lo + a * (hi - lo), choices)
    return counts


def test_layer_table_interpolates_bilinearly_and_clamps():
    t = LayerTable(np.array([8.0, 16.0]), np.array([8.0, 16.0, 24.0]), np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]))
    assert float(t(np.array([8.0]), np.array([8.0]))[0]) == 1.0
    assert float(t(np.array([12.0]), np.array([20.0]))[0]) == pytest.approx(3.75)
    assert float(t(np.array([100.0]), np.array([100.0]))[0]) == 6.0  # clamped at the last cell
    one_axis = LayerTable(np.array([0.0]), np.array([8.0, 16.0]), np.array([[1.0, 3.0]]))  # depthwise
    assert float(one_axis(np.array([55.0]), np.array([12.0]))[0]) == pytest.approx(2.0)


def test_monotone_envelope_is_the_least_nondecreasing_upper_bound():
    raw = np.array([[1.0, 0.5, 2.0], [0.8, 3.0, 1.0]])
    env = monotone_envelope(raw)
    assert np.all(env >= raw)
    assert np.all(np.diff(env, axis=0) >= 0) and np.all(np.diff(env, axis=1) >= 0)
    np.testing.assert_array_equal(env, [[1.0, 1.0, 2.0], [1.0, 3.0, 3.0]])


def test_fit_calibration_recovers_scale_and_overhead_and_stays_monotone():
    sums = np.array([0.1, 0.2, 0.4, 0.8])
    assert fit_calibration(sums, 0.05 + 1.3 * sums) == pytest.approx((1.3, 0.05))
    # A fit that wants a negative overhead (a model faster than its layers) falls back to scale only.
    scale, overhead = fit_calibration(sums, -0.05 + 1.3 * sums)
    assert scale > 0 and overhead == 0.0
    assert fit_calibration([0.2], [0.3]) == pytest.approx((1.5, 0.0))  # one point: the scale alone matches it


def test_latency_model_is_nondecreasing_in_every_group():
    model, allowed = random_model(0)
    full = np.array([a[-1] for a in allowed])
    rng = np.random.default_rng(1)
    for _ in range(50):
        counts = np.array([rng.choice(a) for a in allowed])
        g = rng.integers(len(allowed))
        bigger = counts.copy()
        bigger[g] = allowed[g][-1]
        assert model(bigger) >= model(counts) - 1e-12
    assert model(full) == pytest.approx(model.overhead + model.scale * model.layer_sum(full))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), frac=st.floats(0.0, 1.0), budget=st.sampled_from(["exact", "amc"]),
       actions_seed=st.integers(0, 10_000))
def test_the_latency_wall_never_exceeds_the_budget(seed, frac, budget, actions_seed):
    model, allowed = random_model(seed)
    full = np.array([a[-1] for a in allowed])
    floor = np.array([B.ceil_to_allowed(0.2, int(a[-1]), a) for a in allowed])
    least, most = float(model(floor)), float(model(full))
    target = least + frac * (most - least)
    actions = np.random.default_rng(actions_seed).uniform(0, 1, len(allowed))
    counts = walk(model, allowed, actions, target, floor, full, budget)
    assert float(model(counts)) <= target * (1 + 1e-12)
    assert all(c in a for c, a in zip(counts, allowed, strict=True))


def test_the_exact_wall_spends_most_of_a_latency_budget():
    model, allowed = random_model(3, groups=6)
    full = np.array([a[-1] for a in allowed])
    floor = np.array([B.ceil_to_allowed(0.2, int(a[-1]), a) for a in allowed])
    target = 0.5 * (float(model(floor)) + float(model(full)))
    rng = np.random.default_rng(0)
    spent = [float(model(walk(model, allowed, rng.uniform(0, 1, 6), target, floor, full))) / target for _ in range(30)]
    amc = [float(model(walk(model, allowed, rng.uniform(0, 1, 6), target, floor, full, "amc"))) / target
           for _ in range(30)]
    assert max(spent) <= 1 + 1e-12 and max(amc) <= 1 + 1e-12
    # The lower wall is what makes episodes land near the budget rather than anywhere below it.
    assert np.median(spent) > np.median(amc) and np.median(spent) > 0.9


def test_acc_latency_reward_prefers_faster_models_at_equal_error_and_accuracy_at_equal_latency():
    from autostruct.prune.rewards import acc_latency_reward

    # Sub-millisecond models: microseconds keep the log positive, so "faster" still means "higher".
    assert acc_latency_reward(0.9, 0.2) > acc_latency_reward(0.9, 0.3)
    assert acc_latency_reward(0.95, 0.3) > acc_latency_reward(0.9, 0.3)
    assert acc_latency_reward(1.0, 0.3) == 0.0
    assert acc_latency_reward(0.9, 0.3) == pytest.approx(-0.1 * np.log(300.0))
