"""One container: started with limits and no network, a persistent shell, files, the diff.

Files move through a second, private bash session (base64 over the exec socket), so the
agent's shell state cannot interfere and a file operation costs a few milliseconds.

A Sandbox owns exactly one container and always removes it on close (also used as a
context manager). The container's main process is a small bash that waits out the TTL,
so a container whose owner was SIGKILLed ends by itself and, started with auto-remove,
disappears; code that stops it (`kill -STOP -1`) cannot keep the container past the TTL
either, since its `swe_env.expires` label lets `engine.collect_garbage` remove it from the
host. On SIGUSR1 that bash kills every other process in the container (see
`stop_all_processes`). Every wait on a process in the container has a host-side deadline
(`DEADLINE_GRACE`), enforced through the engine.

Why one module of this size: every way the host touches one container (exec, the file shell,
the engine-side reads and counts, the stop of every process) shares the container's lifetime
and the rules of what is trusted after the agent acted. What needs no container is elsewhere:
output framing and bounds in `streams`, the reading of the engine's change list in `changes`.
The file transfers (`read`, `write_file`, `replace_bytes`, `list_dir`) are the next to go,
to a `files` module over the private shell.
"""

from __future__ import annotations

import atexit
import base64
import concurrent.futures
import contextlib
import io
import posixpath
import shlex
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import docker.errors
import requests

from . import changes, engine, layer
from . import handle_termination_signals  # noqa: F401 - public here too, as before
from ..errors import InfrastructureError
from ..build.images import INSTALLED_TREE
from .shell import CommandResult, ShellSession
from .streams import (FRAME_BOTH_STREAMS, ChunkReader, ExecResult, Framed, FramedRun, HeadTailBytes, path_stat,
                      stream_into)
from ..data.task import Limits, Service, Task

if TYPE_CHECKING:
    from docker.models.containers import Container

_FILE_TIMEOUT = 120.0
_DISK_CHECK_AFTER_SECONDS = 1.0
_DISK_CHECK_EVERY = 10
_LOST_OUTPUT_RETRIES = 2
_EXEC_POLL_SECONDS = 0.25
"""How often `exec_to_end` asks the engine whether the command has ended."""
_MAIN_PROCESS = (
    'trap "kill -9 -1" USR1; end=$((SECONDS + $1)); '
    'while [ "$SECONDS" -lt "$end" ]; do sleep "$((end - SECONDS))" & wait "$!"; done'
)
"""The container's main process: waits out the TTL ($1 seconds); on SIGUSR1 kills every other process.
`wait` returns as soon as a trapped signal arrives, and the loop starts a new `sleep` for the rest."""
SERVICES_LOG = "/run/swe-env-services.log"
"""Where the task's services write their output (`task.Service`)."""
_OUR_SIGNALS = {"10", "SIGUSR1", "USR1", "18", "SIGCONT", "CONT"}
"""How the engine's event log names the signals `stop_all_processes` sends (SIGUSR1, SIGCONT)."""
_RESIDENT_PROCESSES = 3  # init, the main bash and its sleep: what stop_all_processes leaves
_STOP_ALL_TIMEOUT = 20.0
_RESIGNAL_SECONDS = 0.5
"""How often `stop_all_processes` signals the main process again while processes remain."""
DEADLINE_GRACE = 15.0
"""Seconds past a one-off process's timeout after which the host stops it through the engine (`exec`,
`exec_to_end`): the in-container `timeout` kills at the timeout and 5 s later, unless the code it runs
stopped it (`kill -STOP -1` stops every process in the container, `timeout` included)."""
_NO_TIMEOUT_DEADLINE = 900.0
"""The host's deadline for a one-off process given no timeout (the grader's git steps, service starts)."""
_CREATE_WAIT_SECONDS = 30.0  # close() waits this long for a create an interrupt cut short
_PIDS_EXHAUSTED = "fork: retry: Resource temporarily unavailable"
"""What bash prints when the pid limit stops it from forking."""
_INLINE_LIMIT = 32 * 1024
"""Payloads up to this size go through the private shell; larger ones through the archive API."""
MAX_READ_BYTES = 64 * 1024 * 1024
"""The most one `read_file` brings to the host (and its default): a file is never read whole
because it is large (a sparse `truncate -s 100G` file costs nothing in the container)."""
_FILES_OUTPUT_LIMIT = 4 * (MAX_READ_BYTES // 3 + 1) + 64 * 1024
"""The private shell's output bound: one maximal read in base64 plus its header line."""
MAX_EXEC_OUTPUT = 64 * 1024 * 1024
"""Bytes of each stream of a one-off process kept by default (head and tail; the rest is counted)."""
MAX_DIFF_BYTES = 32 * 1024 * 1024
"""A diff larger than this is refused (SandboxError): no real fix is that large."""
_INODE_COST = 16 * 1024
"""Each inode the container created counts this many bytes against `limits.disk`: 300,000 empty
files take no space in the writable layer's size but do use the host file system's inodes."""
_CHANGES_CHUNK = 64 * 1024
_ENGINE_READ_TIMEOUT = 60
"""Seconds the engine may take to start answering a count or a read (then the count is "too many")."""
_UNCOUNTABLE = layer.UNCOUNTABLE
"""`files_created`'s answer when the layer's files cannot be counted because of what the container made."""
_NAME_TOO_LONG = "file name too long"
"""The engine's error (ENAMETOOLONG) when the layer holds a path longer than its host allows."""
_ENGINE_MOUNTED_FILES = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
"""Files the engine bind-mounts from its host into every container (`HostsPath`, `HostnamePath`, `ResolvConfPath`)."""
_BACKGROUND = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="swe-env-disk")
"""Where the engine's disk figures for episodes run when the host cannot measure the layer
(`Sandbox.check_disk(wait=False)`), and each sandbox's one look-up of its layer: off the step's path."""
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""PATH for host-side commands after the agent acted: system folders only (not the venv)."""
_CLEAN_ENV = ("/usr/bin/env", "-i", f"PATH={SYSTEM_PATH}", "HOME=/nonexistent", "LANG=C.UTF-8")
"""Prefix of an argv that runs it with nothing of the image's, the task's or anyone's environment."""
_DIFF_SCRIPT = r"""set -eu
work=$1 base=$2 limit=$3
g=/usr/bin/git; [ -x "$g" ] || g=git
tree=''; read -r -n 40 tree < __INSTALLED_TREE__ 2>/dev/null || true
d=$(mktemp -d); trap 'rm -rf -- "$d"' EXIT
mkdir -p -- "$d/objects/info" "$d/refs" "$d/info"
printf 'ref: refs/heads/main\n' > "$d/HEAD"
printf '[core]\n\trepositoryformatversion = 0\n\tbare = false\n' > "$d/config"
printf '%s\n' "$work/.git/objects" > "$d/objects/info/alternates"
printf '* !text !eol !filter !ident !working-tree-encoding !diff\n' > "$d/info/attributes"
head -c 1048576 -- "$work/.git/info/exclude" > "$d/info/exclude" 2>/dev/null || true
export GIT_DIR="$d" GIT_WORK_TREE="$work" GIT_INDEX_FILE="$d/index" GIT_CONFIG_NOSYSTEM=1 \
  GIT_CONFIG_GLOBAL=/dev/null GIT_ATTR_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
set -- -c core.hooksPath=/dev/null -c core.fsmonitor=false -c core.untrackedCache=false \
  -c core.attributesFile=/dev/null -c core.excludesFile=/dev/null -c core.autocrlf=false \
  -c core.pager=cat -c safe.directory='*' -c diff.external=
if [[ $tree =~ ^[0-9a-f]{40}$ ]] && "$g" "$@" cat-file -e "$tree^{tree}" 2>/dev/null; then base=$tree; fi
cd -- "$work"
head -c 268435456 -- "$work/.git/index" > "$d/index" 2>/dev/null || rm -f -- "$d/index"
# git add reads every new or changed file whole: first refuse one larger than a diff may be
# (a sparse `truncate -s 100G` file would take minutes to hash and make a huge diff).
big=$("$g" "$@" ls-files -z --others --modified --exclude-standard -- . 2>/dev/null \
  | xargs -0r stat -c '%s %n' -- 2>/dev/null | awk -v max="$limit" '$1 > max { print; exit }') || true
if [ -n "$big" ]; then echo "the work tree has a file over the diff limit of $limit bytes: $big" >&2; exit 3; fi
if ! "$g" "$@" add -A -- . >/dev/null 2>&1; then
  rm -f -- "$d/index"; "$g" "$@" add -A --ignore-errors -- . >/dev/null 2>&1 || true
fi
"$g" "$@" diff --cached --binary --no-color --no-ext-diff --no-textconv "$base" -- > "$d/out"
size=$(stat -c %s -- "$d/out")
if [ "$size" -gt "$limit" ]; then echo "the diff is $size bytes, over the limit of $limit bytes" >&2; exit 3; fi
cat -- "$d/out"
""".replace("__INSTALLED_TREE__", INSTALLED_TREE)
"""The agent's diff, computed so nothing the agent configured runs or changes it: a fresh git
dir of ours (objects borrowed from the repository through `alternates`, the image's ignore
list copied) so the repository's `.git/config` is never read (no filters, `diff.external`,
fsmonitor, hooks, pager); no system or global config; `info/attributes` unsets every
conversion and diff driver the work tree's `.gitattributes` might name; the agent's index
is copied only as a stat cache (a fresh one when git cannot use it); environment cleared."""

# Capabilities an agent never needs; dropping them narrows what hostile code can do.
_DROPPED_CAPS = ["NET_RAW", "MKNOD", "AUDIT_WRITE", "SYS_CHROOT", "SETFCAP"]


@dataclass
class FileContent:
    """What `Sandbox.read` brought back: at most its `max_bytes` of the file."""

    data: bytes
    mode: int
    """Permission bits."""
    size: int
    """The whole file's size in bytes (as stat saw it just before the read)."""

    @property
    def truncated(self) -> bool:
        return self.size > len(self.data)


class SandboxError(InfrastructureError):
    """The container could not be started or has died: an infrastructure failure."""


class OutputLost(SandboxError):
    """The engine kept losing a read's output (an infrastructure failure, never the agent's)."""


class DeadlineExceeded(SandboxError):
    """A one-off process did not end by the host's deadline (its timeout plus `DEADLINE_GRACE`), so every
    process in the container was stopped through the engine. Whose fault it is depends on the container:
    in one where untrusted code ran, the code's (see `env.SWEEnv._grade`, the grader)."""


class DiskLimitExceeded(RuntimeError):
    """The agent's container wrote more than the task's disk limit (the agent's doing)."""


# Strong references on purpose: a sandbox dropped half-way (an interrupt between start and
# the caller's assignment, or inside close) must still be found and removed at exit.
_live: set["Sandbox"] = set()
_live_lock = threading.Lock()


def close_all() -> None:
    """Remove every container this process still holds (signal handlers and atexit call this)."""
    with _live_lock:
        pending = list(_live)
    for sandbox in pending:
        try:
            sandbox.close()
        except Exception:  # noqa: BLE001 - best effort while the process is going down
            pass


atexit.register(close_all)


class Sandbox:
    """A running container for one episode (or one grading run)."""

    def __init__(
        self,
        image: str,
        limits: Limits,
        workdir: str = "/testbed",
        env: dict[str, str] | None = None,
        kind: str = "episode",
        labels: dict[str, str] | None = None,
        output_limit: int = 10_000,
        ttl_seconds: int = engine.DEFAULT_TTL_SECONDS,
        user: str | None = None,
        services: "tuple[Service, ...] | list[Service]" = (),
    ):
        self.image = image
        self.services = tuple(services)
        """Processes started in the background, as root, right after the container (`task.Service`)."""
        self.user = user or ""
        self.limits = limits
        self.workdir = workdir
        self.env = dict(env or {})
        self.output_limit = output_limit
        self.name = f"swe-env-{kind}-{uuid.uuid4().hex[:12]}"
        self._labels = engine.managed_labels(kind, ttl_seconds, **(labels or {}))
        self._ttl = ttl_seconds
        self.container: Container | None = None
        self.shell: ShellSession | None = None
        self._files: ShellSession | None = None
        self.started_at: float | None = None
        self._oom_kills = 0
        self._ids: tuple[int, int] | None = None
        self._steps_since_disk_check = 0
        self._engine_check: concurrent.futures.Future | None = None
        """The engine's disk figures being taken in the background (`check_disk(wait=False)` without a host layer)."""
        self._layer_lookup: concurrent.futures.Future | None = None
        """Finds the `layer.HostLayer` once the container runs (None: the engine is asked instead)."""
        self._execs_starting = 0
        """One-off processes being started: the engine refuses to start one in a frozen container, so the
        host's walk waits for a later check meanwhile (the grader's watch runs beside `exec_to_end`)."""
        self._creating: concurrent.futures.Future | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> "Sandbox":
        with _live_lock:
            _live.add(self)
        # The engine call runs in its own thread. An interrupt (Ctrl-C, SIGTERM) raised while we
        # wait for the answer would otherwise leave the engine mid-create: the name is reserved
        # but not yet findable, so close() gets "no such container" and the container appears
        # a moment later, owned by nobody. close() waits for this future before it removes.
        self._creating = concurrent.futures.Future()
        threading.Thread(target=self._create, args=(self._creating,), name=f"{self.name}-create", daemon=True).start()
        try:
            self.container = self._creating.result()
        except docker.errors.ImageNotFound:
            self.close()
            raise SandboxError(f"image {self.image} does not exist; build it with `swe-env build`") from None
        except docker.errors.DockerException as exc:
            self.close()
            raise SandboxError(f"cannot start a container from {self.image}: {exc}") from None
        except BaseException:
            self.close()  # an interrupt, or no engine at all: nothing may stay behind, or registered
            raise
        self.started_at = time.monotonic()
        self._layer_lookup = _BACKGROUND.submit(self._find_layer)
        try:
            self._start_services()
        except BaseException:
            self.close()
            raise
        return self

    def _start_services(self) -> None:
        for service in self.services:
            launched = self.exec(["/bin/bash", "-c", f"nohup /bin/bash -c {shlex.quote(service.run)} "
                                  f">>{SERVICES_LOG} 2>&1 </dev/null &"], user="root")
            if launched.exit_code != 0:
                raise SandboxError(f"service `{service.run}` could not be started: {launched.output.strip()[-300:]}")
            if not service.ready:
                continue
            deadline = time.monotonic() + service.ready_timeout
            while self.exec(["/bin/bash", "-c", service.ready], user="root", timeout=service.ready_timeout).exit_code != 0:
                if time.monotonic() > deadline:
                    log = self.exec(["/usr/bin/tail", "-c", "300", SERVICES_LOG], user="root").output.strip()
                    raise SandboxError(f"service `{service.run}` was not ready after {service.ready_timeout:g} s "
                                       f"(`{service.ready}` kept failing); its log ends: {log}")
                time.sleep(0.2)

    def _create(self, result: concurrent.futures.Future) -> None:
        try:
            result.set_result(engine.run_container(
                self.image,
                ["bash", "-c", _MAIN_PROCESS, "swe-env-main", str(self._ttl)],
                self._labels,
                name=self.name,
                auto_remove=True,
                init=True,
                working_dir=self.workdir,
                environment=self.env,
                network_mode="bridge" if self.limits.network else "none",
                mem_limit=self.limits.memory,
                memswap_limit=self.limits.memory,
                nano_cpus=int(self.limits.cpus * 1e9),
                pids_limit=self.limits.pids,
                cap_drop=_DROPPED_CAPS,
                security_opt=["no-new-privileges"],
            ))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, which raises it
            result.set_exception(exc)

    def start_shell(self) -> ShellSession:
        """Attach the persistent shell (done lazily: the grader never needs one)."""
        if self.shell is None:
            self.shell = ShellSession(
                engine.client().api, self._container.id, self.workdir, self.env,
                output_limit=self.output_limit, user=self.user, reset_container=self.stop_all_processes,
            )
            self.shell.start()
        return self.shell

    def close(self) -> None:
        """Remove the container; safe to call twice or after the container died."""
        for shell in (self.shell, self._files):
            if shell is not None:
                shell.close()
        self.shell = self._files = None
        self.container = None
        if self._creating is not None and not self._creating.done():
            # Interrupted while the engine was creating it: wait for its answer (a few hundred
            # ms as a rule), so the removal below finds the container instead of racing it.
            concurrent.futures.wait([self._creating], timeout=_CREATE_WAIT_SECONDS)
            if not self._creating.done():
                # The engine is very slow: remove the container whenever its create returns.
                name = self.name
                self._creating.add_done_callback(lambda _done: engine.remove_quietly(name))
        # By name: also right when start() was interrupted after the engine created it. False: the
        # engine is gone (its restart ends our auto-remove containers), so it stays registered for atexit.
        if not engine.remove_container(self.name):
            return
        # Only now: an interrupt above leaves it registered, and atexit tries again.
        with _live_lock:
            _live.discard(self)

    def stop_all_processes(self) -> None:
        """Kill every process in the container but its main one; the files stay.

        The way out when the pid limit is exhausted (a fork bomb): nothing new can start
        inside to kill anything. The engine signals the container's init, which passes
        SIGUSR1 to the main bash, whose trap runs `kill -9 -1`: a builtin, so no fork is
        needed, and the kernel spares only the caller and init. Not a container restart:
        with auto-remove, the engine under load sometimes removes a container it restarts.
        """
        api = engine.client().api
        try:
            deadline = time.monotonic() + _STOP_ALL_TIMEOUT
            signalled = -_RESIGNAL_SECONDS
            # The engine's `top` lists the container's processes from outside, needing no pid inside.
            while len(api.top(self._container.id).get("Processes") or []) > _RESIDENT_PROCESSES:
                now = time.monotonic()
                if now > deadline:
                    raise SandboxError(f"the processes in container {self.name} could not be stopped "
                                       f"within {_STOP_ALL_TIMEOUT:g} s")
                if now - signalled >= _RESIGNAL_SECONDS:
                    # SIGCONT too, and again until it worked: code in the container may have stopped every
                    # process (`kill -STOP -1`), the main bash included, and a stopped bash runs no trap
                    # (init passes both signals on; SIGKILL from the trap ends stopped processes too).
                    api.kill(self._container.id, signal="SIGUSR1")
                    api.kill(self._container.id, signal="SIGCONT")
                    signalled = now
                time.sleep(0.05)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise SandboxError(f"the processes in container {self.name} could not be stopped: {exc}") from None
        for shell in (self.shell, self._files):
            if shell is not None:
                shell.close()  # their bash is gone; each starts anew on next use

    @classmethod
    def for_task(cls, task: Task, image: str, kind: str, labels: dict[str, str] | None = None,
                 **options: Any) -> "Sandbox":
        """A sandbox for `task` from `image`, with the task's limits, workdir, environment, user and
        services (the one place a task becomes a sandbox; `options` override, e.g. `user=None`)."""
        environment = task.environment
        return cls(image, kind=kind, labels={"task": task.id, **(labels or {})},
                   limits=options.pop("limits", task.limits), workdir=options.pop("workdir", environment.workdir),
                   env=options.pop("env", environment.env), user=options.pop("user", environment.user),
                   services=options.pop("services", environment.services), **options)

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def id(self) -> str:
        return self.container.id if self.container is not None else ""

    @property
    def _container(self) -> Container:
        """The container, for what needs one; RuntimeError before start() or after close()."""
        if self.container is None:
            raise RuntimeError(f"sandbox {self.name} has no container: it was not started, or is closed")
        return self.container

    def alive(self) -> bool:
        if self.container is None:
            return False
        try:
            self.container.reload()
        except docker.errors.DockerException:
            return False
        return self.container.status == "running"

    def stopped_processes(self) -> int:
        """How many of the container's processes the engine lists as stopped by a signal (state `T`):
        evidence that code in the container stopped them (SIGSTOP), since the host never leaves a
        process so. SandboxError when the engine cannot tell."""
        try:
            listed = engine.client().api.top(self._container.id, ps_args="-o pid,stat")
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise SandboxError(f"the processes of {self.name} could not be listed: {exc}") from None
        titles = [str(title).upper() for title in listed.get("Titles") or []]
        column = titles.index("STAT") if "STAT" in titles else None
        if column is None:
            return 0
        return sum(1 for row in listed.get("Processes") or [] if len(row) > column and str(row[column]).startswith("T"))

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
        not 0) and `oom`. The main process ending by itself (exit 0) is the TTL.
        """
        if self.container is None or self.started_at is None:
            return None
        started = int(time.time() - (time.monotonic() - self.started_at)) - 2
        try:
            events = list(engine.client().events(since=started, until=int(time.time()) + 1, decode=True,
                                                 filters={"container": self.container.id}))
        except (docker.errors.DockerException, requests.RequestException):
            return None
        # Our own SIGUSR1 (`stop_all_processes`) is a kill event too, but never a stop: the main process traps it.
        events = [event for event in events if not ((event.get("status") or event.get("Action")) == "kill"
                                                    and str(event.get("Actor", {}).get("Attributes", {}).get("signal"))
                                                    in _OUR_SIGNALS)]
        actions = [event.get("status") or event.get("Action") for event in events]
        if "kill" in actions or "die" not in actions:
            return None
        died = next(event for event in events if (event.get("status") or event.get("Action")) == "die")
        code = str(died.get("Actor", {}).get("Attributes", {}).get("exitCode", ""))
        if "oom" in actions:
            return f"the container ran out of memory (limit {self.limits.memory}) and its main process was killed"
        if code in ("", "0"):
            return None
        return f"a process inside the container stopped its main process (exit code {code})"

    # ------------------------------------------------------------ commands

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run a command in the persistent shell (cwd and exports survive).

        Adds a note when the kernel killed something for memory, and raises
        DiskLimitExceeded when the container has written more than the task allows.
        """
        shell = self.start_shell()
        result = shell.run(command, timeout=timeout or self.limits.command_timeout)
        # The OOM counter is read only when something was SIGKILLed (exit 137, or bash's "Killed").
        if result.exit_code in (137, None) or result.restarted or "Killed" in result.output:
            kills = self._read_oom_kills()
            if kills > self._oom_kills:
                result.notes.append(
                    f"a process was killed by the kernel for using more than the memory limit ({self.limits.memory})"
                )
                result.output += f"\n[{result.notes[-1]}]"
            self._oom_kills = max(kills, self._oom_kills)
        if _PIDS_EXHAUSTED in result.output:
            # A fork bomb (or a leak of processes) holds every pid: nothing inside can clean it
            # up, and every later command would crawl. Stop all processes; the files stay.
            self.stop_all_processes()
            result.notes.append(
                f"the container ran out of process ids (limit {self.limits.pids}); every process in it was "
                "stopped (files are kept) and the shell will start afresh"
            )
            result.output += f"\n[{result.notes[-1]}]"
        self._steps_since_disk_check += 1
        # Writing gigabytes takes time: check after long commands, and every few steps for slow fillers;
        # the engine's figures that arrived in the background since the last step are looked at now.
        counted = self._engine_check is not None and self._engine_check.done()
        if counted or result.seconds > _DISK_CHECK_AFTER_SECONDS or self._steps_since_disk_check >= _DISK_CHECK_EVERY:
            self.check_disk(wait=False)
        return result

    def _read_oom_kills(self) -> int:
        # cgroup v1 (memory.oom_control) or v2 (memory.events): "oom_kill N".
        script = ("cat /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events 2>/dev/null "
                  "| head -c 65536; true")
        try:
            text = self._files_shell().run(script, timeout=_FILE_TIMEOUT).output
        except Exception:  # noqa: BLE001 - only a note depends on it
            return self._oom_kills
        counts = [int(line.split()[1]) for line in text.splitlines() if line.startswith("oom_kill ")]
        return max(counts, default=self._oom_kills)

    def disk_used(self) -> int:
        """Bytes the container has written: its writable layer, and the host files bind-mounted into it."""
        try:
            found = engine.client().api.containers(all=True, filters={"id": self._container.id}, size=True)
        except docker.errors.DockerException as exc:
            raise SandboxError(f"container {self.name} cannot be inspected: {exc}") from None
        if not found:
            raise SandboxError(f"container {self.name} is gone")
        return int(found[0].get("SizeRw") or 0) + self._mounted_files_size()

    def files_created(self, stop_after: int | None = None) -> int:
        """Files, folders, links and deletions the container's writable layer holds: the inodes it
        takes on the host's file system. Counted from the engine's list of the layer's changes
        (`docker diff`), which nothing in the container can alter (no binary of the container
        runs), read as a stream and cut once `stop_after` entries are seen (so 10 million files
        cost the host a bounded read). About 0.5 s per count, whatever the layer holds."""
        try:
            with self._changes() as chunks:
                return changes.count_entries(chunks, stop_after)
        except requests.exceptions.ReadTimeout:
            # The engine walked the layer for minutes without an answer: far more files than any limit allows.
            return _UNCOUNTABLE
        except docker.errors.APIError as exc:
            if _NAME_TOO_LONG in str(exc).lower():
                # Folders nested deeper than the host can name: only the container's own processes
                # make those, so it is their doing (charged as far over any limit), never ours.
                return _UNCOUNTABLE
            raise SandboxError(f"the files in {self.name} could not be counted: {exc}") from None
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise SandboxError(f"the files in {self.name} could not be counted: {exc}") from None

    def altered_programs(self, limit: int = 20) -> list[str]:
        """The programs and libraries the host runs in the container (`HOST_PROGRAMS`, the system's
        library folders) that its writable layer has changed or deleted, from the engine's list of
        changes (nothing in the container can alter it): evidence that a failure of those programs
        was the agent's doing. At most `limit`; SandboxError when the engine cannot tell."""
        try:
            with self._changes() as chunks:
                return changes.altered_host_programs(chunks, limit)
        except (docker.errors.DockerException, requests.RequestException, ValueError) as exc:
            raise SandboxError(f"the changes in {self.name} could not be listed: {exc}") from None

    @contextlib.contextmanager
    def _changes(self) -> Iterator[Iterator[bytes]]:
        """The engine's list of the writable layer's changes (`docker diff`) as a stream of JSON
        chunks, closed when the caller is done (so it may stop reading at any point)."""
        api = engine.client().api
        response = api._get(api._url("/containers/{0}/changes", self._container.id), stream=True,
                            timeout=_ENGINE_READ_TIMEOUT)
        try:
            api._raise_for_status(response)
            yield response.iter_content(_CHANGES_CHUNK)
        finally:
            response.close()

    def _mounted_files_size(self) -> int:
        """Bytes in the files the engine bind-mounts from the host (/etc/hosts, /etc/hostname,
        /etc/resolv.conf): root in the container can write them, and the writable layer's size
        does not count them. Their sizes come from the engine's stat of each path (no read)."""
        api = engine.client().api
        total = 0
        for path in _ENGINE_MOUNTED_FILES:
            try:
                answer = api.head(api._url("/containers/{0}/archive", self._container.id), params={"path": path},
                                  timeout=_ENGINE_READ_TIMEOUT)
            except requests.RequestException as exc:
                raise SandboxError(f"container {self.name} cannot be inspected: {exc}") from None
            if answer.status_code == 404:
                continue
            stat = path_stat(answer)
            if stat is None:
                raise SandboxError(f"container {self.name} cannot be inspected: the engine answered "
                                   f"{answer.status_code} for {path}")
            total += max(int(stat.get("size") or 0), 0)
        return total

    def check_disk(self, wait: bool = True) -> None:
        """Raise DiskLimitExceeded when the container wrote more than `limits.disk`, counting each
        file, folder and link in its writable layer as `_INODE_COST` bytes more: empty files take
        no bytes of the layer but do take the host's inodes. No program of the container runs.

        When the engine is this machine's, the host measures the layer itself with the container
        frozen (`layer.HostLayer`: milliseconds, no engine call). Else the engine's figures are
        asked for (`SizeRw` and the change list, each a walk of 0.1-5 s on Docker 20.10): with
        `wait` False (between an episode's steps) in the background, and what they found is raised
        at the next check, so a step never waits for the engine."""
        self._steps_since_disk_check = 0
        limit = parse_size(self.limits.disk)
        host = self._host_layer()
        if host is not None and self._execs_starting:
            return  # a process is starting (the engine cannot start one in a frozen container): next check
        if host is not None:
            try:
                usage = host.measure(stop_after=limit // _INODE_COST + 1)
            except OSError:
                usage = None  # not frozen in time, or a file the engine named is gone: the engine decides
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
        """The container's layer as this host can measure it, from one inspect (None: ask the engine)."""
        try:
            attrs = engine.client().api.inspect_container(self._container.id)
            return layer.find(attrs, local_engine=engine.client().api.base_url == "http+docker://localhost")
        except Exception:  # noqa: BLE001 - the engine's own figures stand in
            return None

    def _host_layer(self) -> layer.HostLayer | None:
        lookup = self._layer_lookup
        if lookup is None:
            return None
        try:
            return lookup.result(timeout=_ENGINE_READ_TIMEOUT)
        except Exception:  # noqa: BLE001 - a look-up the engine did not answer: the engine's figures
            return None

    def _engine_over(self, limit: int) -> str | None:
        """`_over` from the engine's figures: the layer's size, then its change list, cut past the limit."""
        used = self.disk_used()
        if used > limit:
            return self._over(used, 0, limit)
        return self._over(used, self.files_created(stop_after=max(limit - used, 0) // _INODE_COST + 1), limit)

    def _over(self, used: int, files: int, limit: int) -> str | None:
        """Why `used` bytes and `files` entries are over `limit` (each entry `_INODE_COST` bytes), or None."""
        if used > limit:
            return f"the container wrote {used / 1e9:.2f} GB, over the task's disk limit of {self.limits.disk}"
        if used + files * _INODE_COST <= limit:
            return None
        if files >= _UNCOUNTABLE:
            return (f"the container made more files and folders than can be counted (or nested them deeper "
                    f"than its host can name), over the task's disk limit of {self.limits.disk}")
        return (f"the container wrote {used / 1e9:.2f} GB and made {'more than ' if files > (limit - used) // _INODE_COST else ''}"
                f"{files} files and folders (each counted as {_INODE_COST // 1024} KiB), over the task's disk "
                f"limit of {self.limits.disk}")

    def exec(self, argv: list[str] | str, timeout: float | None = None, workdir: str | None = None,
             env: dict[str, str] | None = None, *, idempotent: bool = False, user: str | None = None,
             max_output: int = MAX_EXEC_OUTPUT) -> ExecResult:
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
                    command, workdir or self.workdir, {**self.env, **(env or {})},
                    self.user if user is None else user, limit, deadline, argv[0],
                )
            except (docker.errors.DockerException, requests.RequestException) as exc:
                raise SandboxError(f"container {self.name} failed to run {argv[0]}: {exc}") from None
            # The engine's fault is a stream with nothing at all: the wrapper writes the token on both
            # before anything else. Bytes after the closing token are late (a process left behind, or one
            # that opened the stream through /proc) and dropped, as in `exec_to_end`.
            lost = not (kept[0].total and kept[1].total)
            if not lost:
                break
        if lost and idempotent:
            raise OutputLost(f"the engine lost the output of {argv[0]} in {self.name} "
                               f"{1 + _LOST_OUTPUT_RETRIES} times in a row")
        if lost:
            return ExecResult(exit_code, "", "", output_lost=True)
        framed = [keeper.framed(mark) for keeper in kept]
        if framed[0] is None or framed[1] is None or not (framed[0].complete and framed[1].complete):
            # The engine delivered bytes, but not as the wrapper wrote them: something in the container
            # wrote into the streams or stopped the wrapper. Never the engine's loss (`OutputLost`).
            raise SandboxError(f"the output of {argv[0]} in {self.name} was not what its wrapper wrote: "
                               "a process in the container wrote into it or stopped it")
        return ExecResult(
            exit_code,
            framed[0].data.decode("utf-8", errors="replace"),
            framed[1].data.decode("utf-8", errors="replace"),
            cut=framed[0].cut + framed[1].cut,
        )

    def _exec_bounded(self, command: list[str], workdir: str, environment: dict[str, str], user: str,
                      limit: int, deadline: float, what: str) -> tuple[int, tuple[HeadTailBytes, HeadTailBytes]]:
        """Run `command` and stream its output, keeping the head and tail of each stream, for at most
        `deadline` seconds: then every process in the container is stopped through the engine and
        `DeadlineExceeded` raised."""
        api = engine.client().api
        kept = (HeadTailBytes(limit), HeadTailBytes(limit))
        failure: list[BaseException] = []
        self._execs_starting += 1  # a disk check does not freeze the container while this one-off runs
        try:
            exec_id = api.exec_create(self._container.id, command, stdout=True, stderr=True, workdir=workdir,
                                      environment=environment, user=user)["Id"]
            streaming = threading.Thread(target=stream_into, args=(api, exec_id, kept, failure),
                                         name=f"{self.name}-exec", daemon=True)
            streaming.start()
            streaming.join(deadline)
        finally:
            self._execs_starting -= 1
        if streaming.is_alive():
            self._stop_overrun(streaming)
            raise DeadlineExceeded(f"{what} in {self.name} did not end within its deadline of {deadline:g} s "
                                   "(something in the container stopped it or kept its output open); "
                                   "every process in the container was stopped")
        if failure:
            raise failure[0]
        exit_code = api.exec_inspect(exec_id).get("ExitCode")
        return (exit_code if exit_code is not None else -1), kept

    def _stop_overrun(self, streaming: threading.Thread) -> None:
        """Past a deadline: stop every process through the engine so the streams end; when even that
        fails (SandboxError), kill the container through the engine (it cannot be used again)."""
        try:
            self.stop_all_processes()
        except SandboxError:
            self.kill()
        streaming.join(_STOP_ALL_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL the container through the engine (every process in it ends, stopped ones too): the last
        resort past a deadline. Its auto-remove then removes it; `close` still removes it by name."""
        try:
            engine.client().api.kill(self._container.id, signal="SIGKILL")
        except (docker.errors.DockerException, requests.RequestException):
            pass  # already gone, or the engine failed: close() removes it, or atexit and gc do

    def exec_to_end(self, argv: list[str], timeout: float, env: dict[str, str] | None = None, *,
                    max_stdout: int, max_stderr: int) -> FramedRun:
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
        token = f"__SWE_EXEC_{uuid.uuid4().hex}"
        mark = token.encode()
        command = ["/bin/bash", "-c", FRAME_BOTH_STREAMS, "swe-env-exec", token,
                   "/usr/bin/timeout", "-k", "5", str(int(max(timeout, 1))), *argv]
        kept = (HeadTailBytes(max_stdout + 4 * len(mark)), HeadTailBytes(max_stderr + 4 * len(mark)))
        api = engine.client().api
        failure: list[BaseException] = []
        self._execs_starting += 1  # until the engine says the process runs (or it has ended)
        starting = True
        try:
            exec_id = api.exec_create(self._container.id, command, stdout=True, stderr=True, workdir=self.workdir,
                                      environment={**self.env, **(env or {})}, user=self.user)["Id"]
            streaming = threading.Thread(target=stream_into, args=(api, exec_id, kept, failure),
                                         name=f"{self.name}-streams", daemon=True)
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
                    self._execs_starting -= 1
                if streaming.is_alive() and not running:
                    break
                if streaming.is_alive() and time.monotonic() > deadline:
                    overran = True
                    break
            if overran:
                self._stop_overrun(streaming)
                return FramedRun(-1, _unframed(kept[0], mark), _unframed(kept[1], mark), overran=True)
            self.stop_all_processes()
            streaming.join(_STOP_ALL_TIMEOUT)
            if streaming.is_alive():
                raise SandboxError(f"the output of {argv[0]} in {self.name} did not end after every process was stopped")
            if failure:
                raise failure[0]
            exit_code = api.exec_inspect(exec_id).get("ExitCode")
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise SandboxError(f"container {self.name} failed to run {argv[0]}: {exc}") from None
        finally:
            if starting:
                self._execs_starting -= 1
        framed = [keeper.framed(mark) for keeper in kept]
        if framed[0] is None or framed[1] is None:
            raise SandboxError(f"the engine lost the output of {argv[0]} in {self.name}")
        return FramedRun(exit_code if exit_code is not None else -1, framed[0], framed[1])

    # ------------------------------------------------------------ files

    def resolve(self, path: str) -> str:
        """An absolute, normalised path: relative paths are taken from the workdir."""
        if not path.startswith("/"):
            path = posixpath.join(self.workdir, path)
        return posixpath.normpath(path)

    def _files_shell(self) -> ShellSession:
        """A second, private bash for file transfers: the agent's aliases, functions and cwd
        cannot touch it, and a round trip costs milliseconds where the archive API costs tens."""
        if self._files is None:
            # Only coreutils run here: the system folders, not the image's PATH (it starts with the venv).
            self._files = ShellSession(
                engine.client().api, self._container.id, "/", {**self.env, "PATH": SYSTEM_PATH},
                output_limit=_FILES_OUTPUT_LIMIT, strip_ansi=False, user=self.user,
                reset_container=self.stop_all_processes,
            )
            self._files.start()
        return self._files

    def _files_run(self, script: str, path: str, confine: bool = False) -> str:
        if confine:
            # Resolve links inside the container: a link pointing out of the workdir is refused.
            q, root = shlex.quote(path), shlex.quote(self.workdir)
            script = (
                f"r=$(realpath -m -- {q}) && case \"$r\" in {root}|{root}/*) : ;; "
                f"*) echo \"__OUTSIDE__ $r\"; false ;; esac && {{ {script}\n}}"
            )
        result = self._files_shell().run(script, timeout=_FILE_TIMEOUT)
        if result.output.startswith("__OUTSIDE__ "):
            real = result.output.split(" ", 1)[1].strip()
            raise PermissionError(f"{path} resolves to {real}, outside the repository ({self.workdir})")
        if result.exit_code != 0:
            reason = result.output.strip().splitlines()[-1:] or result.notes or ["unknown error"]
            raise OSError(f"{path}: {reason[0].split(': ')[-1]}")
        return result.output

    def read(self, path: str, confine: bool = False, *, max_bytes: int = MAX_READ_BYTES,
             tail: bool = False) -> "FileContent":
        """At most `max_bytes` of a regular file (links followed): its first bytes, or with
        `tail` its last, with its permission bits and whole size; never more than
        `MAX_READ_BYTES`, whatever the file's size (the container cuts it before it travels).

        FileNotFoundError (also for dangling or looping links), IsADirectoryError, or OSError.
        """
        path = self.resolve(path)
        q = shlex.quote(path)
        count = max(0, min(int(max_bytes), MAX_READ_BYTES))
        cut = f"tail -c {count}" if tail else f"head -c {count}"
        script = (
            f"if [ -d {q} ]; then echo D; elif [ ! -e {q} ]; then echo N; elif [ ! -f {q} ]; then echo S; "
            f"else stat -L -c '%a %s' -- {q} && ( set -o pipefail; {cut} -- {q} | base64 -w0 ); fi"
        )
        head, _, body = self._files_run(script, path, confine).partition("\n")
        if head == "N":
            raise FileNotFoundError(path)
        if head == "D":
            raise IsADirectoryError(path)
        if head == "S":
            raise OSError(f"{path} is not a regular file")
        try:
            mode, size = head.split()
            data = base64.b64decode(body, validate=True)
        except ValueError:
            raise OSError(f"{path}: the file could not be read") from None
        if len(data) > count:  # head/tail never give more; what the host keeps is bounded all the same
            raise OSError(f"{path}: more bytes came back than were asked for")
        return FileContent(data, int(mode, 8), int(size))

    def read_file(self, path: str, confine: bool = False, max_bytes: int = MAX_READ_BYTES,
                  tail: bool = False) -> tuple[bytes, int]:
        """The bytes (at most `max_bytes`: the first ones, or with `tail` the last) and permission
        bits of a regular file; see `read`, which also gives the file's size."""
        content = self.read(path, confine, max_bytes=max_bytes, tail=tail)
        return content.data, content.mode

    def read_from_engine(self, path: str, max_bytes: int) -> FileContent:
        """At most `max_bytes` of a regular file, through the engine's archive API: no binary of
        the container runs, so this is how the host reads what code it does not trust may have
        replaced. The size comes first (the engine's stat); a link is not followed (OSError).

        FileNotFoundError, IsADirectoryError, OSError (not a regular file), SandboxError (the engine failed).
        """
        path = self.resolve(path)
        api = engine.client().api
        try:
            try:
                chunks, stat = api.get_archive(self._container.id, path, chunk_size=_CHANGES_CHUNK)
            except docker.errors.NotFound:
                raise FileNotFoundError(path) from None
            mode = int(stat.get("mode") or 0)
            if mode & _GO_MODE_DIR:
                raise IsADirectoryError(path)
            if mode & _GO_MODE_TYPE:
                raise OSError(f"{path} is not a regular file")
            stream = ChunkReader(chunks)
            try:
                with tarfile.open(fileobj=stream, mode="r|") as archive:
                    member = archive.next()
                    handle = archive.extractfile(member) if member is not None and member.isfile() else None
                    if handle is None:
                        raise OSError(f"{path} is not a regular file")
                    data = handle.read(max(int(max_bytes), 0))
            finally:
                stream.close()
        except (docker.errors.DockerException, requests.RequestException, tarfile.TarError) as exc:
            raise SandboxError(f"{path} in {self.name} could not be read through the engine: {exc}") from None
        return FileContent(data, mode & 0o7777, int(stat.get("size") or len(data)))

    def list_dir(self, path: str, depth: int = 2, confine: bool = False,
                 max_entries: int = 10_000) -> list[str]:
        """Paths under a folder, `depth` levels deep, sorted, without .git; at most `max_entries`
        (find's first ones; a last entry "..." says there were more)."""
        path = self.resolve(path)
        q = shlex.quote(path)
        limit = max(int(max_entries), 1)
        script = (f"find {q} -maxdepth {int(depth)} -not -path '*/.git' -not -path '*/.git/*' "
                  f"| head -n {limit + 1} | head -c {limit * 4096}")
        entries = self._files_run(script, path, confine).splitlines()
        more = len(entries) > limit
        entries = sorted(entries[:limit])
        return [*entries, "..."] if more else entries

    def remove_file(self, path: str, confine: bool = False) -> None:
        path = self.resolve(path)
        self._files_run(f"rm -f -- {shlex.quote(path)}", path, confine)

    def write_file(self, path: str, data: bytes, mode: int | None = None, confine: bool = False) -> None:
        """Write a file, creating parent folders; an existing file keeps its mode unless one is given.

        With `confine`, a path that resolves (links followed) outside the workdir is refused.
        """
        path = self.resolve(path)
        if len(data) > _INLINE_LIMIT:
            # bash reads its input one byte at a time: large payloads go through the archive API.
            self._write_large(path, data, mode, confine)
            return
        q = shlex.quote(path)
        encoded = base64.b64encode(data).decode()
        script = f"mkdir -p -- \"$(dirname -- {q})\" && printf %s '{encoded}' | base64 -d > {q}"
        if mode is not None:
            script += f" && chmod {mode & 0o7777:o} {q}"
        self._files_run(script, path, confine)

    def replace_bytes(self, path: str, start: int, end: int, data: bytes, confine: bool = False) -> None:
        """Replace bytes [start, end) of an existing file with `data`, sending only `data`.

        An edit of one line in a large file then costs one small round trip, not the file.
        """
        path = self.resolve(path)
        if len(data) > _INLINE_LIMIT:
            content = self.read(path, confine)
            if content.truncated:
                raise OSError(f"{path}: the file is {content.size} bytes, too large to edit in place "
                              f"(at most {MAX_READ_BYTES})")
            self._write_large(path, content.data[:start] + data + content.data[end:], None, confine)
            return
        q = shlex.quote(path)
        encoded = base64.b64encode(data).decode()
        script = (
            f"t=$(mktemp) && {{ head -c {int(start)} -- {q} && printf %s '{encoded}' | base64 -d "
            f"&& tail -c +{int(end) + 1} -- {q}; }} > \"$t\" && cat -- \"$t\" > {q}; "
            "rc=$?; rm -f -- \"$t\"; [ $rc = 0 ]"
        )
        self._files_run(script, path, confine)

    def _write_large(self, path: str, data: bytes, mode: int | None, confine: bool) -> None:
        """Write a large payload: the archive API drops it at an unguessable path in /tmp, then
        the private shell, as the sandbox's user, copies it into place.

        The engine unpacks archives as root whatever the user is; copying as the user keeps the
        file's owner right and keeps a link swapped in at the last moment from reaching places
        the user may not write.
        """
        uid, gid = self._user_ids()
        staged = f"/tmp/.swe-env-upload-{uuid.uuid4().hex}"
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(staged.lstrip("/"))
            info.size, info.mode, info.mtime, info.uid, info.gid = len(data), 0o600, int(time.time()), uid, gid
            tar.addfile(info, io.BytesIO(data))
        try:
            ok = self._container.put_archive("/", buffer.getvalue())
        except docker.errors.DockerException as exc:
            raise OSError(f"{path}: cannot write ({str(exc).splitlines()[0][:200]})") from None
        if not ok:
            raise OSError(f"{path}: cannot write")
        q, s = shlex.quote(path), shlex.quote(staged)
        # An existing file keeps its mode (cat > file); a new one gets `mode` or 644.
        chmod = f" && chmod {mode & 0o7777:o} {q}" if mode is not None else f" && {{ [ -n \"$existed\" ] || chmod 644 {q}; }}"
        script = (
            f"existed=$([ -e {q} ] && echo 1); mkdir -p -- \"$(dirname -- {q})\" && cat -- {s} > {q}{chmod}; "
            f"rc=$?; rm -f -- {s}; [ $rc = 0 ]"
        )
        self._files_run(script, path, confine)

    def _user_ids(self) -> tuple[int, int]:
        if self._ids is None:
            out = self._files_run("id -u; id -g", "id").split()
            self._ids = (int(out[0]), int(out[1]))
        return self._ids

    # ------------------------------------------------------------ the agent's work

    def diff(self, base_commit: str) -> str:
        """`git diff` of the working tree (new files included, binary-safe) against the image's tree.

        That is the tree install left (`images.INSTALLED_TREE`: base_commit plus what a recipe's
        install edited), or base_commit in images without the record. Nothing the agent set up
        takes part (see `_DIFF_SCRIPT`): git runs by absolute path as the sandbox's user, in a
        cleared environment, with a git dir and index of its own, so the agent's config (filters,
        `diff.external`, fsmonitor, hooks), attributes, staging and environment neither run nor
        change anything. A record the agent rewrote, or objects it replaced, only change the
        agent's own diff, which it could change by editing files anyway. A diff over
        `MAX_DIFF_BYTES` is refused (SandboxError).
        """
        argv = [*_CLEAN_ENV, "/bin/bash", "-c", _DIFF_SCRIPT, "swe-env-diff", self.workdir, base_commit,
                str(MAX_DIFF_BYTES)]
        result = self.exec(argv, timeout=120, idempotent=True, max_output=MAX_DIFF_BYTES + 64 * 1024)
        if result.exit_code != 0 or result.cut:
            raise SandboxError(f"git diff failed in {self.name} (exit {result.exit_code}): {result.output[-300:]}")
        return result.stdout


def _unframed(kept: HeadTailBytes, mark: bytes) -> Framed:
    """What a run the host stopped at its deadline wrote: never complete, whatever the bytes say."""
    framed = kept.framed(mark)
    return Framed(framed.data if framed is not None else b"", complete=False, cut=framed.cut if framed else 0)


def parse_size(text: str) -> int:
    """Bytes in a Docker-style size ("512m", "2g", "100k", "123")."""
    text = text.strip().lower()
    units = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(float(text))


_GO_MODE_DIR = 1 << 31
_GO_MODE_TYPE = _GO_MODE_DIR | 1 << 27 | 1 << 26 | 1 << 25 | 1 << 24 | 1 << 21 | 1 << 19
"""Go's `fs.FileMode` type bits in the engine's stat (dir, symlink, device, pipe, socket, char device, irregular)."""
