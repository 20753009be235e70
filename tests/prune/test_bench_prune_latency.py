"""Smoke test of benchmarks/prune_latency.py --quick (a subprocess, as a user runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_prints_one_row_per_rounding(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "prune_latency.py"), "--quick", "--no-auto",
         "--out", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
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
    assert "| latency ratio |" in proc.stderr
