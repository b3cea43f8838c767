"""The agent's persistent shell in a sandbox: its bash, and what a command's end says about the container.

A command that was SIGKILLed gets a note when the kernel killed something for memory (the cgroup's count,
read on this host when the engine is local, else through the private file shell); the disk is checked between commands (`DiskMeter.after_step`). Notes
are recorded in `CommandResult.notes` only: the env renders them, once. The pid limit's way out (a fork
bomb) is the shell's own (`ShellSession`, given the pid limit).
"""

from __future__ import annotations

from . import engine
from .disk import DiskMeter
from .files import FileShell
from .lifecycle import Lifecycle
from .shell import CommandResult, ShellSession


class AgentShell:
    """The persistent bash the agent's commands run in (started on first use)."""

    def __init__(self, life: Lifecycle, files: FileShell, disk: DiskMeter):
        self.life, self.files, self.disk = life, files, disk
        self.session: ShellSession | None = None
        self._oom_kills = 0

    def start(self) -> ShellSession:
        if self.session is None:
            spec = self.life.spec
            self.session = ShellSession(
                engine.client().api,
                self.life.handle.id,
                spec.workdir,
                dict(spec.env),
                output_limit=spec.output_limit,
                user=spec.user or "",
                reset_container=self.life.stop_all_processes,
                pids_limit=spec.limits.pids,
                stream=self.life.take_shell_stream(),
                engine_seconds=self.life.engine_seconds,
            )
            self.session.start()
        return self.session

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run a command (cwd and exports survive); DiskLimitExceeded when the container wrote more than allowed."""
        limits = self.life.spec.limits
        self.life.code_ran = True  # the agent's: processes a stop cannot end from now on are its doing
        result = self.start().run(command, timeout=timeout or limits.command_timeout)
        # The OOM counter is read only when something was SIGKILLed (exit 137, or bash's "Killed").
        if result.exit_code in (137, None) or result.restarted or "Killed" in result.output:
            kills = self._oom_kills_now()
            if kills > self._oom_kills:
                result.notes.append(f"a process was killed by the kernel for using more than the memory limit ({limits.memory})")
            self._oom_kills = max(kills, self._oom_kills)
        self.disk.after_step(result.seconds)
        return result

    def _oom_kills_now(self) -> int:
        """The kernel's count of memory kills in the container: read on this host from its cgroup when the layer
        is measured here (no process of the container runs, and no private shell is started for it, e.g. after
        the fork bomb's recovery), else through the private shell."""
        host = self.disk.host_layer()
        counted = host.oom_kills() if host is not None else None
        return counted if counted is not None else self.files.oom_kills(self._oom_kills)

    def close(self, forget: bool = False) -> None:
        if self.session is not None:
            self.session.close()  # its bash is gone; it starts anew on next use
        if forget:
            self.session = None
