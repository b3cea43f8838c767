"""The native seal's shared object: built on the host from `reporter/_seal.c`, once per source.

One object serves every Python the task images run (3.9 to 3.13): the source uses the limited
API of 3.9 and declares the few functions outside it that it calls, so the host's own Python
headers and C compiler (`cc`) build it. It lands in `$SWE_ENV_CACHE/native/<hash of the source
and flags>/`, written under a temporary name and renamed (parallel gradings do not race), at
first use or from `swe-env setup`. The grader copies it into the grading container next to the
start-up module. Without a compiler or headers there is none: the pure-Python hook seals
instead, weaker (`GradingReport.seal` says `python`), and a one-line note says why.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

from ..build.repos import cache_dir

SOURCE = Path(__file__).with_name("reporter") / "_seal.c"
FILE_NAME = "_swe_env_native.abi3.so"
"""The name the start-up module loads (by path) from its own folder."""
# -s: no symbol table, so the key's and the counter's static addresses cannot be looked up in the file (rt3, c1).
_FLAGS = ("-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-fno-strict-aliasing", "-Wall", "-s")
_BUILD_TIMEOUT = 120

log = logging.getLogger(__name__)


class Build:
    """The shared object's bytes, or why there are none."""

    def __init__(self, data: bytes | None, reason: str = "") -> None:
        self.data = data
        self.reason = reason


def _include_dir() -> str | None:
    for candidate in (sysconfig.get_paths().get("include"), sysconfig.get_config_var("INCLUDEPY")):
        if candidate and os.path.exists(os.path.join(candidate, "Python.h")):
            return str(candidate)
    return None


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def target() -> Path:
    """Where the object for the current source lives (it may not be built yet)."""
    digest = hashlib.sha256(SOURCE.read_bytes() + " ".join(_FLAGS).encode()).hexdigest()[:16]
    return cache_dir() / "native" / digest / FILE_NAME


def build() -> Build:
    """The shared object, built now if the cache has none. Never raises: without one, `reason` says why."""
    path = target()
    if path.exists():
        return Build(path.read_bytes())
    compiler, include = _compiler(), _include_dir()
    if compiler is None:
        return Build(None, "no C compiler (cc) on the host")
    if include is None:
        return Build(None, "no Python headers (Python.h) on the host")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=path.parent)
    os.close(handle)
    try:
        done = subprocess.run(
            [compiler, *_FLAGS, f"-I{include}", str(SOURCE), "-o", temporary], capture_output=True, text=True, timeout=_BUILD_TIMEOUT, check=False
        )
        if done.returncode != 0:
            return Build(None, f"{compiler} failed: {(done.stderr or done.stdout).strip()[-300:]}")
        os.replace(temporary, path)  # atomic: a parallel build wrote the same bytes
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Build(None, f"{compiler} could not run: {exc}")
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return Build(path.read_bytes())


@functools.lru_cache(maxsize=1)
def shared_object() -> Build:
    """`build()`, once per process; the note when there is none is logged once."""
    found = build()
    if found.data is None:
        log.warning("the native seal is not available (%s): gradings use the weaker pure-Python seal", found.reason)
    return found
