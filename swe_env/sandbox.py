"""One container: started with limits and no network, a persistent shell, files, the diff.

Files move through a second, private bash session (base64 over the exec socket), so the
agent's shell state cannot interfere and a file operation costs a few milliseconds.

A Sandbox owns exactly one container and always removes it on close (also used as a
context manager). The container's main process is `sleep TTL`, so a container whose
owner was SIGKILLed ends by itself and, started with auto-remove, disappears.
"""

from __future__ import annotations

import base64
import io
import posixpath
import shlex
import tarfile
import time
import uuid
from dataclasses import dataclass

import docker.errors

from . import engine
from .shell import CommandResult, ShellSession
from .task import Limits

_FILE_TIMEOUT = 120.0
_INLINE_LIMIT = 32 * 1024
"""Payloads up to this size go through the private shell; larger ones through the archive API."""

# Capabilities an agent never needs; dropping them narrows what hostile code can do.
_DROPPED_CAPS = ["NET_RAW", "MKNOD", "AUDIT_WRITE", "SYS_CHROOT", "SETFCAP"]


@dataclass
class ExecResult:
    """Outcome of a one-off process in the container."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class SandboxError(RuntimeError):
    """The container could not be started or has died: an infrastructure failure."""


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
    ):
        self.image = image
        self.limits = limits
        self.workdir = workdir
        self.env = dict(env or {})
        self.output_limit = output_limit
        self.name = f"swe-env-{kind}-{uuid.uuid4().hex[:12]}"
        self._labels = engine.managed_labels(kind, **(labels or {}))
        self._ttl = ttl_seconds
        self.container = None
        self.shell: ShellSession | None = None
        self._files: ShellSession | None = None
        self.started_at: float | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> "Sandbox":
        client = engine.client()
        try:
            self.container = client.containers.run(
                self.image,
                command=["sleep", str(self._ttl)],
                name=self.name,
                detach=True,
                auto_remove=True,
                init=True,
                labels=self._labels,
                working_dir=self.workdir,
                environment=self.env,
                network_mode="bridge" if self.limits.network else "none",
                mem_limit=self.limits.memory,
                memswap_limit=self.limits.memory,
                nano_cpus=int(self.limits.cpus * 1e9),
                pids_limit=self.limits.pids,
                cap_drop=_DROPPED_CAPS,
                security_opt=["no-new-privileges"],
            )
        except docker.errors.ImageNotFound:
            raise SandboxError(f"image {self.image} does not exist; build it with `swe-env build`") from None
        except docker.errors.DockerException as exc:
            self.close()
            raise SandboxError(f"cannot start a container from {self.image}: {exc}") from None
        self.started_at = time.monotonic()
        return self

    def start_shell(self) -> ShellSession:
        """Attach the persistent shell (done lazily: the grader never needs one)."""
        if self.shell is None:
            self.shell = ShellSession(
                engine.client().api, self.container.id, self.workdir, self.env, output_limit=self.output_limit
            )
            self.shell.start()
        return self.shell

    def close(self) -> None:
        """Remove the container; safe to call twice or after the container died."""
        for shell in (self.shell, self._files):
            if shell is not None:
                shell.close()
        self.shell = self._files = None
        container, self.container = self.container, None
        if container is None:
            # start() may have failed after the engine created the container: remove it by name.
            try:
                container = engine.client().containers.get(self.name)
            except docker.errors.DockerException:
                return
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def id(self) -> str:
        return self.container.id if self.container is not None else ""

    def alive(self) -> bool:
        if self.container is None:
            return False
        try:
            self.container.reload()
        except docker.errors.DockerException:
            return False
        return self.container.status == "running"

    # ------------------------------------------------------------ commands

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run a command in the persistent shell (cwd and exports survive)."""
        shell = self.start_shell()
        return shell.run(command, timeout=timeout or self.limits.command_timeout)

    def exec(self, argv: list[str] | str, timeout: float | None = None, workdir: str | None = None,
             env: dict[str, str] | None = None) -> ExecResult:
        """Run a one-off process (not in the agent's shell) and wait for it.

        With a timeout, the process is wrapped in coreutils `timeout` inside the container
        (exit code 124 when it fired).
        """
        if isinstance(argv, str):
            argv = ["bash", "-c", argv]
        if timeout is not None:
            argv = ["timeout", "-k", "5", str(int(max(timeout, 1))), *argv]
        try:
            result = self.container.exec_run(
                argv, workdir=workdir or self.workdir, environment={**self.env, **(env or {})}, demux=True
            )
        except docker.errors.DockerException as exc:
            raise SandboxError(f"container {self.name} failed to run {argv[0]}: {exc}") from None
        stdout, stderr = result.output or (b"", b"")
        return ExecResult(
            result.exit_code,
            (stdout or b"").decode("utf-8", errors="replace"),
            (stderr or b"").decode("utf-8", errors="replace"),
        )

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
            self._files = ShellSession(
                engine.client().api, self.container.id, "/", self.env, output_limit=1 << 31, strip_ansi=False
            )
            self._files.start()
        return self._files

    def _files_run(self, script: str, path: str) -> str:
        result = self._files_shell().run(script, timeout=_FILE_TIMEOUT)
        if result.exit_code != 0:
            reason = result.output.strip().splitlines()[-1:] or result.notes or ["unknown error"]
            raise OSError(f"{path}: {reason[0].split(': ')[-1]}")
        return result.output

    def read_file(self, path: str) -> tuple[bytes, int]:
        """The bytes and permission bits of a regular file (links followed).

        FileNotFoundError (also for dangling or looping links), IsADirectoryError, or OSError.
        """
        path = self.resolve(path)
        q = shlex.quote(path)
        script = (
            f"if [ -d {q} ]; then echo D; elif [ ! -e {q} ]; then echo N; elif [ ! -f {q} ]; then echo S; "
            f"else stat -L -c %a {q} && base64 -w0 -- {q}; fi"
        )
        head, _, body = self._files_run(script, path).partition("\n")
        if head == "N":
            raise FileNotFoundError(path)
        if head == "D":
            raise IsADirectoryError(path)
        if head == "S":
            raise OSError(f"{path} is not a regular file")
        return base64.b64decode(body), int(head, 8)

    def list_dir(self, path: str, depth: int = 2) -> list[str]:
        """Paths under a folder, `depth` levels deep, sorted, without .git."""
        path = self.resolve(path)
        q = shlex.quote(path)
        script = f"find {q} -maxdepth {int(depth)} -not -path '*/.git' -not -path '*/.git/*'"
        return sorted(self._files_run(script, path).splitlines())

    def remove_file(self, path: str) -> None:
        path = self.resolve(path)
        self._files_run(f"rm -f -- {shlex.quote(path)}", path)

    def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        """Write a file, creating parent folders; an existing file keeps its mode unless one is given."""
        path = self.resolve(path)
        if len(data) > _INLINE_LIMIT:
            # bash reads its input one byte at a time: large payloads go through the archive API.
            self._put_archive(path, data, mode)
            return
        q = shlex.quote(path)
        encoded = base64.b64encode(data).decode()
        script = f"mkdir -p -- \"$(dirname -- {q})\" && printf %s '{encoded}' | base64 -d > {q}"
        if mode is not None:
            script += f" && chmod {mode & 0o7777:o} {q}"
        self._files_run(script, path)

    def replace_bytes(self, path: str, start: int, end: int, data: bytes) -> None:
        """Replace bytes [start, end) of an existing file with `data`, sending only `data`.

        An edit of one line in a large file then costs one small round trip, not the file.
        """
        path = self.resolve(path)
        if len(data) > _INLINE_LIMIT:
            content, mode = self.read_file(path)
            self._put_archive(path, content[:start] + data + content[end:], mode)
            return
        q = shlex.quote(path)
        encoded = base64.b64encode(data).decode()
        script = (
            f"t=$(mktemp) && {{ head -c {int(start)} -- {q} && printf %s '{encoded}' | base64 -d "
            f"&& tail -c +{int(end) + 1} -- {q}; }} > \"$t\" && cat -- \"$t\" > {q}; "
            "rc=$?; rm -f -- \"$t\"; [ $rc = 0 ]"
        )
        self._files_run(script, path)

    def _put_archive(self, path: str, data: bytes, mode: int | None) -> None:
        if mode is None:
            try:
                mode = self.read_mode(path)
            except FileNotFoundError:
                mode = 0o644
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        try:
            ok = self.container.put_archive("/", buffer.getvalue())
        except docker.errors.DockerException as exc:
            raise OSError(f"{path}: cannot write ({str(exc).splitlines()[0][:200]})") from None
        if not ok:
            raise OSError(f"{path}: cannot write")

    def read_mode(self, path: str) -> int:
        """Permission bits of an existing file; FileNotFoundError otherwise."""
        path = self.resolve(path)
        q = shlex.quote(path)
        head = self._files_run(f"if [ -e {q} ]; then stat -L -c %a {q}; else echo N; fi", path).strip()
        if head == "N":
            raise FileNotFoundError(path)
        return int(head, 8)

    # ------------------------------------------------------------ the agent's work

    def diff(self, base_commit: str) -> str:
        """`git diff` of the working tree (new files included, binary-safe) against base_commit.

        A throw-away index is used so the agent's own index and staging are untouched.
        """
        script = (
            "set -e; idx=$(mktemp); cp .git/index \"$idx\" 2>/dev/null || true; "
            "export GIT_INDEX_FILE=\"$idx\"; "
            "git -c core.hooksPath=/dev/null add -A . >/dev/null 2>&1 || true; "
            f"git -c core.hooksPath=/dev/null diff --cached --binary --no-color --no-ext-diff --no-textconv {shlex.quote(base_commit)}; "
            "rm -f \"$idx\""
        )
        result = self.exec(["bash", "-c", script], timeout=120)
        if result.exit_code != 0:
            raise SandboxError(f"git diff failed in {self.name} (exit {result.exit_code}): {result.output[-300:]}")
        return result.stdout
