"""A warm pool: sandboxes started ahead of time, so `reset` takes a ready container.

A container start with limits plus the shell attach costs a few hundred milliseconds; an
RL loop that resets often pays it on every episode. The pool keeps `size` started sandboxes
(shell attached) for each sandbox spec it has been asked for, and starts replacements on a
background thread. Finished sandboxes are removed on that thread too, so neither start nor
removal is on the caller's path. `close()` removes every sandbox the pool holds and waits
for the ones being started; the pool can be used again afterwards.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from .lifecycle import SandboxError
from .sandbox import Sandbox
from .shell import ShellError
from .spec import SandboxSpec

OPEN_ATTEMPTS = 2
"""Tries of an open (`start`) that the engine failed transiently: a loaded engine sometimes answers a create or
start with an error of its own, or times out, or a new shell does not answer; a new container then usually works."""
_retried = 0
_retried_lock = threading.Lock()


def start(spec: SandboxSpec) -> Sandbox:
    """A started sandbox of `spec` with its shell attached (the first bash comes with the container:
    `Sandbox.start(shell=True)`); nothing is left behind if that fails. An open the engine failed
    transiently (`transient`) is tried once more in a new container, the failed one removed first (a
    removal the engine refuses then is left to atexit, the TTL and gc)."""
    global _retried
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        sandbox = Sandbox.of(spec)
        try:
            sandbox.start(shell=True)
            sandbox.start_shell()
            return sandbox
        except BaseException as exc:
            try:
                sandbox.close()
            except Exception:  # noqa: BLE001 - still registered: atexit, the TTL and gc remove it; the open's error counts
                pass
            if attempt == OPEN_ATTEMPTS or not transient(exc):
                raise
            with _retried_lock:
                _retried += 1
    raise AssertionError("not reached: the last try returns or raises")


def transient(exc: BaseException) -> bool:
    """Whether a failed open is the engine's passing trouble, worth one more try: the engine's own error or
    timeout while starting the container (`SandboxError.transient`, a timeout of its client) or a shell that
    could not start. Not a missing image, a refused option, an interrupt or a bug of ours."""
    return isinstance(exc, ShellError) or (isinstance(exc, SandboxError) and exc.transient) or isinstance(exc, requests.RequestException)


def retried() -> int:
    """How many opens of this process were tried a second time (the benches report it)."""
    return _retried


@dataclass
class _Slot:
    spec: SandboxSpec
    ready: deque = field(default_factory=deque)
    starting: int = 0


class WarmPool:
    """Started sandboxes per spec, `size` of each kept ready; thread-safe."""

    def __init__(self, size: int, opener: Callable[[SandboxSpec], Sandbox] = start):
        if size < 1:
            raise ValueError(f"a warm pool needs a size of at least 1, not {size}")
        self.size = size
        self.opener = opener
        """What starts a sandbox of a spec (`start`: the agent's shell attached; the grader's opens its private shell)."""
        self._slots: dict[tuple, _Slot] = {}
        self._lock = threading.Condition()
        self._work: deque = deque()  # ("start", slot) or ("remove", sandbox)
        self._thread: threading.Thread | None = None
        self._generation = 0  # bumped by close(): starts begun before it are discarded
        self.hits = 0
        self.misses = 0

    def acquire(self, spec: SandboxSpec) -> Sandbox:
        """A ready sandbox of this spec (started now if none is ready); the pool then tops up."""
        with self._lock:
            slot = self._slots.setdefault(spec.key, _Slot(spec))
            sandbox = slot.ready.popleft() if slot.ready else None
            self._top_up(slot)
        if sandbox is not None and sandbox.container is not None:
            self.hits += 1
            return sandbox
        self.misses += 1
        return self.opener(spec)

    def release(self, sandbox: Sandbox) -> None:
        """Remove a used sandbox in the background (close() waits for it)."""
        with self._lock:
            self._work.append(("remove", sandbox))
            self._wake()

    def wait_until_full(self, timeout: float = 60.0) -> bool:
        """Block until every known spec has `size` ready sandboxes and no removal is pending."""
        with self._lock:
            return self._lock.wait_for(
                lambda: not self._work and all(len(s.ready) >= self.size and not s.starting for s in self._slots.values()),
                timeout,
            )

    def close(self) -> None:
        """Remove every sandbox of the pool, including those still starting."""
        with self._lock:
            self._generation += 1
            idle = [sandbox for slot in self._slots.values() for sandbox in slot.ready]
            self._slots.clear()
            self._work = deque(item for item in self._work if item[0] == "remove")
            thread = self._thread
            self._wake()
        for sandbox in idle:
            sandbox.close()
        if thread is not None:
            thread.join()

    # ------------------------------------------------------------ background work

    def _top_up(self, slot: _Slot) -> None:
        missing = self.size - len(slot.ready) - slot.starting
        for _ in range(max(missing, 0)):
            slot.starting += 1
            self._work.append(("start", slot))
        self._wake()

    def _wake(self) -> None:
        if self._work and (self._thread is None or not self._thread.is_alive()):
            self._thread = threading.Thread(target=self._run, name="swe-env-warm-pool", daemon=True)
            self._thread.start()
        self._lock.notify_all()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._work:
                    self._thread = None
                    self._lock.notify_all()
                    return
                kind, item = self._work.popleft()
                generation = self._generation
            if kind == "remove":
                self._quietly_close(item)
                with self._lock:
                    self._lock.notify_all()
                continue
            try:
                sandbox = self.opener(item.spec)
            except Exception:  # noqa: BLE001 - acquire() will start one itself and report the error
                sandbox = None
            with self._lock:
                item.starting -= 1
                stale = generation != self._generation
                if sandbox is not None and not stale:
                    item.ready.append(sandbox)
                self._lock.notify_all()
            if sandbox is not None and stale:
                sandbox.close()

    @staticmethod
    def _quietly_close(sandbox: Sandbox) -> None:
        try:
            sandbox.close()
        except Exception:  # noqa: BLE001 - the container has its TTL; gc removes what is left
            pass
