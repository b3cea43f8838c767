"""How the host gets a one-off process's output out of a container: framed, bounded, streamed.

`FRAME_BOTH_STREAMS` runs a command between two copies of a random token on stdout and on
stderr; `HeadTailBytes` keeps the first and last bytes of a stream in bounded memory and cuts
out what lies between the tokens (`Framed`); `stream_into` reads an exec's two streams on a
thread; `ChunkReader` turns the engine's archive stream into a file object read as far as
asked; `path_stat` reads the engine's stat of an archive path. No container is touched here:
`Sandbox.exec`, `Sandbox.exec_to_end` and `Sandbox.read_from_engine` use these.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass

import requests

FRAME_BOTH_STREAMS = (
    'token=$1; shift; exec 3>&2 2>/dev/null; printf %s "$token"; printf %s "$token" >&3; '
    '/usr/bin/env -- "$@" 2>&3 3>&-; status=$?; printf %s "$token"; printf %s "$token" >&3; exit "$status"'
)
"""Runs the command in "$@" as a program (`env`: no bash builtin or `exec` semantics) between
two copies of the token in $1 on stdout and on stderr (see Sandbox.exec). The wrapper's own
stderr is /dev/null, so bash's "Killed" notes about the command never reach the output."""


@dataclass
class ExecResult:
    """Outcome of a one-off process in the container."""

    exit_code: int
    stdout: str
    stderr: str
    output_lost: bool = False
    """The engine did not deliver all of the output (the exit code is still right)."""
    cut: int = 0
    """Bytes dropped from the middle of the streams (over `max_output`)."""

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class HeadTailBytes:
    """The first and last `limit/2` bytes of a stream, in bounded memory, and how much was dropped."""

    def __init__(self, limit: int):
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > 2 * self.tail_limit:
                del self.tail[: len(self.tail) - self.tail_limit]

    def value(self) -> tuple[bytes, int]:
        tail = bytes(self.tail[-self.tail_limit :]) if self.tail_limit else b""
        return bytes(self.head) + tail, self.total - len(self.head) - len(tail)

    def framed(self, mark: bytes) -> Framed | None:
        """What lies between the first two copies of `mark` (see `Framed`), or None when the
        stream does not start with one. The bytes dropped lie right after the head."""
        stream, cut = self.value()
        if not stream.startswith(mark):
            return None
        end = stream.find(mark, len(mark))
        if end < 0:
            return Framed(stream[len(mark) :], complete=False, cut=cut)
        inside = cut if end >= len(self.head) else 0
        return Framed(stream[len(mark) : end], complete=True, cut=inside, late=len(stream) - end - len(mark) + cut - inside)


@dataclass
class Framed:
    """One stream of `Sandbox.exec_to_end`: what the command wrote between the wrapper's two tokens."""

    data: bytes
    complete: bool
    """The closing token was seen: everything up to the command's end is here (but for `cut`)."""
    cut: int = 0
    """Bytes dropped from the middle of what the command wrote (over the stream's bound)."""
    late: int = 0
    """Bytes written after the command ended, by processes it left behind (dropped)."""


@dataclass
class FramedRun:
    """Outcome of `Sandbox.exec_to_end`."""

    exit_code: int
    stdout: Framed
    stderr: Framed
    overran: bool = False
    """The command was still running at the host's deadline and was stopped through the engine."""


def path_stat(response: requests.Response) -> dict | None:
    """The engine's stat of an archive path (its `X-Docker-Container-Path-Stat` header), or None."""
    header = response.headers.get("X-Docker-Container-Path-Stat")
    if not header:
        return None
    try:
        stat = json.loads(base64.b64decode(header))
    except ValueError:
        return None
    return stat if isinstance(stat, dict) else None


_GO_MODE_DIR = 1 << 31
"""Go's `os.ModeDir`: the engine's stat gives a path's mode as Go's `FileMode` (type bits high, not POSIX's)."""


def stat_is_folder(stat: dict) -> bool:
    """Whether the engine's stat (`path_stat`) is of a folder (not a file, a link or anything else)."""
    mode = stat.get("mode")
    return isinstance(mode, int) and bool(mode & _GO_MODE_DIR)


class ChunkReader(io.RawIOBase):
    """A file object over an iterator of byte chunks (the engine's archive stream), read as far as asked."""

    def __init__(self, chunks):
        self._chunks, self._left = iter(chunks), b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._left:
            self._left = next(self._chunks, b"")
            if not self._left:
                return 0
        count = min(len(buffer), len(self._left))
        buffer[:count], self._left = self._left[:count], self._left[count:]
        return count

    def close(self) -> None:
        closing = getattr(self._chunks, "close", None)
        if closing is not None:
            closing()  # the generator's end closes the engine's response
        super().close()


def stream_into(api, exec_id: str, kept: tuple[HeadTailBytes, HeadTailBytes], failure: list) -> None:
    """Read an exec's two streams into `kept` until they end (a thread of `Sandbox.exec_to_end`)."""
    try:
        for chunks in api.exec_start(exec_id, stream=True, demux=True):
            for keeper, chunk in zip(kept, chunks, strict=True):  # demux: (stdout, stderr)
                if chunk:
                    keeper.add(chunk)
    except Exception as exc:  # noqa: BLE001 - handed to the waiting thread, which raises it
        failure.append(exc)
