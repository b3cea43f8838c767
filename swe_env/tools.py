"""The agent's tools: argument models, JSON schemas, and what each does to a sandbox.

Every tool returns a ToolResult; a tool never raises for the agent's mistakes (a missing
file, an ambiguous edit): those are error observations and the episode goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from .sandbox import Sandbox

SNIPPET_CONTEXT = 4
MAX_VIEW_CHARS = 20_000
MAX_VIEW_BYTES = 4 * 1024 * 1024
"""The most of a file `view` reads: the lines past it are out of the file tools' reach (bash's `sed -n` is not)."""
MAX_EDIT_BYTES = 16 * 1024 * 1024
"""Files larger than this are refused by `edit` (it needs the whole file)."""


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BashArgs(_Args):
    """Run a command in a persistent bash shell in the repository (cwd and exports are kept)."""

    command: str = Field(description="The shell command to run.")
    timeout: Annotated[float, Field(gt=0, le=3600)] | None = Field(
        default=None, description="Seconds before the command is killed (default: the task's limit)."
    )


class EditArgs(_Args):
    """Replace one exact occurrence of `old` with `new` in a file."""

    path: str = Field(description="File path, relative to the repository root or absolute inside it.")
    old: str = Field(description="Exact text to replace; must occur exactly once in the file.")
    new: str = Field(description="Replacement text.")


class UndoEditArgs(_Args):
    """Undo the last edit (or create) made to a file with the edit tools."""

    path: str = Field(description="File path whose last edit is undone.")


class ViewArgs(_Args):
    """Show a file with line numbers, or list a directory two levels deep."""

    path: str = Field(description="File or directory path, relative to the repository root or absolute inside it.")
    range: list[int] | None = Field(
        default=None, min_length=2, max_length=2, description="[first, last] line numbers to show; last may be -1."
    )


class CreateArgs(_Args):
    """Create a new file (parent folders are made); it is an error if the file exists."""

    path: str = Field(description="Path of the new file.")
    content: str = Field(description="The whole content of the file.")


class SubmitArgs(_Args):
    """Finish the episode: the repository's changes (or the patch given) are graded by hidden tests."""

    patch: str | None = Field(
        default=None,
        description="Optional unified diff to grade instead of the working tree's diff (e.g. only the files "
                    "that make the fix, without scratch files); an empty string grades no change.",
    )


class TraceArgs(_Args):
    """Run a Python command (pytest ..., python script.py) under a line tracer; shows each executed repository line with the locals it changed."""

    command: str = Field(description="The Python program to trace, e.g. `python -m pytest tests/test_x.py::test_y`.")


TOOLS: dict[str, type[_Args]] = {
    "bash": BashArgs,
    "edit": EditArgs,
    "undo_edit": UndoEditArgs,
    "view": ViewArgs,
    "create": CreateArgs,
    "submit": SubmitArgs,
    "trace": TraceArgs,
}
DEFAULT_TOOLS = ["bash", "edit", "undo_edit", "view", "create", "submit"]
"""The tools an env offers unless told otherwise (optional ones, like `trace`, are opt-in)."""


def schemas(names: list[str] | None = None) -> list[dict]:
    """The tools in OpenAI's function-calling `tools` format."""
    result = []
    for name in names or DEFAULT_TOOLS:
        model = TOOLS[name]
        parameters = model.model_json_schema()
        parameters.pop("title", None)
        parameters.pop("description", None)
        for prop in parameters.get("properties", {}).values():
            prop.pop("title", None)
        result.append(
            {
                "type": "function",
                "function": {"name": name, "description": (model.__doc__ or "").strip(), "parameters": parameters},
            }
        )
    return result


_EXAMPLES = {
    "dict": {
        "bash": '{"tool": "bash", "command": "python -m pytest -q tests/test_x.py"}',
        "edit": '{"tool": "edit", "path": "pkg/mod.py", "old": "exact old text", "new": "new text"}',
        "undo_edit": '{"tool": "undo_edit", "path": "pkg/mod.py"}',
        "view": '{"tool": "view", "path": "pkg/mod.py", "range": [1, 40]}',
        "create": '{"tool": "create", "path": "pkg/new.py", "content": "..."}',
        "submit": '{"tool": "submit"}',
        "trace": '{"tool": "trace", "command": "python -m pytest tests/test_x.py::test_y"}',
    },
    "cwm": {
        "bash": "<tool: bash>\npython -m pytest -q tests/test_x.py\n</tool>",
        "edit": "<tool: edit>\npkg/mod.py\n<<<<<<< SEARCH\nexact old lines\n=======\nnew lines\n>>>>>>> REPLACE\n</tool>",
        "undo_edit": "<tool: undo_edit>\npkg/mod.py\n</tool>",
        "view": "<tool: view>\npkg/mod.py\n1 40\n</tool>",
        "create": "<tool: create>\npkg/new.py\nfile content...\n</tool>",
        "submit": "<tool: submit>\n</tool>",
        "trace": "<tool: trace>\npython -m pytest tests/test_x.py::test_y\n</tool>",
    },
}
_FORMAT_INTRO = {
    "dict": "Send exactly one action per step as a JSON object:",
    "cwm": "Send exactly one tool call per step as a <tool: NAME> ... </tool> block:",
    "openai": "Call exactly one of these functions per step (function calling):",
}


def instructions(workdir: str, action_format: str = "dict", names: list[str] | None = None) -> str:
    """Plain-text description of the tools in the requested action format, for the first observation."""
    lines = [f"The repository is checked out at {workdir}. {_FORMAT_INTRO[action_format]}"]
    examples = _EXAMPLES.get(action_format, {})
    for name in names or DEFAULT_TOOLS:
        doc = (TOOLS[name].__doc__ or "").strip()
        example = examples.get(name)
        if example is None:
            lines.append(f"- {name}: {doc}")
        elif "\n" in example:
            lines.append(f"- {name}: {doc}\n{example}")
        else:
            lines.append(f"- {name}: {doc}  e.g. {example}")
    return "\n".join(lines)


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


class FileTools:
    """The file tools of one episode (keeps per-file undo history)."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.history: dict[str, list[tuple[bytes | None, int]]] = {}

    def run(self, tool: str, args: _Args) -> ToolResult:
        """Run a file tool; file system errors (permissions, odd file types) become error results."""
        try:
            return getattr(self, tool)(args)
        except OSError as exc:
            return _error(str(exc) or type(exc).__name__)

    def _inside(self, path: str) -> str | None:
        if "\0" in path or not path.strip():
            return None
        full = self.sandbox.resolve(path)
        root = self.sandbox.workdir
        if full != root and not full.startswith(root + "/"):
            return None
        return full

    def _outside_error(self, path: str) -> ToolResult:
        if "\0" in path:
            return _error("the path contains a NUL byte")
        if not path.strip():
            return _error("the path is empty")
        return _error(f"path {path!r} is outside the repository ({self.sandbox.workdir})")

    # ---------------------------------------------------------- view

    def view(self, args: ViewArgs) -> ToolResult:
        full = self._inside(args.path)
        if full is None:
            return self._outside_error(args.path)
        try:
            content = self.sandbox.read(full, confine=True, max_bytes=MAX_VIEW_BYTES)
        except IsADirectoryError:
            return self._list_dir(full)
        except FileNotFoundError:
            return _error(f"{args.path}: no such file or directory")
        data, partial = content.data, content.truncated
        if partial:
            data = data[: data.rfind(b"\n") + 1] or data  # whole lines only
        text = escape_control(data.decode("utf-8", errors="replace"))
        lines = text.splitlines()
        note = (f"\n[the file is {content.size} bytes; only its first {len(data)} bytes ({len(lines)} lines) "
                "can be viewed; use bash (e.g. sed -n) for the rest]") if partial else ""
        first, last = 1, len(lines)
        if args.range is not None:
            first, last = args.range
            if last == -1:
                last = len(lines)
            if first < 1 or first > max(len(lines), 1) or last < first:
                what = f"the first {len(data)} bytes of the file have" if partial else "the file has"
                return _error(f"{args.path}: invalid range {args.range}; {what} {len(lines)} lines")
        shown = "\n".join(f"{n:6}\t{lines[n - 1]}" for n in range(first, min(last, len(lines)) + 1))
        if len(shown) > MAX_VIEW_CHARS:
            shown = shown[:MAX_VIEW_CHARS] + f"\n[... cut at {MAX_VIEW_CHARS} characters; view a smaller range ...]"
        return ToolResult((shown if shown else f"{args.path} is empty") + note)

    def _list_dir(self, full: str) -> ToolResult:
        return ToolResult(escape_control("\n".join(self.sandbox.list_dir(full, depth=2, confine=True))))

    # ---------------------------------------------------------- create

    def create(self, args: CreateArgs) -> ToolResult:
        full = self._inside(args.path)
        if full is None:
            return self._outside_error(args.path)
        try:
            self.sandbox.read(full, confine=True, max_bytes=0)
            return _error(f"{args.path} already exists; use edit to change it")
        except IsADirectoryError:
            return _error(f"{args.path} is a directory")
        except FileNotFoundError:
            pass
        data = args.content.encode("utf-8", errors="surrogateescape")
        self.sandbox.write_file(full, data, mode=0o644, confine=True)
        self.history.setdefault(full, []).append((None, 0o644))
        return ToolResult(f"created {args.path} ({len(data)} bytes)")

    # ---------------------------------------------------------- edit

    def edit(self, args: EditArgs) -> ToolResult:
        full = self._inside(args.path)
        if full is None:
            return self._outside_error(args.path)
        if args.old == "":
            return _error("`old` must not be empty; use create for new files")
        try:
            content = self.sandbox.read(full, confine=True, max_bytes=MAX_EDIT_BYTES)
        except FileNotFoundError:
            return _error(f"{args.path}: no such file")
        except IsADirectoryError:
            return _error(f"{args.path} is a directory")
        if content.truncated:
            return _error(f"{args.path} is {content.size} bytes, more than the edit tool handles "
                          f"({MAX_EDIT_BYTES}); use bash to change it. No change made.")
        data, mode = content.data, content.mode
        text = data.decode("utf-8", errors="surrogateescape")
        old, new = args.old, args.new
        if old not in text and "\r\n" in text:  # the agent wrote \n; the file keeps \r\n
            old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
        count = text.count(old)
        if count == 0:
            return _error(f"{args.path}: `old` text not found; no change made (view the file to copy it exactly)")
        if count > 1:
            lines = _occurrence_lines(text, old)
            shown = ", ".join(map(str, lines[:20])) + (f", ... ({len(lines) - 20} more)" if len(lines) > 20 else "")
            return _error(
                f"{args.path}: `old` text occurs {count} times (lines {shown}); "
                "include more surrounding lines so it occurs once. No change made."
            )
        start = text.index(old)
        updated = text[:start] + new + text[start + len(old) :]
        # Only the changed bytes travel: offsets are in bytes of the file as read.
        start_byte = len(text[:start].encode("utf-8", errors="surrogateescape"))
        end_byte = start_byte + len(old.encode("utf-8", errors="surrogateescape"))
        self.sandbox.replace_bytes(
            full, start_byte, end_byte, new.encode("utf-8", errors="surrogateescape"), confine=True
        )
        self.history.setdefault(full, []).append((data, mode))
        first_line = text.count("\n", 0, start) + 1
        return ToolResult(f"edited {args.path}\n" + escape_control(_snippet(updated, first_line, new.count("\n") + 1)))

    def undo_edit(self, args: UndoEditArgs) -> ToolResult:
        full = self._inside(args.path)
        if full is None:
            return self._outside_error(args.path)
        stack = self.history.get(full)
        if not stack:
            return _error(f"{args.path}: no edit to undo")
        previous, mode = stack.pop()
        if previous is None:
            self.sandbox.remove_file(full, confine=True)
            return ToolResult(f"removed {args.path} (undid its creation)")
        self.sandbox.write_file(full, previous, mode, confine=True)
        return ToolResult(f"restored {args.path} to its state before the last edit")


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def escape_control(text: str) -> str:
    """`text` with every control character but tab and the line breaks (\\n \\r \\v \\f) written
    as a visible `\\xHH`: an escape sequence in a file (a window title, clear screen, cursor
    moves) reaches the observation as plain text that no terminal acts on."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _error(message: str) -> ToolResult:
    return ToolResult(f"Error: {message}", exit_code=None, error=True)


def _occurrence_lines(text: str, needle: str) -> list[int]:
    lines, start = [], 0
    while (index := text.find(needle, start)) != -1:
        lines.append(text.count("\n", 0, index) + 1)
        start = index + 1
    return lines


def _snippet(text: str, first_line: int, changed_lines: int) -> str:
    lines = text.splitlines()
    start = max(first_line - SNIPPET_CONTEXT, 1)
    end = min(first_line + changed_lines - 1 + SNIPPET_CONTEXT, len(lines))
    return "\n".join(f"{n:6}\t{lines[n - 1]}" for n in range(start, end + 1))
