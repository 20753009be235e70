"""Where autostruct caches trained models, supernets and downloaded data."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$AUTOSTRUCT_CACHE`` if set, else ``~/.cache/autostruct``; each kind of artefact has a subfolder."""
    env = os.environ.get("AUTOSTRUCT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "autostruct"
