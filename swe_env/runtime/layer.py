"""A container's writable layer measured on this host, with every process of the container frozen:
its bytes and its entries (the inodes it takes) in milliseconds for what an episode or a test run
writes, with no engine call (Docker 20.10 walks the layer for each `SizeRw` or change list it is
asked for: 0.1-5 s per answer on a loaded machine).

Trust: the figures are the host kernel's (the layer's folder on the host, named by the engine's
inspect; stats of the files the engine bind-mounts from its host), never a program's of the
container. A walk of a layer that live processes are changing can be raced (they see its
progress in folder access times and move files behind it: the review that withdrew the unfrozen
walk of the layer in f6bc6e5), so the container's cgroup is frozen first (the kernel's freezer,
what `docker pause` uses, written here directly: well under a millisecond against the engine's
0.1-0.4 s per pause or unpause) and thawed once the walk ends, whatever happens. Frozen, nothing
in the container runs, so the layer holds still; nothing in it can leave the cgroup (the cgroup
file system is read-only inside and CAP_SYS_ADMIN dropped).

Used only when the engine is this machine's and all of it can be found and checked here (the
layer's folder readable, a freezer whose cgroup holds the container's first process and names its
id); else `find` answers None and the sandbox asks the engine, as before.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

UNCOUNTABLE = 2**31
"""The entries reported for a layer the host cannot walk because of what the container made in it
(folders nested deeper than the host can name, or more folder names held at once than `MAX_HELD`)."""
MAX_HELD = 32 * 1024 * 1024
"""Bytes of folder names (and hard-linked inode numbers) a walk may hold at once; past it the layer
counts as uncountable. The walk holds the names of folders not yet entered, never whole paths."""
_NAME_OVERHEAD = 64
"""What one held name costs in memory besides its characters (a Python str and its list slot)."""
FREEZE_TIMEOUT = 5.0
"""Seconds the kernel may take to freeze every process of the container (one in uninterruptible
I/O freezes when the I/O ends); past it the container is thawed and `Frozen` raised."""
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_CGROUP_ROOT = "/sys/fs/cgroup"


class FreezeFailed(OSError):
    """The container's processes could not all be frozen in time (it was thawed again)."""


@dataclass(frozen=True)
class Usage:
    """What the layer holds: `bytes` (apparent sizes of its files and links, each inode once, plus
    the bind-mounted files) and `entries` (files, folders, links and deletions; UNCOUNTABLE for a
    layer the host cannot walk), cut once past the walk's `stop_after`."""

    bytes: int
    entries: int


@dataclass
class Freezer:
    """One cgroup's freezer: v1 (`freezer.state`: FROZEN / THAWED) or v2 (`cgroup.freeze`: 1 / 0,
    frozen once `cgroup.events` says `frozen 1`)."""

    folder: str
    v2: bool

    def freeze(self, timeout: float = FREEZE_TIMEOUT) -> None:
        """Freeze every process of the cgroup and return once the kernel says all are frozen;
        FreezeFailed (thawed again) when that takes longer than `timeout`."""
        self._write("cgroup.freeze" if self.v2 else "freezer.state", "1" if self.v2 else "FROZEN")
        deadline, pause = time.monotonic() + timeout, 0.0002
        while not self._frozen():
            if time.monotonic() > deadline:
                self.thaw()
                raise FreezeFailed(f"the processes of cgroup {self.folder} did not freeze within {timeout:g} s")
            time.sleep(pause)
            pause = min(pause * 2, 0.02)

    def thaw(self) -> None:
        self._write("cgroup.freeze" if self.v2 else "freezer.state", "0" if self.v2 else "THAWED")

    def _frozen(self) -> bool:
        if self.v2:
            return "frozen 1" in self._read("cgroup.events").splitlines()
        return self._read("freezer.state").strip() == "FROZEN"

    def _write(self, name: str, value: str) -> None:
        with open(os.path.join(self.folder, name), "w") as handle:
            handle.write(value)

    def _read(self, name: str) -> str:
        with open(os.path.join(self.folder, name)) as handle:
            return handle.read(4096)


@dataclass
class HostLayer:
    """The parts of one container this host can measure: its writable layer's folder, the files the
    engine bind-mounts into it, and its freezer. One measure at a time (two would thaw each other)."""

    upper: str
    mounted: tuple[str, ...]
    freezer: Freezer
    oom_file: str = ""
    """The container's cgroup file whose `oom_kill N` line counts the processes the kernel killed for memory
    (v1 `memory.oom_control`, v2 `memory.events`); "" when this host has none to read."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def oom_kills(self) -> int | None:
        """How many processes of the container the kernel has killed for memory, from its cgroup on this host
        (no program of the container runs); None when the count cannot be read here."""
        if not self.oom_file:
            return None
        try:
            with open(self.oom_file) as handle:
                lines = handle.read(65536).splitlines()
        except OSError:
            return None
        counts = [int(line.split()[1]) for line in lines if line.startswith("oom_kill ") and line.split()[1].isdigit()]
        return counts[0] if counts else None

    def measure(self, stop_after: int | None = None) -> Usage:
        """The layer's usage, the container frozen meanwhile (FreezeFailed when it cannot be; OSError
        when a file the engine named is unreadable: the caller then asks the engine)."""
        with self._lock:
            self.freezer.freeze()
            try:
                try:
                    entries, size = walk(self.upper, stop_after)
                except OSError as exc:
                    if exc.errno != errno.ENAMETOOLONG:
                        raise
                    # Only the container's processes make paths longer than the host can name: their doing.
                    entries, size = UNCOUNTABLE, 0
                except HeldTooMuch:
                    entries, size = UNCOUNTABLE, 0
                size += sum(_size_of(path) for path in self.mounted)
            finally:
                self.freezer.thaw()
        return Usage(size, entries)


class HeldTooMuch(Exception):
    """A walk would hold more than MAX_HELD bytes of names: the layer's shape is the container's doing."""


def walk(root: str, stop_after: int | None = None, max_held: int = MAX_HELD) -> tuple[int, int]:
    """(entries, bytes) under `root`: every file, folder, link and whiteout counted once (`root` not),
    bytes the apparent sizes of all but folders (a sparse file at its length, each hard-linked inode
    once). Links are never followed, folders opened with O_NOFOLLOW, no recursion (any depth); stopped
    once more than `stop_after` entries were seen. Memory: the names of folders not yet entered, at
    most `max_held` bytes (HeldTooMuch past it). OSError when a folder cannot be opened (ENAMETOOLONG
    for a path longer than the host allows). The caller keeps the folder still (a frozen container)."""
    entries = size = held = 0
    linked: set[int] = set()
    levels: list[tuple[str, list[str]]] = []  # folders on the way down: (path, subfolders not yet entered)
    folder = root
    while True:
        subfolders: list[str] = []
        handle = os.open(folder, _FOLDER_FLAGS)
        try:
            with os.scandir(handle) as found:
                for entry in found:
                    entries += 1
                    if entry.is_dir(follow_symlinks=False):
                        subfolders.append(entry.name)
                        held += len(entry.name) + _NAME_OVERHEAD
                    else:
                        info = entry.stat(follow_symlinks=False)
                        if info.st_nlink <= 1:
                            size += info.st_size
                        elif info.st_ino not in linked:  # a hard-linked inode's bytes count once
                            linked.add(info.st_ino)
                            held += _NAME_OVERHEAD
                            size += info.st_size
                    if stop_after is not None and entries > stop_after:
                        return entries, size
                    if held > max_held:
                        raise HeldTooMuch(f"more than {max_held} bytes of folder names held")
        finally:
            os.close(handle)
        levels.append((folder, subfolders))
        while levels and not levels[-1][1]:
            levels.pop()
        if not levels:
            return entries, size
        parent, names = levels[-1]
        name = names.pop()
        held -= len(name) + _NAME_OVERHEAD
        folder = os.path.join(parent, name)


def _size_of(path: str) -> int:
    try:
        return max(os.stat(path, follow_symlinks=False).st_size, 0)
    except FileNotFoundError:
        return 0  # the engine did not make that file for this container


def find(attrs: dict[str, Any], local_engine: bool) -> HostLayer | None:
    """The container's `HostLayer` from the engine's inspect of it, running (`attrs`), when every part
    is on this host and checks out; None otherwise (a remote engine, another storage driver, folders
    this process cannot read or write, a cgroup that does not hold the container's first process)."""
    if not local_engine:
        return None
    driver = attrs.get("GraphDriver") or {}
    data = driver.get("Data") or {}
    upper = data.get("UpperDir") if isinstance(data, dict) else None
    if driver.get("Name") not in ("overlay2", "overlay") or not _usable_folder(upper):
        return None
    mounted = tuple(path for key in ("HostsPath", "HostnamePath", "ResolvConfPath") if isinstance(path := attrs.get(key), str) and path)
    if not all(os.path.isabs(path) and os.path.isfile(path) for path in mounted):
        return None
    container_id, pid = str(attrs.get("Id") or ""), int((attrs.get("State") or {}).get("Pid") or 0)
    freezer = _freezer(container_id, pid)
    if freezer is None:
        return None
    assert isinstance(upper, str)
    return HostLayer(upper, mounted, freezer, _oom_file(container_id, pid, freezer))


def _usable_folder(path: Any) -> bool:
    return isinstance(path, str) and os.path.isabs(path) and os.path.isdir(path) and os.access(path, os.R_OK | os.X_OK)


def _freezer(container_id: str, pid: int) -> Freezer | None:
    """The freezer of the cgroup that holds the container's first process (`pid`, as the engine
    reported it), when that cgroup's path names the container's id and its files can be written here."""
    if len(container_id) < 12 or pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/cgroup") as handle:
            lines = handle.read(65536).splitlines()
    except OSError:
        return None
    for line in lines:
        number, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if container_id not in path or ".." in path.split("/"):
            continue
        if "freezer" in controllers.split(","):
            folder, v2 = os.path.join(_CGROUP_ROOT, "freezer", path.lstrip("/")), False
        elif number == "0" and controllers == "" and os.path.exists(os.path.join(_CGROUP_ROOT, "cgroup.controllers")):
            folder, v2 = os.path.join(_CGROUP_ROOT, path.lstrip("/")), True
        else:
            continue
        control = os.path.join(folder, "cgroup.freeze" if v2 else "freezer.state")
        if os.path.isfile(control) and os.access(control, os.R_OK | os.W_OK) and _holds(folder, pid):
            return Freezer(folder, v2)
    return None


def _oom_file(container_id: str, pid: int, freezer: Freezer) -> str:
    """The file counting the kernel's memory kills in the container's cgroup (`HostLayer.oom_file`), or "":
    v2 keeps `memory.events` beside the freezer; v1 has a memory hierarchy of its own, found as the freezer's."""
    if freezer.v2:
        candidate = os.path.join(freezer.folder, "memory.events")
    else:
        try:
            with open(f"/proc/{pid}/cgroup") as handle:
                lines = handle.read(65536).splitlines()
        except OSError:
            return ""
        paths = [
            path
            for _number, controllers, path in (line.split(":", 2) for line in lines if line.count(":") >= 2)
            if "memory" in controllers.split(",") and container_id in path and ".." not in path.split("/")
        ]
        if not paths:
            return ""
        folder = os.path.join(_CGROUP_ROOT, "memory", paths[0].lstrip("/"))
        if not _holds(folder, pid):
            return ""
        candidate = os.path.join(folder, "memory.oom_control")
    return candidate if os.path.isfile(candidate) and os.access(candidate, os.R_OK) else ""


def _holds(folder: str, pid: int) -> bool:
    """Whether the cgroup at `folder` lists `pid` among its processes."""
    try:
        with open(os.path.join(folder, "cgroup.procs")) as handle:
            return str(pid) in handle.read(1 << 20).split()
    except OSError:
        return False
