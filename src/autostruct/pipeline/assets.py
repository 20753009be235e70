"""A user's model checkpoint (a ``model.pt`` or the folder holding one), for the pruning search, its preflight and the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from autostruct.errors import AutostructError
from autostruct.models.checkpoint import load_model


def load_any_model(source: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load an autostruct ``model.pt`` (export or cache checkpoint); clear error for anything else."""
    path = Path(source)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise AutostructError(
            f"Checkpoint '{source}' does not exist. Pass a model.pt written by `autostruct export` / `autostruct train`"
            " or a run folder that holds one."
        )
    return load_model(path)
