"""One container: started with limits and no network, a persistent shell, files, the diff.

A Sandbox owns exactly one container and always removes it on close (also used as a
context manager). The container's main process is `sleep TTL`, so a container whose
owner was SIGKILLed ends by itself and, started with auto-remove, disappears.
"""

from __future__ import annotations

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
        if self.shell is not None:
            self.shell.close()
            self.shell = None
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

    def read_file(self, path: str) -> tuple[bytes, int]:
        """The bytes and mode of a regular file; FileNotFoundError / IsADirectoryError otherwise."""
        path = self.resolve(path)
        try:
            stream, _stat = self.container.get_archive(path)
        except docker.errors.NotFound:
            raise FileNotFoundError(path) from None
        buffer = io.BytesIO(b"".join(stream))
        with tarfile.open(fileobj=buffer) as tar:
            member = tar.next()
            if member is None:
                raise FileNotFoundError(path)
            if member.isdir():
                raise IsADirectoryError(path)
            if member.issym() or member.islnk():
                # A link: read its target through the shell-less path once more.
                target = posixpath.normpath(posixpath.join(posixpath.dirname(path), member.linkname))
                return self.read_file(target)
            handle = tar.extractfile(member)
            return (handle.read() if handle else b""), member.mode

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write a file (parent folders are created) without going through the shell."""
        path = self.resolve(path)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(data)
            info.mode = mode
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
        buffer.seek(0)
        try:
            ok = self.container.put_archive("/", buffer.getvalue())
        except docker.errors.DockerException as exc:
            raise OSError(f"cannot write {path}: {exc}") from None
        if not ok:
            raise OSError(f"cannot write {path}")

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
