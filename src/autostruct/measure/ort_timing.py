"""How autostruct opens and times ONNX Runtime sessions: one set of session options, one interleaved timer.

numpy only (onnxruntime is imported when a session is opened), so cheap modules such as the rounding sweep can
use it without importing torch.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["session_options", "time_cells_shuffled"]


def session_options(threads: int = 1, *, quiet: bool = False) -> onnxruntime.SessionOptions:
    """``threads`` intra-op threads, one inter-op thread, sequential execution, all graph optimizations.

    ``quiet`` keeps ONNX Runtime's warnings out of the log (sweeps open hundreds of one-layer sessions).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if quiet:
        opts.log_severity_level = 3
    return opts


def time_cells_shuffled(
    cells: Sequence[tuple[Hashable, Any, dict[str, np.ndarray]]], *, rounds: int, runs: int,
    rng: np.random.Generator,
) -> dict[Hashable, float]:
    """Median latency (ms) of each ``(key, session, feed)``: every round times ``runs`` calls of every cell in a
    shuffled order, so load from other processes spreads over all cells instead of landing on a few."""
    times: dict[Hashable, list[int]] = {key: [] for key, _, _ in cells}
    for _ in range(rounds):
        for i in rng.permutation(len(cells)):
            key, sess, feed = cells[int(i)]
            for _ in range(runs):
                t0 = time.perf_counter_ns()
                sess.run(None, feed)
                times[key].append(time.perf_counter_ns() - t0)
    return {key: float(np.median(ts)) / 1e6 for key, ts in times.items()}
