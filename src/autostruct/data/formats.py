"""Parsers for the on-disk formats the built-in readers use: IDX, CIFAR python batches, image folders.

Parsed arrays are cached per process with :func:`functools.lru_cache`, keyed by the file's path, size and
modification time, so loading the same dataset twice (several tasks, several tests) parses it once. Cached
arrays are read-only: callers index them (which copies) and never write to them.
"""

from __future__ import annotations

import functools
import gzip
import math
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np

from autostruct.errors import AutostructError

# IDX type codes (LeCun's MNIST page): the third magic byte.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff"})


def _file_key(path: str | Path) -> tuple[str, int, int]:
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise AutostructError(f"Cannot read '{path}': {exc.strerror}.") from None
    return str(path.resolve()), st.st_mtime_ns, st.st_size


# ----------------------------------------------------------------------------------------------------- IDX
def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a read-only NumPy array of its declared shape."""
    return _read_idx_cached(*_file_key(path))


@functools.lru_cache(maxsize=16)
def _read_idx_cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise AutostructError(
                f"'{path}' is a damaged gzip file ({exc}). Delete it and fetch the dataset again."
            ) from None
    return parse_idx(raw, source=path)


def parse_idx(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an uncompressed IDX file: magic ``00 00 <type> <ndim>``, big-endian dims, data."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise AutostructError(
            f"'{source}' is not an IDX file (magic bytes {raw[:4].hex() or 'missing'}; expected 0000080N for "
            "unsigned bytes). Point the data root at the original *-idx?-ubyte[.gz] files."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise AutostructError(f"IDX file '{source}' is truncated inside its header.")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    count = math.prod(dims)
    if len(raw) - header != count * dtype.itemsize:
        raise AutostructError(
            f"IDX file '{source}' declares shape {dims} ({count * dtype.itemsize} data bytes) but holds "
            f"{len(raw) - header}; the file is truncated or damaged. Fetch it again."
        )
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims)
    if dtype.itemsize > 1:
        arr = arr.astype(dtype.newbyteorder("="))
    arr.flags.writeable = False
    return arr


# ------------------------------------------------------------------------------------------- CIFAR batches
class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only dicts, lists, bytes and NumPy arrays: a data file can never run code on load."""

    ALLOWED = frozenset(
        {
            ("_codecs", "encode"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
        }
    )

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's signature
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not plain array data")
        return super().find_class(module, name)


def read_pickle_batch(path: str | Path) -> dict[str, object]:
    """Load one CIFAR python batch (a pickled dict) with its keys as ``str``; read-only arrays inside."""
    return _read_pickle_cached(*_file_key(path))


@functools.lru_cache(maxsize=16)
def _read_pickle_cached(path: str, mtime_ns: int, size: int) -> dict[str, object]:
    try:
        with open(path, "rb") as f:
            # latin1 is NumPy's advice for Python 2 pickles (the CIFAR originals); bytes keys stay bytes.
            obj = _ArrayUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise AutostructError(
            f"'{path}' is not a CIFAR python batch ({exc}). Use the 'python version' archive from "
            "https://www.cs.toronto.edu/~kriz/cifar.html, extracted."
        ) from None
    if not isinstance(obj, dict):
        raise AutostructError(
            f"'{path}' is not a CIFAR python batch: it holds a {type(obj).__name__}, not a dict."
        )
    out: dict[str, object] = {}
    for key, value in obj.items():
        key = key.decode("latin1") if isinstance(key, bytes) else str(key)
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
        out[key] = value
    return out


def cifar_arrays(batch: dict[str, object], label_key: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of a CIFAR batch: ``x`` uint8 ``(N, 3, 32, 32)``, ``y`` int64 ``(N,)``."""
    if "data" not in batch or label_key not in batch:
        raise AutostructError(
            f"CIFAR batch '{source}' lacks '{'data' if 'data' not in batch else label_key}' "
            f"(keys: {', '.join(sorted(batch))})."
        )
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if (
        data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3 * 32 * 32
        or data.shape[0] != len(labels)
    ):
        raise AutostructError(
            f"CIFAR batch '{source}' has data {data.dtype}{list(data.shape)} and {len(labels)} labels; "
            "expected uint8 [N, 3072] and N labels."
        )
    return data.reshape(-1, 3, 32, 32), labels


# ----------------------------------------------------------------------------------------- image folders
def scan_class_folders(folder: Path) -> dict[str, list[Path]]:
    """``{class name: sorted image paths}`` for every sub-folder of ``folder`` (sorted by name)."""
    classes: dict[str, list[Path]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        classes[sub.name] = sorted(
            p for p in sub.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
    return classes


def load_images(paths: list[Path], image_size: int) -> np.ndarray:
    """Decode, convert to RGB and resize (bilinear, to a square) every image: uint8 ``(N, 3, S, S)``."""
    key = tuple((str(p), *_file_key(p)[1:]) for p in paths)
    return _load_images_cached(key, image_size)


@functools.lru_cache(maxsize=4)
def _load_images_cached(key: tuple[tuple[str, int, int], ...], image_size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    out = np.empty((len(key), image_size, image_size, 3), dtype=np.uint8)
    for i, (path, _, _) in enumerate(key):
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB").resize((image_size, image_size), Image.Resampling.BILINEAR)
                out[i] = np.asarray(rgb, dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as exc:
            raise AutostructError(f"Cannot read image '{path}': {exc}. Remove or replace the file.") from None
    arr = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    arr.flags.writeable = False
    return arr
