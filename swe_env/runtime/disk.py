"""A container's disk against its task's limit: bytes written and inodes made, and the grader's watch.

`DiskMeter.check` raises `DiskLimitExceeded` when the container wrote more than `limits.disk`, counting
each file, folder and link of its writable layer as `_INODE_COST` bytes more. No program of the
container runs: the figures are the host's (`layer.HostLayer`, the container frozen) or the engine's
(`SizeRw`, the change list, the stat of the files it bind-mounts). `DiskWatch` checks on a thread of its
own while untrusted code runs and stops every process past the limit.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import ClassVar

import docker.errors
import requests

from ..errors import Termination
from . import changes, engine, layer
from .execute import Executor
from .lifecycle import CHANGES_CHUNK, ENGINE_READ_TIMEOUT, Lifecycle, SandboxError
from .streams import path_stat

_DISK_CHECK_AFTER_SECONDS = 1.0
_DISK_CHECK_EVERY = 10
_INODE_COST = 16 * 1024
"""Each inode the container created counts this many bytes against `limits.disk`: 300,000 empty
files take no space in the writable layer's size but do use the host file system's inodes."""
_UNCOUNTABLE = layer.UNCOUNTABLE
"""`files_created`'s answer when the layer's files cannot be counted because of what the container made."""
_NAME_TOO_LONG = "file name too long"
"""The engine's error (ENAMETOOLONG) when the layer holds a path longer than its host allows."""
_ENGINE_MOUNTED_FILES = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
"""Files the engine bind-mounts from its host into every container (`HostsPath`, `HostnamePath`, `ResolvConfPath`)."""
_BACKGROUND = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="swe-env-disk")
"""Where the engine's disk figures for episodes run when the host cannot measure the layer
(`check(wait=False)`), and each sandbox's one look-up of its layer: off the step's path."""
DISK_CHECK_SECONDS = 3.0
"""How often `DiskWatch` checks the disk while the tests run."""
WALK_PACING = 4.0
"""A check waits at least this many times as long as the last walk of the layer took, after it: a layer of
hundreds of thousands of files (a walk of seconds, with the container frozen) costs the host at most a
fifth of a core (red team rt3, d4), while the limit is still checked at every step's end once the wait is
over and always at the grading's end."""
MAX_WALK_WAIT = 5 * DISK_CHECK_SECONDS
"""The pacing never spaces checks further apart than this (so a flood is still stopped within seconds)."""


class DiskLimitExceeded(RuntimeError):
    """The agent's container wrote more than the task's disk limit (the agent's doing)."""

    ending: ClassVar[Termination] = "disk_limit"


def parse_size(text: str) -> int:
    """Bytes in a Docker-style size ("512m", "2g", "100k", "123")."""
    text = text.strip().lower()
    units = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(float(text))


class DiskMeter:
    """The disk accounting of the container of `life` (`executor`: its one-off processes, during which
    the container is not frozen for the host's walk)."""

    def __init__(self, life: Lifecycle, executor: Executor, clock: Callable[[], float] = time.monotonic):
        self.life, self.executor = life, executor
        self.clock = clock
        """The monotonic clock the pacing reads (`time.monotonic`; a test hands in its own)."""
        self.steps_since_check = 0
        self.next_walk = 0.0
        """`clock()` before which no paced check walks the layer again (`WALK_PACING`)."""
        self._engine_check: concurrent.futures.Future | None = None
        """The engine's disk figures being taken in the background (`check(wait=False)` without a host layer)."""
        self._layer_lookup: concurrent.futures.Future | None = None
        """Finds the `layer.HostLayer` once the container runs (None: the engine is asked instead)."""

    def started(self) -> None:
        """The container runs: look its layer up once, in the background."""
        self._layer_lookup = _BACKGROUND.submit(self._find_layer)

    def after_step(self, seconds: float) -> None:
        """Between an episode's steps: writing gigabytes takes time, so check after long commands and every
        few steps for slow fillers; the engine's figures that arrived in the background are looked at now."""
        self.steps_since_check += 1
        counted = self._engine_check is not None and self._engine_check.done()
        due = seconds > _DISK_CHECK_AFTER_SECONDS or self.steps_since_check >= _DISK_CHECK_EVERY
        if counted or (due and self.clock() >= self.next_walk):
            self.check(wait=False)

    def used(self) -> int:
        """Bytes the container has written: its writable layer, and the host files bind-mounted into it."""
        try:
            found = engine.client().api.containers(all=True, filters={"id": self.life.handle.id}, size=True)
        except docker.errors.DockerException as exc:
            raise SandboxError(f"container {self.life.name} cannot be inspected: {exc}") from None
        if not found:
            raise SandboxError(f"container {self.life.name} is gone")
        return int(found[0].get("SizeRw") or 0) + self._mounted_files_size()

    def files_created(self, stop_after: int | None = None) -> int:
        """Files, folders, links and deletions the container's writable layer holds: the inodes it
        takes on the host's file system. Counted from the engine's list of the layer's changes
        (`docker diff`), which nothing in the container can alter (no binary of the container
        runs), read as a stream and cut once `stop_after` entries are seen (so 10 million files
        cost the host a bounded read). About 0.5 s per count, whatever the layer holds."""
        name = self.life.name
        try:
            with engine.container_changes(self.life.handle.id, ENGINE_READ_TIMEOUT, CHANGES_CHUNK) as chunks:
                return changes.count_entries(chunks, stop_after)
        except requests.exceptions.ReadTimeout:
            # The engine walked the layer for minutes without an answer: far more files than any limit allows.
            return _UNCOUNTABLE
        except docker.errors.APIError as exc:
            if _NAME_TOO_LONG in str(exc).lower():
                # Folders nested deeper than the host can name: only the container's own processes
                # make those, so it is their doing (charged as far over any limit), never ours.
                return _UNCOUNTABLE
            raise SandboxError(f"the files in {name} could not be counted: {exc}") from None
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise SandboxError(f"the files in {name} could not be counted: {exc}") from None

    def _mounted_files_size(self) -> int:
        """Bytes in the files the engine bind-mounts from the host (/etc/hosts, /etc/hostname,
        /etc/resolv.conf): root in the container can write them, and the writable layer's size
        does not count them. Their sizes come from the engine's stat of each path (no read)."""
        total = 0
        for path in _ENGINE_MOUNTED_FILES:
            try:
                answer = engine.stat_path(self.life.handle.id, path, ENGINE_READ_TIMEOUT)
            except requests.RequestException as exc:
                raise SandboxError(f"container {self.life.name} cannot be inspected: {exc}") from None
            if answer.status_code == 404:
                continue
            stat = path_stat(answer)
            if stat is None:
                raise SandboxError(f"container {self.life.name} cannot be inspected: the engine answered {answer.status_code} for {path}")
            total += max(int(stat.get("size") or 0), 0)
        return total

    def check(self, wait: bool = True) -> None:
        """Raise DiskLimitExceeded when the container wrote more than `limits.disk`, counting each
        file, folder and link in its writable layer as `_INODE_COST` bytes more: empty files take
        no bytes of the layer but do take the host's inodes. No program of the container runs.

        When the engine is this machine's, the host measures the layer itself with the container
        frozen (`layer.HostLayer`: milliseconds, no engine call). Else the engine's figures are
        asked for (`SizeRw` and the change list, each a walk of 0.1-5 s on Docker 20.10): with
        `wait` False (between an episode's steps) in the background, and what they found is raised
        at the next check, so a step never waits for the engine."""
        self.steps_since_check = 0
        limit = parse_size(self.life.spec.limits.disk)
        host = self.host_layer()
        if host is not None and self.executor.starting:
            return  # a process is starting (the engine cannot start one in a frozen container): next check
        if host is not None:
            walk_started = self.clock()
            try:
                usage = host.measure(stop_after=limit // _INODE_COST + 1)
            except OSError:
                usage = None  # not frozen in time, or a file the engine named is gone: the engine decides
            finally:
                ended = self.clock()
                self.next_walk = ended + walk_pause(ended - walk_started)
            if usage is not None:
                over = self._over(usage.bytes, usage.entries, limit)
                if over:
                    raise DiskLimitExceeded(over)
                return
        if wait:
            over = self._engine_over(limit)
        else:
            pending, self._engine_check = self._engine_check, None
            if pending is not None and not pending.done():
                self._engine_check = pending  # still measuring: looked at when it has finished
                return
            if pending is None:
                self._engine_check = _BACKGROUND.submit(self._engine_over, limit)
                return
            over = pending.result()  # a SandboxError of the engine's is raised here, a step later
        if over:
            raise DiskLimitExceeded(over)

    def _find_layer(self) -> layer.HostLayer | None:
        """The container's layer as this host can measure it, from the container's one inspect after its start
        (`Lifecycle.record`, kept for the engine's start time too; None: ask the engine)."""
        try:
            return layer.find(self.life.record(), local_engine=engine.is_local())
        except Exception:  # noqa: BLE001 - the engine's own figures stand in
            return None

    def host_layer(self) -> layer.HostLayer | None:
        """The container's layer as this host measures it (None: the engine's figures are used)."""
        lookup = self._layer_lookup
        if lookup is None:
            return None
        try:
            return lookup.result(timeout=ENGINE_READ_TIMEOUT)
        except Exception:  # noqa: BLE001 - a look-up the engine did not answer: the engine's figures
            return None

    def _engine_over(self, limit: int) -> str | None:
        """`_over` from the engine's figures: the layer's size, then its change list, cut past the limit."""
        used = self.used()
        if used > limit:
            return self._over(used, 0, limit)
        return self._over(used, self.files_created(stop_after=max(limit - used, 0) // _INODE_COST + 1), limit)

    def _over(self, used: int, files: int, limit: int) -> str | None:
        """Why `used` bytes and `files` entries are over `limit` (each entry `_INODE_COST` bytes), or None."""
        disk = self.life.spec.limits.disk
        if used > limit:
            return f"the container wrote {used / 1e9:.2f} GB, over the task's disk limit of {disk}"
        if used + files * _INODE_COST <= limit:
            return None
        if files >= _UNCOUNTABLE:
            return (
                f"the container made more files and folders than can be counted (or nested them deeper "
                f"than its host can name), over the task's disk limit of {disk}"
            )
        return (
            f"the container wrote {used / 1e9:.2f} GB and made {'more than ' if files > (limit - used) // _INODE_COST else ''}"
            f"{files} files and folders (each counted as {_INODE_COST // 1024} KiB), over the task's disk "
            f"limit of {disk}"
        )


def walk_pause(walked: float) -> float:
    """Seconds no paced check walks the layer again after a walk of `walked` seconds: `WALK_PACING` times the walk,
    never more than `MAX_WALK_WAIT`."""
    return min(WALK_PACING * max(walked, 0.0), MAX_WALK_WAIT)


def next_check_in(interval: float, next_walk: float, now: float) -> float:
    """Seconds `DiskWatch` waits before its next check: its `interval`, or longer while the last walk's pause lasts
    (`DiskMeter.next_walk`, at most `MAX_WALK_WAIT` after that walk ended)."""
    return max(interval, next_walk - now)


class DiskWatch:
    """While untrusted code runs (the grader's tests): `DiskMeter.check` every `interval` seconds on a
    thread of its own (longer after a long walk of the layer: `next_check_in`), and past the limit every process in
    the container stopped (`Lifecycle.stop_all_processes`: the run ends, the files stay) and the watch ends. `over`
    is why the disk was over the limit; `failure` the first check the engine failed to make (the watch goes on);
    `stop_failed` why the processes could not be stopped. `wait(seconds)`, True once the watch is to end, is the
    watch's own event by default (a test hands in its own, with the meter's clock)."""

    def __init__(self, meter: DiskMeter, interval: float = DISK_CHECK_SECONDS, wait: Callable[[float], bool] | None = None):
        self.meter, self.interval = meter, interval
        self.over: str | None = None
        self.failure: BaseException | None = None
        self.stop_failed: str | None = None
        self._done = threading.Event()
        self._wait = wait or self._done.wait
        self._thread = threading.Thread(target=self._watch, name=f"{meter.life.name}-disk", daemon=True)

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        self._thread.join()  # at most one check in flight (the file count is bounded in time)

    def _watch(self) -> None:
        while not self._wait(next_check_in(self.interval, self.meter.next_walk, self.meter.clock())):
            try:
                self.meter.check()
            except DiskLimitExceeded as exc:
                self.over = str(exc)
                try:
                    self.meter.life.stop_all_processes()
                except Exception as stop_failed:  # noqa: BLE001 - the run then ends at its timeout; noted
                    self.stop_failed = str(stop_failed)
                return
            except Exception as exc:  # noqa: BLE001 - the engine failed: reported by the grading thread
                if self.failure is None and not self._done.is_set():  # not a check the run's end cut short
                    self.failure = exc

    def reckon(self) -> str | None:
        """After the run: why the container is over the limit (the watch's finding, else a check once more
        now), or None. The finding that the disk is over the limit decides; short of it, a check the engine
        could not make is a SandboxError: ours."""
        if self.over:
            return self.over + (f"; stopping the run failed: {self.stop_failed}" if self.stop_failed else "")
        if self.failure is not None:
            raise SandboxError(f"the disk check of the grader's container failed: {self.failure}")
        try:
            self.meter.check()
        except DiskLimitExceeded as exc:
            return str(exc)
        return None
