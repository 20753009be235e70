"""Latency of a pruned model as a function of kept channels: a cost model with :class:`FlopModel`'s interface.

Pure math, no torch. Every conv / linear layer ``l`` has an input and an output channel count that are affine
in the kept channels ``k`` (one count per pruning group), exactly as in :class:`~autostruct.prune.budget.FlopModel`.
Its latency is read from a small measured table over a grid of (in, out) counts, interpolated bilinearly in
between. The model's predicted latency is::

    predicted(k) = overhead + scale * sum_l table_l(c_in_l(k), c_out_l(k))

``scale`` and ``overhead`` calibrate the sum of isolated layers to end-to-end runs of whole pruned models
(the glue between layers: residual adds, pooling, per-call overhead). Each layer's table is made monotone
(running maximum along both axes) when it is built, so the prediction never drops when a group keeps more:
that is what lets AMC's cap and the lower wall of :mod:`autostruct.prune.budget` keep every episode within a
latency budget exactly as they do for FLOPs.

>>> t = LayerTable(in_grid=np.array([8.0, 16.0]), out_grid=np.array([8.0, 16.0]),
...                values=np.array([[1.0, 2.0], [2.0, 4.0]]))
>>> float(t(np.array([12.0]), np.array([16.0]))[0])
3.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def monotone_envelope(values: np.ndarray) -> np.ndarray:
    """Running maximum along both axes: the least table >= ``values`` that never drops as counts grow."""
    return np.maximum.accumulate(np.maximum.accumulate(np.asarray(values, dtype=np.float64), axis=0), axis=1)


def _bracket(grid: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower index, upper index and weight of the upper point for each ``x`` (clamped to the grid)."""
    if len(grid) == 1:
        zero = np.zeros(x.shape, dtype=np.int64)
        return zero, zero, np.zeros(x.shape)
    x = np.clip(x, grid[0], grid[-1])
    hi = np.clip(np.searchsorted(grid, x, side="left"), 1, len(grid) - 1)
    lo = hi - 1
    w = (x - grid[lo]) / (grid[hi] - grid[lo])
    return lo, hi, w


@dataclass(frozen=True, eq=False)
class LayerTable:
    """Latency (ms) of one layer on a grid: ``values[i, j]`` at ``in_grid[i]`` inputs and ``out_grid[j]`` outputs."""

    in_grid: np.ndarray
    out_grid: np.ndarray
    values: np.ndarray

    def __call__(self, c_in: np.ndarray, c_out: np.ndarray) -> np.ndarray:
        """Bilinear interpolation (clamped at the grid's ends) for arrays of counts of equal shape."""
        i0, i1, wi = _bracket(self.in_grid, np.asarray(c_in, dtype=np.float64))
        j0, j1, wj = _bracket(self.out_grid, np.asarray(c_out, dtype=np.float64))
        v = self.values
        return ((1 - wi) * ((1 - wj) * v[i0, j0] + wj * v[i0, j1])
                + wi * ((1 - wj) * v[i1, j0] + wj * v[i1, j1]))


@dataclass(frozen=True, eq=False)
class LatencyModel:
    """Predicted latency (ms) as a function of the kept channels ``k``; called like a :class:`FlopModel`.

    Layer ``l``: ``c_in = in_const[l] + in_coef[l] @ k``, ``c_out = out_const[l] + out_coef[l] @ k``, latency
    ``tables[l](c_in, c_out)``. Depthwise layers have ``c_in == c_out`` (their table has one input row).
    """

    in_const: np.ndarray
    in_coef: np.ndarray
    out_const: np.ndarray
    out_coef: np.ndarray
    tables: tuple[LayerTable, ...]
    scale: float = 1.0
    overhead: float = 0.0

    @property
    def num_groups(self) -> int:
        return self.in_coef.shape[1]

    def layer_counts(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Input and output channels of every layer, shape ``(..., L)`` each."""
        counts = np.asarray(counts, dtype=np.float64)
        return self.in_const + counts @ self.in_coef.T, self.out_const + counts @ self.out_coef.T

    def layer_sum(self, counts: np.ndarray) -> np.ndarray:
        """Sum of the layers' table latencies (uncalibrated), shape ``(...)``."""
        c_in, c_out = self.layer_counts(counts)
        total = np.zeros(c_in.shape[:-1])
        for i, table in enumerate(self.tables):
            total = total + table(c_in[..., i], c_out[..., i])
        return total

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        """Predicted latency in ms for ``counts`` of shape ``(..., G)``; returns shape ``(...)``."""
        return self.overhead + self.scale * self.layer_sum(counts)

    def latency_ms(self, counts: Sequence[int] | np.ndarray) -> float:
        """Predicted latency of one configuration."""
        return float(self(np.asarray(counts)))

    def calibrated(self, scale: float, overhead: float) -> LatencyModel:
        """The same tables with another calibration."""
        return LatencyModel(self.in_const, self.in_coef, self.out_const, self.out_coef, self.tables,
                            float(scale), float(overhead))


def fit_calibration(layer_sums: Sequence[float], measured: Sequence[float]) -> tuple[float, float]:
    """``(scale, overhead)`` fitting ``measured ~ overhead + scale * layer_sum`` in relative error.

    Least squares on ``(overhead + scale * s) / m - 1`` (small models count as much as large ones), with
    ``scale > 0`` (the prediction grows with the layers) and ``overhead >= 0`` (a whole model never runs faster
    than its layers' share); when the free fit breaks either, the overhead is 0 and only the scale is fitted.

    >>> fit_calibration([1.0, 2.0, 3.0], [1.5, 2.5, 3.5])
    (1.0, 0.5)
    """
    x = np.asarray(layer_sums, dtype=np.float64)
    y = np.asarray(measured, dtype=np.float64)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError("fit_calibration needs as many measurements as layer sums, at least one")
    if np.any(y <= 0) or np.any(x < 0):
        raise ValueError("measured latencies must be > 0 and layer sums >= 0")
    if len(x) >= 2 and np.ptp(x) > 1e-12:
        design = np.stack([x / y, 1.0 / y], axis=1)
        (scale, overhead), *_ = np.linalg.lstsq(design, np.ones_like(y), rcond=None)
        if scale > 0 and overhead >= 0:
            return round(float(scale), 12), round(float(overhead), 12)
    r = x / y
    if np.sum(r * r) > 0:
        return round(float(np.sum(r) / np.sum(r * r)), 12), 0.0
    return 1.0, round(float(np.mean(y)), 12)
