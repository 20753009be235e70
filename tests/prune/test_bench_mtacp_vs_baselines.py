"""Smoke test of benchmarks/mtacp_vs_baselines.py (--quick, its main() in the test process) and its statistics helpers."""

from __future__ import annotations

import json
import math

import pytest

from bench_scripts import load_benchmark, run_benchmark

#: Both smoke runs prune the same one-epoch digits base model: trained by the first, read from the session's
#: cache by the second (what is under test is the benchmark's plumbing, not the base model's accuracy).
TINY_BASE = ["--base-epochs", "1", "--base-min-steps", "60"]


def _load_script():
    return load_benchmark("mtacp_vs_baselines")


def test_statistics_helpers():
    bench = _load_script()
    assert bench.expected_best_of_n([0.1, 0.3, 0.2]) == pytest.approx([0.2, (0.2 + 0.3 + 0.3) / 3, 0.3])
    ci = bench.mean_ci([1.0, 2.0, 3.0])
    assert ci["mean"] == 2.0 and ci["ci95"] == pytest.approx([2.0 - 4.302653 / math.sqrt(3), 2.0 + 4.302653 / math.sqrt(3)])
    assert bench.mean_ci([1.0])["ci95"] is None
    acc = {0: {"a": {"t1": 0.9, "t2": 0.8}, "b": {"t1": 0.85, "t2": 0.8}},
           1: {"a": {"t1": 0.9, "t2": 0.7}, "b": {"t1": 0.8, "t2": 0.7}}}
    p = bench.paired(acc, "a", "b")
    assert p["per_seed_task"]["n"] == 4 and p["per_seed"]["n"] == 2
    assert p["per_seed_task"]["mean"] == pytest.approx(3.75) and p["per_seed"]["mean"] == pytest.approx(3.75)
    assert bench.window_means([1, 2, 3, 4, 5], 2) == [1.5, 3.5, 5.0]


def test_quick_run(tmp_path, capsys):
    out = tmp_path / "bench.json"
    _, stdout, stderr = run_benchmark("mtacp_vs_baselines", [
        "--quick", "--zero-shot", "--zero-shot-random", "2", "--episodes-per-task", "3", *TINY_BASE,
        "--out", str(out)], capsys)
    result = json.loads(stdout)
    assert result == json.loads(out.read_text())
    assert "mtacp minus method" in stderr  # the summary table
    methods = ("mtacp", "random", "ddpg", "cem", "single", "uniform")
    check = result["episodes_check"]
    assert check["equal"] and all(check["observed"][m] == [3] for m in methods if m != "uniform")
    assert set(result["runs"]) == {"0", "1"} and len(result["tasks"]) == 2
    for task in result["tasks"]:
        for m in methods:
            rec = result["runs"]["0"][m]["tasks"][task["task"]]
            assert rec["flops_ratio"] <= task["ratio"] + 1e-9
            assert 0.0 <= rec["test_accuracy_no_finetune"] <= 1.0 and 0.0 <= rec["test_accuracy_finetuned"] <= 1.0
            assert rec["rescore"] is not None and rec["selection"]["candidates"]
    assert set(result["paired_differences"]) == {f"mtacp-{m}" for m in methods if m != "mtacp"}
    diff = result["paired_differences"]["mtacp-ddpg"]["test_accuracy_pt"]
    assert diff["per_seed_task"]["n"] == 4 and diff["per_seed"]["n"] == 2 and diff["per_seed_task"]["ci95"]
    assert result["summary"]["ddpg"]["time_ratio_to_ddpg"] == pytest.approx(1.0)
    assert all(len(r) == 3 for r in result["curves"]["rewards"]["1"]["cem"].values())
    assert set(result["zero_shot"]["mean_test_accuracy"]) == {"zero_shot", "uniform", "random"}


@pytest.mark.slow
def test_sharing_quick_run_and_its_rendering(tmp_path, capsys):
    """The sharing regime end to end on digits (records per method, budget, seed and task; new scenarios) and
    the doc section rendered from its file."""
    out = tmp_path / "sharing-quick.json"
    run_benchmark("mtacp_vs_baselines", ["--preset", "sharing-quick", "--episodes-per-task", "3", "--finetune-at", "2",
                                         *TINY_BASE, "--out", str(out)], capsys)
    result = json.loads(out.read_text())
    assert result["complete"]
    keys = {(r["method"], r["episodes_per_task"], r["seed"], r["task"]) for r in result["records"]}
    assert len(keys) == len(result["records"])  # one record per (method, budget, seed, task)
    methods = {"mtacp", "random", "cem", "ddpg", "single"}
    assert {r["method"] for r in result["records"]} == methods
    for r in result["records"]:
        assert r["evaluations"] == r["episodes_per_task"] and r["cores"] == 1 and 0 <= r["test_accuracy"] <= 100
        # fine-tuned at a third of the budget and all of it, and where --finetune-at asks
        assert (r["test_accuracy_finetuned"] is not None) == (r["episodes_per_task"] in (1, 2, 3))
        # CPU seconds of the one-thread process: positive, and not more than its wall time
        assert 0 < r["cpu_s_method"] <= r["wall_s_method"] * 1.05 + 0.5, r
    new = {r["method"] for r in result["new_scenario_records"]}
    assert {"zero-shot", "few-shot-2", "nearest-task", "uniform", "random-2", "random-3"} <= new
    doc = tmp_path / "doc.md"
    doc.write_text("head\n<!-- sharing:begin -->\nold\n<!-- sharing:end -->\ntail\n")
    assert run_benchmark("render_sharing", ["--results", str(out), "--doc", str(doc)], capsys)[0] == 0
    text = doc.read_text()
    assert text.startswith("head\n") and text.endswith("tail\n") and "old" not in text
    assert "(a) mtacp @1 minus" in text and "zero-shot minus" in text
    # The same selections tested after another fine-tune length (no new search): the fine-tuned records change,
    # the others do not.
    assert run_benchmark("sharing_refinetune", ["--results", str(out), "--finetune-steps", "1", "--out-dir",
                                                str(tmp_path / "ft1")], capsys)[0] == 0
    again = json.loads((tmp_path / "ft1" / out.name).read_text())
    assert again["sizes"]["finetune_steps"] == 1 and again["refinetune"]["records_refinetuned"] > 0
    for old_rec, rec in zip(result["records"], again["records"], strict=True):
        assert rec["channels"] == old_rec["channels"] and rec["test_accuracy"] == old_rec["test_accuracy"]
        assert (rec["test_accuracy_finetuned"] is None) == (old_rec["test_accuracy_finetuned"] is None)
    assert all(r["test_accuracy_finetuned"] is not None for r in again["new_scenario_records"])


def _record(method, n, seed, task, acc, cpu):
    return {"method": method, "episodes_per_task": n, "seed": seed, "task": task, "test_accuracy": acc - 10,
            "test_accuracy_finetuned": acc, "wall_s_method": cpu, "cpu_s_method": cpu}


def test_render_reads_d_where_mtacp_first_meets_a():
    render = load_benchmark("render_sharing")
    noise = {(0, "a"): 0.1, (0, "b"): -0.1, (1, "a"): 0.2, (1, "b"): 0.0, (2, "a"): -0.2, (2, "b"): 0.1}
    recs = [_record("ddpg", 100, sd, t, 90.0, 200.0) for sd, t in noise]
    for n, gap in ((10, -2.0), (20, 0.0), (33, 0.3), (100, 0.4)):
        recs += [_record("mtacp", n, sd, t, 90.0 + gap + d, n * 2.0) for (sd, t), d in noise.items()]
    lines = "\n".join(render.earliest_reach(recs, "ddpg", 100, [0, 1, 2]))
    assert "It first does at **20** episodes per task" in lines and "mean **0.20x**" in lines
    # The same run where MTACP stays 2 points behind everywhere never meets the bar.
    behind = [r if r["method"] == "ddpg" else {**r, "test_accuracy_finetuned": r["test_accuracy_finetuned"] - 3}
              for r in recs]
    assert "does not meet the bar" in "\n".join(render.earliest_reach(behind, "ddpg", 100, [0, 1, 2]))
    # Without a fine-tuned budget below a third of E there is nothing new to read.
    assert render.earliest_reach([r for r in recs if r["episodes_per_task"] >= 33], "ddpg", 100, [0, 1, 2]) == []


def test_render_retime_takes_cpu_from_the_retiming_and_checks_the_selections():
    render = load_benchmark("render_sharing")
    noise = {(0, "a"): 0.1, (0, "b"): -0.1, (1, "a"): 0.2, (1, "b"): 0.0, (2, "a"): -0.2, (2, "b"): 0.1}
    recs = [_record("cem", 100, sd, t, 90.0, 500.0) for sd, t in noise]
    for n, gap in ((20, -2.0), (33, 0.0), (100, 0.4)):
        recs += [_record("mtacp", n, sd, t, 90.0 + gap + d, 900.0) for (sd, t), d in noise.items()]
    for r in recs:
        r["channels"] = [r["episodes_per_task"], r["seed"]]
    retimed = [{**r, "test_accuracy_finetuned": None, "cpu_s_method": 100.0 if r["method"] == "cem" else
                r["episodes_per_task"] * 1.0} for r in recs]
    retimed[0] = {**retimed[0], "channels": [1, 2, 3]}  # one selection that differs is counted, not hidden
    text = render.render_retime(recs, retimed, [{"file": "x.json"}])
    assert f"**{len(retimed) - 1} of {len(retimed)}**" in text
    rows = {line.split(" |")[0]: line for line in text.splitlines() if line.startswith("| ")}
    assert "| 33 (meets the bar)" in rows and rows["| 33 (meets the bar)"].endswith("| **0.33x** |")
    assert rows["| 20"].endswith("| 0.20x |")  # 2 points behind: read, not bold
    # The control: random search fine-tuned at the same budgets; 3 points behind at 20 does not meet the bar.
    control = [{**r, "method": "random", "test_accuracy_finetuned": r["test_accuracy_finetuned"] - 1.0}
               for r in recs if r["method"] == "mtacp" and r["episodes_per_task"] == 20]
    with_control = render.render_retime(recs, retimed, [{"file": "x.json"}], control=control)
    assert "| 20 | -2.98 [" in with_control and with_control.rstrip().endswith("| no |")  # -3 plus the noise
    assert "0 of 0 are identical" in with_control  # no random records at 20 in the accuracy records
