"""Latency timers on a tiny model, both backends, few runs (numbers are only checked for sanity)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autostruct.errors import AutostructError
from autostruct.measure import LatencyStats, measure_latency, onnx_session
from autostruct.measure.latency import export_onnx_for_timing, time_interleaved


def tiny() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)
    )


def assert_sane(stats: LatencyStats, backend: str) -> None:
    assert stats.backend == backend and stats.runs == 5 and stats.batch == 1 and stats.threads == 1
    assert 0 < stats.min_ms <= stats.median_ms <= stats.p90_ms
    assert stats.min_ms <= stats.mean_ms
    assert stats.median_ms < 1000  # a 300-MAC net; even a loaded CI machine is far below a second


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_both_backends_give_sane_numbers(backend):
    model = tiny().train()
    threads = torch.get_num_threads()
    stats = measure_latency(model, input_shape=(1, 1, 8, 8), backend=backend, warmup=1, runs=5)
    assert_sane(stats, backend)
    assert model.training  # mode restored
    assert torch.get_num_threads() == threads
    assert set(stats.as_dict()) == {
        "median_ms", "p90_ms", "mean_ms", "min_ms", "runs", "backend", "threads", "batch"
    }  # fmt: skip


def test_example_inputs_set_the_batch():
    stats = measure_latency(tiny(), torch.zeros(3, 1, 8, 8), warmup=0, runs=5)
    assert stats.batch == 3


def test_given_onnx_file_needs_no_model(tmp_path):
    path = tmp_path / "tiny.onnx"
    export_onnx_for_timing(tiny(), (torch.zeros(1, 1, 8, 8),), path)
    assert [i.shape for i in onnx_session(path).get_inputs()] == [[1, 1, 8, 8]]
    assert_sane(measure_latency(None, backend="onnxruntime", onnx_path=path, warmup=1, runs=5), "onnxruntime")


def test_bad_backend_names_the_valid_ones():
    with pytest.raises(AutostructError, match="Unknown latency backend 'onnx'.*onnxruntime"):
        measure_latency(tiny(), input_shape=(1, 1, 8, 8), backend="onnx")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(runs=0), "runs must be an integer >= 1"),
        (dict(threads=0), "threads must be"),
        (dict(input_shape=(1, -1, 8, 8)), "input_shape must be positive"),
        (dict(onnx_path="x.onnx"), "onnx_path is only used"),
        (dict(backend="onnxruntime", onnx_path="/nonexistent/x.onnx"), "does not exist"),
    ],
)
def test_bad_arguments_are_user_errors(kwargs, message):
    kwargs.setdefault("input_shape", (1, 1, 8, 8))
    with pytest.raises(AutostructError, match=message):
        measure_latency(tiny(), **kwargs)


def test_no_inputs_is_a_user_error():
    with pytest.raises(AutostructError, match="input_shape"):
        measure_latency(tiny(), runs=1)


class _SelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        return self.mha(x, x, x, need_weights=False)[0]


def test_multihead_attention_times_in_onnxruntime_under_no_grad():
    # Under no_grad nn.MultiheadAttention's fused fast path has no ONNX export; timing turns it off for the export.
    with torch.no_grad():
        (stats,) = time_interleaved([_SelfAttention().eval()], torch.randn(1, 4, 8), runs=2, warmup=0)
    assert stats.median_ms > 0 and torch.backends.mha.get_fastpath_enabled()
