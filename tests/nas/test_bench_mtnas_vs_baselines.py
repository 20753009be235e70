"""benchmarks/mtnas_vs_baselines.py: its statistics helpers, and a tiny run of the table preset."""

from __future__ import annotations

import json
import math

import pytest

from bench_scripts import load_benchmark


def _load_script():
    return load_benchmark("mtnas_vs_baselines")


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


def _rescore_case():
    """Six evaluations (one repeats an architecture, one is over budget) and a memoizing, counting re-scorer."""
    archs = [[0], [1], [2], [3], [1], [4], [5]]
    rewards = [0.5, 0.9, 0.7, 0.8, 0.9, 0.6, 0.99]
    records = [{"arch": a, "accuracy": r, "meets_budgets": a != [5]} for a, r in zip(archs, rewards, strict=True)]
    held_out = {0: 0.1, 1: 0.5, 2: 0.9, 3: 0.6, 4: 0.95, 5: 1.0}
    calls: list[int] = []

    def rescore(arch):
        calls.append(int(arch[0]))
        return held_out[int(arch[0])], {"accuracy": held_out[int(arch[0])]}

    return rewards, records, rescore, calls


def test_rescored_selection_is_the_best_rescore_of_the_top_k():
    bench = _load_script()
    rewards, records, rescore, calls = _rescore_case()
    # top 2 by reward after each evaluation: {0}, {1,0}, {1,2}, {1,3}, {1,3} (the repeat of 1 changes nothing),
    # {1,3} (4 is below them); the over-budget 5 never counts, whatever its reward or re-score.
    assert bench.rescored_selections(rewards, records, rescore, 2) == [0, 1, 2, 3, 3, 3, 3]
    assert bench.selections(rewards, records) == [0, 1, 1, 1, 1, 1, 1]
    assert set(calls) == {0, 1, 2, 3}  # only architectures that entered the top 2 were re-scored


def test_summarize_run_reports_both_selections_and_the_rescore_is_no_evaluation():
    bench = _load_script()
    rewards, records, rescore, calls = _rescore_case()
    truth = {0: 0.2, 1: 0.3, 2: 0.8, 3: 0.7, 4: 0.9, 5: 0.0}
    space = bench.Space(["t"], lambda i, seed: None, lambda seed: [], lambda i, rec: truth[rec["arch"][0]],
                        {"rescore_images": 7}, rescorer=lambda i: rescore)
    run = bench.summarize_run(space, 0, rewards, records, window=2, top_k=2)
    assert run["best_so_far"] == [0.2, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]  # naive: arch 1, lucky on the reward
    assert run["rescored_best_so_far"] == [0.2, 0.3, 0.8, 0.7, 0.7, 0.7, 0.7]
    assert run["rescored_best_so_far_rescore_accuracy"][-1] == 0.6 and run["rescored_selected_arch"] == [3]
    assert run["rescore"] == {"top_k": 2, "images": 7}
    assert len(run["windowed_reward"]) == len(rewards)  # the re-scores added no evaluation to the curves
    other = {**run, "rescore": {"top_k": 3, "images": 7}}
    summary = bench.aggregate({"random": [run, run], "mtnas": [run, run]}, 7, "rescored")
    assert summary["mtnas"]["best_found"]["7"]["mean"] == 0.7
    with pytest.raises(AssertionError, match="different rules"):
        bench.aggregate({"random": [run, run], "mtnas": [other, other]}, 7, "rescored")
    with pytest.raises(SystemExit):  # a space without a re-score hold-out cannot re-score
        bench.summarize_run(bench.Space(["t"], None, None, space.true_accuracy, {}), 0, rewards, records, 2, top_k=2)


def test_merge_joins_seeds_run_apart_into_the_run_over_all_of_them(tmp_path):
    """Seeds 0 and 1 run in two processes, merged, summarize exactly as one run over both (a seed's numbers do
    not depend on which process ran it); repeated seeds and other settings are refused."""
    bench = _load_script()
    common = ["--preset", "table", "--evals", "10", "--methods", "random,evolution"]
    whole = bench.main([*common, "--seeds", "0,1"])
    parts = [tmp_path / "s0.json", tmp_path / "s1.json"]
    for seed, path in zip("01", parts, strict=True):
        bench.main([*common, "--seeds", seed, "--out", str(path)])
    merged = bench.main(["--merge", *map(str, parts), "--out", str(tmp_path / "all.json")])
    assert merged["settings"]["seeds"] == [0, 1] and not merged["partial"]
    assert merged["summary"] == json.loads(json.dumps(whole["summary"]))
    with pytest.raises(SystemExit, match="seeds repeat"):
        bench.main(["--merge", str(parts[0]), str(parts[0]), "--out", str(tmp_path / "x.json")])
    other = tmp_path / "other.json"
    bench.main([*common, "--evals", "8", "--seeds", "2", "--out", str(other)])
    with pytest.raises(SystemExit, match="evals"):
        bench.main(["--merge", str(parts[0]), str(other), "--out", str(tmp_path / "y.json")])
