"""benchmarks/memory.py: the config it derives from the demo's, and its process-tree sampler on a tiny tree."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bench_scripts import load_benchmark

pytestmark = pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="needs Linux smaps_rollup")

bench = load_benchmark("memory")

# A parent that starts a child holding 200 MiB of private pages (the same 200 MiB again in the parent would make
# the sum 400): the sampler must find the child and add it up.
TREE = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "b = bytearray(200 * 2**20); import time; time.sleep(2.5)"])
time.sleep(0.2)
child.wait()
"""


def test_demo_config_keeps_tasks_and_cuts_the_run(tmp_path):
    cfg = bench.demo_config(bench.DEFAULT_CONFIG, tmp_path / "run", episodes=8, random_episodes=1, latency_runs=5)
    assert cfg["output_dir"] == str(tmp_path / "run") and cfg["backend"]["name"] == "local"
    assert cfg["search"]["episodes"] == 8 and cfg["search"]["random_episodes"] == 1
    assert cfg["finetune"]["epochs"] == 0 and cfg["latency_runs"] == 5
    assert len(cfg["tasks"]) == 3 and cfg["rl"]["actors"] == 2  # the demo's tasks and actors, untouched


def test_sampler_sums_a_process_tree():
    result = bench.sample_run([sys.executable, "-c", TREE], 0.1, dict(os.environ))
    assert result["returncode"] == 0 and result["samples"] >= 5
    roles = [p["role"] for p in result["processes"]]
    assert roles[0] == "main" and len(roles) == 2
    child = result["processes"][1]
    assert child["peak_pss_gib"] >= 0.19 and child["peak_rss_gib"] >= child["peak_pss_gib"]
    assert 0.19 <= result["peak_pss_sum_gib"] <= result["peak_rss_sum_gib"]
    assert max(s["processes"] for s in result["timeline"]) == 2
