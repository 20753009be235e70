"""Small pure statistics the run reports share."""

from __future__ import annotations

from collections.abc import Sequence


def expected_best_of_n(samples: Sequence[float], n_max: int) -> list[float]:
    """``E[max of n iid draws]`` from the empirical distribution of ``samples``, for ``n = 1 .. n_max``.

    With the samples sorted ascending, ``r_(1) <= ... <= r_(m)``, one draw lands on ``r_(i)`` or below with
    probability ``i / m``, so the largest of ``n`` draws is ``r_(i)`` with probability
    ``(i / m) ** n - ((i - 1) / m) ** n`` (ties need no special case: each sample is its own outcome)::

        E[max_n] = sum_i r_(i) * ((i / m) ** n - ((i - 1) / m) ** n)

    This is what random search is expected to reach after ``n`` episodes, estimated from ``m`` random
    episodes without resampling noise. Example: ``expected_best_of_n([0, 1], 2) == [0.5, 0.75]``.
    """
    if n_max < 0:
        raise ValueError(f"n_max must be >= 0, got {n_max}")
    r = sorted(float(s) for s in samples)
    m = len(r)
    if m == 0:
        return []
    out = []
    for n in range(1, n_max + 1):
        out.append(sum(ri * ((i / m) ** n - ((i - 1) / m) ** n) for i, ri in enumerate(r, start=1)))
    return out
