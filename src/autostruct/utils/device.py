"""Resolve the ``device`` option that threads through training, evaluation and every search."""

from __future__ import annotations

import torch

from autostruct.errors import AutostructError


def resolve_device(device: str | torch.device | None = "cpu") -> torch.device:
    """Turn ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` (cuda when present) into a :class:`torch.device`."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise AutostructError(f"Unknown device '{device}'. Use 'cpu', 'cuda', 'cuda:N' or 'auto'.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise AutostructError(f"Device '{device}' was asked for but CUDA is not available here. Use --device cpu.")
    return dev
