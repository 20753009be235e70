"""Exclusive locks between processes: ``fcntl.flock`` on a lock file.

The operating system releases a ``flock`` when its holder exits, however it exits, so a killed process never
leaves a stale lock behind; the lock file itself stays (an empty file holding the last holder's process id).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from autostruct.utils.io import reporting_disk_full

log = logging.getLogger("autostruct")


def try_lock(path: Path) -> int | None:
    """Lock ``path`` (created if missing) and return its open descriptor; None when another process holds it."""
    return _lock(path, blocking=False)


def _lock(path: Path, blocking: bool) -> int | None:
    while True:
        with reporting_disk_full(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        # A holder that removes its lock file (a refused run cleaning up) may do so between our open and flock:
        # then we hold a lock on a file nobody else can see, so lock the file now at that path instead.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            with contextlib.suppress(OSError):  # the holder's id is for messages only; a full disk may refuse it
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def holder(path: Path, wait_s: float = 0.2) -> int | None:
    """The process id the holder of ``path`` wrote; waits up to ``wait_s`` for a holder that has just locked it."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)


@contextlib.contextmanager
def waiting_lock(path: Path, what: str) -> Iterator[None]:
    """Hold the lock at ``path`` for the block, waiting (and saying so) while another process holds it."""
    fd = _lock(path, blocking=False)
    if fd is None:
        pid = holder(path)
        log.warning("waiting for %s to finish %s", f"process {pid}" if pid else "another process", what)
        fd = _lock(path, blocking=True)
    assert fd is not None
    try:
        yield
    finally:
        os.close(fd)
