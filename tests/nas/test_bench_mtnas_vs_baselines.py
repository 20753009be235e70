"""benchmarks/mtnas_vs_baselines.py: its statistics helpers, and a tiny run of the table preset."""

from __future__ import annotations

import json
import math

import pytest

from bench_scripts import load_benchmark


def _load_script():
    return load_benchmark("mtnas_vs_baselines")


def test_statistics_helpers():
    bench = _load_script()
    recs = [{}, {"meets_budgets": False}, {}, {}]
    assert bench.selections([0.5, 0.9, 0.5, 0.7], recs) == [0, 0, 0, 3]  # ties keep the first, over-budget never counts
    assert bench.evals_to_reach([0.1, 0.3, 0.3, 0.5], 0.3) == 2 and bench.evals_to_reach([0.1], 0.2) is None
    assert bench.windowed([1, 2, 3, 4], 2) == [1.0, 1.5, 2.5, 3.5]
    ci = bench.mean_ci([1.0, 2.0, 3.0])
    assert ci["mean"] == 2.0 and ci["ci95"] == pytest.approx(4.302653 / math.sqrt(3))
    p = bench.paired([0.9, 0.8, 0.7], [0.8, 0.8, 0.6])
    assert p["mean_diff"] == pytest.approx(0.2 / 3) and p["better"] == 2 and p["worse"] == 0 and p["seeds"] == 3


def test_table_preset_runs_every_method_with_equal_evaluations(tmp_path):
    bench = _load_script()
    out = tmp_path / "bench.json"
    result = bench.main(["--preset", "table", "--evals", "12", "--seeds", "0,1", "--out", str(out)])
    assert json.loads(out.read_text())["tasks"] == result["tasks"] == ["table-d0", "table-d1"]
    for task in result["tasks"]:
        summary = result["summary"][task]
        assert set(summary) == set(bench.METHODS)
        for method, runs in result["runs"][task].items():
            assert len(runs) == 2
            for run in runs:
                assert len(run["best_so_far"]) == len(run["windowed_reward"]) == 12
                assert run["best_so_far"][-1] <= max(result["space"]["optimum"]) + 1e-9
            if method != "random":
                assert summary[method]["vs_random"]["12"]["seeds"] == 2
        assert summary["random"]["evals_to_random_best"]["unreached"] == 0
