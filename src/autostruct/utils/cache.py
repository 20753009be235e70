"""Where autostruct caches trained models, supernets, measured tables and downloaded data, and how concurrent
runs share those entries."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from autostruct.utils.locks import waiting_lock


def cache_root() -> Path:
    """``$AUTOSTRUCT_CACHE`` if set, else ``~/.cache/autostruct``; each kind of artefact has a subfolder."""
    env = os.environ.get("AUTOSTRUCT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "autostruct"


def entry_lock(path: Path | None, what: str) -> contextlib.AbstractContextManager[None]:
    """Hold the lock of the cache entry ``path`` (None: no lock) while checking for it and making it.

    Runs that need the same entry at once make it once: the first trains or measures it and writes it
    atomically, the others wait (saying for ``what``) and then read it. The lock files live in
    ``<cache>/locks/``, out of the entries' folders.
    """
    if path is None:
        return contextlib.nullcontext()
    digest = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:8]
    return waiting_lock(cache_root() / "locks" / f"{Path(path).name}-{digest}.lock", what)
