"""Smoke test of benchmarks/screen_cost.py on a tiny setting (a subprocess, as a user runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_screen_cost_times_planning_episodes_and_refits(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "screen_cost.py"), "--width", "0.25", "--val-size", "50",
         "--candidates", "4", "--repeats", "1", "--refit-sizes", "10", "20", "--out", str(out)],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    for key in ("plan_walls", "plan_walls_per_call_sum", "plan_walls_batched", "plan_screened", "episode"):
        assert res[key]["wall_s"] > 0 and res[key]["cpu_s"] >= 0, key
    assert set(res["refit"]) == {"10", "20"}
    assert res["groups"] > 0 and res["ratios"]["plan_screened_over_episode_cpu"] >= 0
    assert "screened planning of 4" in proc.stderr
