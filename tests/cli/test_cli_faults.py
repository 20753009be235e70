"""Faults a user meets, through the CLI: a full disk at each kind of write, two runs on one folder, a kill while
results.json is written, a truncated cache entry. Each ends in exit 2 with one paragraph naming the cause (or a
clean success), no traceback, nothing written before the fault lost, and a `--resume` that completes.

The full disk is simulated by tests/fault_injection.py (no root, no tmpfs): the chosen file takes some bytes,
then every write fails with ENOSPC until the test frees the space.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

import autostruct
from autostruct.cli import app
from fault_injection import ENV, install

pytestmark = pytest.mark.slow
runner = CliRunner()
TASK = "digits-r0.5"
EPISODES = 4


def _config(tmp_path, out="run") -> str:
    cfg = {
        "name": "faults",
        "output_dir": str(tmp_path / out),
        "model": "resnet20",
        "width": 0.25,
        "tasks": [{"dataset": "digits", "ratios": [0.5]}],
        "base_training": {"epochs": 1, "min_steps": 0},
        "search": {"episodes": EPISODES, "val_size": 100, "rescore_size": 50, "top_k": 2, "random_episodes": 0,
                   "round_to": 4, "recal_batches": 1},
        "rl": {"actors": 1, "unroll_length": 5, "batch_size": 2, "checkpoint_every": 1},
        "finetune": {"epochs": 0},
        "backend": {"name": "inline"},
        "latency_runs": 3,
    }
    path = tmp_path / f"{out}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _episodes(run: Path) -> list[dict]:
    """The episode log, checked: every line a record, indices 0, 1, 2, ... (no gap, no duplicate)."""
    path = run / "search" / "episodes.jsonl"
    data = path.read_bytes() if path.exists() else b""
    assert not data or data.endswith(b"\n"), "a partial line"
    lines = [json.loads(line) for line in data.splitlines()]
    assert [rec["episode_index"] for rec in lines] == list(range(len(lines)))
    return lines


def _check_resumable(run: Path) -> None:
    _episodes(run)
    ckpt = run / "search" / "checkpoint.pt"
    if ckpt.exists():
        assert torch.load(ckpt, weights_only=False)["format"] == "autostruct.impala/1"
    assert not list(run.rglob(".*.tmp")), "a temporary file left behind"


def _check_finished(run: Path, before: bytes) -> None:
    log = (run / "search" / "episodes.jsonl").read_bytes()
    assert log.startswith(before), "episodes logged before the fault were lost or changed"
    assert len(_episodes(run)) == EPISODES
    results = json.loads((run / "results.json").read_text())
    assert [t["task"] for t in results["tasks"]] == [TASK]
    assert (run / "report.html").is_file() and (run / "tasks" / TASK / "model.onnx").is_file()


FULL_AT = {
    # name: (a part of the file's name, which such file opened, bytes it takes before the disk is full)
    "episode log": ("episodes.jsonl", 1, 1500),  # inside the second episode's line
    "checkpoint": ("checkpoint.pt", 2, 1000),
    "exported ONNX": ("/.model.onnx.", 1, 1000),
    "results.json": ("results.json", 1, 100),
    "report": ("report.html", 1, 1000),
    "base-model cache": ("/.resnet20-digits-", 1, 1000),
}


@pytest.mark.parametrize("case", list(FULL_AT))
def test_full_disk_exits_2_keeps_what_was_written_and_resumes(tmp_path, monkeypatch, case):
    file, nth, at_byte = FULL_AT[case]
    if case == "base-model cache":
        monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path / "cache"))  # the base model is trained here
    cfg, run = _config(tmp_path), tmp_path / "run"
    fault = install({"file": file, "nth": nth, "at_byte": at_byte}, monkeypatch.setattr)
    res = runner.invoke(app, ["prune", cfg])
    assert res.exit_code == 2, (res.output, res.exception)
    assert fault.disk_full
    assert "Traceback" not in res.output
    msg = " ".join(res.output.split())
    assert "Could not write '" in msg and file.strip("/.") in msg and "No space left on device" in msg
    assert "free on its file system" in msg and "--resume" in msg
    _check_resumable(run)
    before = (run / "search" / "episodes.jsonl").read_bytes() if (run / "search").exists() else b""

    fault.free()
    res = runner.invoke(app, ["prune", cfg, "--resume"])
    assert res.exit_code == 0, (res.output, res.exception)
    _check_finished(run, before)


def _cli(tmp_path, *args, fault=None, barrier=None) -> subprocess.Popen:
    """The real entry point in a new process, running this checkout (and tests/fault_injection.py)."""
    paths = [str(Path(autostruct.__file__).parents[1]), str(Path(__file__).parents[1])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    env.pop(ENV, None)
    if fault is not None:
        env[ENV] = json.dumps(fault)
    if barrier is not None:
        env["AUTOSTRUCT_TEST_BARRIER"] = barrier
    return subprocess.Popen([sys.executable, "-c", "import fault_injection; fault_injection.main()", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)


def test_full_disk_through_the_real_entry_point_prints_no_traceback(tmp_path):
    cfg, run = _config(tmp_path), tmp_path / "run"
    proc = _cli(tmp_path, "prune", cfg, fault={"file": "checkpoint.pt", "nth": 3, "at_byte": 0})
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    assert "checkpoint.pt" in err and "No space left on device" in err
    assert "Traceback" not in err and "Exception" not in err, err  # nor one from TensorBoard's writer thread
    _check_resumable(run)
    before = (run / "search" / "episodes.jsonl").read_bytes()
    res = runner.invoke(app, ["prune", cfg, "--resume"])
    assert res.exit_code == 0, res.output
    _check_finished(run, before)


def test_killed_while_writing_results_json_resumes_without_redoing_tasks(tmp_path):
    cfg, run = _config(tmp_path), tmp_path / "run"
    proc = _cli(tmp_path, "prune", cfg, fault={"file": "results.json", "at_byte": 50, "then": "kill"})
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -9, err
    assert not (run / "results.json").exists()  # never a half-written one
    (partial,) = run.glob(".results.json.*.tmp")
    assert partial.stat().st_size == 50
    before = (run / "search" / "episodes.jsonl").read_bytes()
    model = run / "tasks" / TASK / "model.pt"
    stamp = model.stat().st_mtime_ns
    res = runner.invoke(app, ["prune", cfg, "--resume"])
    assert res.exit_code == 0, res.output
    _check_finished(run, before)
    assert model.stat().st_mtime_ns == stamp, "a finished task was done again"
    assert not list(run.rglob(".*.tmp"))


def _cache_base_model(config: str) -> None:
    from autostruct.config import PruneConfig, load_yaml
    from autostruct.mtacp.run import prepare_bases
    from autostruct.mtacp.tasks import expand_tasks

    cfg = load_yaml(PruneConfig, Path(config))
    keys, _ = expand_tasks(cfg)
    prepare_bases(cfg, Path(config).parent / "warm", keys, progress=False)


def test_two_runs_started_together_on_one_folder(tmp_path):
    # Both processes wait after their imports until both are there, so they reach the run folder together.
    cfg, run = _config(tmp_path), tmp_path / "run"
    _cache_base_model(cfg)  # the race is the folder's, not the base model's cache entry
    (tmp_path / "barrier").mkdir()
    procs = [_cli(tmp_path, "prune", cfg, barrier=f"{tmp_path / 'barrier'}:2") for _ in range(2)]
    done = [(p, *p.communicate(timeout=300)) for p in procs]
    codes = sorted(p.returncode for p, _, _ in done)
    assert codes == [0, 2], [err for _, _, err in done]
    (winner,) = [p for p, _, _ in done if p.returncode == 0]
    (err,) = [err for p, _, err in done if p.returncode == 2]
    assert f"is in use by another autostruct run (process {winner.pid} holds it)" in " ".join(err.split())
    assert "Traceback" not in err
    _check_finished(run, b"")


def test_truncated_cache_entries_are_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path / "cache"))
    res = runner.invoke(app, ["prune", _config(tmp_path, out="first")])
    assert res.exit_code == 0, res.output
    (model,) = (tmp_path / "cache" / "models").glob("resnet20-digits-*.pt")
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])  # a copy or a write cut short
    (entry,) = (tmp_path / "cache" / "data" / "prepared").iterdir()
    (entry / "train_x.npy").write_bytes((entry / "train_x.npy").read_bytes()[:100])
    res = runner.invoke(app, ["prune", _config(tmp_path, out="second")])
    assert res.exit_code == 0, res.output
    assert torch.load(model, weights_only=True)["format"]  # trained and written again, whole
    _check_finished(tmp_path / "second", b"")
