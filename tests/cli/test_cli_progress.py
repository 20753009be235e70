"""What a person reading a log sees from `autostruct prune` (stderr not a terminal): each phase with its start
and duration, one line per training or fine-tuning epoch, search lines, and no warning for a default."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

import autostruct


def test_prune_through_the_real_entry_point_prints_phases_and_epoch_lines(tmp_path):
    cfg = {
        "name": "progress",
        "output_dir": str(tmp_path / "run"),
        "model": "resnet20",
        "width": 0.25,
        "tasks": [{"dataset": "digits", "ratios": [0.5]}],  # holdout_size unset: 5000 is clamped for digits
        "base_training": {"epochs": 2, "min_steps": 0},
        "search": {"episodes": 4, "val_size": 100, "rescore_size": 50, "top_k": 2, "random_episodes": 0,
                   "round_to": 4, "recal_batches": 1},
        "rl": {"actors": 1, "unroll_length": 5, "batch_size": 2},
        "finetune": {"epochs": 1, "min_steps": 0, "distill": 0.5},
        "backend": {"name": "inline"},
        "latency_runs": 3,
    }
    path = tmp_path / "progress.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "AUTOSTRUCT_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": str(Path(autostruct.__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-c", "from autostruct.cli import main; main()", "prune", str(path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    err = " ".join(proc.stderr.split())  # rich wraps status lines at 80 columns off a terminal
    for name in ("checks", "base models", "search", "task 1/1: finish", "results and report"):
        assert re.search(rf"{re.escape(name)}: started \d\d:\d\d:\d\d", err), (name, err)
        assert re.search(rf"{re.escape(name)}: done in \d+s", err), (name, err)
    assert re.search(r"donein\d+s:.*results\.json", "".join(proc.stderr.split()))  # rich may wrap inside a path
    assert re.search(r"train resnet20 on digits epoch 1/2 \(\d+ steps\): loss [\d.]+ acc [\d.]+ val [\d.]+, \d+s, ~\d+s left", err)
    assert "train resnet20 on digits epoch 2/2" in err
    assert "fine-tune digits-r0.5 epoch 1/1" in err
    assert re.search(r"episodes 4/4 \(best t0:[\d.]+\)", err)
    assert "warning" not in err.lower() and "val_size=5000" not in err, err
