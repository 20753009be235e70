"""The MTACP report from a hand-written run folder: the "Is the agent learning?" section and missing files."""

from __future__ import annotations

import json

import pytest

from autostruct.report.prune_report import learning_window, render_prune_report, window_means
from autostruct.utils.stats import expected_best_of_n


def _task(task_id, name, n, with_new_fields=True):
    t = {
        "task": name, "task_id": task_id, "dataset": "digits", "classes": None, "ratio": 0.5,
        "base_accuracy": 0.95, "accuracy_before_finetune": 0.9, "accuracy_after_finetune": 0.93,
        "flops": 500, "base_flops": 1000, "params": 10, "keep_ratios": [0.5, 0.7], "episodes": n,
        "episodes_to_best": 3,
    }
    if with_new_fields:
        rewards = [0.5 + 0.01 * i for i in range(10)]
        t.update({
            "search_score": 0.8, "rescore": 0.78, "test_accuracy": 0.9, "best_reward": 0.81,
            "selection": {"top_k": 3, "selected_rank": 2, "candidates": []},
            "naive_best": {"search_score": 0.81, "rescore": 0.74, "test_accuracy": 0.87},
            "greedy": {"keep_ratios": [0.5, 0.7], "channels": [4, 6], "search_score": 0.79, "rescore": 0.77,
                       "test_accuracy": 0.89},
            "random_baseline": {"episodes": 10, "rewards": rewards, "expected_best_of_n": expected_best_of_n(rewards, n)},
        })
    return t


def _write_run(tmp_path, *, n=30, greedy=True, episodes=True, new_fields=True):
    search = tmp_path / "search"
    search.mkdir()
    tasks = [_task(0, "digits-r0.5", n, new_fields), _task(1, "digits-r0.3", n, new_fields)]
    if episodes:
        with open(search / "episodes.jsonl", "w") as fh:
            for i in range(2 * n):
                fh.write(json.dumps({"task_id": i % 2, "episode_index": i, "actions": [], "reward": 0.4 + i / (4 * n),
                                     "info": {}, "policy_version": i // 4, "wall_time": float(i), "length": 2}) + "\n")
            fh.write('{"task_id": 0, "rew')  # a torn last line (killed run) is skipped
    if greedy:
        with open(search / "greedy.jsonl", "w") as fh:
            for k in (5, 15, 25):
                for tid in (0, 1):
                    fh.write(json.dumps({"task_id": tid, "episode_index": -1, "actions": [], "reward": 0.5 + k / 100,
                                         "info": {"task_episodes": k}, "policy_version": k, "wall_time": 0.0}) + "\n")
    res = {"format": "autostruct.prune-results/1", "name": "hand", "tasks": tasks, "totals": {"tasks": 2, "episodes": 2 * n},
           "curves": {}, "config": {}, "versions": {}}
    (tmp_path / "results.json").write_text(json.dumps(res))
    return tmp_path


def test_learning_section_with_greedy_log_and_random_reference(tmp_path):
    html = render_prune_report(_write_run(tmp_path)).read_text()
    assert "Is the agent learning?" in html
    section = html.split("Is the agent learning?")[1].split("<h2>")[0]
    assert section.count("<img") == 2  # one figure per task
    assert "No greedy rollouts" not in section and "No learning metrics" not in section
    assert "E[best of 30] from 10 random episodes" in section
    assert "rank 2 of top 3" in section


def test_learning_section_tolerates_missing_files_and_fields(tmp_path):
    html = render_prune_report(_write_run(tmp_path, greedy=False, new_fields=False)).read_text()
    section = html.split("Is the agent learning?")[1].split("<h2>")[0]
    assert "No greedy rollouts" in section
    assert "not run (set search.random_episodes &gt; 0)" in section
    assert section.count("<img") == 2


def test_learning_section_without_episodes_says_so(tmp_path):
    html = render_prune_report(_write_run(tmp_path, episodes=False, greedy=False)).read_text()
    assert html.count("No learning metrics for this task") == 2


def test_greedy_from_metrics_when_no_greedy_log(tmp_path):
    run = _write_run(tmp_path, greedy=False)
    with open(run / "search" / "metrics.jsonl", "w") as fh:
        for u in range(1, 4):
            fh.write(json.dumps({"update": u, "episodes": 20 * u, "greedy/task_0": 0.6, "greedy/task_1": 0.7}) + "\n")
    section = render_prune_report(run).read_text().split("Is the agent learning?")[1].split("<h2>")[0]
    assert "No greedy rollouts" not in section


@pytest.mark.parametrize(("n", "want"), [(3, 5), (30, 5), (100, 10), (400, 40)])
def test_learning_window(n, want):
    assert learning_window(n) == want


def test_window_means():
    assert window_means([1, 2, 3, 4, 5], 2) == ([2, 4, 5], [1.5, 3.5, 5.0])


def test_a_budget_the_multiple_cannot_spend_is_shown_above_the_results(tmp_path):
    run = _write_run(tmp_path)
    res = json.loads((run / "results.json").read_text())
    res["tasks"][0].update(flops_vs_budget=0.42, budget_warning="task digits-r0.5: with channels in multiples of "
                           "16 its episodes land at 0.42 of the FLOPs budget at most (use search.round_to: auto).")
    (run / "results.json").write_text(json.dumps(res))
    page = render_prune_report(run).read_text()
    assert "Budget not spent:</b> task digits-r0.5: with channels in multiples of 16" in page
    assert "FLOPs / budget" in page and "0.42" in page
