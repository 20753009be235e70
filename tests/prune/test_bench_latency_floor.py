"""Smoke test of benchmarks/latency_floor.py --quick (its main() in the test process)."""

from __future__ import annotations

import json

import pytest

from bench_scripts import run_benchmark


def test_quick_run_finds_floor_and_ceiling_and_times_them(tmp_path, capsys):
    _, stdout, stderr = run_benchmark("latency_floor", ["--quick", "--out", str(tmp_path / "r.json")], capsys)
    res = json.loads(stdout)
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == res["rows"]
    (row,) = res["rows"]
    lo, hi, least = row["floor"], row["ceiling"], row["least"]
    assert lo["exact"] and hi["exact"]
    assert least["ratio"] <= lo["ratio"] <= hi["ratio"] <= 1.0
    for f in (lo, hi):
        assert f["flops_ratio"] <= 0.5 + 1e-9
        # The FLOP model the search prices with is the counter's own number for the really pruned model.
        assert f["measured_flops_ratio"] == pytest.approx(f["flops_ratio"], rel=1e-6)
        assert f["measured_ratio"] > 0 and f["base_latency_ms"] > 0
    assert set(res["summary"]) == {"resnet20 x0.5 8x8x1 round_to 8"}
    assert "| floor: table / measured |" in stderr
