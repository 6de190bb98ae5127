"""Handing freed heap memory back to the operating system."""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None


def release_free_heap() -> bool:
    """Return the C heap's free pages to the OS (glibc's `malloc_trim`): whether any were (never without glibc).

    Loading a snapshot, or the ingest before it, frees many megabytes of short-lived buffers (tokeniser
    output, model activations, Chroma rows) that glibc keeps mapped in its arenas, so a replica's RSS
    stays at its high-water mark: 340-360 MB after the seeds' start-up ingest, 270-280 MB with this.
    """
    trim = _malloc_trim()
    return trim is not None and trim(0) == 1
