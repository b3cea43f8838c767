"""One-off processes in a container (not the agent's shell), every wait bounded by a host deadline.

`exec` runs a command and brings back the head and tail of its two streams, framed by a random token
so the engine's loss of a quick process's output is told apart from a process that wrote into them;
`exec_to_end` runs code the host does not trust (the tests, with the agent's patch) and stops whatever
it left behind. Past its deadline (`DEADLINE_GRACE` after the timeout) every process in the container
is stopped through the engine (`Lifecycle.stop_all_processes`, the container killed when even that fails).
"""

from __future__ import annotations

import shlex
import threading
import time
import uuid
from typing import ClassVar

import docker.errors
import requests

from ..data.task import Service
from ..errors import Termination
from . import engine
from .lifecycle import STOP_ALL_TIMEOUT, Lifecycle, SandboxError
from .streams import FRAME_BOTH_STREAMS, ExecResult, Framed, FramedRun, HeadTailBytes, stream_into

_LOST_OUTPUT_RETRIES = 2
_EXEC_POLL_SECONDS = 0.25
"""How often `exec_to_end` asks the engine whether the command has ended."""
DEADLINE_GRACE = 15.0
"""Seconds past a one-off process's timeout after which the host stops it through the engine (`exec`,
`exec_to_end`): the in-container `timeout` kills at the timeout and 5 s later, unless the code it runs
stopped it (`kill -STOP -1` stops every process in the container, `timeout` included)."""
_NO_TIMEOUT_DEADLINE = 900.0
"""The host's deadline for a one-off process given no timeout (the grader's git steps, service starts)."""
MAX_EXEC_OUTPUT = 64 * 1024 * 1024
"""Bytes of each stream of a one-off process kept by default (head and tail; the rest is counted)."""
SERVICES_LOG = "/run/swe-env-services.log"
"""Where the task's services write their output (`task.Service`)."""


class OutputLost(SandboxError):
    """The engine kept losing a read's output: an infrastructure failure, unless the engine's list of the
    container's changes shows the agent replaced a program the host runs (`endings.judge`: bash made to print
    nothing looks the same)."""

    ending: ClassVar[Termination] = "sandbox_died"


class DeadlineExceeded(SandboxError):
    """A one-off process did not end by the host's deadline (its timeout plus `DEADLINE_GRACE`), so every
    process in the container was stopped through the engine. Whose fault it is depends on the container:
    in one where untrusted code ran, the code's: in the agent's container, the agent's (`ending`); in the
    grader's, the engine's records decide (`endings.judge`)."""

    ending: ClassVar[Termination] = "sandbox_killed"


class Executor:
    """One-off processes in the container of `life`, as its spec's user, in its workdir and environment."""

    def __init__(self, life: Lifecycle):
        self.life = life
        self.starting = 0
        """One-off processes being started: the engine refuses to start one in a frozen container, so the
        host's walk of the layer waits for a later check meanwhile (the grader's watch runs beside `exec_to_end`)."""

    def exec(
        self,
        argv: list[str] | str,
        timeout: float | None = None,
        workdir: str | None = None,
        env: dict[str, str] | None = None,
        *,
        idempotent: bool = False,
        user: str | None = None,
        max_output: int = MAX_EXEC_OUTPUT,
    ) -> ExecResult:
        """Run a one-off process (not in the agent's shell) and wait for it.

        It runs as `user`, by default the sandbox's user (root when the task names none); pass
        `user="root"` for what needs root. A string is run by `/bin/bash -c`; give programs by
        absolute path in anything run after the agent acted (the image's PATH starts with the
        venv). With a timeout, the process is wrapped in coreutils `timeout` inside the
        container (exit code 124 when it fired). Of each stream at most `max_output` bytes
        reach the host (the first and last halves; `cut` counts what was dropped), so a
        process printing gigabytes costs the host no memory.

        The engine (seen with 20.10 under load) now and then hands back none of the output of
        a process that ended quickly, with the right exit code. So both streams start and end
        with a random token: when a stream is empty, an `idempotent` command (a read) is run
        again (`OutputLost` after three losses); any other comes back with `output_lost` set,
        because running it twice could change things. Bytes after the closing token are dropped;
        a stream that has bytes but not the wrapper's framing was written into or cut short from
        inside the container: SandboxError, never `OutputLost`. The command runs as a program
        (through `env`), never a shell builtin.

        The host waits at most the timeout plus `DEADLINE_GRACE` (`_NO_TIMEOUT_DEADLINE` without
        one), whatever happens inside: then every process in the container is stopped through the
        engine (the container killed when even that fails) and `DeadlineExceeded` raised.
        """
        spec, name = self.life.spec, self.life.name
        if isinstance(argv, str):
            argv = ["/bin/bash", "-c", argv]
        command = argv
        if timeout is not None:
            command = ["/usr/bin/timeout", "-k", "5", str(int(max(timeout, 1))), *command]
        token = f"__SWE_EXEC_{uuid.uuid4().hex}"
        command = ["/bin/bash", "-c", FRAME_BOTH_STREAMS, "swe-env-exec", token, *command]
        mark = token.encode()
        limit = max(int(max_output), 4 * len(mark))
        deadline = (_NO_TIMEOUT_DEADLINE if timeout is None else max(timeout, 1)) + DEADLINE_GRACE
        for _attempt in range(1 + (_LOST_OUTPUT_RETRIES if idempotent else 0)):
            try:
                exit_code, kept = self._exec_bounded(
                    command,
                    workdir or spec.workdir,
                    {**dict(spec.env), **(env or {})},
                    (spec.user or "") if user is None else user,
                    limit,
                    deadline,
                    argv[0],
                )
            except (docker.errors.DockerException, requests.RequestException) as exc:
                raise SandboxError(f"container {name} failed to run {argv[0]}: {exc}") from None
            # The engine's fault is a stream with nothing at all: the wrapper writes the token on both
            # before anything else. Bytes after the closing token are late (a process left behind, or one
            # that opened the stream through /proc) and dropped, as in `exec_to_end`.
            lost = not (kept[0].total and kept[1].total)
            if not lost:
                break
        if lost and idempotent:
            raise OutputLost(f"the engine lost the output of {argv[0]} in {name} {1 + _LOST_OUTPUT_RETRIES} times in a row")
        if lost:
            return ExecResult(exit_code, "", "", output_lost=True)
        framed = [keeper.framed(mark) for keeper in kept]
        if framed[0] is None or framed[1] is None or not (framed[0].complete and framed[1].complete):
            # The engine delivered bytes, but not as the wrapper wrote them: something in the container
            # wrote into the streams or stopped the wrapper. Never the engine's loss (`OutputLost`).
            raise SandboxError(
                f"the output of {argv[0]} in {name} was not what its wrapper wrote: a process in the container wrote into it or stopped it"
            )
        return ExecResult(
            exit_code,
            framed[0].data.decode("utf-8", errors="replace"),
            framed[1].data.decode("utf-8", errors="replace"),
            cut=framed[0].cut + framed[1].cut,
        )

    def _exec_bounded(
        self, command: list[str], workdir: str, environment: dict[str, str], user: str, limit: int, deadline: float, what: str
    ) -> tuple[int, tuple[HeadTailBytes, HeadTailBytes]]:
        """Run `command` and stream its output, keeping the head and tail of each stream, for at most
        `deadline` seconds: then every process in the container is stopped through the engine and
        `DeadlineExceeded` raised."""
        api = engine.client().api
        kept = (HeadTailBytes(limit), HeadTailBytes(limit))
        failure: list[BaseException] = []
        self.starting += 1  # a disk check does not freeze the container while this one-off runs
        try:
            exec_id = api.exec_create(self.life.handle.id, command, stdout=True, stderr=True, workdir=workdir, environment=environment, user=user)[
                "Id"
            ]
            streaming = threading.Thread(target=stream_into, args=(api, exec_id, kept, failure), name=f"{self.life.name}-exec", daemon=True)
            streaming.start()
            streaming.join(deadline)
        finally:
            self.starting -= 1
        if streaming.is_alive():
            self._stop_overrun(streaming)
            raise DeadlineExceeded(
                f"{what} in {self.life.name} did not end within its deadline of {deadline:g} s "
                "(something in the container stopped it or kept its output open); "
                "every process in the container was stopped"
            )
        if failure:
            raise failure[0]
        exit_code = api.exec_inspect(exec_id).get("ExitCode")
        return (exit_code if exit_code is not None else -1), kept

    def _stop_overrun(self, streaming: threading.Thread) -> None:
        """Past a deadline: stop every process through the engine so the streams end; when even that
        fails (SandboxError), kill the container through the engine (it cannot be used again)."""
        try:
            self.life.stop_all_processes()
        except SandboxError:
            self.life.kill()
        streaming.join(STOP_ALL_TIMEOUT)

    def exec_to_end(self, argv: list[str], timeout: float, env: dict[str, str] | None = None, *, max_stdout: int, max_stderr: int) -> FramedRun:
        """Run code the host does not trust (the tests, with the agent's patch) and, once its
        process has ended, stop every process left in the container (`stop_all_processes`), so
        nothing of it runs on. What it writes to its two streams reaches the host as it is
        written, never through a file in the container that a process left behind could
        rewrite afterwards.

        Each stream is kept between two copies of a random token that the wrapper writes before
        the command starts and after it ends (`FramedRun`): what a process the command left
        behind writes after the second copy is dropped. A stream without the first copy is one
        the engine lost (SandboxError, ours: nothing of the command has run when it is written).
        Of each stream at most `max_stdout` / `max_stderr` bytes are kept (head and tail).

        The host waits at most `timeout` plus `DEADLINE_GRACE`, whatever the code does inside (it
        may stop every process, the in-container `timeout` included): then every process is stopped
        through the engine (or the container killed, when even that fails), and the run comes back
        with `overran` set and no exit code (-1); nothing it wrote is complete.
        """
        spec, name = self.life.spec, self.life.name
        token = f"__SWE_EXEC_{uuid.uuid4().hex}"
        mark = token.encode()
        command = ["/bin/bash", "-c", FRAME_BOTH_STREAMS, "swe-env-exec", token, "/usr/bin/timeout", "-k", "5", str(int(max(timeout, 1))), *argv]
        kept = (HeadTailBytes(max_stdout + 4 * len(mark)), HeadTailBytes(max_stderr + 4 * len(mark)))
        api = engine.client().api
        failure: list[BaseException] = []
        self.life.code_ran = True  # from now on, processes a stop cannot end are this code's doing
        self.starting += 1  # until the engine says the process runs (or it has ended)
        starting = True
        try:
            exec_id = api.exec_create(
                self.life.handle.id,
                command,
                stdout=True,
                stderr=True,
                workdir=spec.workdir,
                environment={**dict(spec.env), **(env or {})},
                user=spec.user or "",
            )["Id"]
            streaming = threading.Thread(target=stream_into, args=(api, exec_id, kept, failure), name=f"{name}-streams", daemon=True)
            streaming.start()
            # The streams end when every process holding them has closed them; the command's own
            # end is the exec's. Whichever comes first, what is left behind is stopped next. The
            # host's deadline holds even when the code stopped every process in the container,
            # the in-container `timeout` included (`kill -STOP -1`).
            deadline = time.monotonic() + max(timeout, 1) + DEADLINE_GRACE
            overran = False
            while streaming.is_alive():
                streaming.join(_EXEC_POLL_SECONDS)
                running = streaming.is_alive() and api.exec_inspect(exec_id).get("Running")
                if starting and (running or not streaming.is_alive()):
                    starting = False
                    self.starting -= 1
                if streaming.is_alive() and not running:
                    break
                if streaming.is_alive() and time.monotonic() > deadline:
                    overran = True
                    break
            if overran:
                self._stop_overrun(streaming)
                return FramedRun(-1, _unframed(kept[0], mark), _unframed(kept[1], mark), overran=True)
            self.life.stop_all_processes()
            streaming.join(STOP_ALL_TIMEOUT)
            if streaming.is_alive():
                raise SandboxError(f"the output of {argv[0]} in {name} did not end after every process was stopped")
            if failure:
                raise failure[0]
            exit_code = api.exec_inspect(exec_id).get("ExitCode")
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise SandboxError(f"container {name} failed to run {argv[0]}: {exc}") from None
        finally:
            if starting:
                self.starting -= 1
        framed = [keeper.framed(mark) for keeper in kept]
        if framed[0] is None or framed[1] is None:
            raise SandboxError(f"the engine lost the output of {argv[0]} in {name}")
        return FramedRun(exit_code if exit_code is not None else -1, framed[0], framed[1])

    def start_services(self, services: tuple[Service, ...]) -> None:
        """Start the task's services as root in the background, each waited for until its `ready` command
        succeeds (SandboxError with the end of its log when it does not within `ready_timeout`)."""
        for service in services:
            launched = self.exec(
                ["/bin/bash", "-c", f"nohup /bin/bash -c {shlex.quote(service.run)} >>{SERVICES_LOG} 2>&1 </dev/null &"], user="root"
            )
            if launched.exit_code != 0:
                raise SandboxError(f"service `{service.run}` could not be started: {launched.output.strip()[-300:]}")
            if not service.ready:
                continue
            deadline = time.monotonic() + service.ready_timeout
            while self.exec(["/bin/bash", "-c", service.ready], user="root", timeout=service.ready_timeout).exit_code != 0:
                if time.monotonic() > deadline:
                    log = self.exec(["/usr/bin/tail", "-c", "300", SERVICES_LOG], user="root").output.strip()
                    raise SandboxError(
                        f"service `{service.run}` was not ready after {service.ready_timeout:g} s "
                        f"(`{service.ready}` kept failing); its log ends: {log}"
                    )
                time.sleep(0.2)


def _unframed(kept: HeadTailBytes, mark: bytes) -> Framed:
    """What a run the host stopped at its deadline wrote: never complete, whatever the bytes say."""
    framed = kept.framed(mark)
    return Framed(framed.data if framed is not None else b"", complete=False, cut=framed.cut if framed else 0)
