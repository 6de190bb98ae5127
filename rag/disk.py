"""Free disk space under the embedded index: writes are refused before the disk fills.

Embedded Chroma does not survive a full disk gracefully. Its compaction fails, and a later call made while the
disk is still full can hang inside the native layer with the interpreter lock held, freezing the whole process
(no thread runs, SIGTERM is not handled). Nothing in-process bounds such a call, so the guard keeps calls away
from a full disk instead: writes are refused while free space is under the minimum, and after a write failed
for want of space every call is, until space is back. Calls work again on the same client once it is.
"""

from __future__ import annotations

import errno
import re
import shutil
import threading
from pathlib import Path

from rag.errors import InsufficientStorage, StoreUnavailable

# What a full disk says, from the OS, SQLite or Chroma's Rust layer.
_FULL = re.compile(r"no space left|ENOSPC|disk is full|disk quota", re.IGNORECASE)


def server_disk_full(exc: BaseException) -> bool:
    """Whether a Chroma server's error says its disk is full (its disk is not ours to measure)."""
    return bool(_FULL.search(f"{type(exc).__name__}: {exc}"))


# Chroma's compaction failing: a full disk when the disk is nearly full, something else when it is not.
_COMPACTION = re.compile(r"error in compaction|backfill request to compactor|failed to apply logs", re.IGNORECASE)
NEARLY_FULL_MB = 64.0
# After a write failed for want of space, writes resume once this much more is free than at the failure (and
# at least the minimum): someone freed space, rather than Chroma tidying a few temporary files.
RESUME_MB = 32.0


class DiskGuard:
    """Free space under `path`, checked before each write against `min_free_mb`."""

    def __init__(self, path: Path, min_free_mb: float) -> None:
        self.path = path
        self.min_free_mb = min_free_mb
        self._full_at: float | None = None  # free MB when a write failed for want of space; None: not since
        self._lock = threading.Lock()

    def free_mb(self) -> float:
        """Free megabytes on the file system holding `path` (or its nearest existing parent)."""
        probe = self.path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        return shutil.disk_usage(probe).free / 2**20

    def is_full(self, exc: BaseException) -> bool:
        """Whether an error from the store means its disk is full."""
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = f"{type(exc).__name__}: {exc}"
        if _FULL.search(text):
            return True
        return bool(_COMPACTION.search(text)) and self.free_mb() < max(self.min_free_mb, NEARLY_FULL_MB)

    def _need(self, full_at: float | None) -> float:
        """Free MB writes need: the minimum, and after a failure more than then (at most RESUME_MB over the minimum:
        a failure measured while Chroma had just freed its temporary files must not leave writes refused for good)."""
        if full_at is None:
            return self.min_free_mb
        return min(max(self.min_free_mb, full_at + RESUME_MB), self.min_free_mb + RESUME_MB)

    def enough(self) -> bool:
        """Whether there is at least the minimum free (and, after a failure, whether space has come back)."""
        full_at = self._full_at
        if self.free_mb() < self._need(full_at):
            return False
        if full_at is not None:
            with self._lock:
                if self._full_at == full_at:  # not a newer failure recorded meanwhile
                    self._full_at = None
        return True

    @property
    def full(self) -> bool:
        """A write failed for want of space, and space has not come back since."""
        return self._full_at is not None

    def check_write(self) -> None:
        """Raise InsufficientStorage unless a write may go ahead."""
        if not self.enough():
            raise InsufficientStorage(self._message("writes are refused"))

    def check_read(self) -> None:
        """Raise StoreUnavailable while the disk is full after a failed write (a read then can hang the process)."""
        if self.full and not self.enough():
            raise StoreUnavailable(self._message("stored records cannot be read until space is freed"))

    def failed(self) -> InsufficientStorage:
        """Record that a write failed for want of space; the error to raise."""
        with self._lock:
            self._full_at = self.free_mb()
        return InsufficientStorage(self._message("the write failed, and writes are refused"))

    def _message(self, consequence: str) -> str:
        need = self._need(self._full_at)
        return (
            f"the disk holding the index ({self.path}) is full: {self.free_mb():.1f} MB free, and writes need "
            f"{need:.1f} MB (RAG_MIN_FREE_DISK_MB={self.min_free_mb:g}): {consequence}; questions are still "
            "answered. Free some space: writes work again without a restart"
        )
