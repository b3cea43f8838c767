"""Reading the engine's list of a container's changes (`docker diff`) as it streams (pure, no I/O).

The list is the engine's view of the writable layer, which nothing in the container can alter:
the disk check counts its entries (the inodes the container created) and the env asks it which
of the programs the host runs in the container were changed (evidence that their failure was
the agent's doing). Both read it chunk by chunk and may stop early, so a layer of ten million
files costs the host a bounded read. `Sandbox.files_created` and `Sandbox.altered_programs`
feed these the engine's stream.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

_KEY = b'"Path"'
_ENTRY = re.compile(rb'\{"Path":"((?:[^"\\]|\\.)*)","Kind":(\d)\}')
_ADDED = 1
_DELETED = 2
"""The engine's `Kind` of a path the layer added, and of one it deleted (0: modified)."""
_CARRY = 64 * 1024
"""Bytes of an unfinished entry kept from one chunk to the next (a path is at most 4 KiB)."""

HOST_PROGRAMS = frozenset(
    f"{folder}/{name}"
    for folder in ("/bin", "/usr/bin")
    for name in (
        "bash",
        "sh",
        "env",
        "timeout",
        "git",
        "cat",
        "head",
        "tail",
        "stat",
        "base64",
        "mkdir",
        "rm",
        "realpath",
        "find",
        "mktemp",
        "dirname",
        "id",
        "sleep",
        "kill",
        "printf",
        "chmod",
        "readlink",
        "xargs",
        "awk",
        "mawk",
        "patch",
    )
)
"""The programs the host runs in a container (by absolute path) for its own work: the shells, exec's
wrapper, the diff, the file tools' helper shell."""
_LIBRARY_FOLDERS = ("/lib/", "/lib64/", "/usr/lib/x86_64-linux-gnu/", "/usr/lib/aarch64-linux-gnu/", "/usr/libexec/")
_LOADER_FILES = frozenset({"/etc/ld.so.preload", "/etc/ld.so.cache"})
"""What the dynamic loader reads before any program the host runs: a library named in `ld.so.preload` runs in every one
of them (red team rt4, e1: its constructor ended each at once, with no output), so any change, an added file included."""


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[:count]) for count in range(1, len(parts))]


_HOST_FOLDERS = frozenset(folder for path in [*HOST_PROGRAMS, *(f.rstrip("/") + "/x" for f in _LIBRARY_FOLDERS)] for folder in _ancestors(path))
"""The folders on the way to a host program or a system library folder (`/bin`, `/usr`, `/usr/lib/x86_64-linux-gnu`...):
one deleted or moved away (`rm /bin`, the merged-/usr link; a library folder moved) breaks every program under it
(rt4, e1), though no program file is listed as changed."""


def count_entries(chunks: Iterable[bytes], stop_after: int | None = None) -> int:
    """Entries in the list, read until its end or until more than `stop_after` were seen."""
    count, carry = 0, b""
    for chunk in chunks:
        # Every entry is {"Path": ..., "Kind": N}; a name cannot hold the key's quotes unescaped.
        joined = carry + chunk
        count += joined.count(_KEY) - carry.count(_KEY)
        carry = joined[-(len(_KEY) - 1) :]
        if stop_after is not None and count > stop_after:
            break
    return count


def altered_host_programs(chunks: Iterable[bytes], limit: int, needed: frozenset[str] = frozenset()) -> list[str]:
    """The `HOST_PROGRAMS` and files of the system's library folders that the list shows modified
    or deleted (not added), the dynamic loader's own files changed in any way (`ld.so.preload`, `ld.so.cache`), and
    the folders on the way to them and the `needed` paths (the work directory every shell starts in) it
    shows deleted or moved away, at most `limit`, read until then. ValueError on a path that is not
    valid JSON text."""
    found: list[str] = []
    carry = b""
    for chunk in chunks:
        text = carry + chunk
        end = 0
        for match in _ENTRY.finditer(text):
            end = match.end()
            path, kind = json.loads(b'"' + match.group(1) + b'"'), int(match.group(2))
            if (
                (kind != _ADDED and is_host_program(path))
                or path in _LOADER_FILES
                or (kind == _DELETED and (path in needed or path in _HOST_FOLDERS))
            ):
                found.append(path)
        carry = text[end:][-_CARRY:]
        if len(found) >= limit:
            break
    return found[:limit]


def is_host_program(path: str) -> bool:
    """Whether `path` is one of `HOST_PROGRAMS` or a file in a system library folder they load."""
    return path in HOST_PROGRAMS or (path.startswith(_LIBRARY_FOLDERS) and path.count("/") > 2)
