"""Prepared datasets shared between processes: memory-mapped ``.npy`` files under the data cache.

A search loads the same datasets in its main process and again in every actor process. Instead of each
process holding its own normalized ``float32`` copy, :func:`~autostruct.data.load_dataset` writes the prepared
splits once to ``<data cache>/prepared/<key>/`` and every process maps those files: the operating system keeps
one copy of the pages for all of them (``mmap`` copy-on-write, so a process that writes into a tensor gets a
private copy of the pages it touched and never changes the files).

The key covers everything the splits depend on: the dataset, the size and modification time of the files its
reader reads (a reader declares them with ``register_dataset(..., sources=...)``; without that its datasets are
not stored), and the request (root, ``val_size``, seed, classes, options), plus :data:`STORE_FORMAT`, raised
whenever :func:`~autostruct.data.load_dataset` prepares data differently. Entries are written atomically
(a temporary folder renamed into place); the least recently used ones are deleted when the store grows past
:data:`MAX_STORE_BYTES`. Set ``AUTOSTRUCT_SHARED_DATA=0`` to keep every load private and in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autostruct.data.download import data_cache_dir
from autostruct.data.types import Dataset, Split

log = logging.getLogger(__name__)

#: Raise when load_dataset prepares splits differently: older entries then stop matching any key.
STORE_FORMAT = 1
ENV_SHARED = "AUTOSTRUCT_SHARED_DATA"
#: The store deletes its least recently used entries beyond this size (a full Fashion-MNIST entry is ~220 MB).
MAX_STORE_BYTES = 4 * 1024**3
#: A temporary folder this old belongs to a writer that died.
_STALE_TMP_S = 3600
_SPLITS = ("train", "val", "test")


def store_dir() -> Path:
    """``<data cache>/prepared``: one folder per prepared dataset."""
    return data_cache_dir() / "prepared"


def shared_enabled() -> bool:
    """False when ``$AUTOSTRUCT_SHARED_DATA`` is ``0`` / ``false`` / ``no`` / ``off``."""
    return os.environ.get(ENV_SHARED, "1").strip().lower() not in ("0", "false", "no", "off")


def entry_key(name: str, sources: Sequence[str | os.PathLike[str]], request: Mapping[str, Any]) -> str | None:
    """The store key of ``request`` for dataset ``name`` read from ``sources``; None if a source is missing."""
    stamps = []
    for src in sources:
        try:
            st = os.stat(src)
        except OSError:
            return None
        stamps.append((str(Path(src).resolve()), st.st_size, st.st_mtime_ns))
    blob = json.dumps(
        {"format": STORE_FORMAT, "name": name, "sources": sorted(stamps), "request": request},
        sort_keys=True, default=repr,
    )
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40]
    return f"{slug}-{hashlib.sha256(blob.encode()).hexdigest()[:20]}"


def load_entry(key: str) -> tuple[Dataset, dict[str, Any]] | None:
    """The stored dataset (tensors mapped from the files) and its meta, or None if there is no usable entry."""
    folder = store_dir() / key
    try:
        meta = json.loads((folder / "meta.json").read_text())
        splits = {}
        for split in _SPLITS:
            # mmap_mode "c": pages are shared until written; a write stays private to the writing process.
            x = torch.from_numpy(np.load(folder / f"{split}_x.npy", mmap_mode="c"))
            y = torch.from_numpy(np.load(folder / f"{split}_y.npy", mmap_mode="c"))
            splits[split] = Split(x, y)
        d = meta["dataset"]
        dataset = Dataset(
            name=d["name"],
            classes=tuple(d["classes"]) if d["classes"] is not None else None,
            num_classes=d["num_classes"],
            in_channels=d["in_channels"],
            image_size=d["image_size"],
            dataset_id=d["dataset_id"],
            class_names=tuple(d["class_names"]),
            mean=tuple(d["mean"]),
            std=tuple(d["std"]),
            **splits,
        )
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged entry is rebuilt, never fatal
        log.debug("prepared dataset %s is unreadable (%s); preparing it again", folder, exc)
        shutil.rmtree(folder, ignore_errors=True)
        return None
    if meta.get("format") != STORE_FORMAT:
        return None
    with contextlib.suppress(OSError):
        os.utime(folder / "meta.json")  # recency for eviction
    return dataset, meta


def save_entry(key: str, dataset: Dataset, extra: Mapping[str, Any]) -> Dataset:
    """Write ``dataset`` under ``key`` (atomically) and return it mapped from the files.

    When the store cannot be written (read-only or full disk) the in-memory ``dataset`` is returned as it is.
    """
    root = store_dir()
    folder = root / key
    tmp = root / f".{key}.{os.getpid()}.tmp"
    try:
        if not folder.exists():
            tmp.mkdir(parents=True, exist_ok=True)
            for split in _SPLITS:
                s = getattr(dataset, split)
                np.save(tmp / f"{split}_x.npy", s.x.contiguous().numpy())
                np.save(tmp / f"{split}_y.npy", s.y.contiguous().numpy())
            meta = {"format": STORE_FORMAT, "key": key, "created": time.time(), **extra,
                    "dataset": _dataset_meta(dataset)}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            try:
                os.rename(tmp, folder)
            except OSError:
                if not folder.exists():
                    raise
                # Another process stored the same key first: its files are identical, keep them.
            _evict(root, keep=key)
    except OSError as exc:
        log.debug("could not store prepared dataset %s (%s); keeping it in memory", key, exc)
        return dataset
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    hit = load_entry(key)
    return hit[0] if hit is not None else dataset


def _dataset_meta(d: Dataset) -> dict[str, Any]:
    return {
        "name": d.name,
        "classes": list(d.classes) if d.classes is not None else None,
        "num_classes": d.num_classes,
        "in_channels": d.in_channels,
        "image_size": d.image_size,
        "dataset_id": d.dataset_id,
        "class_names": list(d.class_names),
        "mean": list(d.mean),
        "std": list(d.std),
        "sizes": {split: len(getattr(d, split)) for split in _SPLITS},
    }


def _evict(root: Path, keep: str, limit: int = MAX_STORE_BYTES) -> None:
    """Delete the least recently used entries until the store is under ``limit`` (never ``keep``)."""
    now = time.time()
    entries = []
    for folder in root.iterdir():
        try:
            if folder.name.startswith("."):
                if now - folder.stat().st_mtime > _STALE_TMP_S:
                    shutil.rmtree(folder, ignore_errors=True)
                continue
            used = (folder / "meta.json").stat().st_mtime
            size = sum(f.stat().st_size for f in folder.iterdir())
        except OSError:
            continue
        entries.append((used, size, folder))
    total = sum(size for _, size, _ in entries)
    # Processes that still map a deleted entry keep reading it: the pages stay until they unmap.
    for _, size, folder in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        if folder.name != keep:
            shutil.rmtree(folder, ignore_errors=True)
            total -= size
