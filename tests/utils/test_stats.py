"""expected_best_of_n against brute-force enumeration and Monte Carlo."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from autostruct.utils.stats import expected_best_of_n


@pytest.mark.parametrize("samples", [[0.3], [0.0, 1.0], [0.5, 0.2, 0.2, 0.9], [1.0, -2.0, 3.5, 3.5, 0.0]])
def test_matches_enumeration_of_every_draw(samples):
    n_max = 4
    got = expected_best_of_n(samples, n_max)
    assert len(got) == n_max
    for n in range(1, n_max + 1):
        draws = list(itertools.product(samples, repeat=n))  # each sample index equally likely, with replacement
        want = sum(max(d) for d in draws) / len(draws)
        assert got[n - 1] == pytest.approx(want, abs=1e-12)


def test_matches_monte_carlo_and_is_monotone():
    rng = np.random.default_rng(0)
    samples = rng.normal(size=50)
    got = expected_best_of_n(samples, 30)
    draws = rng.choice(samples, size=(20000, 30))
    mc = np.maximum.accumulate(draws, axis=1).mean(axis=0)
    np.testing.assert_allclose(got, mc, atol=0.02)
    assert got[0] == pytest.approx(samples.mean())
    assert all(b >= a - 1e-12 for a, b in zip(got, got[1:], strict=False))
    assert got[-1] <= samples.max()


def test_edge_cases():
    assert expected_best_of_n([], 3) == []
    assert expected_best_of_n([1.0, 2.0], 0) == []
    assert expected_best_of_n([0, 1], 2) == [0.5, 0.75]
    with pytest.raises(ValueError):
        expected_best_of_n([1.0], -1)
