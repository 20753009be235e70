"""benchmarks/mtnas_vs_baselines.py: its statistics helpers, and a tiny run of the table preset."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "mtnas_vs_baselines.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("mtnas_vs_baselines", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


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
