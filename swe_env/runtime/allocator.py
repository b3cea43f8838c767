"""glibc's malloc told to give large buffers back to the system when they are freed.

A step may hold buffers of megabytes for a moment: a `view` of a large file brings up to 4 MB through
the files shell base64-encoded, then decoded and escaped; a grading's output and reports are read in
pieces but joined. glibc serves an allocation above its mmap threshold with a mapping of its own,
unmapped when freed; but the threshold is dynamic: every freed mapping raises it to that mapping's
size (up to 32 MB on 64-bit), and from then on buffers of that size come from the arenas. With many
threads (a rollout's workers, the engine's stream readers) allocating in between, the arenas keep the
freed pages: a driver's RSS grew by 60-180 MB over a few hundred episodes with no object kept
(`bench/soak.py --memory`). A fixed threshold (`mallopt(M_MMAP_THRESHOLD, ...)`, which also stops the
dynamic adjustment) keeps every buffer above it out of the arenas.

Applied once per process, by the first engine client (the process that drives containers); a threshold
the user set through glibc's own `MALLOC_MMAP_THRESHOLD_` is left alone, and elsewhere than glibc this
does nothing.
"""

from __future__ import annotations

import ctypes
import os
import threading

MMAP_THRESHOLD = 512 * 1024
"""Bytes above which an allocation gets its own mapping, returned to the system when freed (glibc's
default starts at 128 kB and grows). The shell reads output in 64 kB pieces, well under it."""
_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
_applied: bool | None = None
"""Whether this process's threshold was fixed here (None: not asked yet)."""
_lock = threading.Lock()


def keep_large_buffers_out_of_arenas() -> bool:
    """Fix glibc's mmap threshold at `MMAP_THRESHOLD`, once per process; whether it is fixed by us."""
    global _applied
    with _lock:
        if _applied is None:
            _applied = _fix_threshold()
        return _applied


def _fix_threshold() -> bool:
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
