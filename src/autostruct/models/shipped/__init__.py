"""Base models trained by the project and shipped with the package, so a first run need not train them.

A file here is named by its cache key (:func:`autostruct.models.cache.cache_key`: model, dataset, classes,
width, epochs, seed, hold-out and recipe, hashed), so it is used only by a request with exactly that key; any
other request trains as before. ``benchmarks/train_shipped_models.py`` makes them; ``base_training:
{retrain: true}`` (or ``get_or_train(..., shipped=False)``) trains instead of loading them.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parent


def shipped_model(key: str) -> Path | None:
    """The shipped checkpoint for cache key ``key``, or None when none ships."""
    path = SHIPPED_DIR / f"{key}.pt"
    return path if path.is_file() else None
