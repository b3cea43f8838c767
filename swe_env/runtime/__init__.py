"""One container's life: the engine (the only place containers are created and removed), the sandbox,
the persistent shell, the warm pool.
"""

from __future__ import annotations

import signal


def handle_termination_signals() -> None:
    """Make SIGTERM (and SIGHUP) unwind like Ctrl-C, so every `finally` removes its container.

    The CLI and the server call this (here, not in `sandbox`, so the CLI sets it before loading the engine's SDK); a program embedding swe-env may call it from its main
    thread (it replaces the default handlers, which would end the process without cleanup).
    """

    def _exit(signum, _frame) -> None:
        raise SystemExit(128 + signum)

    for name in ("SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), _exit)
