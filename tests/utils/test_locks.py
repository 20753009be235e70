"""One process per run folder and per cache entry: flock-based, released by the OS when the holder dies."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import pytest
from pydantic import BaseModel

from autostruct.errors import AutostructError
from autostruct.utils.cache import entry_lock
from autostruct.utils.runs import LOCK_FILE, prepare_run_dir, run_folder_lock


class _Cfg(BaseModel):
    name: str = "race"


def _start_run(out, resume=False, overwrite=False) -> str:
    """What run_search does before preflight and after it: the lock, the dry run, the folder."""
    try:
        with run_folder_lock(out):
            kw = dict(output_dir=out, run_format="t", resumable=(), resume=resume, overwrite=overwrite)
            prepare_run_dir(_Cfg(), dry_run=True, **kw)
            time.sleep(0.05)  # the preflight: the window in which an unlocked second run passed the dry run too
            prepare_run_dir(_Cfg(), **kw)
            (out / "search").mkdir(exist_ok=True)
            return "ran"
    except AutostructError as exc:
        return str(exc)


def _racer(out, barrier, results):
    barrier.wait()
    results.put(_start_run(out))


def test_runs_started_together_on_one_folder_one_wins(tmp_path):
    ctx = mp.get_context("fork")
    rounds, racers = 30, 3
    for r in range(rounds):
        out = tmp_path / f"run{r}"
        barrier, results = ctx.Barrier(racers), ctx.Queue()
        procs = [ctx.Process(target=_racer, args=(out, barrier, results)) for _ in range(racers)]
        for p in procs:
            p.start()
        outcomes = sorted(results.get(timeout=60) for _ in procs)
        for p in procs:
            p.join(timeout=60)
        assert outcomes.count("ran") == 1, (r, outcomes)
        for refused in (o for o in outcomes if o != "ran"):
            assert "is in use by another autostruct run (process" in refused or "already holds a run" in refused


def test_second_run_is_told_which_process_holds_the_folder(tmp_path):
    out = tmp_path / "run"
    busy = rf"'{out}' is in use by another autostruct run \(process {os.getpid()} holds it\).*--resume"
    with run_folder_lock(out), pytest.raises(AutostructError, match=busy), run_folder_lock(out):
        pass
    with run_folder_lock(out):  # released on exit
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    out = tmp_path / "run"
    code = ("import sys, time; from autostruct.utils.runs import run_folder_lock\n"
            f"with run_folder_lock({str(out)!r}):\n    print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(AutostructError, match=f"process {proc.pid}"), run_folder_lock(out):
        pass
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with run_folder_lock(out):
        pass


def test_a_refused_start_leaves_no_folder_but_a_started_run_keeps_its_files(tmp_path):
    out = tmp_path / "new" / "run"
    with pytest.raises(RuntimeError), run_folder_lock(out):
        assert (out / LOCK_FILE).is_file()
        raise RuntimeError("preflight refused the config")
    assert not (tmp_path / "new").exists()
    with pytest.raises(RuntimeError), run_folder_lock(out):
        (out / "run.json").write_text("{}")
        raise RuntimeError("disk full later")
    assert (out / "run.json").is_file()


def test_overwrite_keeps_the_lock_and_resume_removes_unfinished_writes(tmp_path):
    out = tmp_path / "run"
    assert _start_run(out) == "ran"
    assert "already holds a run" in _start_run(out)
    (out / "search" / ".results.json.x1y2.tmp").write_text("half")
    with run_folder_lock(out):
        prepare_run_dir(_Cfg(), output_dir=out, run_format="t", resumable=(), resume=True, overwrite=False)
    assert not (out / "search" / ".results.json.x1y2.tmp").exists() and (out / "search").is_dir()
    assert _start_run(out, overwrite=True) == "ran"
    assert sorted(p.name for p in out.iterdir()) == sorted([LOCK_FILE, "config.yaml", "run.json", "search"])


def _make_entry(path, log, barrier):
    barrier.wait()
    with entry_lock(path, "making the test entry"):
        if not path.exists():
            with open(log, "a") as fh:
                fh.write(f"{os.getpid()}\n")
            time.sleep(0.3)  # training
            path.write_text("made")


def test_concurrent_runs_make_a_cache_entry_once(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path / "cache"))
    ctx = mp.get_context("fork")
    path, log = tmp_path / "cache" / "models" / "m.pt", tmp_path / "made-by"
    path.parent.mkdir(parents=True)
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_make_entry, args=(path, log, barrier)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(log.read_text().split()) == 1 and path.read_text() == "made"
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]  # the lock lives in <cache>/locks
