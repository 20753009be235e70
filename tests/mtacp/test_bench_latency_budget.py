"""Smoke test of benchmarks/latency_budget.py --quick (a subprocess, as a user runs it): latency_ratios tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_run_lands_relative_budgets(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src"),
           "AUTOSTRUCT_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "latency_budget.py"), "--quick", "--out", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["settings"]["budget_kind"] == "ratio"
    (task,) = res["run"]
    ratio = round(res["budgets_ms"][0] / res["base_predicted_ms"], 4)
    assert task["task"] == f"digits-lr{ratio:g}" and task["latency_ratio"] == ratio
    assert task["predicted_latency_ms"] <= task["latency_budget_ms"]
    assert task["latency_vs_budget_relative"] > 0 and task["budget_vs_base"] == pytest.approx(ratio)
    assert len(res["random"]) == 2
