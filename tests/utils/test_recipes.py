"""The min_steps -> epochs rule every training recipe uses (base models, supernets, fine-tunes)."""

from __future__ import annotations

import math

import pytest

from autostruct.utils.recipes import epochs_for


@pytest.mark.parametrize("n_train", [1, 127, 128, 129, 1000, 1797, 55000])
@pytest.mark.parametrize("batch_size", [32, 128])
@pytest.mark.parametrize("epochs,min_steps", [(1, 0), (3, 600), (5, 300), (20, 50)])
def test_epochs_reach_min_steps(n_train, batch_size, epochs, min_steps):
    for drop_last in (False, True):
        got = epochs_for(epochs, min_steps, n_train, batch_size, drop_last=drop_last)
        steps = max(1, n_train // batch_size if drop_last else math.ceil(n_train / batch_size))
        assert got >= epochs and got * steps >= min_steps
        assert got == epochs or (got - 1) * steps < min_steps  # never more epochs than needed


def test_no_training_stays_no_training():
    assert epochs_for(0, 600, 1000, 128) == 0
    assert epochs_for(-1, 600, 1000, 128, drop_last=True) == 0
