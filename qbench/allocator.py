"""Keeping freed memory in the process during training loops (glibc's malloc).

glibc serves every block above its mmap threshold (128 KiB, raised dynamically to 32 MiB at
most) with mmap and gives it back with munmap when freed. A training step frees and allocates
again blocks far larger than that: AlexNet's gradients (228 MB, released by
``zero_grad(set_to_none=True)``) and the classifier's activations and their gradients. So every
step maps fresh pages, and the kernel faults each one in and zeroes it. Measured on the 2-core
AMD EPYC VM (AlexNet at 64x64, batch 32): 55,000 minor page faults per step, and a step took
301-314 ms against 231-239 ms with the blocks kept in the heap (alternating runs of 15 steps).
The arithmetic is the same either way; only the page faults go.

Inside :func:`retained_heap` large blocks come from the heap and stay there once freed, so the
next step reuses them; on leaving, the thresholds return to 128 KiB and the heap is trimmed, so
what follows (conversion, a bench in this process) runs under the usual policy. Elsewhere than
glibc (macOS, musl) it does nothing. Benchmarks never run inside it: a deployed model runs under
the allocator's default policy, and that is what qbench measures.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import Iterator
from functools import cache

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
RETAIN_BYTES = 1 << 30  # blocks up to 1 GiB from the heap, and no trimming below 1 GiB of free top
DEFAULT_BYTES = 128 * 1024  # glibc's initial mmap and trim thresholds


@cache
def _glibc():
    """glibc's C library when this process runs on it (mallopt and malloc_trim), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (only glibc has it)
        libc.mallopt, libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


@contextlib.contextmanager
def retained_heap() -> Iterator[bool]:
    """Keep large freed blocks in the heap for the duration (True), or do nothing (False: not
    glibc, or glibc refused the settings)."""
    libc = _glibc()
    if libc is None or not (
        libc.mallopt(M_MMAP_THRESHOLD, RETAIN_BYTES) and libc.mallopt(M_TRIM_THRESHOLD, RETAIN_BYTES)
    ):
        yield False
        return
    try:
        yield True
    finally:
        libc.mallopt(M_MMAP_THRESHOLD, DEFAULT_BYTES)
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_BYTES)
        libc.malloc_trim(0)
