"""What a patch makes git write beyond its own text, bounded before it is applied (issue 23, principle 5).

A patch's text is capped (`MAX_PATCH_BYTES`), but a `GIT binary patch` hunk is deflated data: a 0.4 MB hunk
inflates to a 64 MiB file (178:1 measured by red team rt4, g4; ~5.7 GB for a patch at the cap), and a `delta`
hunk is worse, since each byte of a delta can copy 64 KiB of the file it applies to. git writes what it inflates
before the grader's disk watch starts. The sizes are in the patch: a hunk's header gives its inflated size
(`literal N`: the file it writes, exactly, or git refuses it; `delta N`: the delta), and a delta's own header,
its first bytes once inflated, gives the file it makes. So the rule reads those headers, inflates at most a few
dozen bytes of each delta, and refuses a patch whose binary hunks would write more than the task's disk budget
(`limits.disk`) or `MAX_INFLATED_BYTES`, whichever is less: the model's `patch_failed`, decided on the host before
any container starts (`refusal`, which `Grader.grade` applies to every patch: the env's `submit`, its
truncation diff, evaluate's predictions). Pure logic, linear in the patch's length.

Only the forward hunk of each file counts: it is what `git apply` writes (the reverse hunk is the old file,
inflated in memory only, where the container's memory limit bounds it). Lines are read as git reads them, ended
by "\\n" only; a binary hunk header anywhere counts, not only where git would take it, so the rule errs towards
refusing. A header whose size this module cannot read is refused too: git writes such headers only as
`literal N` / `delta N`.
"""

from __future__ import annotations

import base64
import re
import zlib
from dataclasses import dataclass, field

from ..runtime.disk import parse_size

MAX_INFLATED_BYTES = 1024**3
"""The most a patch's binary hunks may write, whatever the task's disk limit: no fix ships a gigabyte of binaries."""

_BINARY_START = "GIT binary patch"
_DATALESS = re.compile(r"^(?:Binary files |Files )", re.MULTILINE)
"""git's headers of a binary change without data (apply.c's `binhdr`: a line starting so, whatever follows)."""
_HUNK_HEADER = re.compile(r"(literal|delta) (\d{1,20})")
_DELTA_HEADER_BYTES = 20
"""A delta starts with two sizes of at most 10 bytes each (7 bits a byte, 64-bit values): no more is inflated."""


@dataclass
class Inflation:
    """What a patch's binary hunks write: the bytes of each file's forward hunk, summed, or why it cannot be told."""

    written: int = 0
    hunks: int = 0
    largest: tuple[int, str] = (0, "")
    """The largest forward hunk's size and the file it writes (for the refusal's reason)."""
    unreadable: list[str] = field(default_factory=list)
    """Why a binary hunk's size could not be read (the first few)."""
    copies: int = 0
    """Files the patch makes as copies of others (`copy from` headers): each as large as its source, which is the
    repository's, not the patch's (see `copies_refusal`)."""
    dataless: int = 0
    """Binary entries without data (`Binary files ... differ`): git writes the blob their full index line names when
    the repository has it, so each is as large as a blob already there."""
    text_bytes: int = 0

    def add(self, size: int, path: str) -> None:
        self.written += size
        self.hunks += 1
        if size > self.largest[0]:
            self.largest = (size, path)


def measure(text: str) -> Inflation:
    """The bytes the forward binary hunks of `text` (a git patch) make git write, each `delta` sized by its own
    header (at most `_DELTA_HEADER_BYTES` inflated)."""
    found = Inflation(text_bytes=len(text))
    found.copies = text.count("\ncopy from ") + text.startswith("copy from ")
    found.dataless = len(_DATALESS.findall(text))
    if _BINARY_START not in text:  # the common case: scans in C only
        return found
    path = ""
    state = "text"  # "text" | "forward" (the next header is the forward hunk's) | "data" | "reverse"
    delta: _DeltaHeader | None = None
    for line in _lines(text):
        body = line.rstrip("\n")
        if body.startswith("diff --git "):
            path, state, delta = body.rsplit(" b/", 1)[-1][:200], "text", None
            continue
        if body == _BINARY_START:
            state, delta = "forward", None
            continue
        if state == "forward":
            match = _HUNK_HEADER.fullmatch(body)
            if match is None:
                _unreadable(found, f"{path}: a binary hunk headed {body[:60]!r}")
                state = "text"
            elif match.group(1) == "literal":
                found.add(int(match.group(2)), path)
                state = "data"
            else:
                delta, state = _DeltaHeader(path), "data"
            continue
        if state == "data":
            if body == "":  # the forward hunk ends; the reverse one is not written
                state = "reverse"
                if delta is not None:
                    _close_delta(found, delta)
                    delta = None
            elif delta is not None:
                delta.feed(body)
            continue
    if state == "data" and delta is not None:  # the patch ended inside a delta
        _close_delta(found, delta)
    return found


def refusal(text: str, disk: str | None) -> str | None:
    """Why the grader refuses `text` before applying it (the model's `patch_failed`), or None: its binary hunks
    would write more than the task's disk limit `disk` (Docker-style, "4g") or `MAX_INFLATED_BYTES`, or a hunk's
    size cannot be read."""
    if _BINARY_START not in text:  # the common case costs one scan in C
        return None
    found = measure(text)
    if found.unreadable:
        return f"the patch has a binary hunk whose size cannot be read ({found.unreadable[0]}); it is refused"
    budget = budget_bytes(disk)
    if found.written > budget:
        size, path = found.largest
        return (
            f"the patch's binary hunks would write {found.written} bytes when applied ({found.hunks} hunk(s), the "
            f"largest {size} bytes for {path}), more than the {budget} bytes the grader allows "
            f"(the task's disk limit, at most {MAX_INFLATED_BYTES}); it is refused before it is applied"
        )
    return None


def copies_refusal(found: Inflation, largest_source: int, disk: str | None) -> str | None:
    """Why the grader refuses a patch whose copies and data-less binary entries (`Inflation.copies`,
    `Inflation.dataless`) could write more than the budget, each taken as large as the largest file the repository's
    work tree or object store holds (`largest_source`, measured in the grading container) plus everything the patch
    itself adds (its text and its binary hunks: a copy of a file the patch grew first), or None. A sound bound, not
    the exact size: a file the patch writes is some file already there, changed by the patch's own bytes."""
    entries = found.copies + found.dataless
    if not entries:
        return None
    each = largest_source + found.text_bytes + found.written
    budget = budget_bytes(disk)
    if found.written + entries * each <= budget:
        return None
    return (
        f"the patch makes {found.copies} file(s) as copies of others and {found.dataless} from blobs named by "
        f"their id, each up to {each} bytes (the repository's largest file, {largest_source} bytes, and what the "
        f"patch adds), more than the {budget} bytes the grader allows (the task's disk limit, at most "
        f"{MAX_INFLATED_BYTES}); it is refused before it is applied"
    )


def budget_bytes(disk: str | None) -> int:
    """The most a patch's binary hunks may write for a task whose disk limit is `disk`."""
    if not disk:
        return MAX_INFLATED_BYTES
    try:
        return min(parse_size(disk), MAX_INFLATED_BYTES)
    except ValueError:
        return MAX_INFLATED_BYTES


class _DeltaHeader:
    """The first bytes of one delta hunk, inflated from its base85 lines as they come, at most
    `_DELTA_HEADER_BYTES`; lines after that are not decoded."""

    def __init__(self, path: str):
        self.path = path
        self.inflater = zlib.decompressobj()
        self.head = b""
        self.broken = ""

    def feed(self, line: str) -> None:
        if self.broken or len(self.head) >= _DELTA_HEADER_BYTES:
            return
        data = _base85_line(line)
        if data is None:
            self.broken = f"a line of its data is not git's base85: {line[:40]!r}"
            return
        try:
            self.head += self.inflater.decompress(data, _DELTA_HEADER_BYTES - len(self.head))
        except zlib.error as exc:
            self.broken = f"its data does not inflate: {exc}"

    def result_size(self) -> int | None:
        """The size of the file the delta makes (its second header size), None when it cannot be read."""
        position = 0
        sizes = []
        for _ in range(2):
            value, shift = 0, 0
            while True:
                if position >= len(self.head) or shift > 63:
                    return None
                byte = self.head[position]
                position += 1
                value |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            sizes.append(value)
        return sizes[1]


def _close_delta(found: Inflation, delta: _DeltaHeader) -> None:
    size = None if delta.broken else delta.result_size()
    if size is None:
        _unreadable(found, f"{delta.path}: a delta hunk's header ({delta.broken or 'too short'})")
    else:
        found.add(size, delta.path)


def _unreadable(found: Inflation, why: str) -> None:
    if len(found.unreadable) < 5:
        found.unreadable.append(why)


_LENGTHS = {**{chr(ord("A") + i): i + 1 for i in range(26)}, **{chr(ord("a") + i): i + 27 for i in range(26)}}


def _base85_line(line: str) -> bytes | None:
    """One data line of a git binary hunk: its first character the byte count (A-Z 1-26, a-z 27-52), then base85
    in groups of five characters (git's alphabet is Python's `b85`). None when it is not one."""
    count = _LENGTHS.get(line[:1])
    encoded = line[1:]
    if count is None or len(encoded) % 5 or len(encoded) // 5 * 4 < count:
        return None
    try:
        return base64.b85decode(encoded)[:count]
    except ValueError:
        return None


def _lines(text: str):
    """The lines of `text` as git reads them: ended by "\\n" only."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            yield text[start:]
            return
        yield text[start : end + 1]
        start = end + 1
