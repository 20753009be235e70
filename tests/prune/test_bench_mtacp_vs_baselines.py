"""Smoke test of benchmarks/mtacp_vs_baselines.py: one digits task, two episodes per searcher, inline backend."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "mtacp_vs_baselines.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("mtacp_vs_baselines", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_helpers():
    bench = _load_script()
    assert bench.first_beat([0.1, 0.3, 0.5], 0.2) == 2 and bench.first_beat([0.1], 0.2) is None
    assert bench.near_best([0.1, 0.796, 0.8, 0.5]) == 2  # within 0.5 pt of 0.8


def test_quick_run_on_one_task(tmp_path, capsys):
    bench = _load_script()
    out, fig = tmp_path / "bench.json", tmp_path / "fig.png"
    argv = ["--quick", "--classes", "--episodes-per-task", "2", "--methods", "mtacp", "ddpg", "ppo", "uniform",
            "--mtacp-backend", "inline", "--actors", "1", "--finetune-epochs", "0", "--beat-uniform-budgets", "exact",
            "--val-size", "100", "--out", str(out), "--figure", str(fig)]
    result = bench.main(argv)
    assert json.loads(capsys.readouterr().out) == json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert fig.stat().st_size > 0
    (task,) = result["tasks"]
    for method in ("mtacp", "ddpg", "ppo", "uniform"):
        rec = result["methods"][method]["tasks"][task["task"]]
        assert rec["flops_ratio"] <= task["ratio"] + 1e-9
        assert rec["episodes"] == (1 if method == "uniform" else 2)
        assert 0.0 <= rec["val_accuracy"] <= 1.0 and 1 <= rec["episodes_to_near_best"] <= rec["episodes"]
    assert set(result["headline"]) == {"mtacp_vs_ddpg", "ppo_vs_ddpg", "uniform_vs_ddpg"}
    assert result["headline"]["mtacp_vs_ddpg"]["time_ratio"] > 0
    assert set(result["episodes_to_beat_uniform"]["exact"]) == {"ddpg", "mtacp"}
