"""Helpers for tests that Ctrl-C something: a child process, or this one.

A pytest started in the background (`cmd &` in a script) has SIGINT ignored; its children
inherit that, Python leaves an inherited SIG_IGN alone, and `_thread.interrupt_main` does
nothing while SIGINT is ignored. Tests of what Ctrl-C does set it up as a terminal would.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


def ctrl_c_reaches_it() -> None:
    """`preexec_fn` for a child the test will send SIGINT: the default disposition, so the
    child's Python turns it into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def ctrl_c_handled() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in this process meanwhile (main thread only)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
