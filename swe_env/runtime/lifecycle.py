"""One container's life and what the engine's records say about its end.

`Lifecycle` starts the container (limits, no network, dropped capabilities, a main process that waits
out the TTL), removes it on close whatever happened, stops every process in it from outside, and reads
the engine's evidence of what code inside did (`stopped_processes`, `stopped_from_inside`,
`altered_programs`, `unstopped`, `shell_refused`): the facts `endings` judges by. Nothing here runs a program of the container
but the engine's own test of whether a shell starts there (`shell_refused`: `bash -c 'exit 0'`, its exit code alone read).

The container's main process is a small bash that waits out the TTL, so a container whose owner was
SIGKILLed ends by itself and, started with auto-remove, disappears; code that stops it (`kill -STOP -1`)
cannot keep the container past the TTL either, since its `swe_env.expires` label lets
`engine.collect_garbage` remove it from the host. On SIGUSR1 that bash kills every other process in the
container (see `stop_all_processes`).

Started for an agent's shell (`start(shell=True)`), that bash first starts the agent's bash as a child on
the container's stdio, which the host attached before the start (`engine.run_attached`): the episode's
first shell then costs the engine no exec (a `runc exec` through the shim, the largest part of an open
after the container's own create and start). The main process keeps no stdio of its own, waits out the TTL
as before, and its SIGUSR1 trap kills that bash too; every later shell is an exec (`shell.ShellSession`).
No sandbox keeps a log: the engine's log driver is `none`, so nothing written to the container's stdout
(the attached shell's, or `/proc/1/fd/1` by code inside) lands in a file on the host.

Why one module of this size (over 400 lines): the evidence is read from what this life's own acts leave in the
engine's records, so the acts and their reading change together: our SIGUSR1 and SIGCONT are `kill` events that
`stopped_from_inside` must not count (`_OUR_SIGNALS`), the main process's exit 0 is the TTL only once the TTL it
was started with has run out (`started_at`), and the processes `stop_all_processes` leaves are told by the main
process's own shape (`_others_left`). Split, each half would carry the other's constants. Nothing else here runs
in the container; one-off processes (`execute`), files (`files`) and the disk (`disk`) are modules of their own.
"""

from __future__ import annotations

import atexit
import calendar
import concurrent.futures
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import docker.errors
import requests

from ..endings import Evidence
from ..errors import InfrastructureError, infrastructure_errors
from . import changes, engine
from .shell import shell_environment
from .spec import SandboxSpec
from .streams import path_stat, stat_is_folder

if TYPE_CHECKING:
    from docker.models.containers import Container

_MAIN_PROCESS = 'trap "kill -9 -1" USR1; end=$((SECONDS + $1)); while [ "$SECONDS" -lt "$end" ]; do sleep "$((end - SECONDS))" & wait "$!"; done'
"""The container's main process: waits out the TTL ($1 seconds); on SIGUSR1 kills every other process.
`wait` returns as soon as a trapped signal arrives, and the loop starts a new `sleep` for the rest."""
_MAIN_PROCESS_WITH_SHELL = (
    'trap "kill -9 -1" USR1; end=$((SECONDS + $1)); shift; '
    'set -m; (for pair in "$@"; do export "$pair"; done; export SHLVL=0; exec /bin/bash --noprofile --norc) <&0 & '
    "set +m; exec </dev/null >/dev/null 2>&1; "
    'while [ "$SECONDS" -lt "$end" ]; do sleep "$((end - SECONDS))" & wait "$!"; done'
)
"""`_MAIN_PROCESS` that first starts the agent's bash on the container's stdio, with the shell's environment
($2...: NAME=value, as an exec would get it). Job control on for that one child only: without it bash ignores
SIGINT and SIGQUIT in a background child, and whether its `exec` restores them depends on bash's version (an
exec'd shell ignores nothing; `tests/runtime/test_open_path.py` compares the two). Then the main process lets go of the
container's stdio."""
ATTACHED_SHELL = True
"""Whether `start(shell=True)` gives the sandbox its first shell through its main process (see above); off
only to measure the exec path against it (`bench/live.py --compare`)."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ROOT_USERS = (None, "", "root", "0")
_STOPPED_STATES = ("T", "t")
"""ps's states of a process stopped by a signal (`T`) or in a tracer's stop (`t`)."""
_OUR_SIGNALS = {"10", "SIGUSR1", "USR1", "18", "SIGCONT", "CONT"}
"""How the engine's event log names the signals `stop_all_processes` sends (SIGUSR1, SIGCONT)."""
STOP_ALL_TIMEOUT = 20.0
_RESIGNAL_SECONDS = 0.5
"""How often `stop_all_processes` signals the main process again while processes remain."""
_TTL_SLACK_SECONDS = 5
"""A main process ending with exit code 0 this long before its TTL was not the TTL. Both ends are the engine's
records (its `State.StartedAt`, the `die` event's time), so no clock of the host's is in it; the slack covers bash
counting whole seconds (`SECONDS`, up to 1 s early) and the engine recording the start a little after the process
started (a loaded engine)."""
_ENGINE_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")
_CREATE_WAIT_SECONDS = 30.0  # close() waits this long for a create an interrupt cut short
_ENDING_WAIT_SECONDS = 10.0
"""How long a stop waits for the engine to report a container stopped once its init left the engine's process list."""
_PROBE_SECONDS = 30.0
"""The longest `shell_refused` waits for one exec of the shell to answer."""
_PROBE_TTL_SECONDS = 600
"""The time to live of the fresh container `shell_refused` compares with (removed at once after its one exec)."""
ENGINE_READ_TIMEOUT = 60
"""Seconds the engine may take to start answering a count or a read (then the count is "too many")."""
CHANGES_CHUNK = 64 * 1024
# Capabilities an agent never needs; dropping them narrows what hostile code can do.
_DROPPED_CAPS = ["NET_RAW", "MKNOD", "AUDIT_WRITE", "SYS_CHROOT", "SETFCAP"]


class SandboxError(InfrastructureError):
    """The container could not be started or has died: an infrastructure failure."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient
        """The engine failed in a way another try may not (an error of its own, a timeout): `pool.start`
        opens once more in a new container; a missing image or a refused option is not transient."""


# Strong references on purpose: a container dropped half-way (an interrupt between start and
# the caller's assignment, or inside close) must still be found and removed at exit.
_live: set[Any] = set()
_live_lock = threading.Lock()


def close_all() -> None:
    """Remove every container this process still holds (signal handlers and atexit call this)."""
    with _live_lock:
        pending = list(_live)
    for owner in pending:
        try:
            owner.close()
        except Exception:  # noqa: BLE001 - best effort while the process is going down
            pass


atexit.register(close_all)


class Lifecycle:
    """A container's life: start, the processes stopped from outside, the engine's evidence, removal.

    `owner` is what `close_all` closes at exit (the `Sandbox`, so its shells close too); `on_reset`
    runs after every process was stopped and at close (the shells, whose bash is then gone)."""

    code_ran: bool = False
    """Whether code the host does not trust has run in the container: the agent's commands (`AgentShell.run`) or
    the tests with the patch (`Executor.exec_to_end`). Processes a stop cannot end after that are its doing."""
    unstopped: str | None = None
    """Set when processes outlived every stop of `stop_all_processes` after code the host does not trust ran,
    while the engine answered every call (its listing, the signals, the kill that ended them): what was left, the
    cause `endings.judge` names (red team rt6b, A1 and A2)."""

    def __init__(self, spec: SandboxSpec, owner: Any = None):
        self.spec = spec
        self.owner = owner if owner is not None else self
        self.name = f"swe-env-{spec.kind}-{uuid.uuid4().hex[:12]}"
        self.labels = engine.managed_labels(spec.kind, spec.ttl_seconds, **dict(spec.labels))
        self.container: Container | None = None
        self.started_at: float | None = None
        self.on_reset: list[Callable[[], None]] = []
        self._creating: concurrent.futures.Future | None = None
        self._shell_stream: Any = None
        self.engine_seconds = 0.0
        """What the engine took to create and start the container: a new shell's start timeout scales with it."""
        self._record: dict | None = None
        self._record_lock = threading.Lock()
        self.code_ran = False
        self.unstopped: str | None = None

    def start(self, shell: bool = False) -> None:
        """Start the container; with `shell` (and `ATTACHED_SHELL`), its main process starts the agent's first
        bash on the container's attached stdio (`take_shell_stream`), when the spec allows: the shell runs as
        root and every variable of the environment has a shell name (else the shell is an exec, as before)."""
        with _live_lock:
            _live.add(self.owner)
        # The engine call runs in its own thread. An interrupt (Ctrl-C, SIGTERM) raised while we
        # wait for the answer would otherwise leave the engine mid-create: the name is reserved
        # but not yet findable, so close() gets "no such container" and the container appears
        # a moment later, owned by nobody. close() waits for this future before it removes.
        attach = shell and ATTACHED_SHELL and self._shell_can_attach()
        self._creating = concurrent.futures.Future()
        threading.Thread(target=self._create, args=(self._creating, attach), name=f"{self.name}-create", daemon=True).start()
        asked = time.monotonic()
        try:
            self.container, self._shell_stream = self._creating.result()
        except docker.errors.ImageNotFound:
            self._close_after_failure()
            raise SandboxError(f"image {self.spec.image} does not exist; build it with `swe-env build`") from None
        except docker.errors.DockerException as exc:
            self._close_after_failure()
            transient = not isinstance(exc, docker.errors.APIError) or exc.is_server_error()
            raise SandboxError(f"cannot start a container from {self.spec.image}: {exc}", transient) from None
        except requests.RequestException as exc:
            self._close_after_failure()
            raise SandboxError(f"cannot start a container from {self.spec.image}: the engine did not answer: {exc}", transient=True) from None
        except BaseException:
            self.owner.close()  # an interrupt, or no engine at all: nothing may stay behind, or registered
            raise
        self.started_at = time.monotonic()
        self.engine_seconds = self.started_at - asked

    def _shell_can_attach(self) -> bool:
        return self.spec.user in _ROOT_USERS and all(_NAME.fullmatch(name) for name, _value in self.spec.env)

    def take_shell_stream(self) -> Any:
        """The container's attached stdio, where its main process started the agent's first bash (once; None
        when it was not started so, was taken, or that bash was killed since)."""
        stream, self._shell_stream = self._shell_stream, None
        return stream

    def _close_after_failure(self) -> None:
        """Close after a failed start; a removal the engine refuses now is left to atexit, the TTL and gc (the
        container stays registered), so the start's own error is what the caller sees."""
        try:
            self.owner.close()
        except (docker.errors.DockerException, requests.RequestException):
            pass

    def _create(self, result: concurrent.futures.Future, attach: bool) -> None:
        spec, limits = self.spec, self.spec.limits
        options: dict[str, Any] = dict(
            name=self.name,
            auto_remove=True,
            init=True,
            working_dir=spec.workdir,
            environment=dict(spec.env),
            network_mode="bridge" if limits.network else "none",
            mem_limit=limits.memory,
            memswap_limit=limits.memory,
            nano_cpus=int(limits.cpus * 1e9),
            pids_limit=limits.pids,
            cap_drop=_DROPPED_CAPS,
            security_opt=["no-new-privileges"],
            log_config={"type": "none"},  # what reaches the container's stdout is never written on the host
        )
        try:
            if attach:
                environment = [f"{name}={value}" for name, value in shell_environment(dict(spec.env)).items()]
                result.set_result(
                    engine.run_attached(
                        spec.image,
                        ["bash", "-c", _MAIN_PROCESS_WITH_SHELL, "swe-env-main", str(spec.ttl_seconds), *environment],
                        self.labels,
                        **options,
                    )
                )
            else:
                result.set_result(
                    (
                        engine.run_container(
                            spec.image, ["bash", "-c", _MAIN_PROCESS, "swe-env-main", str(spec.ttl_seconds)], self.labels, **options
                        ),
                        None,
                    )
                )
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, which raises it
            result.set_exception(exc)

    def close(self) -> None:
        """Remove the container; safe to call twice or after the container died."""
        self._reset_attached()
        self.container = None
        if self._creating is not None and not self._creating.done():
            # Interrupted while the engine was creating it: wait for its answer (a few hundred
            # ms as a rule), so the removal below finds the container instead of racing it.
            concurrent.futures.wait([self._creating], timeout=_CREATE_WAIT_SECONDS)
            if not self._creating.done():
                # The engine is very slow: remove the container whenever its create returns.
                name = self.name

                def remove_when_created(done: concurrent.futures.Future) -> None:
                    _close_stream(done)
                    engine.remove_quietly(name)

                self._creating.add_done_callback(remove_when_created)
            else:
                _close_stream(self._creating)  # the start never took the stream: an interrupt cut it short
        # By name: also right when start() was interrupted after the engine created it. False: the
        # engine is gone (its restart ends our auto-remove containers), so it stays registered for atexit.
        if not engine.remove_container(self.name):
            return
        # Only now: an interrupt above leaves it registered, and atexit tries again.
        with _live_lock:
            _live.discard(self.owner)

    def _reset_attached(self) -> None:
        # A first bash not yet taken is gone with every other process: a shell starts by exec from now on.
        stream, self._shell_stream = self._shell_stream, None
        if stream is not None:
            _quietly_close(stream)
        for reset in self.on_reset:
            reset()

    @property
    def id(self) -> str:
        return self.container.id if self.container is not None else ""

    @property
    def handle(self) -> Container:
        """The container, for what needs one; RuntimeError before start() or after close()."""
        if self.container is None:
            raise RuntimeError(f"sandbox {self.name} has no container: it was not started, or is closed")
        return self.container

    def stop_all_processes(self) -> None:
        """Kill every process in the container but its main one; the files stay.

        The way out when the pid limit is exhausted (a fork bomb): nothing new can start
        inside to kill anything. The engine signals the container's init, which passes
        SIGUSR1 to the main bash, whose trap runs `kill -9 -1`: a builtin, so no fork is
        needed, and the kernel spares only the caller and init. Not a container restart:
        with auto-remove, the engine under load sometimes removes a container it restarts.

        When processes are still listed `STOP_ALL_TIMEOUT` later although the engine answered every call, a process
        inside kept the trap from running (a ptrace of the main bash drops its signals: red team rt6b, A1 and A2): the
        container is then killed through the engine (SIGKILL to its init ends every process, traced or stopped ones
        too, with nothing inside cooperating) and, once code the host does not trust ran (`code_ran`), that is recorded
        as its doing (`unstopped`, read by `evidence`); a SandboxError is raised either way. An engine that fails to
        answer is ours: nothing is recorded.
        """
        api = engine.client().api
        try:
            deadline = time.monotonic() + STOP_ALL_TIMEOUT
            signalled = -_RESIGNAL_SECONDS
            # The engine's `top` lists the container's processes from outside, needing no pid inside. The init's host
            # pid is the container's first process for its whole life: read from the inspect kept after the start
            # (`record`, taken in the background by the disk meter), not asked again at every stop.
            init = str(((self.record().get("State") or {}).get("Pid")) or "")
            if init in ("", "0"):
                init = str(api.inspect_container(self.handle.id).get("State", {}).get("Pid") or "")
            while self._any_left(api, init):
                now = time.monotonic()
                if now > deadline:
                    raise self._kill_unstopped(api)
                if now - signalled >= _RESIGNAL_SECONDS:
                    # SIGCONT too, and again until it worked: code in the container may have stopped every
                    # process (`kill -STOP -1`), the main bash included, and a stopped bash runs no trap
                    # (init passes both signals on; SIGKILL from the trap ends stopped processes too).
                    api.kill(self.handle.id, signal="SIGUSR1")
                    api.kill(self.handle.id, signal="SIGCONT")
                    signalled = now
                time.sleep(0.05)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise SandboxError(f"the processes in container {self.name} could not be stopped: {exc}") from None
        self._reset_attached()  # the shells' bash is gone; each starts anew on next use

    def _kill_unstopped(self, api: Any) -> SandboxError:
        """Past the stop's deadline with the engine answering: kill the container through the engine and record
        what was left as the doing of the code that ran (`unstopped`); the error to raise. The engine's own errors
        propagate (ours: `stop_all_processes` turns them into a SandboxError and records nothing)."""
        left = _describe_left(api.top(self.handle.id, ps_args="-o pid,ppid,stat,args"))
        api.kill(self.handle.id, signal="SIGKILL")
        what = (
            f"processes in the container outlived every stop through the engine for {STOP_ALL_TIMEOUT:g} s while the engine "
            f"answered ({left}): a process inside kept the container's main process from ending them (a ptrace of it "
            "drops its signals), so the container was killed"
        )
        if self.code_ran:
            self.unstopped = what
        return SandboxError(f"the processes in container {self.name} could not be stopped: {what}")

    def _any_left(self, api: Any, init: str) -> bool:
        try:
            return _others_left(api.top(self.handle.id), init)
        except ValueError as exc:
            # Init gone from the list: the container's first process ended (code inside killed the main process) and
            # the container is ending. The engine may still call it running for a moment, and the evidence read next
            # (`evidence`) must see the end and its cause, not a running container with nothing stopped (which would
            # make the code's doing ours), so wait for the engine to say it stopped.
            deadline = time.monotonic() + _ENDING_WAIT_SECONDS
            while isinstance(exc, InitGone) and time.monotonic() < deadline and self.alive():
                time.sleep(0.1)
            raise SandboxError(f"the processes in container {self.name} could not be told apart: {exc}") from None

    def kill(self) -> None:
        """SIGKILL the container through the engine (every process in it ends, stopped ones too): the last
        resort past a deadline. Its auto-remove then removes it; `close` still removes it by name."""
        try:
            engine.client().api.kill(self.handle.id, signal="SIGKILL")
        except (docker.errors.DockerException, requests.RequestException):
            pass  # already gone, or the engine failed: close() removes it, or atexit and gc do

    # ------------------------------------------------------------ the engine's evidence

    def alive(self) -> bool:
        if self.container is None:
            return False
        try:
            self.container.reload()
        except docker.errors.DockerException:
            return False
        return self.container.status == "running"

    def stopped_processes(self) -> int:
        """How many of the container's processes the engine lists as stopped by a signal (state `T`) or by a tracer
        (`t`): evidence that code in the container stopped them (SIGSTOP) or traces them (ptrace), since the host
        never leaves a process so. SandboxError when the engine cannot tell."""
        try:
            listed = engine.client().api.top(self.handle.id, ps_args="-o pid,stat")
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise SandboxError(f"the processes of {self.name} could not be listed: {exc}") from None
        titles = [str(title).upper() for title in listed.get("Titles") or []]
        column = titles.index("STAT") if "STAT" in titles else None
        if column is None:
            return 0
        return sum(1 for row in listed.get("Processes") or [] if len(row) > column and str(row[column])[:1] in _STOPPED_STATES)

    def record(self) -> dict:
        """The engine's inspect of the container, taken once after its start and kept (`DiskMeter` finds the layer
        in it, in the background; `stopped_from_inside` reads the engine's `State.StartedAt` from it). Raises the
        engine's errors when it cannot be taken."""
        with self._record_lock:
            if self._record is None:
                self._record = engine.client().api.inspect_container(self.handle.id)
            return self._record

    def _engine_started_ns(self) -> int | None:
        """When the engine started the container, in its own clock (`State.StartedAt`), if its inspect was taken."""
        with self._record_lock:
            record = self._record
        return engine_time_ns(str(((record or {}).get("State") or {}).get("StartedAt") or ""))

    def stopped_from_inside(self) -> str | None:
        """Why a container that is no longer running stopped, when the engine's own record shows
        it was from inside (a process in it killed the main process, or the memory limit took
        it); None when the cause was outside or is unknown (an API kill or removal, the TTL
        running out, the engine failing): that one is ours, an infrastructure failure.

        The evidence is the engine's event log for this container, which nothing inside can
        write: a stop that anyone asked for through the API is a `kill` event (but our own
        SIGUSR1, which the main process traps and which stops nothing; removal by
        force, `docker stop`, the engine shutting down); a main process that died of a signal
        sent from inside the container, or of the OOM killer, leaves only `die` (exit code
        not 0) and `oom`. The main process ending by itself (exit 0) is the TTL, once the TTL has run out;
        before that, only a process inside can have made it end so (a ptrace of it: red team rt3, b3). How long it
        lived is the engine's to say: from its `State.StartedAt` (the inspect taken after the start, `record`; else
        the `start` event) to the `die` event's time, both the engine's clock, so neither a host clock that differs
        from the engine's nor a host that reads the events late can turn one into the other. Only when the engine
        holds no record of the start does the host's own count since the start stand in.
        """
        if self.container is None or self.started_at is None:
            return None
        engine_started = self._engine_started_ns()
        # The window starts at the engine's own start record when there is one: a host clock behind the engine's
        # would otherwise leave the die event out.
        since = engine_started // 10**9 - 2 if engine_started is not None else int(time.time() - (time.monotonic() - self.started_at)) - 2
        try:
            events = list(engine.client().events(since=since, until=int(time.time()) + 1, decode=True, filters={"container": self.container.id}))
        except (docker.errors.DockerException, requests.RequestException):
            return None
        # Our own SIGUSR1 (`stop_all_processes`) is a kill event too, but never a stop: the main process traps it.
        events = [
            event
            for event in events
            if not (_action(event) == "kill" and str(event.get("Actor", {}).get("Attributes", {}).get("signal")) in _OUR_SIGNALS)
        ]
        actions = [_action(event) for event in events]
        if "kill" in actions or "die" not in actions:
            return None
        died = next(event for event in events if _action(event) == "die")
        code = str(died.get("Actor", {}).get("Attributes", {}).get("exitCode", ""))
        if "oom" in actions:
            return f"the container ran out of memory (limit {self.spec.limits.memory}) and its main process was killed"
        if code == "0":
            if engine_started is None:  # the start event, when the engine still holds it, is its start record too
                engine_started = next((_event_ns(event) for event in events if _action(event) == "start"), None)
            lived = main_process_lived(engine_started, _event_ns(died))
            if lived is None:  # no record of the engine's for one end: the host's own count stands in
                lived = time.monotonic() - self.started_at
            if ended_before_ttl(lived, self.spec.ttl_seconds):
                return (
                    "a process inside the container made its main process end (exit code 0) "
                    f"{lived:.0f} s into a time to live of {self.spec.ttl_seconds} s"
                )
            return None
        if code == "":
            return None
        return f"a process inside the container stopped its main process (exit code {code})"

    def altered_programs(self, limit: int = 20) -> list[str]:
        """The programs and libraries the host runs in the container (`HOST_PROGRAMS`, the system's
        library folders) that its writable layer has changed or deleted, from the engine's list of
        changes (nothing in the container can alter it), and the work directory every shell starts in when
        it is no folder now (moved away or deleted, or replaced by a file or a link to no folder: red team rt3,
        b1; the engine's stat of it, `_is_folder`): evidence
        that a failure of those programs was the agent's doing. At most `limit`; SandboxError when the engine
        cannot tell."""
        workdir = self.spec.workdir.rstrip("/") or "/"
        try:
            with engine.container_changes(self.handle.id, ENGINE_READ_TIMEOUT, CHANGES_CHUNK) as chunks:
                found = changes.altered_host_programs(chunks, limit, frozenset({workdir}))
            if workdir not in found and len(found) < limit and not self._is_folder(workdir):
                found.append(workdir)
            return found
        except (docker.errors.DockerException, requests.RequestException, ValueError) as exc:
            raise SandboxError(f"the changes in {self.name} could not be listed: {exc}") from None

    def _is_folder(self, path: str) -> bool:
        """Whether `path` in the container is a folder, or a link to one, by the engine's stat (which gives a link's
        target fully resolved). The list of changes cannot say: a folder replaced by a file is listed as changed, as
        a folder whose files changed is."""
        stat = self._engine_stat(path)
        if stat is not None and not stat_is_folder(stat) and str(stat.get("linkTarget") or "").startswith("/"):
            stat = self._engine_stat(str(stat["linkTarget"]))
        return stat is not None and stat_is_folder(stat)

    def _engine_stat(self, path: str) -> dict | None:
        answer = engine.stat_path(self.handle.id, path, ENGINE_READ_TIMEOUT)
        if answer.status_code == 404:
            return None
        stat = path_stat(answer)
        if stat is None:
            raise SandboxError(f"the engine answered {answer.status_code} for {path} in {self.name}")
        return stat

    def shell_refused(self) -> str | None:
        """Why the engine cannot start the spec's shell in this container now (as the spec's user, in its workdir)
        while it starts it in a fresh container of the same image (same spec, nothing run in it): the engine's own
        answer, None when both start, neither does or the engine does not answer in time. With the engine and the image
        proven sound at that moment, only the container's own state stops it: after the agent's commands, their doing
        (red team rt6b, A4: `/etc/passwd` made a folder, which runc reads for every exec's user). Costs one exec, and a
        container start only when that exec fails."""
        here = _shell_answer(self.handle.id, self.spec)
        if not here:  # it starts, or no answer
            return None
        fresh = Lifecycle(self.spec.but(kind="probe", services=(), ttl_seconds=_PROBE_TTL_SECONDS))
        try:
            fresh.start()
            there = _shell_answer(fresh.handle.id, fresh.spec)
        except infrastructure_errors():
            return None
        finally:
            _quietly(fresh.close)
        return here if there == "" else None

    def evidence(self, programs: bool = True) -> Evidence | None:
        """What the engine's records say about the container now, for `endings.judge`: running or not and,
        not running, whether it was stopped from inside; running, its processes stopped by a signal and (with
        `programs`, when none are) the programs the host runs that it changed and, when none did and the agent's
        commands ran, whether the engine refuses a shell here that it starts in a fresh container (`shell_refused`).
        A stop that could not end its processes (`unstopped`) is said whatever else. None when the engine cannot
        tell (then the failure is judged ours)."""
        if self.unstopped:  # the host's own record of the engine's answers: the rest cannot outweigh it
            return Evidence(alive=False, unstopped=self.unstopped)  # killed when it was recorded
        try:
            if not self.alive():
                return Evidence(alive=False, stopped_from_inside=self.stopped_from_inside())
            stopped = self.stopped_processes()
            altered = self.altered_programs() if programs and not stopped else []
            refused = self.shell_refused() if programs and self.code_ran and not stopped and not altered else None
        except infrastructure_errors():
            return None
        return Evidence(alive=True, stopped_processes=stopped, altered_programs=tuple(altered), shell_refused=refused)


def _shell_answer(container_id: str, spec: SandboxSpec) -> str | None:
    """ "" when the engine runs the spec's shell (`/bin/bash`, as its user, in its workdir, with the shells' environment)
    in the container to a clean exit within `_PROBE_SECONDS`; else what the engine said (its error, or the exit code);
    None when it did not answer in time (a frozen exec: nothing can be told)."""
    answer: list[str] = []

    def ask() -> None:
        api = engine.client().api
        try:
            exec_id = api.exec_create(
                container_id,
                ["/bin/bash", "--noprofile", "--norc", "-c", "exit 0"],
                stdout=True,
                stderr=True,
                workdir=spec.workdir,
                environment=shell_environment(dict(spec.env)),
                user=spec.user or "",
            )["Id"]
            api.exec_start(exec_id)
            code = api.exec_inspect(exec_id).get("ExitCode")
            answer.append("" if code == 0 else f"the shell exited {code}")
        except docker.errors.APIError as exc:
            answer.append(f"the engine refused the shell: {str(exc)[:500]}")
        except (docker.errors.DockerException, requests.RequestException):
            pass  # no answer: nothing can be told

    asking = threading.Thread(target=ask, name=f"shell-probe-{container_id[:12]}", daemon=True)
    asking.start()
    asking.join(_PROBE_SECONDS)
    return answer[0] if answer else None


def _quietly(close: Callable[[], None]) -> None:
    try:
        close()
    except (docker.errors.DockerException, requests.RequestException):
        pass  # left to atexit, the TTL and gc


def _close_stream(creating: concurrent.futures.Future) -> None:
    """Close the attached stream a finished create returned (nothing when it failed or had none)."""
    if creating.done() and not creating.cancelled() and creating.exception() is None:
        _container, stream = creating.result()
        if stream is not None:
            _quietly_close(stream)


def _quietly_close(stream: Any) -> None:
    try:
        stream.close()
    except Exception:  # noqa: BLE001 - a half-closed socket wrapper; the container's removal ends the stream anyway
        pass


class InitGone(ValueError):
    """The engine's process list lacks the container's init: its first process ended, so the container is ending."""


def _others_left(top: dict, init: str) -> bool:
    """Whether the engine's process list (`top`, host pids) shows any process but the container's own: its init
    (`init`, the engine's `State.Pid`), the main bash (init's first child running `swe-env-main`) and the `sleep`
    the main bash waits on (its child). Told by pid and parent, not by count: the trap's `kill -9 -1` kills that
    sleep too, and a count taken before the main bash starts the next one let one leftover (a fork bomb's last
    child) pass for it; nor by name alone, which a process in the container can take. A list that cannot be read
    so (no PID, PPID or CMD column, or init not in it: the container is no longer the one started) is a ValueError,
    never a guess."""
    processes, titles = top.get("Processes") or [], top.get("Titles") or []
    try:
        pid, ppid, cmd = titles.index("PID"), titles.index("PPID"), titles.index("CMD")
    except ValueError:
        raise ValueError(f"the engine's process list has no PID, PPID or CMD column (titles: {titles})") from None
    if not init or not any(row[pid] == init for row in processes):
        raise InitGone(f"the container's init (pid {init or 'unknown'}) is not in the engine's process list")
    mains = sorted(
        (row for row in processes if row[ppid] == init and "swe-env-main" in row[cmd]),
        key=lambda row: int(row[pid]) if row[pid].isdigit() else 1 << 62,
    )
    main = mains[0][pid] if mains else None
    for row in processes:
        if row[pid] in (init, main):
            continue
        if row[ppid] == main and row[cmd].split(" ", 1)[0].endswith("sleep"):
            continue  # the main bash's own sleep
        return True
    return False


def _describe_left(top: dict) -> str:
    """What the engine lists left in a container, in a few words: how many processes, how many stopped or traced."""
    processes, titles = top.get("Processes") or [], [str(title).upper() for title in top.get("Titles") or []]
    column = titles.index("STAT") if "STAT" in titles else None
    held = sum(1 for row in processes if column is not None and len(row) > column and str(row[column])[:1] in _STOPPED_STATES)
    return f"{len(processes)} processes listed, {held} of them stopped or traced"


def _action(event: dict) -> Any:
    return event.get("status") or event.get("Action")


def _event_ns(event: dict) -> int | None:
    """When the engine recorded `event` (its `timeNano`, else its `time` in seconds), in its own clock."""
    value = event.get("timeNano")
    if isinstance(value, int) and value > 0:
        return value
    value = event.get("time")
    return value * 10**9 if isinstance(value, int) and value > 0 else None


def engine_time_ns(text: str) -> int | None:
    """Nanoseconds since the epoch of one of the engine's times (`State.StartedAt`: RFC 3339 with up to nine
    digits of fraction); None for the zero time (`0001-01-01T00:00:00Z`: never started) or text that is not one."""
    match = _ENGINE_TIME.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    if year < 1970:
        return None
    fraction, zone = match.group(7) or "", match.group(8)
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * 10**9 + int(fraction.ljust(9, "0") if fraction else 0)


def main_process_lived(started_ns: int | None, died_ns: int | None) -> float | None:
    """Seconds between the engine's start record and its die event (None when it lacks either, or they disagree)."""
    if started_ns is None or died_ns is None or died_ns < started_ns:
        return None
    return (died_ns - started_ns) / 1e9


def ended_before_ttl(lived: float, ttl_seconds: float) -> bool:
    """Whether a main process that ended with exit code 0 after `lived` seconds ended before its TTL (so a process
    inside made it: its loop ends only once the TTL has run out), beyond `_TTL_SLACK_SECONDS`."""
    return lived < ttl_seconds - _TTL_SLACK_SECONDS
