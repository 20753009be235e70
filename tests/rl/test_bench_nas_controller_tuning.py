"""Smoke test of benchmarks/nas_controller_tuning.py (a tiny run in process) and its helpers."""

from __future__ import annotations

import json

import pytest

from bench_scripts import load_benchmark


def _load_script():
    return load_benchmark("nas_controller_tuning")


def test_helpers():
    bench = _load_script()
    # The pick is the best *noisy* reward; its true accuracy is what counts.
    assert bench.best_found([(0.5, 0.4), (0.7, 0.6), (0.6, 0.9)]) == [0.4, 0.6, 0.6]
    assert bench.evals_to_reach([0.4, 0.6, 0.6], 0.6) == 2 and bench.evals_to_reach([0.4], 0.5) is None
    ci = bench.paired_ci([1.0, 2.0, 3.0])
    assert ci["mean"] == pytest.approx(2.0) and ci["ci95"][0] < 2.0 < ci["ci95"][1] and ci["positive"] == 3
    assert bench.parse_variant("x:entropy_cost=0.01,use_lstm=true") == ("x", {"entropy_cost": 0.01, "use_lstm": True})
    with pytest.raises(Exception, match="entropy"):
        bench.parse_variant("x:entropy=0.01")


def test_tiny_run_writes_every_method_at_equal_evaluations(tmp_path):
    bench = _load_script()
    out = tmp_path / "t.json"
    doc = bench.main(["--seeds", "2", "--evals", "50", "--table", "default", "--variant", "v:batch_size=2",
                      "--out", str(out)])
    assert json.loads(out.read_text())["results"][0]["variant"] == "v"
    (r,) = doc["results"]
    assert r["evals_per_task"] == 50 and r["overrides"] == {"batch_size": 2} and len(r["tasks"]) == 2
    for task in r["tasks"]:
        assert set(task["best_found"]) == {"mtnas", "random", "evolution"}
        assert list(task["best_found"]["mtnas"]) == ["50"]  # only checkpoints within the budget
        assert task["diff_vs_random"]["50"]["n"] == 2
        assert len(task["evals_to_random_best"]["random"]["per_seed"]) == 2
