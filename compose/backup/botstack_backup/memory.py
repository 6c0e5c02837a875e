"""Keep the process's memory flat however large the database is.

The dump streams through fixed buffers, but the upload hands 8 MiB parts between threads. glibc
raises its mmap threshold after the first such buffer is freed (up to 32 MiB), so later parts come
from per-thread arenas (up to 8 per core), where freed memory can stay: the peak then depends on
how the threads' allocations interleave, not only on what is in flight. A fixed threshold keeps
large buffers in mmap (returned to the kernel when freed) and two arenas are plenty for our few
threads.
"""
from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("botstack_backup")

M_MMAP_THRESHOLD = -3   # glibc's malloc.h
M_ARENA_MAX = -8
MMAP_THRESHOLD = 256 * 1024
ARENA_MAX = 2


def bound_malloc() -> bool:
    """Tune glibc's malloc (no-op elsewhere); True when it took."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_ARENA_MAX, ARENA_MAX) == 1
    if not ok:
        log.debug("mallopt refused the memory settings")
    return ok
