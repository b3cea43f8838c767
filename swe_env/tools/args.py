"""The tools' argument models (their docstrings and field descriptions are what agents read) and
what every tool returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

MAX_ACTION_CHARS = 1_000_000
"""The action space's limit (`SWEEnv.action_space.max_length`): an action, or any one of its arguments,
longer than this is refused before anything runs, as an observation giving the limit."""


class ToolArgs(BaseModel):
    """Base of the argument models: unknown arguments are an error the agent reads."""

    model_config = ConfigDict(extra="forbid")


class BashArgs(ToolArgs):
    """Run a command in a persistent bash shell in the repository (cwd and exports are kept)."""

    command: str = Field(description="The shell command to run.")
    timeout: Annotated[float, Field(gt=0, le=3600)] | None = Field(
        default=None, description="Seconds before the command is killed (default: the task's limit)."
    )


class EditArgs(ToolArgs):
    """Replace one exact occurrence of `old` with `new` in a file."""

    path: str = Field(description="File path, relative to the repository root or absolute inside it.")
    old: str = Field(description="Exact text to replace; must occur exactly once in the file.")
    new: str = Field(description="Replacement text.")


class UndoEditArgs(ToolArgs):
    """Undo the last edit (or create) made to a file with the edit tools."""

    path: str = Field(description="File path whose last edit is undone.")


class ViewArgs(ToolArgs):
    """Show a file with line numbers, or list a directory two levels deep."""

    path: str = Field(description="File or directory path, relative to the repository root or absolute inside it.")
    range: list[int] | None = Field(default=None, min_length=2, max_length=2, description="[first, last] line numbers to show; last may be -1.")


class CreateArgs(ToolArgs):
    """Create a new file (parent folders are made); it is an error if the file exists."""

    path: str = Field(description="Path of the new file.")
    content: str = Field(description="The whole content of the file.")


class SubmitArgs(ToolArgs):
    """Finish the episode: the repository's changes (or the patch given) are graded by hidden tests."""

    patch: str | None = Field(
        default=None,
        description="Optional unified diff to grade instead of the working tree's diff (e.g. only the files "
        "that make the fix, without scratch files); an empty string grades no change.",
    )


class TraceArgs(ToolArgs):
    """Run a Python command (pytest ..., python script.py) under a line tracer; shows each executed repository line with the locals it changed."""

    command: str = Field(description="The Python program to trace, e.g. `python -m pytest tests/test_x.py::test_y`.")


@dataclass
class ToolResult:
    """What a tool returns to the env."""

    output: str
    exit_code: int | None = None
    """Set by `bash` only; file tools have no exit code."""
    error: bool = False
    notes: list[str] = field(default_factory=list)
    timed_out: bool = False
    """Set by `bash` and `trace`: the command ran past its timeout and was killed."""
    submitted: bool = False
    """Set by `submit`: the env ends the episode and grades `patch` (None: the working tree's diff)."""
    patch: str | None = None


def error_result(message: str) -> ToolResult:
    """An agent's mistake as a tool's answer (never an exception)."""
    return ToolResult(f"Error: {message}", exit_code=None, error=True)
