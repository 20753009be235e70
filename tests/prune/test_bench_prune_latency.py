"""Smoke test of benchmarks/prune_latency.py --quick (its main() in the test process)."""

from __future__ import annotations

import json

from bench_scripts import run_benchmark


def test_quick_run_prints_one_row_per_rounding(tmp_path, capsys):
    _, stdout, stderr = run_benchmark("prune_latency", ["--quick", "--no-auto", "--out", str(tmp_path / "r.json")],
                                      capsys)
    res = json.loads(stdout)
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == res["rows"]
    assert [(r["round_to"], r["strategy"]) for r in res["rows"]] == [
        (1, "uniform"), (1, "searched"), (8, "uniform"), (8, "searched")]
    for r in res["rows"]:
        assert 0 < r["flops_ratio"] <= 0.5 + 1e-9
        assert r["latency_ratio"] > 0 and r["base_latency_ms"] > 0 and 0 < r["predicted_ratio"] <= 1
    for uni, found in zip(res["rows"][::2], res["rows"][1::2], strict=True):
        # The uniform strategy is one of the searched candidates, so the table never prefers a slower one.
        assert found["predicted_ratio"] <= uni["predicted_ratio"] + 1e-12
    assert set(res["summary"]) == {"round_to_1", "round_to_8"}
    assert set(res["summary"]["round_to_8"]) >= {"alpha_0.5_all_within_0.7", "none_slower", "slower", "worst"}
    assert "| latency ratio |" in stderr
