"""Downloading dataset files: mirrors tried in order, MD5-checked, written atomically, with a progress bar.

The mirrors and checksums are arguments, so tests (and users behind a proxy mirror) can point the download at
any ``http://`` or ``file://`` URL.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from autostruct.utils.cache import cache_root
from autostruct.utils.io import atomic_path

CHUNK = 1 << 20


class DownloadError(Exception):
    """No mirror delivered a file with the right checksum; ``failures`` lists what each URL did."""

    def __init__(self, filename: str, failures: list[str]) -> None:
        super().__init__(f"could not download {filename}: " + "; ".join(failures))
        self.filename = filename
        self.failures = failures


def data_cache_dir() -> Path:
    """Where downloaded datasets live: ``$AUTOSTRUCT_CACHE/data``, else ``$XDG_CACHE_HOME/autostruct/data``,
    else ``~/.cache/autostruct/data``."""
    if os.environ.get("AUTOSTRUCT_CACHE"):
        return cache_root() / "data"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "autostruct" / "data"


def md5_of(path: str | Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def download_files(
    files: Mapping[str, str | None],
    dest: str | Path,
    mirrors: Sequence[str],
    *,
    progress: bool = True,
    timeout: float = 30.0,
) -> dict[str, Path]:
    """Fetch each ``{filename: md5}`` into ``dest`` from the first mirror that delivers it intact.

    Files already in ``dest`` with the right checksum are kept. A file is only ever renamed into place after
    its checksum matched (``md5=None`` skips the check), so an interrupted download leaves nothing behind.
    Raises :class:`DownloadError` when every mirror failed for a file.
    """
    dest = Path(dest)
    out: dict[str, Path] = {}
    todo = {}
    for name, md5 in files.items():
        target = dest / name
        if target.is_file() and (md5 is None or md5_of(target) == md5):
            out[name] = target
        else:
            todo[name] = md5
    if not todo:
        return out
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), disable=not progress, transient=False) as bar:
        for name, md5 in todo.items():
            failures = []
            for base in mirrors:
                url = base.rstrip("/") + "/" + name
                task = bar.add_task(f"{name}", total=None)
                try:
                    _fetch(
                        url,
                        dest / name,
                        md5,
                        timeout,
                        advance=lambda n, t=task: bar.advance(t, n),
                        set_total=lambda total, t=task: bar.update(t, total=total),
                    )
                except (OSError, urllib.error.URLError, ValueError, _ChecksumMismatch) as exc:
                    bar.update(task, description=f"{name} (failed: {url})")
                    failures.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
                    continue
                out[name] = dest / name
                break
            else:
                raise DownloadError(name, failures)
    return out


class _ChecksumMismatch(Exception):
    pass


def _fetch(
    url: str,
    target: Path,
    md5: str | None,
    timeout: float,
    *,
    advance: Callable[[int], object],
    set_total: Callable[[int], object],
) -> None:
    """Stream ``url`` into a temp file next to ``target``; rename it into place only if the MD5 matches."""
    h = hashlib.md5(usedforsecurity=False)
    with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_path(target) as tmp:
        length = resp.headers.get("Content-Length")
        if length and length.isdigit():
            set_total(int(length))
        with open(tmp, "wb") as f:
            for chunk in iter(lambda: resp.read(CHUNK), b""):
                f.write(chunk)
                h.update(chunk)
                advance(len(chunk))
        if md5 is not None and h.hexdigest() != md5:
            raise _ChecksumMismatch(f"checksum mismatch (md5 {h.hexdigest()}, expected {md5})")
