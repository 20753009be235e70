"""MTACP end to end on a tiny budget: real training, real pruning, real IMPALA search, real export."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from autostruct.cli import app
from autostruct.config import PruneConfig, parse_config
from autostruct.errors import AutostructError
from autostruct.export import load_model
from autostruct.measure.rounding import RoundingChoice
from autostruct.mtacp import run_prune, zero_shot_prune
from autostruct.rl.logs import read_episodes


def tiny_config(out, **over):
    cfg = {
        "name": "tiny",
        "output_dir": str(out),
        "model": "resnet20",
        "width": 0.5,
        "tasks": [{"dataset": "digits", "ratios": [0.5]}, {"dataset": "digits", "classes": [0, 1, 2, 3, 4], "ratios": [0.4]}],
        "base_training": {"epochs": 3, "min_steps": 60},
        "search": {"episodes": 8, "val_size": 200, "rescore_size": 100, "top_k": 3, "random_episodes": 5,
                   "recal_batches": 2},
        "rl": {"actors": 1, "unroll_length": 5, "batch_size": 2},
        "finetune": {"epochs": 1, "min_steps": 0},
        "backend": {"name": "inline"},
        "latency_runs": 3,
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = {**cfg[k], **v}
        else:
            cfg[k] = v
    return parse_config(PruneConfig, cfg)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "tiny"
    # Two one-step fine-tuning cycles: one step cannot bring a pruned model back within 0.01 pt of its base.
    return run_prune(tiny_config(out, finetune={"max_steps": 1, "recover_within": 0.01, "max_cycles": 2}),
                     progress=False)


def test_every_task_meets_its_budget_and_exports(finished_run):
    out = finished_run.output_dir
    for name in ("results.json", "report.html", "policy.pt", "config.yaml", "search/episodes.jsonl"):
        assert (out / name).is_file(), name
    res = json.loads((out / "results.json").read_text())
    assert len(res["tasks"]) == 2
    for t in res["tasks"]:
        assert t["flops"] <= t["ratio"] * t["base_flops"]
        assert t["flops"] >= 0.9 * t["ratio"] * t["base_flops"]  # budget: exact spends (almost) all of it
        for key in ("base_accuracy", "accuracy_before_finetune", "accuracy_after_finetune", "params",
                    "base_latency_ms", "latency_ms", "keep_ratios", "episodes_to_best", "search_seconds",
                    "latency_p90_ms", "base_latency_p90_ms", "speedup"):
            assert t[key] is not None, key
        assert t["speedup"] == pytest.approx(t["base_latency_ms"] / t["latency_ms"])
        assert t["finetune_cycles"] == 2  # finetune.recover_within ran the second cycle
        assert t["latency_p90_ms"] >= t["latency_ms"] and t["base_latency_p90_ms"] >= t["base_latency_ms"]
        # search.round_to defaults to 'auto': the run's multiple, or per task the one its own pruned models pay
        # with (twice the run's, when reachable and clearly faster); every kept count is a multiple of the task's
        # (or the whole group).
        step = t["round_to"]
        assert res["rounding"]["config"] == "auto" and res["config"]["search"]["round_to"] == "auto"
        source = res["rounding"]["tasks"][t["task"]]["source"]
        assert step in (res["rounding"]["round_to"], 2 * res["rounding"]["round_to"]) or (
            source == "landing" and step < res["rounding"]["round_to"])
        assert t["flops_vs_budget"] == pytest.approx(t["flops"] / (t["ratio"] * t["base_flops"]))
        assert res["rounding"]["tasks"][t["task"]]["meta"]["landing"] >= 0.9 and "budget_warning" not in t
        assert res["rounding"]["tasks"][t["task"]]["round_to"] == step
        assert all(c % step == 0 for c in t["channels"] if c not in (8, 16, 32))
        model, _ = load_model(t["model_path"])
        x = torch.randn(3, 1, 8, 8)
        with torch.no_grad():
            ref = model.eval()(x).numpy()
        sess = ort.InferenceSession(t["onnx_path"], providers=["CPUExecutionProvider"])
        got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        np.testing.assert_allclose(got, ref, atol=1e-4)
        assert sum(p.numel() for p in model.parameters()) == t["params"]
    assert "<img" in (out / "report.html").read_text()
    assert "speed-up x" in (out / "report.html").read_text()


def test_results_record_selection_naive_best_greedy_and_random_reference(finished_run):
    res = finished_run.results
    for t in res["tasks"]:
        sel = t["selection"]
        assert sel["top_k"] == 3 and 1 <= sel["selected_rank"] <= len(sel["candidates"]) <= 3
        chosen = sel["candidates"][sel["selected_rank"] - 1]
        assert chosen["channels"] == t["channels"]
        assert t["search_score"] == chosen["search_score"] and t["rescore"] == chosen["rescore"]
        assert t["rescore"] == max(c["rescore"] for c in sel["candidates"])
        assert t["test_accuracy"] == t["accuracy_before_finetune"]
        naive = t["naive_best"]
        assert naive["search_score"] == t["best_reward"] == max(c["search_score"] for c in sel["candidates"])
        assert naive["search_score"] >= t["search_score"]
        for k in ("rescore", "test_accuracy"):
            assert 0 <= naive[k] <= 1, k
        greedy = t["greedy"]
        assert len(greedy["keep_ratios"]) == len(greedy["channels"]) == len(t["channels"])
        for k in ("search_score", "rescore", "test_accuracy"):
            assert 0 <= greedy[k] <= 1, k
        ref = t["random_baseline"]
        assert ref["episodes"] == 5 and len(ref["rewards"]) == 5
        assert len(ref["expected_best_of_n"]) == t["episodes"]
        assert ref["expected_best_of_n"][0] == pytest.approx(sum(ref["rewards"]) / 5)
        assert (finished_run.output_dir / "random" / f"{t['task']}.json").is_file()
    html = finished_run.report_path.read_text()
    assert "Is the agent learning?" in html


def test_output_dir_with_a_run_is_refused(finished_run):
    cfg = tiny_config(finished_run.output_dir)
    with pytest.raises(AutostructError, match="--resume"):
        run_prune(cfg, progress=False)
    changed = tiny_config(finished_run.output_dir, tasks=[{"dataset": "digits", "ratios": [0.3]}])
    with pytest.raises(AutostructError, match="different tasks"):
        run_prune(changed, resume=True, progress=False)


def test_resume_extends_the_search_without_gaps(finished_run, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(finished_run.output_dir, out)
    random_files = {p.name: p.read_text() for p in (out / "random").iterdir()}
    # A resume plays on with the multiples the run started with (rounding.json), whatever a re-timing says.
    stored = json.loads((out / "rounding.json").read_text())
    assert set(stored) == {t["task"] for t in finished_run.tasks}
    res = run_prune(tiny_config(out, search={"episodes": 12}), resume=True, progress=False)
    assert json.loads((out / "rounding.json").read_text()) == stored
    assert {k: v["round_to"] for k, v in res.results["rounding"]["tasks"].items()} == {
        k: v["round_to"] for k, v in stored.items()}
    assert {p.name: p.read_text() for p in (out / "random").iterdir()} == random_files  # not played again
    for t in res.tasks:
        assert len(t["random_baseline"]["expected_best_of_n"]) == t["episodes"]
    lines = [json.loads(x) for x in (out / "search" / "episodes.jsonl").read_text().splitlines()]
    idx = [rec["episode_index"] for rec in lines]
    assert idx == list(range(12))
    assert res.results["totals"]["episodes"] == 12
    assert sum(t["episodes"] for t in res.tasks) == 12


def test_resume_of_a_run_without_rounding_json_keeps_the_runs_multiple(finished_run, tmp_path):
    import shutil

    out = tmp_path / "old"
    shutil.copytree(finished_run.output_dir, out)
    (out / "rounding.json").unlink()  # as a run started before per-task rounding
    res = run_prune(tiny_config(out, search={"episodes": 10}), resume=True, progress=False)
    assert json.loads((out / "rounding.json").read_text()) == {}
    run_multiple = res.results["rounding"]["round_to"]
    assert {v["round_to"] for v in res.results["rounding"]["tasks"].values()} == {run_multiple}


def test_zero_shot_meets_budget(finished_run, tmp_path):
    res = zero_shot_prune(finished_run.policy_path, "digits", 0.35, output_dir=tmp_path / "zs", progress=False)
    assert res["flops"] <= 0.35 * res["base_flops"]
    assert (tmp_path / "zs" / "model.onnx").is_file()
    # The surrogate that picks among the policy's planned candidates learned from every episode of the run.
    assert res["mode"] == "zero-shot" and res["evaluations"] == 0
    assert res["run_episodes_used"] == len(read_episodes(finished_run.output_dir / "search" / "episodes.jsonl"))


def test_cli_few_shot_from_a_run_folder(finished_run):
    runner = CliRunner()
    res = runner.invoke(app, ["prune", "--policy", str(finished_run.output_dir), "--dataset", "digits",
                              "--classes", "0,1,2,3,4", "--ratio", "0.45", "--episodes", "2"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["mode"] == "few-shot" and out["evaluations"] == 2
    assert out["run_episodes_used"] == len(read_episodes(finished_run.output_dir / "search" / "episodes.jsonl"))
    assert out["flops"] <= 0.45 * out["base_flops"]
    res = runner.invoke(app, ["prune", "--policy", str(finished_run.output_dir), "--dataset", "digits", "--ratio",
                              "0.45", "--episodes", "500"])
    assert res.exit_code == 2 and "--episodes" in res.output


def test_zero_shot_lowers_the_hosts_multiple_where_the_ratio_needs_it(finished_run, monkeypatch):
    # A host whose auto multiple is 16: resnet20 x0.5's 8- and 16-channel stages cannot shrink with it, so 0.4 is
    # out of reach at 16. Like the run's preflight, zero-shot lowers the multiple instead of refusing the ratio.
    import autostruct.prune.env as env_module

    monkeypatch.setattr(env_module, "host_rounding", lambda threads=1: RoundingChoice(16, {}, source="measured"))
    res = zero_shot_prune(finished_run.policy_path, "digits", 0.4, progress=False)
    assert res["round_to"] < 16 and res["rounding"]["meta"]["start"] == 16
    assert 0.9 * 0.4 * res["base_flops"] <= res["flops"] <= 0.4 * res["base_flops"]


def test_cli_report_and_bad_inputs(finished_run, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["report", str(finished_run.output_dir)])
    assert res.exit_code == 0, res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: []\n")
    res = runner.invoke(app, ["prune", str(bad)])
    assert res.exit_code == 2 and "task list is empty" in res.output
    bad.write_text("tasks: [{dataset: digits, ratios: [0.5, 1.5]}]\n")
    res = runner.invoke(app, ["prune", str(bad)])
    assert res.exit_code == 2 and "(0, 1]" in res.output
    notckpt = tmp_path / "x.pt"
    notckpt.write_bytes(b"junk")
    bad.write_text(f"output_dir: {tmp_path / 'o'}\nmodel: {notckpt}\ntasks: [{{dataset: digits, ratios: [0.5]}}]\n")
    res = runner.invoke(app, ["prune", str(bad)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = runner.invoke(app, ["prune", "--policy", str(tmp_path / "nope.pt"), "--dataset", "digits", "--ratio", "0.5"])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_results_json_reads_back_through_its_schema(finished_run):
    from autostruct.results import PruneResults, load_results

    res = load_results(finished_run.output_dir)
    assert isinstance(res, PruneResults)
    assert res.model_dump(mode="json", exclude_unset=True) == json.loads((finished_run.output_dir / "results.json").read_text())
    assert all(t.greedy is not None and t.random_baseline is not None for t in res.tasks)
