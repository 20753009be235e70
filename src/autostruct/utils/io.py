"""File writes that fail cleanly: atomic replaces, whole-line appends, and a full disk reported as a user error.

A crash or Ctrl-C never leaves a half-written file behind: a file is written to a temporary name and renamed
into place, and an appended line is either all there or cut back. When the file system is full (or the user's
quota spent), every write here raises :class:`DiskFullError`, which names the file and the space left; what was
written before stays valid, so the command continues with ``--resume`` once space is freed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from autostruct.errors import AutostructError

#: What the operating system says when a write finds no room: the file system is full, or the quota is spent.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFullError(AutostructError):
    """A write found its file system full; the message names the file, the space left and how to go on."""


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def _free_bytes(path: Path) -> int | None:
    for folder in (path, *path.parents):  # the file itself may not exist yet
        with contextlib.suppress(OSError):
            return shutil.disk_usage(folder).free
    return None


def _size(n: int) -> str:
    value, unit = float(n), "bytes"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"


def disk_full_error(path: str | os.PathLike[str] | None, exc: OSError | None = None) -> DiskFullError:
    """The one paragraph a user reads when ``path`` could not be written for lack of space."""
    where = Path(path) if path is not None else None
    free = _free_bytes(where.parent) if where is not None else None
    what = f"Could not write '{where}'" if where is not None else "Could not write a file"
    reason = exc.strerror if exc is not None and exc.strerror else "No space left on device"
    left = f"; {_size(free)} free on its file system" if free is not None else ""
    return DiskFullError(
        f"{what}: {reason}{left}. Everything written before is kept and valid (a run's episode log and last "
        "checkpoint included). Free some space (or point output_dir or $AUTOSTRUCT_CACHE to another disk) and run "
        "the same command again; a search continues where it stopped with --resume."
    )


@contextlib.contextmanager
def reporting_disk_full(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn a full disk met inside the block into a :class:`DiskFullError` naming ``path``; other errors pass."""
    try:
        yield
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(path, exc) from None
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    with reporting_disk_full(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            os.replace(tmp_path, path)
        finally:
            if tmp_path.exists():
                tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


class _WriteErrors:
    """A binary file that remembers the error of a failed write: torch's zip writer replaces it by its own
    ``RuntimeError`` ("unexpected pos ..."), which no longer says that the disk is full."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.fh.flush()


def torch_save_atomic(obj: Any, path: str | os.PathLike[str]) -> Path:
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        writer = _WriteErrors(fh)
        try:
            torch.save(obj, writer)  # type: ignore[arg-type]  # a file-like: anything with write()
        except RuntimeError as exc:
            if writer.error is not None:
                raise writer.error from exc
            raise
    return Path(path)


def append_line(fh: BinaryIO, line: bytes, fsync: bool = True) -> None:
    """Append ``line`` to ``fh`` (opened ``"ab", buffering=0``) whole or not at all.

    A write that fails part-way (a full disk) is cut back to where it started, so the file never holds a partial
    line and a later append cannot glue onto one.
    """
    start = fh.seek(0, os.SEEK_END)
    try:
        written = 0
        while written < len(line):  # an unbuffered write may take only part of the bytes
            written += fh.write(line[written:])
        if fsync:
            os.fsync(fh.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            fh.truncate(start)
        if is_disk_full(exc):
            raise disk_full_error(fh.name, exc) from None  # type: ignore[arg-type]
        raise
