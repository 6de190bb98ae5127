from __future__ import annotations

import platform
import sys

import numpy as np
import pytest

from rag.memory import release_free_heap


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        return int(next(line for line in status if line.startswith("VmRSS:")).split()[1]) / 1024


@pytest.mark.skipif(sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_heap_goes_back_to_the_system() -> None:
    # 160 MB of 64 KB buffers (below glibc's mmap threshold, so on its heap), all freed but the last, which
    # pins the heap's top: free() alone cannot shrink it, and the pages stay resident until trimmed.
    buffers = [np.ones(8192, dtype=np.float64) for _ in range(2500)]
    last = buffers.pop()
    del buffers
    before = _rss_mb()
    assert release_free_heap()
    assert before - _rss_mb() > 100
    assert last.sum() == 8192
