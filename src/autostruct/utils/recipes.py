"""Training-recipe arithmetic shared by base-model training, supernet training and fine-tuning."""

from __future__ import annotations

import math


def epochs_for(epochs: int, min_steps: int, n_train: int, batch_size: int, *, drop_last: bool = False) -> int:
    """``epochs``, raised so that training takes at least ``min_steps`` SGD steps (digits has 6 batches/epoch).

    ``drop_last``: the loader drops the last partial batch (an epoch is ``n_train // batch_size`` steps, at least
    one); otherwise it is ``ceil(n_train / batch_size)``. ``epochs <= 0`` means no training and stays 0.

    >>> epochs_for(3, 600, 1000, 128)  # 8 steps per epoch: 75 epochs reach 600 steps
    75
    """
    if epochs <= 0:
        return 0
    steps_per_epoch = n_train // batch_size if drop_last else math.ceil(n_train / batch_size)
    return max(epochs, math.ceil(min_steps / max(1, steps_per_epoch)))
