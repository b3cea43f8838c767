"""One container for an episode or a grading run: a thin facade over the parts that each do one job.

`lifecycle` (start with limits and no network, removal, every process stopped from outside, the
engine's evidence of what code inside did), `execute` (one-off processes under a host deadline),
`files` (the private file shell; `Files.confined()` owns the "inside the work directory" rule),
`disk` (bytes and inodes against the limit, the grader's watch), `diff` (the agent's work, trusting
nothing of its git setup), and the agent's persistent `shell`. What makes a sandbox is one frozen
`spec.SandboxSpec`, built from a task by `SandboxSpec.for_task`.
"""

from __future__ import annotations

from typing import Any

from ..data.task import Limits, Service, Task
from . import (
    engine,
    handle_termination_signals,  # noqa: F401 - public here too, as before
)
from .agent_shell import AgentShell
from .diff import MAX_DIFF_BYTES, take_diff
from .disk import DiskLimitExceeded, DiskMeter, parse_size
from .execute import DEADLINE_GRACE, MAX_EXEC_OUTPUT, SERVICES_LOG, DeadlineExceeded, Executor, OutputLost
from .files import MAX_READ_BYTES, SYSTEM_PATH, FileContent, Files, FileShell
from .lifecycle import Lifecycle, SandboxError, close_all
from .shell import CommandResult, ShellSession
from .spec import SandboxSpec
from .streams import ExecResult, FramedRun

__all__ = [
    "DEADLINE_GRACE",
    "MAX_DIFF_BYTES",
    "MAX_EXEC_OUTPUT",
    "MAX_READ_BYTES",
    "SERVICES_LOG",
    "SYSTEM_PATH",
    "DeadlineExceeded",
    "DiskLimitExceeded",
    "FileContent",
    "OutputLost",
    "Sandbox",
    "SandboxError",
    "SandboxSpec",
    "close_all",
    "parse_size",
]


class Sandbox:
    """A running container for one episode (or one grading run); removed on close (also a context manager)."""

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
        services: tuple[Service, ...] | list[Service] = (),
    ):
        self._build(SandboxSpec.of(image, limits, workdir, env, kind, labels, output_limit, ttl_seconds, user, services))

    @classmethod
    def of(cls, spec: SandboxSpec) -> Sandbox:
        """The sandbox `spec` describes (not started)."""
        sandbox = cls.__new__(cls)
        sandbox._build(spec)
        return sandbox

    @classmethod
    def for_task(cls, task: Task, image: str, kind: str, labels: dict[str, str] | None = None, **options: Any) -> Sandbox:
        """A sandbox for `task` from `image` (`SandboxSpec.for_task`; `options` override, e.g. `user=None`)."""
        return cls.of(SandboxSpec.for_task(task, image, kind, labels, **options))

    def _build(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self.image, self.limits, self.workdir, self.env = spec.image, spec.limits, spec.workdir, dict(spec.env)
        self.user, self.services, self.output_limit = spec.user or "", spec.services, spec.output_limit
        self.life = Lifecycle(spec, owner=self)
        self.name = self.life.name
        self.executor = Executor(self.life)
        self._file_shell = FileShell(self.life)
        self.files = Files(self._file_shell)
        """The container's files, for the host's own work (anywhere in the container)."""
        self.workspace = self.files.confined()
        """The files inside the workdir only (links resolved): what the agent's file tools go through."""
        self.disk = DiskMeter(self.life, self.executor)
        self.agent = AgentShell(self.life, self._file_shell, self.disk)
        self.life.on_reset.extend([self.agent.close, self._file_shell.close])

    # ------------------------------------------------------------ life

    def start(self, shell: bool = False) -> Sandbox:
        """Start the container; with `shell`, the agent's first bash comes with it (`Lifecycle.start`): for
        a sandbox whose shell is started next (`pool.start`), never for one that runs none (the grader's)."""
        self.life.start(shell=shell)
        self.disk.started()
        try:
            self.executor.start_services(self.services)
        except BaseException:
            self.close()
            raise
        return self

    def start_shell(self) -> ShellSession:
        """Attach the persistent shell (done lazily: the grader never needs one)."""
        return self.agent.start()

    @property
    def shell(self) -> ShellSession | None:
        return self.agent.session

    def close(self) -> None:
        """Remove the container; safe to call twice or after the container died."""
        self.life.close()
        self.agent.close(forget=True)
        self._file_shell.close(forget=True)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def container(self) -> Any:
        return self.life.container

    @property
    def id(self) -> str:
        return self.life.id

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        """A command in the persistent shell (`AgentShell.run`: notes, the disk checked between commands)."""
        return self.agent.run(command, timeout)

    # The parts' calls the rest of the code (and the tests) make on a sandbox; the rest through the parts.
    def stop_all_processes(self) -> None:
        self.life.stop_all_processes()

    def kill(self) -> None:
        self.life.kill()

    def alive(self) -> bool:
        return self.life.alive()

    def stopped_processes(self) -> int:
        return self.life.stopped_processes()

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
        return self.executor.exec(argv, timeout, workdir, env, idempotent=idempotent, user=user, max_output=max_output)

    def exec_to_end(self, argv: list[str], timeout: float, env: dict[str, str] | None = None, *, max_stdout: int, max_stderr: int) -> FramedRun:
        return self.executor.exec_to_end(argv, timeout, env, max_stdout=max_stdout, max_stderr=max_stderr)

    def check_disk(self, wait: bool = True) -> None:
        self.disk.check(wait)

    def read(self, path: str, *, max_bytes: int = MAX_READ_BYTES, tail: bool = False) -> FileContent:
        return self.files.read(path, max_bytes=max_bytes, tail=tail)

    def read_file(self, path: str, max_bytes: int = MAX_READ_BYTES, tail: bool = False) -> tuple[bytes, int]:
        content = self.files.read(path, max_bytes=max_bytes, tail=tail)
        return content.data, content.mode

    def read_from_engine(self, path: str, max_bytes: int) -> FileContent:
        return self.files.read_from_engine(path, max_bytes)

    def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        self.files.write(path, data, mode)

    def remove_file(self, path: str) -> None:
        self.files.remove(path)

    def replace_bytes(self, path: str, start: int, end: int, data: bytes) -> None:
        self.files.replace_bytes(path, start, end, data)

    def diff(self, base_commit: str) -> str:
        """The agent's work against the image's installed tree (`diff.take_diff`: nothing of its git setup runs)."""
        return take_diff(self.executor, base_commit)
