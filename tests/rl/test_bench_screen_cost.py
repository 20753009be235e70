"""Smoke test of benchmarks/screen_cost.py on a tiny setting (its main() in the test process)."""

from __future__ import annotations

import json

from bench_scripts import run_benchmark


def test_screen_cost_times_planning_episodes_and_refits(tmp_path, capsys):
    out = tmp_path / "r.json"
    _, _, stderr = run_benchmark("screen_cost", ["--width", "0.25", "--val-size", "50", "--candidates", "4", "--repeats",
                                                 "1", "--refit-sizes", "10", "20", "--out", str(out)], capsys)
    res = json.loads(out.read_text())
    for key in ("plan_walls", "plan_walls_per_call_sum", "plan_walls_batched", "plan_screened", "episode"):
        assert res[key]["wall_s"] > 0 and res[key]["cpu_s"] >= 0, key
    assert set(res["refit"]) == {"10", "20"}
    assert res["groups"] > 0 and res["ratios"]["plan_screened_over_episode_cpu"] >= 0
    assert "screened planning of 4" in stderr
