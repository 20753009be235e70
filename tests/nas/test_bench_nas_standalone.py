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
