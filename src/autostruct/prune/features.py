"""The 13 state features of the MTACP paper, per pruning group, each in [0, 1].

``(l, c_in, c_out, h, w, stride, k, alpha, beta, FLOPs[l], reduced so far, rest, a_{l-1})``. The geometric
ones and ``FLOPs[l]`` (the base FLOPs that scale with the group) are divided by their maximum over the groups
(AMC's normalization), ``l`` by the number of steps; they are computed once per model. The env fills the
task (``alpha`` the FLOPs ratio, ``beta`` the dataset id normalized within the run) and, per step, the FLOPs
removed so far and still to come (fractions of the base FLOPs) and the previous keep ratio.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from autostruct.prune.graph import PrunableGroup

FEATURE_NAMES: tuple[str, ...] = (
    "index", "c_in", "c_out", "h", "w", "stride", "kernel", "alpha", "beta", "flops", "reduced", "rest",
    "prev_action",
)
NUM_FEATURES = len(FEATURE_NAMES)
_COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


def static_features(groups: Sequence[PrunableGroup], base_flops: float) -> np.ndarray:
    """Per-group feature rows (``len(groups) x 13``, float32) with the static columns filled.

    ``rest`` is filled too: the FLOPs of the later groups as a fraction of ``base_flops`` (AMC's "FLOPs of the
    layers still to come"; a layer tied to two groups counts in both, so it is clipped to 1).
    """
    n = len(groups)
    feats = np.zeros((n, NUM_FEATURES), dtype=np.float64)
    if n == 0:
        return feats.astype(np.float32)
    feats[:, _COL["index"]] = np.arange(n) / max(n - 1, 1)
    for name, attr in (("c_in", "c_in"), ("c_out", "channels"), ("h", "h"), ("w", "w"), ("stride", "stride"),
                       ("kernel", "kernel"), ("flops", "flops")):
        col = np.asarray([getattr(g, attr) for g in groups], dtype=np.float64)
        feats[:, _COL[name]] = col / col.max() if col.max() > 0 else 0.0
    flops = np.asarray([g.flops for g in groups], dtype=np.float64)
    later = np.concatenate([np.cumsum(flops[::-1])[::-1][1:], [0.0]])
    feats[:, _COL["rest"]] = np.clip(later / max(float(base_flops), 1.0), 0.0, 1.0)
    return feats.astype(np.float32)


def observation(
    static: np.ndarray, step: int, alpha: float, beta: float, reduced: float, prev_action: float
) -> np.ndarray:
    """The state at ``step``: that group's static row plus the task and the episode so far (float32)."""
    return observations(static, step, alpha, beta, np.asarray([reduced]), np.asarray([prev_action]))[0]


def observations(
    static: np.ndarray, step: int, alpha: float, beta: float, reduced: np.ndarray, prev_action: np.ndarray
) -> np.ndarray:
    """:func:`observation` for episodes at the same ``step`` (one row per entry of ``reduced``), ``[n, 13]``."""
    obs = np.repeat(static[step][None, :], len(reduced), axis=0)
    obs[:, _COL["alpha"]] = alpha
    obs[:, _COL["beta"]] = beta
    obs[:, _COL["reduced"]] = np.clip(reduced, 0.0, 1.0)
    obs[:, _COL["prev_action"]] = np.clip(prev_action, 0.0, 1.0)
    return obs


def normalized_dataset_id(dataset_index: int, num_datasets: int) -> float:
    """``beta`` in [0, 1]: a dataset's index within the run's datasets (0 when there is one).

    An index past the run's datasets (zero-shot pruning for a dataset the policy never saw) is clipped to 1.
    """
    if num_datasets < 1 or dataset_index < 0:
        raise ValueError(f"need dataset_index >= 0 and num_datasets >= 1, got {dataset_index} and {num_datasets}")
    if num_datasets == 1:
        return 0.0 if dataset_index == 0 else 1.0
    return min(dataset_index / (num_datasets - 1), 1.0)
