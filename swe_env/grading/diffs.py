"""Reading unified diffs (git format): which files a patch touches, and its hunks.

Pure logic, no I/O: the grader uses it to know which files to restore before the
hidden tests go in, and the oracle agent to replay a gold patch as edits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass
class Hunk:
    """One hunk: the text it expects (context and removed lines) and the text it leaves."""

    old_start: int
    old: str = ""
    new: str = ""
    new_start: int = 0
    added: list[tuple[int, str]] = field(default_factory=list)
    """The lines the hunk adds, each with its line number in the new file (newline kept)."""


@dataclass
class FilePatch:
    """The change to one file. `old_path`/`new_path` are None for a created/deleted file."""

    old_path: str | None
    new_path: str | None
    hunks: list[Hunk] = field(default_factory=list)
    binary: bool = False

    @property
    def path(self) -> str:
        """The path the change is about (the new one, or the old one for a deletion)."""
        return self.new_path or self.old_path or ""


class DiffError(ValueError):
    """The text is not a unified diff this module can read."""


class Patch:
    """A patch read once (`Patch.read`): its text and its files, and what the grader, protection, suspicion and
    similarity derive from it, each derived once (`derived`). A text that cannot be read has no files
    (`error` says why): the grader refuses it by applying it, and nothing derived from it flags or names a path."""

    def __init__(self, text: str, files: list[FilePatch], error: str | None = None):
        self.text, self.files, self.error = text, files, error
        self._derived: dict[str, Any] = {}

    @classmethod
    def read(cls, text: str | Patch | None) -> Patch:
        """`text` parsed (a `Patch` is returned as it is, so a caller may hand either)."""
        if isinstance(text, Patch):
            return text
        text = text or ""
        if not text.strip():
            return cls(text, [])
        try:
            return cls(text, parse(text))
        except DiffError as exc:
            return cls(text, [], str(exc))

    @property
    def paths(self) -> list[str]:
        """Every path the patch reads or writes (old and new names), in order, without duplicates."""
        return self.derived("paths", lambda patch: _touched(patch.files))

    @property
    def created(self) -> list[str]:
        """The files the patch creates."""
        return [file.new_path for file in self.files if file.old_path is None and file.new_path]

    def changed_lines(self, paths: Iterable[str]) -> dict[str, list[tuple[int, int]]]:
        """The new side of each hunk (first and last line; context lines included, so a deletion is inside one) of
        every file among `paths` that the patch changes by hunks; created, deleted and binary files are left out
        (changed as a whole)."""
        keep = set(paths)
        found: dict[str, list[tuple[int, int]]] = {}
        for file in self.files:
            if file.old_path is None or not file.new_path or file.binary or not file.hunks or file.new_path not in keep:
                continue
            found[file.new_path] = [(hunk.new_start, hunk.new_start + max(1, len(hunk.new.splitlines())) - 1) for hunk in file.hunks]
        return found

    def derived(self, name: str, compute: Callable[[Patch], T]) -> T:
        """`compute(self)`, computed on first use and kept (a reader's own view of the patch, e.g. similarity's)."""
        if name not in self._derived:
            self._derived[name] = compute(self)
        return self._derived[name]


def parse(diff: str) -> list[FilePatch]:
    """Split a git-style unified diff into per-file patches with their hunks.

    Linear in the diff's length: a hunk's lines are collected in lists and joined once.
    """
    files: list[FilePatch] = []
    current: FilePatch | None = None
    hunk: Hunk | None = None
    old_parts: list[str] = []
    new_parts: list[str] = []
    open_hunks: list[tuple[Hunk, list[str], list[str]]] = []
    old_left = new_left = 0
    last_tag = " "
    for line in _lines(diff):
        if line.startswith("\\") and hunk is not None:
            # "\ No newline at end of file": the previous line of that side has no newline.
            if last_tag in (" ", "-"):
                _strip_final_newline(old_parts)
            if last_tag in (" ", "+"):
                _strip_final_newline(new_parts)
            continue
        if hunk is not None and (old_left > 0 or new_left > 0):
            tag, body = line[:1], line[1:]
            last_tag = tag
            if tag in (" ", "-"):
                old_parts.append(body)
                old_left -= 1
            if tag == "+":
                hunk.added.append((hunk.new_start + len(new_parts), body))
            if tag in (" ", "+"):
                new_parts.append(body)
                new_left -= 1
            if tag not in (" ", "-", "+"):
                if line.strip() == "":  # some tools strip the space of empty context lines
                    old_parts.append("\n")
                    new_parts.append("\n")
                    old_left -= 1
                    new_left -= 1
                else:
                    raise DiffError(f"unexpected line inside a hunk of {current.path if current else '?'}: {line[:80]!r}")
            continue
        if line.startswith("diff --git "):
            current = FilePatch(*_paths_from_header(line))
            files.append(current)
            hunk = None
        elif line.startswith("--- "):
            if current is None or current.hunks:
                current = FilePatch(None, None)
                files.append(current)
            current.old_path = _strip_prefix(line[4:].rstrip("\n"))
        elif line.startswith("+++ ") and current is not None:
            current.new_path = _strip_prefix(line[4:].rstrip("\n"))
        elif line.startswith(("Binary files ", "GIT binary patch")) and current is not None:
            current.binary = True
        elif line.startswith("new file mode") and current is not None:
            current.old_path = None
        elif line.startswith("deleted file mode") and current is not None:
            current.new_path = None
        elif (match := _HUNK.match(line)) and current is not None:
            old_left = int(match.group(2) or 1)
            new_left = int(match.group(4) or 1)
            hunk = Hunk(old_start=int(match.group(1)), new_start=int(match.group(3)))
            old_parts, new_parts = [], []
            open_hunks.append((hunk, old_parts, new_parts))
            current.hunks.append(hunk)
    for done, old, new in open_hunks:
        done.old, done.new = "".join(old), "".join(new)
    return files


def _lines(diff: str):
    """The diff's lines as git reads them: ended by "\\n" only (str.splitlines would also break
    on form feeds, U+2028 and others, which are ordinary characters inside a line to git)."""
    start = 0
    while start < len(diff):
        end = diff.find("\n", start)
        if end < 0:
            yield diff[start:]
            return
        yield diff[start : end + 1]
        start = end + 1


def touched_paths(diff: str) -> list[str]:
    """Every path a diff reads or writes (old and new names), in order, without duplicates."""
    return _touched(parse(diff))


def _touched(files: list[FilePatch]) -> list[str]:
    seen: dict[str, None] = {}
    for patch in files:
        for path in (patch.old_path, patch.new_path):
            if path:
                seen.setdefault(path, None)
    return list(seen)


def _strip_final_newline(parts: list[str]) -> None:
    """Drop the newline that ends the text of `parts` (their last non-empty piece), if any."""
    for index in range(len(parts) - 1, -1, -1):
        if parts[index]:
            if parts[index].endswith("\n"):
                parts[index] = parts[index][:-1]
            return


def _paths_from_header(line: str) -> tuple[str | None, str | None]:
    rest = line[len("diff --git ") :].rstrip("\n")
    match = re.match(r'^("?)a/(.+?)"? ("?)b/(.+?)"?$', rest)
    if not match:
        return None, None
    old, new = match.group(2), match.group(4)
    return (_unquote(f'"{old}"') if match.group(1) else old), (_unquote(f'"{new}"') if match.group(3) else new)


_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote(name: str) -> str:
    """A path as git and GNU patch read it: `"a/\\056git"` is `a/.git` (C-style quoting, octal escapes)."""
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    body, out, i = name[1:-1], bytearray(), 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            octal = body[i + 1 : i + 4]
            if len(octal) == 3 and all(c in "01234567" for c in octal):
                out.append(int(octal, 8) & 0xFF)
                i += 4
                continue
            if body[i + 1] in _ESCAPES:
                out.append(_ESCAPES[body[i + 1]])
                i += 2
                continue
        out += body[i].encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "surrogateescape")


def _strip_prefix(name: str) -> str | None:
    name = _unquote(name.split("\t", 1)[0].strip())
    if name == "/dev/null":
        return None
    if name.startswith(("a/", "b/")):
        return name[2:]
    return name
