"""File writes on a full disk: one DiskFullError naming the file, the old file intact, no partial line."""

from __future__ import annotations

import errno
import json

import pytest
import torch
import typer
from typer.testing import CliRunner

from autostruct.cli.common import user_errors
from autostruct.errors import AutostructError
from autostruct.rl import logs
from autostruct.rl.logs import EpisodeLog, append_jsonl, complete_lines, open_jsonl
from autostruct.rl.trajectory import EpisodeRecord
from autostruct.utils.io import DiskFullError, append_line, torch_save_atomic, write_json_atomic
from fault_injection import install


def _full_after(monkeypatch, file, at_byte=0, nth=1):
    return install({"file": file, "nth": nth, "at_byte": at_byte}, monkeypatch.setattr)


def test_atomic_write_on_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    write_json_atomic(path, {"v": 1})
    _full_after(monkeypatch, "results.json", at_byte=5)
    with pytest.raises(DiskFullError) as err:
        write_json_atomic(path, {"v": 2, "pad": "x" * 100})
    msg = str(err.value)
    assert f"Could not write '{path}'" in msg and "No space left on device" in msg
    assert "free on its file system" in msg and "--resume" in msg
    assert isinstance(err.value, AutostructError)
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # the temporary file is gone


def test_torch_save_on_a_full_disk_is_a_disk_full_error_not_torchs_runtime_error(tmp_path, monkeypatch):
    # torch's zip writer turns the OSError of its file into "unexpected pos ..."; the file's error is kept.
    path = tmp_path / "checkpoint.pt"
    torch_save_atomic({"w": torch.zeros(3)}, path)
    _full_after(monkeypatch, "checkpoint.pt", at_byte=1000)
    with pytest.raises(DiskFullError, match="checkpoint.pt"):
        torch_save_atomic({"w": torch.ones(100_000)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.zeros(3))


def test_a_failed_append_is_cut_back_whole(tmp_path, monkeypatch):
    path = tmp_path / "events.jsonl"
    with open_jsonl(path) as fh:
        append_jsonl(fh, {"n": 0})
    fault = _full_after(monkeypatch, "events.jsonl", at_byte=4)
    fh = open_jsonl(path)
    with pytest.raises(DiskFullError, match="events.jsonl"):
        append_jsonl(fh, {"n": 1, "pad": "x" * 50})
    assert fault.disk_full
    assert path.read_bytes() == b'{"n": 0}\n'  # the 4 bytes that fitted were cut back
    fault.free()  # the next line lands whole after the first
    append_jsonl(fh, {"n": 2})
    fh.close()
    assert [json.loads(line) for line in complete_lines(path)] == [{"n": 0}, {"n": 2}]


def test_append_line_retries_short_writes(tmp_path):
    class Short:
        name = str(tmp_path / "x")

        def __init__(self):
            self.data = b""

        def seek(self, *_):
            return len(self.data)

        def write(self, b):
            self.data += bytes(b[:3])
            return min(3, len(b))

    fh = Short()
    append_line(fh, b"0123456789\n", fsync=False)
    assert fh.data == b"0123456789\n"


def test_a_line_cut_by_a_kill_is_dropped_on_reopen(tmp_path):
    path = tmp_path / "greedy.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2')
    assert complete_lines(path) == [b'{"a": 1}']
    assert path.read_bytes() == b'{"a": 1}\n'  # the next append starts a fresh line
    assert EpisodeLog(tmp_path / "missing.jsonl").count == 0


def test_episode_log_syncs_at_most_every_interval_and_before_a_checkpoint(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(logs.os, "fsync", lambda fd: synced.append(fd))
    log = EpisodeLog(tmp_path / "episodes.jsonl", sync_every_s=3600.0)
    for i in range(5):
        log.append(EpisodeRecord(0, i, [0.5], 1.0, {}, 0, 0.0))
    assert synced == []  # every line written (a killed process keeps it), none fsynced yet
    assert len((tmp_path / "episodes.jsonl").read_bytes().splitlines()) == 5
    log.sync()  # what run_impala does before each checkpoint
    log.sync()  # nothing new: no second fsync
    assert len(synced) == 1
    eager = EpisodeLog(tmp_path / "eager.jsonl", sync_every_s=0.0)
    eager.append(EpisodeRecord(0, 0, [0.5], 1.0, {}, 0, 0.0))
    assert len(synced) == 2
    log.append(EpisodeRecord(0, 5, [0.5], 1.0, {}, 0, 0.0))
    log.close()  # closing syncs what is left
    assert len(synced) == 3
    eager.close()
    assert len(synced) == 3


def test_cli_turns_any_full_disk_into_one_paragraph(tmp_path):
    app = typer.Typer()

    @app.command()
    @user_errors
    def write() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "plot.png"))

    res = CliRunner().invoke(app, [])
    assert res.exit_code == 2, res.output
    assert f"Could not write '{tmp_path / 'plot.png'}'" in res.output and "Traceback" not in res.output
