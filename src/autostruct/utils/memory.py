"""Give freed heap memory back to the operating system (glibc's ``malloc_trim``; a no-op elsewhere).

glibc keeps memory that a process freed in its heap for later allocations. A pruning episode allocates and frees
a few hundred MB of activations (scoring 1,000 images at once), in blocks small enough to land in the heap, so a
long-running actor process keeps ~0.5 GB it is not using; ``malloc_trim(0)`` returns those pages. Calling it once
per episode costs a few percent of CPU (the pages are faulted in again by the next episode).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def release_free_memory() -> bool:
    """Return the heap's free pages to the OS; True if the C library could (glibc), False where unsupported."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True
