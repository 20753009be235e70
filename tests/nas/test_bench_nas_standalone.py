"""benchmarks/nas_ranking.py and benchmarks/nas_standalone.py: Kendall tau, and tiny end-to-end runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench_scripts import load_benchmark


@pytest.fixture(scope="module")
def ranking():
    return load_benchmark("nas_ranking")


def test_kendall_tau_matches_the_definition(ranking):
    rng = np.random.default_rng(0)
    for n in (2, 5, 20):
        x = rng.integers(0, 4, n).astype(float)  # many ties
        y = x + rng.normal(0, 1.5, n)
        y[: n // 3] = 1.0
        ref = ranking.kendall_tau_reference(x, y)
        got = ranking.kendall_tau(x, y)
        assert (got is None and np.isnan(ref)) or got == pytest.approx(ref, abs=1e-12)
    assert ranking.kendall_tau([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert ranking.kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # Hand count: pairs (1,2) concordant, (1,3) concordant, (2,3) discordant -> (2 - 1) / 3.
    assert ranking.kendall_tau_reference([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    assert ranking.kendall_tau([1, 1, 1], [1, 2, 3]) is None and ranking.kendall_tau([1], [2]) is None


def test_ranking_tiny_end_to_end(ranking, tmp_path):
    out = tmp_path / "ranking.json"
    doc = ranking.main(["--tiny", "--archs", "4", "--cache", str(tmp_path / "cache"), "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["rank_correlation"]["n_archs"] == 4 == len(saved["archs"])
    assert set(saved["archs"][0]) >= {"arch", "flops", "supernet_score", "test_accuracy"}
    assert doc["setup"]["supernet_sampling"] == "sandwich" and doc["setup"]["supernet_distill"] is True
    again = ranking.main(["--tiny", "--archs", "4", "--cache", str(tmp_path / "cache"), "--out", str(out), "--resume"])
    assert again["archs"] == saved["archs"] and again["supernet"]["cache_hit"]


def test_standalone_tiny_end_to_end_and_merge(tmp_path):
    bench = load_benchmark("nas_standalone")
    common = ["--tiny", "--evals", "3", "--train-seeds", "0", "--cache", str(tmp_path / "cache")]
    a = bench.main([*common, "--search-seeds", "0", "--out", str(tmp_path / "a.json")])
    recs = a["records"]
    methods = {r["method"] for r in recs}
    assert methods == {"mtnas", "random", "evolution", "mobilenetv2-width"}
    assert len(recs) == 2 * 3 + 2  # 3 methods x 2 tasks, plus the reference per task
    fields = {"method", "search_seed", "task", "train_seed", "test_accuracy", "supernet_score", "flops", "evaluations"}
    assert all(fields <= set(r) for r in recs)
    budgets = {name: b for name, b in ((bench.task_name(*t), t[1]) for t in bench.TINY.tasks)}
    assert all(r["flops"] <= budgets[r["task"]] for r in recs)
    assert all(r["evaluations"] == 3 for r in recs if r["method"] != "mobilenetv2-width")
    assert "pruned-resnet20" in a["meta"]["references_not_run"]
    b = bench.main([*common, "--search-seeds", "1", "--references", "", "--out", str(tmp_path / "b.json")])
    merged = bench.main(["--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path / "m.json")])
    assert len(merged["records"]) == len(recs) + len(b["records"])
    assert merged["summary"]["per_task"][recs[0]["task"]]["random"]["search_seeds"] == 2
    render = load_benchmark("render_nas_standalone")
    (tmp_path / "results").mkdir()
    for name in ("a", "b"):
        (tmp_path / "results" / f"nas-standalone-{name}.json").write_text((tmp_path / f"{name}.json").read_text())
    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n{render.BEGIN}\nold\n{render.END}\nend\n")
    assert render.main(["--results", str(tmp_path / "results"), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "old" not in text and "| mtnas - random |" in text and "pruned-resnet20" in text and text.endswith("end\n")


def test_flops_stratified_sampling_spans_the_space(ranking):
    from autostruct.nas.evaluate import TaskCosts
    from autostruct.nas.space import get_space

    space = get_space("mobilenetv2-elastic", 28)
    costs = TaskCosts(1, 28, 10)
    flops = lambda archs: np.array([costs(a)["flops"] for a in archs])  # noqa: E731
    strat = flops(ranking.sample_flops_stratified(space, costs, 20, np.random.default_rng(0), pool=1000))
    uniform = flops(ranking.sample_uniform(space, 20, np.random.default_rng(0)))
    lo, hi = costs(space.smallest())["flops"], costs(space.largest())["flops"]
    assert len(set(strat)) == 20 and strat.min() == lo and strat.max() == hi
    # Even over log FLOPs: every fifth of the log range holds some of them, and the spread beats uniform's.
    bins = np.histogram(np.log(strat), bins=5, range=(np.log(lo), np.log(hi)))[0]
    assert bins.min() >= 2
    assert np.log(strat).std() > 1.5 * np.log(uniform).std()


def test_ranking_in_two_phases_fills_the_scores(ranking, tmp_path):
    out = tmp_path / "ranking.json"
    common = ["--tiny", "--archs", "4", "--sampling", "flops-stratified", "--cache", str(tmp_path / "cache"),
              "--out", str(out)]
    first = ranking.main([*common, "--phase", "standalone"])
    assert first["partial"] and "rank_correlation" not in first
    assert all(r["supernet_score"] is None and "test_accuracy" in r for r in first["archs"])
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.pt"))
    ranking.main([*common, "--phase", "supernet"])
    done = ranking.main([*common, "--resume"])
    assert done["rank_correlation"]["n_archs"] == 4 and "partial" not in done
    assert [r["test_accuracy"] for r in done["archs"]] == [r["test_accuracy"] for r in first["archs"]]
    assert all(r["supernet_score"] is not None for r in done["archs"]) and done["arch_sampling"] == "flops-stratified"
    render = load_benchmark("render_nas_standalone")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "nas-ranking-strat.json").write_text(out.read_text())
    text = "\n".join(render.ranking_table(json.loads(out.read_text())))
    assert "spread evenly over log FLOPs" in text and text.count("\n| ") >= 4 + 4  # 4 tau rows + 4 architectures
    section = tmp_path / "doc.md"
    section.write_text(f"{render.BEGIN}\n{render.END}\n")
    assert render.main(["--results", str(tmp_path / "results"), "--doc", str(section)]) == 0
    assert "nas-ranking-strat.json" in section.read_text()


def test_pruned_reference_is_read_from_a_prune_run_and_rendered(tmp_path):
    """--pruned-run: the prune run's task on the dataset with the most FLOPs within each budget, as that run
    fine-tuned it, with its training budget; a budget it has no task within is said, not filled."""
    bench = load_benchmark("nas_standalone")
    run = tmp_path / "prune-run"
    run.mkdir()
    task = {"dataset": "digits", "classes": None, "base_accuracy": 0.97, "base_flops": 2.0e6, "finetune_epochs": 1,
            "finetune_cycles": 2, "episodes": 50, "search_episodes": 150}
    tasks = [{**task, "task": "digits-r0.4", "flops": 0.8e6, "accuracy_after_finetune": 0.951},
             {**task, "task": "digits-r0.6", "flops": 1.2e6, "accuracy_after_finetune": 0.962},
             {**task, "task": "digits-c1.2-r0.3", "classes": [1, 2], "flops": 0.6e6, "accuracy_after_finetune": 0.99}]
    (run / "results.json").write_text(json.dumps({"tasks": tasks, "config": {
        "base_training": {"epochs": 2}, "seed": 0, "model": "resnet20", "width": 0.5}}))
    assert bench.parse_tasks("digits:0.9e6,digits:1.3e6") == (("digits", 0.9e6), ("digits", 1.3e6))
    with pytest.raises(SystemExit, match="DATASET:FLOPS"):
        bench.parse_tasks("digits")
    doc = bench.main(["--tiny", "--evals", "3", "--train-seeds", "0", "--search-seeds", "0", "--methods", "random",
                      "--references", "pruned-resnet20", "--tasks", "digits:0.9e6,digits:1.3e6,digits:0.5e6",
                      "--pruned-run", str(run), "--epochs", "1", "--train-size", "0", "--cache", str(tmp_path / "cache"),
                      "--out", str(tmp_path / "nas-deploy-tiny.json")])
    pruned = {r["task"]: r for r in doc["records"] if r["method"] == "pruned-resnet20"}
    assert pruned["digits-flops0.9M"]["test_accuracy"] == 95.1 and pruned["digits-flops1.3M"]["test_accuracy"] == 96.2
    assert "digits-flops0.5M" not in pruned  # no all-class task within 0.5M FLOPs
    assert pruned["digits-flops1.3M"]["training_epochs"] == 2 + 1 * 2 and pruned["digits-flops1.3M"]["evaluations"] == 50
    assert doc["meta"]["bench"]["recipe"]["train_size"] is None and "pruned-resnet20" not in doc["meta"]["references_not_run"]
    render = load_benchmark("render_nas_standalone")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "nas-deploy-tiny.json").write_text((tmp_path / "nas-deploy-tiny.json").read_text())
    page = tmp_path / "doc.md"
    page.write_text(f"{render.BEGIN}\n{render.END}\n")
    assert render.main(["--results", str(tmp_path / "results"), "--doc", str(page)]) == 0
    text = page.read_text()
    assert "Found nets against what a user would deploy" in text and "= **4 epochs**" in text
    assert "| digits-flops1.3M | pruned-resnet20 | 96.20 |" in text and "the whole training split" in text
