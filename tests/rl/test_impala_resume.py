"""Kill, resume, fail: the episode log never has a gap or a duplicate, and failing actors are restarted."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from autostruct.config import BackendConfig, RLConfig
from autostruct.errors import AutostructError
from autostruct.rl import ActorFailedError, PolicySpec, run_impala
from autostruct.rl.logs import EpisodeLog
from autostruct.rl.toy_envs import SleepEnv, TargetEnv, fail_once

SRC = Path(__file__).resolve().parents[2] / "src"
FACTORIES = [functools.partial(TargetEnv, i) for i in range(2)]
SPEC = PolicySpec.from_env(FACTORIES[0](), use_lstm=False, hidden_sizes=(32, 32))
RL = RLConfig(actors=2, unroll_length=3, batch_size=2, checkpoint_every=2)

SCRIPT = textwrap.dedent(
    """
    import functools, sys, time
    import torch
    from autostruct.config import BackendConfig, RLConfig
    from autostruct.rl import PolicySpec, run_impala
    from autostruct.rl.toy_envs import SleepEnv

    if __name__ == "__main__":
        torch.set_num_threads(1)
        # 2 ms steps: slow enough that the kill lands mid-run, fast enough for a short test.
        factories = [functools.partial(SleepEnv, i, 0.002, 3) for i in range(2)]
        spec = PolicySpec.from_env(factories[0](), use_lstm=False, hidden_sizes=(32, 32))
        run_impala(factories, spec, rl=RLConfig(actors=2, unroll_length=3, batch_size=2, checkpoint_every=2),
                   backend=BackendConfig(name=sys.argv[2]), total_episodes=int(sys.argv[3]), run_dir=sys.argv[1],
                   resume=True, progress=False, tensorboard=False)
    """
)


def _episode_indices(run_dir: Path) -> list[int]:
    return [json.loads(line)["episode_index"] for line in (run_dir / "episodes.jsonl").read_text().splitlines()]


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_sigkill_then_resume_has_no_gap_or_duplicate(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    run_dir, total = tmp_path / "run", 80
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, str(script), str(run_dir), "local", str(total)], env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        log = run_dir / "episodes.jsonl"
        while time.monotonic() < deadline:
            if (run_dir / "checkpoint.pt").exists() and log.exists() and log.read_text().count("\n") >= 20:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        actors = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)  # the learner only: its actors must notice and exit on their own
        proc.wait(timeout=10)
        killed_at = len(_episode_indices(run_dir))
        assert 0 < killed_at < total
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in actors) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in actors), "actor processes outlived their learner"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # Resume in this process (saves an interpreter start); same factories and settings as the script.
    factories = [functools.partial(SleepEnv, i, 0.002, 3) for i in range(2)]
    spec = PolicySpec.from_env(factories[0](), use_lstm=False, hidden_sizes=(32, 32))
    result = run_impala(factories, spec, rl=RLConfig(actors=2, unroll_length=3, batch_size=2, checkpoint_every=2),
                        backend=BackendConfig(name="local"), total_episodes=total, run_dir=run_dir, resume=True,
                        progress=False, tensorboard=False)
    assert result.resumed_at_episode == killed_at
    assert _episode_indices(run_dir) == list(range(total))
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    resume = [e for e in events if e["event"] == "resume"]
    assert resume and resume[-1]["episode"] >= killed_at and resume[-1]["update"] >= 2


def test_resume_inline_continues_counters(tmp_path):
    kw = dict(rl=RL, backend=BackendConfig(name="inline"), run_dir=tmp_path, progress=False, tensorboard=False)
    first = run_impala(FACTORIES, SPEC, total_episodes=20, **kw)
    assert first.updates > 0
    with pytest.raises(AutostructError, match="already holds a run"):
        run_impala(FACTORIES, SPEC, total_episodes=40, **kw)
    second = run_impala(FACTORIES, SPEC, total_episodes=40, resume=True, **kw)
    assert second.resumed_at_episode == 20 and second.updates > first.updates
    assert [e.episode_index for e in second.episodes] == list(range(40))
    assert second.env_steps > first.env_steps
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # One line per fresh batch, numbered by the learner version after its replayed updates: no gap, no repeat.
    versions = [0] + [m["update"] for m in lines]
    assert all(b - a == 1 + m.get("replay_updates", 0) for a, b, m in zip(versions, versions[1:], lines, strict=False))
    assert versions[-1] == second.updates
    # Resuming a finished run does nothing but return its result.
    again = run_impala(FACTORIES, SPEC, total_episodes=40, resume=True, **kw)
    assert len(again.episodes) == 40 and again.updates == second.updates
    other = PolicySpec.from_env(FACTORIES[0](), use_lstm=True, hidden_sizes=(32, 32))
    with pytest.raises(AutostructError, match="Cannot resume"):
        run_impala(FACTORIES, other, total_episodes=50, resume=True, **kw)


def test_half_written_last_line_is_dropped(tmp_path):
    kw = dict(rl=RL, backend=BackendConfig(name="inline"), run_dir=tmp_path, progress=False, tensorboard=False)
    run_impala(FACTORIES, SPEC, total_episodes=10, **kw)
    with open(tmp_path / "episodes.jsonl", "a") as fh:
        fh.write('{"task_id": 0, "episode_index": 10, "acti')  # killed inside a write
    assert EpisodeLog(tmp_path / "episodes.jsonl").count == 10
    result = run_impala(FACTORIES, SPEC, total_episodes=15, resume=True, **kw)
    assert _episode_indices(tmp_path) == list(range(15)) and len(result.episodes) == 15


@pytest.mark.parametrize("backend", ["inline", pytest.param("local", marks=pytest.mark.slow)])
def test_failing_actor_is_restarted(tmp_path, backend):
    factories = [functools.partial(fail_once, FACTORIES[0], str(tmp_path / "failed-once")), FACTORIES[1]]
    # One actor owns both tasks, so the run can only finish if its replacement works.
    rl = RLConfig(actors=1, unroll_length=3, batch_size=2, checkpoint_every=2)
    result = run_impala(factories, SPEC, rl=rl, backend=BackendConfig(name=backend, max_restarts=2),
                        total_episodes=30, run_dir=tmp_path / "run", progress=False, tensorboard=False)
    assert result.actor_restarts == {0: 1}
    assert [e.episode_index for e in result.episodes] == list(range(30))
    assert {e.task_id for e in result.episodes} == {0, 1}
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    failures = [e for e in events if e["event"] == "actor_failure"]
    assert len(failures) == 1 and "deliberate failure" in failures[0]["error"]


def test_actor_that_keeps_failing_stops_the_run(tmp_path):
    def broken():
        raise RuntimeError("env cannot be built")

    with pytest.raises(ActorFailedError, match="env cannot be built"):
        run_impala([broken], SPEC, rl=RLConfig(actors=1), backend=BackendConfig(name="inline", max_restarts=1),
                   total_episodes=5, run_dir=tmp_path, progress=False, tensorboard=False)


def test_sigint_checkpoints_then_raises(tmp_path):
    calls = []

    def interrupt(ep):
        calls.append(ep.episode_index)
        if len(calls) == 12:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        run_impala(FACTORIES, SPEC, rl=RL, backend=BackendConfig(name="inline"), total_episodes=100,
                   run_dir=tmp_path, on_episode=interrupt, progress=False, tensorboard=False)
    assert (tmp_path / "checkpoint.pt").exists()
    n = len(_episode_indices(tmp_path))
    assert 12 <= n < 100
    result = run_impala(FACTORIES, SPEC, rl=RL, backend=BackendConfig(name="inline"), total_episodes=30,
                        run_dir=tmp_path, resume=True, progress=False, tensorboard=False)
    assert _episode_indices(tmp_path) == list(range(max(30, n)))
    assert result.resumed_at_episode == n


def test_sigterm_checkpoints_then_exits_143(tmp_path):
    before = signal.getsignal(signal.SIGTERM)  # not SIG_DFL if an earlier test started Ray in this process

    def terminate(ep):
        if ep.episode_index == 11:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(SystemExit) as exc:
        run_impala(FACTORIES, SPEC, rl=RL, backend=BackendConfig(name="inline"), total_episodes=100,
                   run_dir=tmp_path, on_episode=terminate, progress=False, tensorboard=False)
    assert exc.value.code == 143 and (tmp_path / "checkpoint.pt").exists()
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored
