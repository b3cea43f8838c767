"""The in-container half of execution tracing.

`runner.py` is a standalone script (standard library only, Python 3.9+; 3.11+ names functions by `co_qualname`, 3.12+ hooks in with `sys.monitoring`) that the host
copies into a container and runs with the task's own Python; it must never import
swe_env. The host half (`swe_env/traces/host.py`) starts it, collects its JSONL and renders it.
"""

from __future__ import annotations

from pathlib import Path

RUNNER = Path(__file__).with_name("runner.py")
"""The tracer script, copied verbatim into the container."""


def runner_source() -> bytes:
    """The bytes of the tracer script."""
    return RUNNER.read_bytes()
