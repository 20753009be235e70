"""Smoke test of benchmarks/latency_floor.py --quick (a subprocess, as a user runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_finds_floor_and_ceiling_and_times_them(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "latency_floor.py"), "--quick", "--out", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
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
    assert "| floor: table / measured |" in proc.stderr
