"""A persistent bash session inside a container, attached over the Docker exec socket.

One bash process lives for the whole episode, so cwd, exported variables and functions
survive between commands, and a command costs one socket round trip instead of a new
`docker exec`. The first shell of an episode may come with the container instead (`stream`:
the container's own stdio, attached before it started, whose main process started that bash:
see `lifecycle`), which saves the engine an exec (a `runc exec`) per open; every later shell
is an exec. Each command is sent to `eval` as one ANSI-C quoted word (a syntax error
cannot eat the rest of the protocol, and decoding it needs no fork), with stdin at
/dev/null, and its end is found by a marker carrying a fresh random token and the exit code.

Why one module of this size (over 400 lines): the session's protocol (the marker, the socket's
frames, the bounded reads) and its recovery (a timeout, a dead or stuck shell, the fork bomb's way
out through the owner's `reset_container`) read and change the same socket and state; split apart,
each half would need the other's internals. The output's framing for one-off processes is in `streams`.
"""

from __future__ import annotations

import codecs
import os
import re
import secrets
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import docker.errors
import requests

from ..errors import InfrastructureError
from . import engine

DEFAULT_OUTPUT_LIMIT = 10_000
SHELL_ENV = {
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "MANPAGER": "cat",
    "TERM": "dumb",
    "LANG": "C.UTF-8",
    "HISTFILE": "/dev/null",
    "PYTHONUNBUFFERED": "1",
    "DEBIAN_FRONTEND": "noninteractive",
}
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_GRACE_AFTER_KILL = 3.0
_STOPPED_ALL = "every process in the container was stopped (files are kept)"
_PIDS_EXHAUSTED = "fork: retry: Resource temporarily unavailable"
"""What bash prints when the pid limit stops it from forking."""
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_MARKER = re.compile(r"\n__SWE_ENV_DONE_([0-9a-f]{24})_(\d+)__\n")
_MARKER_MAX = len("\n__SWE_ENV_DONE_") + 24 + 1 + 12 + 3
_START_TIMEOUT = 10.0
"""Seconds a new shell may take to answer on a machine at ease (`start_timeout` gives it more under load)."""
_START_TIMEOUT_MAX = 120.0
"""The longest a new shell is waited for, however loaded the machine: the wait stays bounded."""
_START_ENGINE_FACTOR = 4.0
"""A new shell may take this many times what the engine just took to start it (or its container)."""
_LOAD_AT_EASE = 8.0
"""Runnable processes per core up to which `_START_TIMEOUT` suffices; past it the timeout grows with the load."""
_START_ATTEMPTS = 3
_START_BACKOFF = 0.5  # seconds, times the attempt number
_PROBE_INTERVAL = 2.0
_HELPER_DEADLINE = 10.0
"""The longest the host waits for one of its kill or probe helpers in the container."""
"""While a command runs longer than this, check every so often that bash was not replaced by `exec`."""

# Sent once when a shell starts. On a timeout the host sends SIGUSR1 to bash and kills the
# command's processes; the USR1 trap raises a flag and, with extdebug, a DEBUG trap that
# returns non-zero skips every further command of that input line (like Ctrl-C in a
# terminal), except the __SWE_* bookkeeping that reports the end.
_SESSION_INIT = "__SWE_ABORT=; trap '__SWE_ABORT=1' USR1; shopt -s extdebug; trap '[[ -z $__SWE_ABORT || $BASH_COMMAND == __SWE_* ]]' DEBUG\n"

_EXIT_TRAP = "trap '__SWE_ABORT=; printf \"\\n__SWE_ENV_EXITED_{token}__\\n\"' EXIT\n"
"""Sent once to the container's attached bash: the line it prints when it exits (`exit`, stdin's end), since
its stream, unlike an exec's, does not end with it. Begins with `__SWE_ABORT=` so the DEBUG trap lets it run."""
_EXITED = "\n__SWE_ENV_EXITED_{token}__\n"
_PROBE_SHELL = (
    'if [ ! -e "/proc/$1/exe" ]; then echo __SWE_ENV_GONE__; elif [ "/proc/$1/exe" -ef "$2" ]; '
    "then echo __SWE_ENV_SAME__; else echo __SWE_ENV_OTHER__; fi"
)
"""Whether bash pid $1 still runs the program $2 (its exe then), another one, or none (gone, or a zombie)."""
_PROBE_ANSWERS: dict[str, Literal["intact", "replaced", "gone"]] = {
    "__SWE_ENV_GONE__": "gone",
    "__SWE_ENV_SAME__": "intact",
    "__SWE_ENV_OTHER__": "replaced",
}

# Kills every descendant of the shell (not the shell): stop them all first so a fork
# bomb cannot outrun the kill, then SIGKILL. Uses /proc only (no procps in minimal images).
_KILL_TREE = r"""
tree() { for t in /proc/$1/task/*; do for c in $(cat "$t/children" 2>/dev/null); do echo "$c"; tree "$c"; done; done; }
pids=$(tree "$1")
[ -n "$pids" ] && kill -STOP $pids 2>/dev/null
[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
exit 0
"""


# Bytes that may stand for themselves inside bash's $'...' quoting; everything else is \xHH.
_PLAIN = frozenset(range(0x20, 0x7F)) - {ord("'"), ord("\\")}


def start_timeout(engine_seconds: float = 0.0, load_per_core: float | None = None) -> float:
    """How long a new shell may take to answer its first probe: `_START_TIMEOUT`, or more when the engine is
    evidently loaded (it took `engine_seconds` to start the shell or its container; the machine's load average
    is `load_per_core` per core, when the engine is this machine's), at most `_START_TIMEOUT_MAX`. Under a
    load of hundreds on 2 cores a bash took over 10 s to answer, and failing the open then helps nobody."""
    by_load = _START_TIMEOUT * load_per_core / _LOAD_AT_EASE if load_per_core else 0.0
    return min(_START_TIMEOUT_MAX, max(_START_TIMEOUT, _START_ENGINE_FACTOR * engine_seconds, by_load))


def _load_per_core() -> float | None:
    """The machine's load average per core when the engine runs on it (the engine's own load), else None."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1) if engine.is_local() else None
    except (OSError, InfrastructureError):
        return None


def shell_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a shell is given on top of the container's: `SHELL_ENV`, then the task's `env`."""
    return {**SHELL_ENV, **(env or {})}


def ansi_c_quote(text: str) -> str:
    """`text` as one bash $'...' word: any bytes, one line, no fork to decode it."""
    data = text.encode("utf-8", errors="surrogateescape").replace(b"\0", b"")  # bash strings hold no NUL
    return "$'" + "".join(chr(b) if b in _PLAIN else f"\\x{b:02x}" for b in data) + "'"


class ShellError(InfrastructureError):
    """The shell could not be started or restarted (the container is gone or broken)."""


@dataclass
class CommandResult:
    """What one command produced."""

    output: str
    """Combined stdout and stderr, head and tail kept when longer than the limit, ANSI stripped."""
    exit_code: int | None
    """The command's exit status; None when it timed out or the shell died under it."""
    timed_out: bool = False
    """The command ran past its timeout and its processes were killed."""
    restarted: bool = False
    """The shell ended (exit, exec, killed) and a new one was started; cwd and variables are reset."""
    cut_chars: int = 0
    """How many characters of output were dropped from the middle."""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    """Human-readable notes on timeouts, cuts, restarts, memory and pids (recorded here only; the env renders them)."""


class HeadTail:
    """Keeps the first and last `limit/2` characters of a stream in bounded memory."""

    def __init__(self, limit: int):
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.head: list[str] = []
        self.head_len = 0
        self.tail: list[str] = []
        self.tail_len = 0
        self.total = 0

    def add(self, text: str) -> None:
        self.total += len(text)
        if self.head_len < self.head_limit:
            take = text[: self.head_limit - self.head_len]
            self.head.append(take)
            self.head_len += len(take)
            text = text[len(take) :]
        if text:
            self.tail.append(text)
            self.tail_len += len(text)
            if self.tail_len > 2 * self.tail_limit:
                joined = "".join(self.tail)[-self.tail_limit :]
                self.tail, self.tail_len = [joined], len(joined)

    def text(self) -> tuple[str, int]:
        head = "".join(self.head)
        tail = "".join(self.tail)[-self.tail_limit :] if self.tail else ""
        cut = self.total - len(head) - len(tail)
        if cut <= 0:
            return head + tail, 0
        return f"{head}\n[... {cut} characters cut from the middle of the output ...]\n{tail}", cut


class ShellSession:
    """One persistent bash in a running container."""

    def __init__(
        self,
        api: docker.APIClient,
        container_id: str,
        workdir: str,
        env: dict[str, str] | None = None,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        user: str = "",
        strip_ansi: bool = True,
        reset_container: Callable[[], None] | None = None,
        pids_limit: int | None = None,
        stream: Any = None,
        engine_seconds: float = 0.0,
    ):
        self.api = api
        self._stream = stream
        """The container's own stdio, attached before it started, where its main process started a bash for this
        session (`lifecycle`); taken by the first start only. None: every shell is an exec."""
        self.attached = False
        """Whether the running bash is the container's attached one: its stream does not end when that bash
        does (the container's main process holds it), so its end is found by `_EXIT_TRAP`'s line or the probe."""
        self._engine_seconds = engine_seconds
        """What the engine took to start the container (or the last exec): `start_timeout` scales with it."""
        self.pids_limit = pids_limit
        """The container's pid limit, for the agent's shell: a command whose output shows bash could not fork
        for it (a fork bomb holds every pid) has every process in the container stopped (`_stop_all`)."""
        self.reset_container = reset_container
        """Stops every process in the container (files kept): the way out of a fork bomb, see `_stop_all`.
        Without it a stuck shell is only killed, and a shell that cannot start is an error."""
        self.container_id = container_id
        self.workdir = workdir
        self.env = shell_environment(env)
        self.output_limit = output_limit
        self.user = user
        self.strip_ansi = strip_ansi
        self._sock: socket.socket | None = None
        self._response: Any = None
        self._frames = b""
        self.pid: int | None = None
        self.exec_id: str | None = None
        """The engine's exec of the bash started last (None for the container's attached bash): `FileShell.close_and_wait`
        asks the engine whether it has ended."""
        self.exe = ""
        self._exit_token = ""
        self._stops = 0
        """How many times this session had every process stopped (`_stop_all`): `run` stops them at most once per command."""

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start bash and learn its pid (a few tries: an exec can fail while the container is busy)."""
        for attempt in range(_START_ATTEMPTS):
            if attempt:
                time.sleep(_START_BACKOFF * attempt)
            why, again = self._start_once()
            if not why:
                return
            if not again:
                break
        raise ShellError(f"the shell in container {self.container_id[:12]} did not answer: {why}")

    def _start_once(self) -> tuple[str, bool]:
        """Start bash: ("", _) when it answered, else what went wrong (the session is then
        closed) and whether another try may help (not after the probe's full timeout). The
        container's attached bash is tried first, once; then each try is an exec."""
        stream, self._stream = self._stream, None
        engine_seconds = self._engine_seconds
        if stream is None:
            asked = time.monotonic()
            try:
                exec_id = self.api.exec_create(
                    self.container_id,
                    ["/bin/bash", "--noprofile", "--norc"],
                    stdin=True,
                    stdout=True,
                    stderr=True,
                    tty=False,
                    workdir=self.workdir,
                    environment=self.env,
                    user=self.user,
                )["Id"]
                stream = self.api.exec_start(exec_id, socket=True, demux=False)
                self.exec_id = exec_id
            except docker.errors.DockerException as exc:
                raise ShellError(f"cannot start a shell in container {self.container_id[:12]}: {exc}") from None
            engine_seconds = self._engine_seconds = time.monotonic() - asked
            self.attached = False
        else:
            self.attached, self.exec_id = True, None
        self._response = stream
        sock: socket.socket = engine.raw_socket(stream)
        self._sock = sock
        self._frames = b""
        self._exit_token = secrets.token_hex(12)
        # The attached bash's stream outlives it (the main process holds it): it says when it exits.
        init = _SESSION_INIT + (_EXIT_TRAP.format(token=self._exit_token) if self.attached else "")
        try:
            sock.sendall(init.encode())
        except OSError as exc:
            self.close()
            return f"it closed at once: {exc}", True
        timeout = start_timeout(engine_seconds, _load_per_core())
        asked = time.monotonic()
        result = self.run('echo "__SWE_PID $$ $(readlink /proc/$$/exe)"', timeout=timeout, _internal=True)
        found = re.search(r"^__SWE_PID (\d+) (\S+)$", result.output, re.MULTILINE)
        if result.exit_code != 0 or not found:
            self.close()
            return repr(result.output[-200:]), time.monotonic() - asked < timeout
        self.pid, self.exe = int(found.group(1)), found.group(2)
        return "", False

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
        if self._response is not None and self._response is not sock:
            try:
                self._response.close()
            except Exception:  # noqa: BLE001 - best effort on a socket wrapper that may be half-closed
                pass
        self._response = None

    # ------------------------------------------------------------ commands

    def run(self, command: str, timeout: float, _internal: bool = False) -> CommandResult:
        """Run `command` in the session and return its output and exit code.

        Never raises for anything the command does (timeouts, `exit`, garbage output);
        raises ShellError only when no shell can be started at all.
        """
        stops = self._stops
        result = self._run(command, timeout, _internal)
        if not _internal and self._stops == stops and self._out_of_pids(result.output):
            # A fork bomb (or a leak of processes) holds every pid: nothing inside can clean it
            # up, and every later command would crawl. Stop all processes; the files stay. Not when
            # this command's recovery stopped them already: that would also kill the new shell it
            # started, and the next command would start a third.
            why = self._stop_all(f"the container ran out of process ids (limit {self.pids_limit}); ")
            result.notes.append(f"{why} and the shell will start afresh")
        return result

    def _out_of_pids(self, output: str) -> bool:
        """Whether `output` shows bash could not fork for lack of pids, in a shell given the pid limit's way out."""
        return self.pids_limit is not None and self.reset_container is not None and _PIDS_EXHAUSTED in output

    def _run(self, command: str, timeout: float, _internal: bool) -> CommandResult:
        started = time.monotonic()
        if self._sock is None:
            if _internal:
                raise ShellError("shell is not running")
            self.start()
        sock = self._sock
        assert sock is not None  # start() returns only with a shell attached (else ShellError)
        token = secrets.token_hex(12)
        line = (
            # Clear the abort flag first: a SIGUSR1 meant for the previous command may have
            # arrived just after it ended, and must not skip this one.
            f"__SWE_ABORT=; eval {ansi_c_quote(command)} </dev/null 2>&1; "
            f"__SWE_RC=$?; __SWE_ABORT=; printf '\\n__SWE_ENV_DONE_%s_%s__\\n' '{token}' \"$__SWE_RC\"\n"
        )
        collected = HeadTail(self.output_limit)
        result = CommandResult(output="", exit_code=None)
        try:
            # Bounded too: a shell stopped by a signal (`kill -STOP`) reads nothing, and a long command
            # fills the socket's buffers.
            sock.settimeout(max(timeout, 1.0))
            sock.sendall(line.encode())
        except TimeoutError:
            self.close()
            result.timed_out = True
            result.notes.append(f"the shell did not take the command within {timeout:g} s")
            if _internal:
                return self._finish(result, collected, started)
            if self.reset_container is not None:
                why = self._stop_all("the shell was stopped, so ")
                return self._after_death(result, collected, started, why, stopped=True)
            self._kill_shell()
            return self._after_death(result, collected, started, "the shell was stopped and was killed")
        except OSError:
            if _internal:
                self.close()
                return self._finish(result, collected, started)
            return self._after_death(result, collected, started, "the shell was not running")
        outcome = self._read_until(sock, token, collected, deadline=started + timeout)
        if _internal and not isinstance(outcome, int):
            # The session's own probe: no recovery from here (recovery starts a session, which
            # runs this probe); the caller decides.
            self.close()
            return self._finish(result, collected, started)
        if outcome == "timeout":
            result.timed_out = True
            self._kill_children()
            outcome = self._read_until(sock, token, collected, deadline=time.monotonic() + _GRACE_AFTER_KILL)
            result.notes.append(f"command timed out after {timeout:g} s; its processes were killed")
            if outcome == "timeout":
                # Still no marker: the shell itself is stuck (a builtin loop), or the pid limit is
                # exhausted (a fork bomb) so nothing inside can be killed: stop every process.
                if self.reset_container is not None:
                    why = self._stop_all("the command could not be stopped, so ")
                    return self._after_death(result, collected, started, why, stopped=True)
                self._kill_shell()
                return self._after_death(result, collected, started, "the shell was stuck and was killed")
        if outcome == "eof":
            return self._after_death(result, collected, started, "the shell exited")
        if outcome == "replaced":
            self._kill_shell()
            return self._after_death(result, collected, started, "the command replaced the shell (exec)")
        if isinstance(outcome, int) and not result.timed_out:  # every other outcome returned above
            result.exit_code = outcome
        return self._finish(result, collected, started)

    def _finish(self, result: CommandResult, collected: HeadTail, started: float) -> CommandResult:
        text, cut = collected.text()
        if self.strip_ansi:
            text = _ANSI.sub("", text)
        result.cut_chars = cut
        if cut:
            result.notes.append(f"output was {collected.total} characters; {cut} cut from the middle")
        result.output = text
        result.seconds = time.monotonic() - started
        return result

    def _after_death(self, result: CommandResult, collected: HeadTail, started: float, why: str, stopped: bool = False) -> CommandResult:
        """Start a new shell after this one died; `stopped`: every process was stopped already."""
        result.exit_code = None
        result.restarted = True
        self.close()
        if self.reset_container is not None and not stopped and (result.timed_out or self._out_of_pids(collected.text()[0])):
            # A command that outlived its timeout and took the shell down, or a shell that ended while bash
            # could not fork (typically a fork bomb holding every pid): a new shell would wait for pids too,
            # so stop everything first, once (`run` then stops nothing more).
            why = self._stop_all(f"{why}; ")
        try:
            self.start()
        except ShellError as exc:
            if self.reset_container is None:
                raise ShellError(f"{why} and a new one could not be started: {exc}") from None
            stopped_why = self._stop_all(f"{why}; no new shell could start, so ")
            try:
                self.start()
            except ShellError as again:
                raise ShellError(f"{why}; even after stopping every process no shell could start: {again}") from None
            why = stopped_why
        result.notes.append(f"{why}; a new shell was started (working directory and variables were reset)")
        return self._finish(result, collected, started)

    def _stop_all(self, why: str) -> str:
        """The shell's one way out of a fork bomb: every process in the container stopped by the
        owner's `reset_container` (the pid limit leaves nothing inside that could kill them);
        returns `why` with that said. Taken when a command outlived its timeout and could not be
        killed or took the shell down, and when no new shell could start."""
        assert self.reset_container is not None  # its callers come here only when the owner gave one
        self._stops += 1
        self.reset_container()
        return f"{why}{_STOPPED_ALL}"

    # ------------------------------------------------------------ socket reading

    def _read_until(self, sock: socket.socket, token: str, collected: HeadTail, deadline: float) -> int | Literal["timeout", "eof", "replaced"]:
        """Read `sock` (the session's) until this command's marker: returns the exit code, or "timeout",
        "eof" or "replaced"."""
        keep = _MARKER_MAX
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        next_probe = time.monotonic() + _PROBE_INTERVAL
        while True:
            now = time.monotonic()
            if now >= deadline:
                collected.add(pending)
                return "timeout"
            if now >= next_probe:
                state = self._shell_state()
                if state == "replaced" or (state == "gone" and self.attached):
                    # An exec's stream ends with its bash (EOF comes by itself); the attached one's does not.
                    collected.add(pending)
                    return "replaced" if state == "replaced" else "eof"
                next_probe = now + _PROBE_INTERVAL
            payload = self._next_payload(sock, min(deadline, next_probe) - now)
            if payload is None:
                continue
            if payload == b"":
                collected.add(pending + decoder.decode(b"", final=True))
                return "eof"
            pending += decoder.decode(payload)
            # Markers with another token (printed by the command itself) are just output.
            match = next((m for m in _MARKER.finditer(pending) if m.group(1) == token), None)
            if match:
                collected.add(pending[: match.start()])
                return int(match.group(2))
            if self.attached:
                exited = pending.find(_EXITED.format(token=self._exit_token))
                if exited >= 0:  # printed by the EXIT trap (or by the agent, who then only loses its shell)
                    collected.add(pending[:exited])
                    return "eof"
            if len(pending) > keep:
                collected.add(pending[:-keep])
                pending = pending[-keep:]

    def _next_payload(self, sock: socket.socket, timeout: float) -> bytes | None:
        """One payload from Docker's multiplexed stream; b"" at EOF, None on timeout."""
        while True:
            if len(self._frames) >= 8:
                size = struct.unpack(">I", self._frames[4:8])[0]
                if len(self._frames) >= 8 + size:
                    payload = self._frames[8 : 8 + size]
                    self._frames = self._frames[8 + size :]
                    if payload:
                        return payload
                    continue
            if not _readable(sock, timeout):
                return None
            try:
                data = sock.recv(1 << 16)
            except (OSError, ValueError):
                return b""
            if not data:
                return b""
            self._frames += data

    # ------------------------------------------------------------ killing

    def _exec_quick(self, command: list[str]) -> bytes:
        """Run a helper as root (it may have to kill root's processes): by absolute path, with only
        the system folders on PATH (the image's PATH starts with a venv), output bounded, waited for
        at most `_HELPER_DEADLINE` (the agent's processes may stop it: `kill -STOP -1` in a loop); b""
        when it did not answer in time. The callers fall back on stopping every process through the engine."""
        answer: list[bytes] = []

        def run() -> None:
            try:
                exec_id = self.api.exec_create(self.container_id, command, stdout=True, stderr=True, user="root", environment={"PATH": _SYSTEM_PATH})[
                    "Id"
                ]
                answer.append((self.api.exec_start(exec_id) or b"")[:65536])
            except (docker.errors.DockerException, requests.RequestException):
                pass

        helper = threading.Thread(target=run, name=f"shell-helper-{self.container_id[:12]}", daemon=True)
        helper.start()
        helper.join(_HELPER_DEADLINE)  # a helper still waiting ends with its process or the engine's read timeout
        return answer[0] if answer else b""

    def _shell_state(self) -> Literal["intact", "replaced", "gone"]:
        """ "replaced" when our bash pid now runs another program (`exec sh`, `exec python`), "gone" when
        it no longer runs (a zombie included), "intact" otherwise and when the probe did not answer.

        The probe uses the shell's builtins only (`test -e`, `-ef`): a probe that had to fork (`readlink`) printed
        sh's "cannot fork" when a fork bomb held every pid, which read as another program, so a stuck shell was
        taken for one an `exec` replaced. An answer other than the probe's three words is no answer."""
        if self.pid is None or not self.exe:
            return "intact"
        answer = self._exec_quick(["/bin/sh", "-c", _PROBE_SHELL, "probe", str(self.pid), self.exe])
        return _PROBE_ANSWERS.get(answer.decode(errors="replace").strip(), "intact")

    def _kill_children(self) -> None:
        if self.pid is not None:
            # USR1 first: bash runs the abort trap as soon as its foreground command dies.
            self._exec_quick(["/bin/sh", "-c", f"kill -USR1 {self.pid} 2>/dev/null; {_KILL_TREE}", "kill-tree", str(self.pid)])

    def _kill_shell(self) -> None:
        if self.pid is not None:
            self._exec_quick(["/bin/sh", "-c", _KILL_TREE, "kill-tree", str(self.pid)])
            self._exec_quick(["/bin/sh", "-c", 'kill -KILL "$1"', "kill", str(self.pid)])


def _readable(sock: socket.socket, timeout: float) -> bool:
    """Whether `sock` has data (or its end) within `timeout` seconds.

    poll, not select: a driver holding a thousand live episodes has socket numbers past 1023, which
    `select.select` refuses ("filedescriptor out of range"); poll takes any number (and allocates no
    descriptor of its own, unlike epoll). select only where the platform has no poll (Windows)."""
    if not hasattr(select, "poll"):
        ready, _, _ = select.select([sock], [], [], max(timeout, 0))
        return bool(ready)
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(max(timeout, 0) * 1000))
