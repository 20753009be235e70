"""Smoke test of benchmarks/latency_budget.py --quick (its main() in the test process): latency_ratios tasks."""

from __future__ import annotations

import json

import pytest

from bench_scripts import run_benchmark


@pytest.mark.slow
def test_quick_run_lands_relative_budgets(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path / "cache"))
    run_benchmark("latency_budget", ["--quick", "--out", str(tmp_path / "r.json")], capsys)
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["settings"]["budget_kind"] == "ratio"
    (task,) = res["run"]
    ratio = round(res["budgets_ms"][0] / res["base_predicted_ms"], 4)
    assert task["task"] == f"digits-lr{ratio:g}" and task["latency_ratio"] == ratio
    assert task["predicted_latency_ms"] <= task["latency_budget_ms"]
    assert task["latency_vs_budget_relative"] > 0 and task["budget_vs_base"] == pytest.approx(ratio)
    assert len(res["random"]) == 2
