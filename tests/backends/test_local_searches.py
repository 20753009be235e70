"""Both searches end to end on the ``local`` backend: real pruning and NAS envs built and run in actor processes.

Tiny on purpose (digits, two tasks, two actors, a few episodes, no fine-tuning): what is under test is the
process boundary (factories pickled under ``spawn``, datasets and models loaded in the actors, trajectories
and weights crossing back and forth), not what the searches find.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

import autostruct
from autostruct.data import splits

CLAMP = "more than half"


class SpawnedChildren:
    """Collects the pids of this process's ``multiprocessing`` spawn children while a run goes on (Linux /proc)."""

    def __init__(self, every_s: float = 0.2) -> None:
        self.pids: set[int] = set()
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self._every):
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    cmd = (entry / "cmdline").read_bytes()
                except (OSError, IndexError, ValueError):
                    continue  # exited while we looked
                if ppid == me and b"spawn_main" in cmd:
                    self.pids.add(int(entry.name))

    def __enter__(self) -> SpawnedChildren:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _run(fn, config, capfd, caplog):
    """Run ``fn(config)`` fresh (no clamp reported yet in this process); return (result, actor pids, clamp count)."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs Linux /proc to see the actor processes")
    with pytest.MonkeyPatch.context() as mp, caplog.at_level("WARNING", logger="autostruct.data"):
        mp.setattr(splits, "_CLAMPS_REPORTED", set())
        capfd.readouterr()
        with SpawnedChildren() as children:
            result = fn(config, progress=False)
        err = capfd.readouterr().err
    clamps = [r.getMessage() for r in caplog.records if CLAMP in r.getMessage()] + [
        line for line in err.splitlines() if CLAMP in line
    ]
    return result, children.pids, clamps


def _episodes(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "search" / "episodes.jsonl").read_text().splitlines()]


def _check_run(result, actor_pids, fmt: str, episodes: int) -> dict:
    """What both searches promise of a 2-task run on 2 actor processes; returns the parsed results.json."""
    out = Path(result.output_dir)
    res = json.loads((out / "results.json").read_text())
    assert res["format"] == fmt
    assert res["totals"]["tasks"] == 2 and res["totals"]["episodes"] == episodes
    assert res["totals"]["actor_restarts"] == {}
    for t in res["tasks"]:
        assert 1 <= t["episodes_to_best"] <= t["episodes"]
        assert 0.0 <= t["accuracy_before_finetune"] <= 1.0 and t["latency_ms"] > 0
        assert Path(t["model_path"]).is_file() and Path(t["onnx_path"]).is_file()
    logged = _episodes(out)
    assert len(logged) == episodes and {e["actor_id"] for e in logged} <= {0, 1}
    assert len(actor_pids) >= 2 and os.getpid() not in actor_pids
    return res


@pytest.mark.slow
def test_prune_on_local_backend(tmp_path, capfd, caplog):
    config = {
        "name": "local-prune", "output_dir": str(tmp_path / "run"), "model": "resnet20", "width": 0.25,
        "tasks": [{"dataset": "digits", "ratios": [0.5]},
                  {"dataset": "digits", "classes": [0, 1, 2, 3, 4], "ratios": [0.5]}],
        "base_training": {"epochs": 1, "min_steps": 10},
        "search": {"episodes": 4, "val_size": 100, "rescore_size": 50, "top_k": 2, "random_episodes": 0, "round_to": 4,
                   "recal_batches": 1, "holdout_size": 5000},
        "rl": {"actors": 2, "batch_size": 2},
        "finetune": {"epochs": 0},
        "backend": {"name": "local"},
        "latency_runs": 3,
    }
    result, actor_pids, clamps = _run(autostruct.prune, config, capfd, caplog)

    res = _check_run(result, actor_pids, "autostruct.prune-results/1", 4)
    for t in res["tasks"]:
        assert t["flops"] <= t["ratio"] * t["base_flops"]
        assert t["episodes"] >= 1
        assert t["finetune_epochs"] == 0 and t["accuracy_after_finetune"] is None
    # Digits (1438 training images) and its 5-class subset (721) clamp the hold-out of 5000 the config sets (an
    # unset one clamps silently): once each per run, from the learner's process, however many times the run and
    # its actors load them.
    assert len(clamps) == 2 and len(set(clamps)) == 2, clamps


@pytest.mark.slow
def test_nas_search_on_local_backend(tmp_path, capfd, caplog):
    config = {
        "name": "local-nas", "output_dir": str(tmp_path / "run"),
        "tasks": [{"dataset": "digits", "budgets": {"flops": 1.2e6}},
                  {"dataset": "digits", "classes": [0, 1, 2, 3, 4], "budgets": {"params": 6e5}}],
        "supernet": {"epochs": 1, "batch_size": 64, "min_steps": 0},
        "search": {"episodes": 6, "val_size": 100, "rescore_size": 50, "recal_batches": 1},
        "rl": {"actors": 2, "batch_size": 2},
        "finetune": {"epochs": 0},
        "backend": {"name": "local"},
        "latency_runs": 3,
    }
    result, actor_pids, clamps = _run(autostruct.search, config, capfd, caplog)

    res = _check_run(result, actor_pids, "autostruct.nas-results/1", 6)
    for t in res["tasks"]:
        for name, target in t["budgets"].items():
            assert t[name] <= target, (t["task"], name)
    assert clamps == [], clamps  # a 150-image hold-out fits both training sets
