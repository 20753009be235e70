"""LatencyTable: measure, look up, save and load."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from autostruct.errors import AutostructError
from autostruct.measure import LatencyTable, measure_op_latency
from autostruct.measure.lut import spearman, time_blocks


def test_measure_lookup_and_round_trip(tmp_path):
    table = LatencyTable(device="test-host", meta={"space": "tiny"})
    ms = table.measure("conv3x3:c4:8x8", nn.Conv2d(4, 4, 3, padding=1), (1, 4, 8, 8), warmup=1, runs=5)
    assert ms > 0 and table["conv3x3:c4:8x8"] == ms
    table.set("relu:c4:8x8", 0.25)
    assert table.total(["conv3x3:c4:8x8", "relu:c4:8x8", "relu:c4:8x8"]) == pytest.approx(ms + 0.5)
    assert table.missing(["relu:c4:8x8", "pool", "pool"]) == ["pool"]

    path = table.save(tmp_path / "profiles" / "test-host.json")
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    loaded = LatencyTable.load(path)
    assert loaded == table
    assert list(loaded.entries) == list(table.entries)
    assert loaded.host["cpu_count"] >= 1


def test_measure_op_latency_returns_stats():
    stats = measure_op_latency(nn.ReLU(), (1, 2, 4, 4), "onnxruntime", warmup=1, runs=5)
    assert stats.backend == "onnxruntime" and stats.median_ms > 0


def test_missing_keys_are_named():
    table = LatencyTable(device="d", host={})
    with pytest.raises(AutostructError, match="no entry for 1 key.*'block7'"):
        table.total(["block7"])


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not readable JSON"),
        (json.dumps({"entries": {}}), "not an autostruct latency table"),
        (json.dumps({"format": "autostruct-latency-table", "version": 99}), "format version 99"),
        (
            json.dumps(
                {"format": "autostruct-latency-table", "version": 1, "device": "d", "entries": {"a": "x"}}
            ),
            "entry 'a' must be a number",
        ),
        (
            json.dumps({"format": "autostruct-latency-table", "version": 1, "device": "d", "backend": "tvm"}),
            "Unknown latency backend 'tvm'",
        ),
    ],
)
def test_bad_files_are_user_errors(tmp_path, content, message):
    path = tmp_path / "t.json"
    path.write_text(content)
    with pytest.raises(AutostructError, match=message):
        LatencyTable.load(path)


def test_missing_file_and_bad_values():
    with pytest.raises(AutostructError, match="does not exist"):
        LatencyTable.load("/nonexistent/table.json")
    table = LatencyTable(device="d", host={})
    with pytest.raises(AutostructError, match=">= 0 ms"):
        table.set("k", float("nan"))


class _AddOne(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1.0


def test_time_blocks_times_every_block_by_key():
    blocks = [
        ("conv", nn.Conv2d(32, 32, 3, padding=1), torch.randn(1, 32, 32, 32)),
        ("add", _AddOne(), torch.randn(1, 1, 8, 8)),
    ]
    times = time_blocks(blocks, warmup=2, runs=5, rounds=2)
    assert set(times) == {"conv", "add"}
    # ~9 M multiply-accumulates against one call's overhead: an order of magnitude apart on any host.
    assert times["conv"] > times["add"] > 0, times
    assert spearman([1, 2, 3], [10, 30, 20]) == pytest.approx(0.5)
