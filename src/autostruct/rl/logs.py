"""The files of one run folder: the append-only episode log and the metrics streams (JSONL + TensorBoard).

``episodes.jsonl`` is the record of what the search found. Each finished episode is one line, written with
one unbuffered ``write`` (so a killed process keeps it), and its ``episode_index`` equals its line number. The
log is fsynced at most every :data:`SYNC_EVERY_S` seconds and always before a checkpoint is written (so after a
machine crash it never trails the checkpoint): an fsync per line cost more than a toy episode. A line cut short
by a crash is dropped when the log is reopened (that episode counts as never finished), so a resumed run
continues at the next index: no gap, no duplicate. A full disk never leaves a partial line: the failed append
is cut back (:func:`autostruct.utils.io.append_line`) and the run stops with a :class:`~autostruct.utils.io.DiskFullError`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from autostruct.errors import AutostructError
from autostruct.rl.trajectory import EpisodeRecord
from autostruct.utils.io import append_line, reporting_disk_full, write_text_atomic

log = logging.getLogger("autostruct.rl")

#: Longest time an episode line waits for its fsync (it reaches the page cache at once).
SYNC_EVERY_S = 1.0


def json_default(obj: Any) -> Any:
    """Make NumPy/torch scalars and arrays JSON-able; anything else becomes its ``str``."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def open_jsonl(path: str | Path) -> Any:
    """``path`` opened for :func:`append_jsonl` (binary, unbuffered: a failed write leaves nothing buffered)."""
    return open(path, "ab", buffering=0)  # noqa: SIM115 - the caller keeps it open for the whole run


def append_jsonl(fh: Any, obj: dict[str, Any], fsync: bool = True) -> None:
    """One JSON line, whole or not at all, to a file from :func:`open_jsonl`."""
    append_line(fh, (json.dumps(obj, default=json_default) + "\n").encode(), fsync)


def complete_lines(path: Path) -> list[bytes]:
    """The lines of a JSONL file, after cutting off a last line that a killed writer left unfinished."""
    if not path.exists():
        return []
    data = path.read_bytes()
    *lines, tail = data.split(b"\n")
    if tail:
        log.warning("%s: dropping a half-written last line (%d bytes)", path, len(tail))
        with reporting_disk_full(path), open(path, "r+b") as fh:
            fh.truncate(len(data) - len(tail))
    return lines


def read_episodes(path: str | Path) -> list[EpisodeRecord]:
    """The complete episodes of a run's ``episodes.jsonl``, read only (a half-written last line is skipped)."""
    lines = Path(path).read_bytes().split(b"\n")[:-1]
    return [EpisodeRecord.from_json(json.loads(line)) for line in lines if line.strip()]


class EpisodeLog:
    """Append-only ``episodes.jsonl``; :attr:`records` holds every logged episode (read back on resume)."""

    def __init__(self, path: str | Path, fsync: bool = True, sync_every_s: float = SYNC_EVERY_S) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.sync_every_s = sync_every_s
        self.records: list[EpisodeRecord] = self._read_and_repair()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open_jsonl(self.path)
        self._synced_at = time.monotonic()
        self._dirty = False

    @property
    def count(self) -> int:
        return len(self.records)

    def _read_and_repair(self) -> list[EpisodeRecord]:
        records = []
        # A line cut short by a kill is an episode that was never logged.
        for n, line in enumerate(complete_lines(self.path)):
            try:
                rec = EpisodeRecord.from_json(json.loads(line))
            except (ValueError, TypeError, KeyError) as exc:
                raise AutostructError(
                    f"Episode log '{self.path}' line {n + 1} is not a valid episode record ({exc}). The log is "
                    f"append-only: restore it, or start a new run in an empty run directory."
                ) from None
            if rec.episode_index != n:
                raise AutostructError(
                    f"Episode log '{self.path}' line {n + 1} holds episode {rec.episode_index}, expected {n}: the "
                    f"log was edited. Restore it, or start a new run in an empty run directory."
                )
            records.append(rec)
        return records

    def append(self, record: EpisodeRecord) -> None:
        if record.episode_index != self.count:
            raise ValueError(f"episode_index {record.episode_index} != next index {self.count}")
        append_jsonl(self._fh, record.to_json(), fsync=False)
        self.records.append(record)
        self._dirty = True
        if time.monotonic() - self._synced_at >= self.sync_every_s:
            self.sync()

    def sync(self) -> None:
        """fsync what was appended since the last sync (before a checkpoint, so the log never trails it)."""
        if self.fsync and self._dirty:
            with reporting_disk_full(self.path):
                os.fsync(self._fh.fileno())
        self._dirty, self._synced_at = False, time.monotonic()

    def close(self) -> None:
        try:
            self.sync()
        finally:
            self._fh.close()


class MetricsWriter:
    """Learner metrics to ``metrics.jsonl`` (one object per update) and TensorBoard scalars under ``tb/``.

    TensorBoard tags are grouped as CleanRL does: ``losses/*``, ``rewards/*``, ``charts/*``.
    """

    def __init__(self, run_dir: Path, tensorboard: bool = True, purge_step: int | None = None) -> None:
        path = run_dir / "metrics.jsonl"
        if purge_step is not None and path.exists():
            # A resumed run redoes the updates after its checkpoint: drop their old lines so steps stay unique.
            keep = [line for line in path.read_text().splitlines(keepends=True)
                    if line.endswith("\n") and json.loads(line).get("update", 0) < purge_step]
            write_text_atomic(path, "".join(keep))
        self._fh = open_jsonl(path)
        self._tb = None
        # TensorBoard writes from its own thread and raises a failed write at the next call: a full disk is
        # reported there, naming the folder.
        self._tb_dir = run_dir / "tb"
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events a killed run wrote after its last checkpoint, so curves do not fork.
            with reporting_disk_full(self._tb_dir):
                self._tb = SummaryWriter(str(self._tb_dir), purge_step=purge_step)

    @staticmethod
    def tag(key: str) -> str:
        if "/" in key:
            return key
        if "loss" in key or key in ("entropy", "grad_norm"):
            return f"losses/{key}"
        return f"charts/{key}"

    def log(self, step: int, scalars: dict[str, float]) -> None:
        append_jsonl(self._fh, {"update": step, **scalars}, fsync=False)
        if self._tb is not None:
            with reporting_disk_full(self._tb_dir):
                for k, v in scalars.items():
                    if isinstance(v, int | float) and np.isfinite(v):
                        self._tb.add_scalar(self.tag(k), v, step)

    def text(self, tag: str, text: str) -> None:
        if self._tb is not None:
            with reporting_disk_full(self._tb_dir):
                self._tb.add_text(tag, text)

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            with reporting_disk_full(self._tb_dir):
                self._tb.close()
