"""The file tools (`view`, `create`, `edit`, `undo_edit`) and what they do to a sandbox.

A file tool never raises for the agent's mistakes (a missing file, an ambiguous edit): those are
error results and the episode goes on. Files are read and written through the sandbox's private
file shell, never the agent's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .args import CreateArgs, EditArgs, ToolResult, UndoEditArgs, ViewArgs
from .args import error_result as _error

if TYPE_CHECKING:  # only for annotations: the tools' names and models load without the engine's SDK
    from ..runtime.sandbox import Sandbox

SNIPPET_CONTEXT = 4
MAX_VIEW_CHARS = 20_000
MAX_VIEW_BYTES = 4 * 1024 * 1024
"""The most of a file `view` reads: the lines past it are out of the file tools' reach (bash's `sed -n` is not)."""
SHOWN_OCCURRENCES = 20
"""Line numbers an ambiguous edit's error lists (then how many more there are)."""
MAX_EDIT_BYTES = 16 * 1024 * 1024
"""Files larger than this are refused by `edit` (it needs the whole file)."""


class FileTools:
    """The file tools of one episode (keeps per-file undo history)."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.files = sandbox.workspace
        """Only the workdir's files, links resolved in the container (`runtime.files.Files.confined`)."""
        self.history: dict[str, list[tuple[bytes | None, int]]] = {}

    def _inside(self, path: str) -> str | None:
        if "\0" in path or not path.strip():
            return None
        return self.files.resolve(path) if self.files.inside(path) else None

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
            content = self.files.read(full, max_bytes=MAX_VIEW_BYTES)
        except IsADirectoryError:
            return self._list_dir(full)
        except FileNotFoundError:
            return _error(f"{args.path}: no such file or directory")
        data, partial = content.data, content.truncated
        if partial:
            data = data[: data.rfind(b"\n") + 1] or data  # whole lines only
        text = escape_control(data.decode("utf-8", errors="replace"))
        lines = text.splitlines()
        note = (
            (
                f"\n[the file is {content.size} bytes; only its first {len(data)} bytes ({len(lines)} lines) "
                "can be viewed; use bash (e.g. sed -n) for the rest]"
            )
            if partial
            else ""
        )
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
        return ToolResult(escape_control("\n".join(self.files.list_dir(full, depth=2))))

    # ---------------------------------------------------------- create

    def create(self, args: CreateArgs) -> ToolResult:
        full = self._inside(args.path)
        if full is None:
            return self._outside_error(args.path)
        try:
            self.files.read(full, max_bytes=0)
            return _error(f"{args.path} already exists; use edit to change it")
        except IsADirectoryError:
            return _error(f"{args.path} is a directory")
        except FileNotFoundError:
            pass
        data = args.content.encode("utf-8", errors="surrogateescape")
        self.files.write(full, data, mode=0o644)
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
            content = self.files.read(full, max_bytes=MAX_EDIT_BYTES)
        except FileNotFoundError:
            return _error(f"{args.path}: no such file")
        except IsADirectoryError:
            return _error(f"{args.path} is a directory")
        if content.truncated:
            return _error(
                f"{args.path} is {content.size} bytes, more than the edit tool handles ({MAX_EDIT_BYTES}); use bash to change it. No change made."
            )
        data, mode = content.data, content.mode
        text = data.decode("utf-8", errors="surrogateescape")
        old, new = args.old, args.new
        if old not in text and "\r\n" in text:  # the agent wrote \n; the file keeps \r\n
            old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
        count = text.count(old)
        if count == 0:
            return _error(f"{args.path}: `old` text not found; no change made (view the file to copy it exactly)")
        if count > 1:
            lines = _occurrence_lines(text, old, SHOWN_OCCURRENCES)
            shown = ", ".join(map(str, lines)) + (f", ... ({count - len(lines)} more)" if count > len(lines) else "")
            return _error(
                f"{args.path}: `old` text occurs {count} times (lines {shown}); include more surrounding lines so it occurs once. No change made."
            )
        start = text.index(old)
        updated = text[:start] + new + text[start + len(old) :]
        # Only the changed bytes travel: offsets are in bytes of the file as read.
        start_byte = len(text[:start].encode("utf-8", errors="surrogateescape"))
        end_byte = start_byte + len(old.encode("utf-8", errors="surrogateescape"))
        self.files.replace_bytes(full, start_byte, end_byte, new.encode("utf-8", errors="surrogateescape"))
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
            self.files.remove(full)
            return ToolResult(f"removed {args.path} (undid its creation)")
        self.files.write(full, previous, mode)
        return ToolResult(f"restored {args.path} to its state before the last edit")


_CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x00, 0x09), *range(0x0E, 0x20), *range(0x7F, 0xA0))}


def escape_control(text: str) -> str:
    """`text` with every control character but tab and the line breaks (\\n \\r \\v \\f) written
    as a visible `\\xHH`: an escape sequence in a file (a window title, clear screen, cursor
    moves) reaches the observation as plain text that no terminal acts on."""
    # str.translate, not a regex with a callback: 4 MB of NUL bytes (a sparse file viewed) made 4 million
    # one-off strings that way, 265 MB at peak and seconds of host CPU per call (bench/soak.py --memory).
    return text.translate(_CONTROL_ESCAPES)


def _occurrence_lines(text: str, needle: str, limit: int) -> list[int]:
    """The line numbers of the first `limit` (non-overlapping, as `str.count` counts them) occurrences.

    Lines are counted from the previous occurrence, not from the start of the file: counting from
    the start each time made one edit of a 234 KB file with thousands of matches take 16 s."""
    lines: list[int] = []
    line, counted, start = 1, 0, 0
    while len(lines) < limit and (index := text.find(needle, start)) != -1:
        line += text.count("\n", counted, index)
        lines.append(line)
        counted, start = index, index + len(needle)
    return lines


def _snippet(text: str, first_line: int, changed_lines: int) -> str:
    lines = text.splitlines()
    start = max(first_line - SNIPPET_CONTEXT, 1)
    end = min(first_line + changed_lines - 1 + SNIPPET_CONTEXT, len(lines))
    return "\n".join(f"{n:6}\t{lines[n - 1]}" for n in range(start, end + 1))
