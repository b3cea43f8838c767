"""glibc's mmap threshold fixed by the driver (`runtime/allocator.py`): a large buffer freed after another
is still its own mapping, not arena memory the process keeps."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap

import pytest

from swe_env.runtime import allocator

PROBE = textwrap.dedent("""
    import ctypes, sys
    from swe_env.runtime import allocator

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]

    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = MallInfo2
    if sys.argv[1] == "fixed":
        assert allocator.keep_large_buffers_out_of_arenas()
    big = bytearray(16 * 2**20)   # mmapped at any threshold; freeing it raises glibc's dynamic threshold to 16 MB
    del big
    before = mallinfo2().hblkhd
    held = bytearray(2 * 2**20)
    print(mallinfo2().hblkhd - before)
""")


def mapped_bytes_of_a_2mb_buffer(mode: str) -> int:
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def test_a_large_buffer_stays_its_own_mapping_after_a_larger_one_was_freed():
    if not hasattr(ctypes.CDLL(None), "mallinfo2"):
        pytest.skip("not glibc 2.33+: no mallinfo2 to look with")
    # glibc's default: after the 16 MB mapping was freed, 2 MB comes from the arena (nothing new mapped).
    assert mapped_bytes_of_a_2mb_buffer("default") == 0
    # Fixed at 512 kB: the 2 MB buffer is a mapping of its own, given back when freed.
    assert mapped_bytes_of_a_2mb_buffer("fixed") >= 2 * 2**20


def test_it_is_applied_once_and_leaves_a_users_setting_alone(monkeypatch):
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert allocator.keep_large_buffers_out_of_arenas() is False  # the user's own setting wins
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    assert allocator.keep_large_buffers_out_of_arenas() is False  # decided once per process
