"""The disk guard: writes refused under the minimum, and after a failure until space has come back."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from rag.disk import RESUME_MB, DiskGuard
from rag.errors import InsufficientStorage, StoreUnavailable


class Measured(DiskGuard):
    def __init__(self, path: Path, min_free_mb: float) -> None:
        super().__init__(path, min_free_mb)
        self.free = 1000.0

    def free_mb(self) -> float:
        return self.free


def test_writes_are_refused_under_the_minimum_and_reads_are_not(tmp_path: Path) -> None:
    guard = Measured(tmp_path, 100)
    guard.check_write()
    guard.free = 99
    with pytest.raises(InsufficientStorage, match="RAG_MIN_FREE_DISK_MB=100"):
        guard.check_write()
    guard.check_read()  # no write failed: reading is safe


def test_after_a_failure_space_must_come_back_but_never_more_than_the_minimum_plus_the_margin(tmp_path: Path) -> None:
    guard = Measured(tmp_path, 100)
    guard.free = 500  # measured after Chroma freed its temporary files
    assert guard.is_full(OSError(errno.ENOSPC, "No space left on device"))
    guard.failed()
    with pytest.raises(StoreUnavailable):
        guard.free = 100 + RESUME_MB - 1
        guard.check_read()
    guard.free = 100 + RESUME_MB  # capped: not 500 + RESUME_MB
    guard.check_read()
    guard.check_write()
    assert not guard.full


def test_a_compaction_error_means_a_full_disk_only_when_the_disk_is_nearly_full(tmp_path: Path) -> None:
    guard = Measured(tmp_path, 100)
    error = RuntimeError("Error in compaction: Failed to apply logs to the metadata segment")
    assert not guard.is_full(error)
    guard.free = 10
    assert guard.is_full(error)
