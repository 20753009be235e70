"""Smoke test of benchmarks/train_zoo.py on a tiny digits subset."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "train_zoo.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("train_zoo", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_zoo_prints_one_record_per_model(tmp_path, capsys):
    bench = _load_script()
    out = tmp_path / "zoo.json"
    argv = ["--dataset", "digits", "--models", "resnet20", "--subset", "200", "--test-subset", "100"]
    assert bench.main([*argv, "--runs", "3", "--warmup", "1", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads(out.read_text())
    (record,) = report["models"]
    assert record["model"] == "resnet20" and record["flops"] > 0 and record["params"] > 0
    assert 0.0 <= record["test_accuracy"] <= 1.0
    assert record["latency_ms"]["torch"]["median_ms"] > 0 and record["onnxruntime_speedup"] > 0
