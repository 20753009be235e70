"""MTACP with latency budgets end to end: a tiny run on digits with a FLOPs task, a latency_ms task and a
latency_ratios task."""

from __future__ import annotations

import json
import re

import pytest
import torch

from autostruct.config import PruneConfig, parse_config
from autostruct.data import load_dataset
from autostruct.models import create_model
from autostruct.mtacp import run_prune
from autostruct.prune.graph import analyze
from autostruct.prune.latency_table import CALL_KEY, host_table, latency_model, layer_specs, smallest_latency


def table_and_budget(path, round_to: int = 8, lbound: float = 0.2) -> tuple[float, float, float]:
    """Measure ResNet-20 x0.5's table on digits into ``path``; return a budget halfway from the smallest model to
    the base, the smallest model's and the base's latency by the table.

    The run reads the table from ``path`` (as a device table), so its pricing is the one the budget was set with:
    a host table would be re-timed in the run's preflight, and this host's speed drifts by 10-30% within minutes
    under load (a budget set before could then be unreachable, or above the base).
    """
    data = load_dataset("digits", val_size=5000, seed=0)
    model = create_model("resnet20", num_classes=10, in_channels=1, image_size=data.image_size, width=0.5).eval()
    x = torch.zeros(1, 1, data.image_size, data.image_size)
    graph = analyze(model, x)
    table, _ = host_table(model, graph, x, round_to, use_cache=False)
    # A slope of 5 us per output channel: at these widths a host can measure a flat table (least == base, seen
    # in CI for width 0.25), which would leave no budget strictly between them.
    for key in table.entries:
        if key != CALL_KEY:
            table.entries[key] += 0.005 * int(re.search(r":[oc](\d+)$", key).group(1))
    table.save(path)
    lat = latency_model(layer_specs(model, graph, x, round_to), table)
    least, base = smallest_latency(lat, graph, round_to, lbound), lat.latency_ms(graph.channels)
    return round(0.5 * (least + base), 5), least, base


@pytest.fixture(scope="module")
def latency_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    budget, least, base = table_and_budget(root / "table.json")
    ratio = round(0.25 * least / base + 0.75, 4)  # a quarter of the way from the base to the smallest model
    cfg = parse_config(PruneConfig, {
        "name": "tiny-latency", "output_dir": str(root / "lat"), "model": "resnet20",
        "width": 0.5, "tasks": [{"dataset": "digits", "ratios": [0.5], "latency_ms": [budget],
                                 "latency_ratios": [ratio]}],
        "base_training": {"epochs": 3, "min_steps": 60},
        "search": {"episodes": 9, "val_size": 200, "rescore_size": 100, "top_k": 2, "recal_batches": 2,
                   "round_to": 8, "latency_table": str(root / "table.json")},
        "rl": {"actors": 1, "batch_size": 2}, "finetune": {"epochs": 0}, "backend": {"name": "inline"},
        "latency_runs": 20,
    })
    return run_prune(cfg, progress=False), budget, ratio, base


def test_latency_task_is_priced_by_the_table_and_measured(latency_run):
    result, budget, _, _ = latency_run
    res = json.loads((result.output_dir / "results.json").read_text())
    flops_task, lat_task, _ = res["tasks"]
    assert flops_task["ratio"] == 0.5 and "latency_budget_ms" not in flops_task
    assert lat_task["task"] == f"digits-l{budget:g}ms" and lat_task["ratio"] is None
    assert lat_task["latency_budget_ms"] == budget
    # The wall keeps every episode under the budget by the table, aiming at (1 - latency_margin) of it.
    assert lat_task["predicted_latency_ms"] <= budget
    assert lat_task["latency_vs_predicted"] == pytest.approx(lat_task["latency_ms"] / lat_task["predicted_latency_ms"])
    assert lat_task["latency_vs_budget"] == pytest.approx(lat_task["latency_ms"] / budget)
    measured = lat_task["latency_ms"] / lat_task["base_latency_ms"]  # both timed in one process, interleaved
    assert lat_task["latency_vs_budget_relative"] == pytest.approx(measured / lat_task["budget_vs_base"])
    assert 0 < lat_task["budget_vs_base"] < 1 and "latency_ratio" not in lat_task
    assert lat_task["flops_ratio"] < 1.0
    assert res["latency_tables"]["digits"].endswith(".json")
    episodes = [json.loads(line) for line in (result.output_dir / "search" / "episodes.jsonl").read_text().splitlines()]
    mine = [e for e in episodes if e.get("task_id") == lat_task["task_id"]]
    assert mine, "the latency task got episodes"
    for e in mine:
        assert e["info"]["latency_budget_ms"] == budget and e["info"]["predicted_latency_ms"] <= budget
        assert not e["info"]["over_budget"]
    html = result.report_path.read_text()
    assert f"{budget:g} ms" in html and "table ms" in html


def test_latency_ratio_task_is_priced_from_the_base_by_the_table(latency_run):
    result, _, ratio, base = latency_run
    res = json.loads((result.output_dir / "results.json").read_text())
    rt = res["tasks"][2]
    assert rt["task"] == f"digits-lr{ratio:g}" and rt["ratio"] is None and rt["latency_ratio"] == ratio
    # The budget in ms is the ratio of the table's base (the run reads the table file the fixture wrote).
    assert rt["latency_budget_ms"] == pytest.approx(ratio * base)
    assert rt["budget_vs_base"] == pytest.approx(ratio)
    assert rt["predicted_latency_ms"] <= rt["latency_budget_ms"]
    assert rt["latency_vs_budget_relative"] == pytest.approx(rt["latency_ms"] / rt["base_latency_ms"] / ratio)
    episodes = [json.loads(line) for line in (result.output_dir / "search" / "episodes.jsonl").read_text().splitlines()]
    mine = [e for e in episodes if e.get("task_id") == rt["task_id"]]
    assert mine and all(not e["info"]["over_budget"] for e in mine)
    assert f"{ratio:g}x base latency" in result.report_path.read_text()
