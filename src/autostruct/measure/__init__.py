"""Measurement: FLOPs (multiply-accumulates) and params, host latency in torch and onnxruntime, latency tables.

"FLOPs" in autostruct always means multiply-accumulates per example; see :func:`count_flops`.
"""

from __future__ import annotations

from autostruct.measure.flops import Cost, count_flops
from autostruct.measure.latency import (
    BACKENDS,
    LatencyComparison,
    LatencyStats,
    compare_latency,
    measure_latency,
    onnx_session,
)
from autostruct.measure.lut import LatencyTable, host_info, measure_op_latency

__all__ = [
    "BACKENDS",
    "Cost",
    "LatencyComparison",
    "LatencyStats",
    "LatencyTable",
    "compare_latency",
    "count_flops",
    "host_info",
    "measure_latency",
    "measure_op_latency",
    "onnx_session",
]
