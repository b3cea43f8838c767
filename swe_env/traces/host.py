"""Python execution traces, collected in a task's container: the host side.

The tracer (`swe_env/traces/tracer/runner.py`, standard library only) is copied into the
container at run time and runs the program with the task's Python; it appends one JSON
line per trace to a file outside the repository, which is read back here, validated
against the models below, and written out as JSONL or rendered in CWM's format. The JSONL
records are the source of truth; the CWM text (`render_cwm`) is an export of them.

JSONL schema (one trace per line; `Trace`, `TraceEntry` and `TraceEvent` are the reference):

    {"version": 1, "trace_id": "57-3", "task_id": "...", "thread": "MainThread",
     "entry": {"file": "ledger/money.py", "function": "Money.rounded", "line": 41,
               "source": "    def rounded(self):\n        ...\n", "first_line": 41, "source_cut": false},
     "repr_cap": 200, "full_locals": false, "cut": null, "complete": true,
     "event_count": 12, "tracer_errors": [],
     "events": [{"event": "call", "file": "ledger/money.py", "line": 41,
                 "function": "Money.rounded", "frame": 0, "depth": 0,
                 "source": "    def rounded(self):", "locals": {"self": "Money('2.345', 'USD')"}},
                ...]}

Events are `call` (a frame is entered or a generator resumed; `locals` are the arguments),
`line` (a line is about to run; `locals` are the values before it), `return` (`value` is
the repr of the returned or yielded value) and `exception` (`exception` is the repr of the
exception raised in or passing through the frame). A frame left by an exception ends with
an `exception` event and has no `return`. Locals are reprs cut to `repr_cap` characters
(a cut repr ends in "..."); unless `full_locals`, a value whose repr did not change since
the frame's previous event is written as "..". `frame` numbers the frames of one trace,
`depth` is the nesting below the entry frame. `cut` is "max_events" or "max_bytes" when a
cap stopped the recording (the events kept are a prefix); `complete` is false when the
program ended while the chain was still running. `entry.source` is the source of the
entry's code object (its whole function, or module or class body), whole lines from
`entry.first_line`, bounded by the tracer (`CONTEXT_MAX_LINES` lines and
`CONTEXT_MAX_CHARS` characters, the entry line always kept; `source_cut` says it was cut).

Why one module of this size: the trace schema, its CWM rendering and parsing are one format
seen from both directions; they stay together so the codec round-trips by construction.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from ..build.images import ImageBuilder
from ..data.task import Task
from ..runtime.sandbox import Sandbox
from . import tracer

TRACER_DIR = "/run/swe-env-tracer"
TRACER_PATH = f"{TRACER_DIR}/swe_env_tracer.py"
UNCHANGED = ".."
USAGE_PREFIX = "swe-env trace: "
"""How the tracer starts its message when it cannot run the program (exit code 2)."""
EventKind = Literal["call", "line", "return", "exception"]


class TraceError(ValueError):
    """The trace could not be made (bad program, patch that does not apply); one line."""


class TraceOptions(BaseModel):
    """What the tracer records (the `swe-env trace` options)."""

    model_config = ConfigDict(extra="forbid")

    include: list[str] = Field(default_factory=list)
    """More path prefixes in scope (absolute, or relative to the workdir); the default scope is the repository minus site-packages."""
    follow_depth: int = Field(default=0, ge=0)
    """Also trace calls out of scope, this many levels below a traced frame (0: repository frames only)."""
    max_events: int = Field(default=10_000, gt=0)
    """Events per trace; a longer trace is cut and marked `cut: max_events`."""
    max_bytes: int = Field(default=1_000_000, gt=0)
    """Bytes of events per trace; a larger trace is cut and marked `cut: max_bytes`."""
    repr_cap: int = Field(default=200, ge=8)
    """Characters kept of each repr (a longer one is cut and ends in "...")."""
    full_locals: bool = False
    """Write every local at every event instead of ".." for unchanged ones."""
    trace_modules: bool = False
    """Also trace module and class bodies (imports); by default only functions."""
    backend: Literal["auto", "settrace", "monitoring"] = "settrace"
    """The tracer's hook: "settrace" (`sys.settrace`), "monitoring" (`sys.monitoring`, PEP 669, on 3.12+;
    settrace where the container's Python lacks it) or "auto" (monitoring where there is one). Both write
    the same events. settrace is the default (it was once the faster on marshmallow's suite); measured on
    3.13 since the tracer's event path was made cheaper, monitoring is the faster on the bundled tasks (median
    1.61x against 2.00x the untraced run) and on marshmallow's suite in corpus mode (5.1x against 6.6x)."""


class TraceEntry(BaseModel):
    """Where a trace starts: its top-level frame, and the source around it."""

    file: str
    function: str
    line: int
    source: str = ""
    """The entry's code (function, or module or class body) as whole lines, each ending in a newline;
    empty when unknown (older records, unreadable files)."""
    first_line: int | None = None
    """The line number of the first line of `source`."""
    source_cut: bool = False
    """The code was longer than the tracer's cap and `source` holds part of it (the entry line always)."""


class TraceEvent(BaseModel):
    """One event of a traced frame."""

    model_config = ConfigDict(extra="forbid")

    event: EventKind
    file: str
    """Path relative to the workdir for repository files, else absolute."""
    line: int
    function: str
    """The code object's qualified name (`Class.method`, `outer.<locals>.inner`)."""
    frame: int
    """The frame's number within this trace (events of one frame share it)."""
    depth: int
    """Nesting below the trace's entry frame."""
    source: str
    """The source line (indentation kept, no newline); empty when the source is unavailable."""
    locals: dict[str, str] | None = None
    """call/line: name -> capped repr, or ".." when unchanged since the frame's previous event."""
    value: str | None = None
    """return: the capped repr of the returned (or yielded) value."""
    exception: str | None = None
    """exception: the capped repr of the exception."""


class Trace(BaseModel):
    """One top-level call chain of one thread."""

    version: int = 1
    trace_id: str
    task_id: str | None = None
    thread: str
    entry: TraceEntry
    repr_cap: int
    full_locals: bool
    cut: Literal["max_events", "max_bytes"] | None = None
    complete: bool = True
    event_count: int
    tracer_errors: list[str] = Field(default_factory=list)
    events: list[TraceEvent]


@dataclass
class TraceRun:
    """The outcome of running one program under the tracer."""

    exit_code: int | None
    """The program's exit code; None when it timed out or its shell died under it."""
    output: str
    traces: list[Trace] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the shell said (timeout, memory, restarts) and what was dropped reading the traces."""
    timed_out: bool = False

    @property
    def event_count(self) -> int:
        return sum(len(t.events) for t in self.traces)


# ---------------------------------------------------------------- running

MAX_TRACE_FILE_BYTES = 32 * 1024 * 1024
"""The most of the tracer's JSONL read back to the host; the lines past it are dropped."""
TOOL_TRACE_FILE_BYTES = 2 * 1024 * 1024
"""The same for the agent's `trace` tool, whose traces are cut at 2,000 events of 80-character values: far
more than such a run writes, and a bound on what a program writing into the file itself makes the host
parse on every step (each byte of JSON becomes tens in validated models)."""


def tracer_dir(sandbox: Sandbox) -> str:
    """Where the tracer and its files go: `TRACER_DIR`, or for a non-root sandbox a folder in
    /tmp of its own (the files are written as the sandbox's user, who cannot write /run)."""
    return TRACER_DIR if not sandbox.user or sandbox.user == "root" else f"/tmp/swe-env-tracer-{sandbox.name}"


def run_traced(
    sandbox: Sandbox,
    argv: list[str] | None = None,
    function: str | None = None,
    args: Any = None,
    options: TraceOptions | None = None,
    timeout: float | None = None,
    task_id: str | None = None,
    max_bytes: int = MAX_TRACE_FILE_BYTES,
) -> TraceRun:
    """Run a program (argv) or call a function ("module:qualname" with JSON-able args) traced.

    The program runs in the sandbox's shell (`Sandbox.run`: the sandbox's user, the timeout
    that kills its processes, the memory, pid and disk checks; DiskLimitExceeded comes
    through), in a subshell in the workdir, with the image's `python`; its exit code and
    output (stdout and stderr merged, head and tail) are returned with the traces. The
    traces file is read bounded (`max_bytes`), and lines of it that are not
    traces (the program may write there) are dropped with a note.
    """
    if (argv is None) == (function is None):
        raise TraceError("give either a command to run or --function, not both or neither")
    options = options or TraceOptions()
    folder = tracer_dir(sandbox)
    runner, config_path, out = f"{folder}/swe_env_tracer.py", f"{folder}/config.json", f"{folder}/traces.jsonl"
    config = {"argv": argv, "function": function, "args": args, "out": out, "workdir": sandbox.workdir, **options.model_dump()}
    sandbox.write_file(runner, tracer.runner_source())
    sandbox.write_file(config_path, json.dumps(config).encode())
    sandbox.remove_file(out)
    command = f"(cd -- {shlex.quote(sandbox.workdir)} && exec python {shlex.quote(runner)} {shlex.quote(config_path)})"
    result = sandbox.run(command, timeout=timeout or sandbox.limits.command_timeout)
    notes = list(result.notes)
    try:
        read = sandbox.read(out, max_bytes=max_bytes)
        data = read.data
        if read.truncated:
            data = data[: data.rfind(b"\n") + 1]
            notes.append(f"the traces file was {read.size} bytes; only the first {len(data)} were read")
    except FileNotFoundError:
        data = b""
    traces, dropped = _parse_lenient(data.decode("utf-8", errors="replace"), task_id)
    if dropped:
        notes.append(f"{dropped} line(s) of the traces file were not traces and were dropped")
    usage = next((line for line in result.output.splitlines() if line.startswith(USAGE_PREFIX)), None)
    if result.exit_code == 2 and not traces and usage is not None:
        raise TraceError(usage[len(USAGE_PREFIX) :].strip())
    return TraceRun(result.exit_code, result.output, traces, notes, result.timed_out)


def _parse_lenient(text: str, task_id: str | None) -> tuple[list[Trace], int]:
    found, dropped = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            found.extend(parse_jsonl(line, task_id))
        except ValueError:  # pydantic's ValidationError is a ValueError
            dropped += 1
    return found, dropped


def apply_patch(sandbox: Sandbox, patch: str) -> None:
    """Apply a unified diff to the workdir with `git apply`; TraceError if it does not apply."""
    if not patch.strip():
        return
    path = f"{tracer_dir(sandbox)}/patch.diff"
    sandbox.write_file(path, patch.encode("utf-8", errors="surrogateescape"))
    result = sandbox.exec(["git", "apply", "--whitespace=nowarn", path], timeout=60)
    if result.exit_code != 0:
        reason = (result.output.strip().splitlines() or ["git apply failed"])[0]
        raise TraceError(f"the patch does not apply: {reason}")


def trace_task(
    task: Task,
    argv: list[str] | None = None,
    function: str | None = None,
    args: Any = None,
    patch: str | None = None,
    options: TraceOptions | None = None,
    timeout: float | None = None,
    builder: ImageBuilder | None = None,
) -> TraceRun:
    """Start the task's container, apply the patch, run the program traced, remove the container."""
    image = (builder or ImageBuilder()).ensure(task)
    with Sandbox.for_task(task, image, "trace") as sandbox:
        if patch:
            apply_patch(sandbox, patch)
        return run_traced(sandbox, argv, function, args, options, timeout, task_id=task.id)


# ---------------------------------------------------------------- JSONL


def parse_jsonl(text: str, task_id: str | None = None) -> list[Trace]:
    """Traces from JSONL text (blank lines skipped); `task_id` fills traces that have none."""
    traces = []
    for line in text.splitlines():
        if line.strip():
            trace = Trace.model_validate_json(line)
            if trace.task_id is None and task_id is not None:
                trace.task_id = task_id
            traces.append(trace)
    return traces


TraceFormat = Literal["jsonl", "cwm"]
"""How traces are written: `jsonl` (the trace records) or `cwm` (CWM's prompt format, one JSON line per trace)."""
TRACE_FORMATS: tuple[TraceFormat, ...] = get_args(TraceFormat)


def write_jsonl(
    traces: list[Trace], path: str | Path, fmt: TraceFormat = "jsonl", max_events: int | None = None, max_bytes: int | None = None
) -> Path:
    """Write traces to a file (replacing it): one trace per line, as JSON or as `cwm_record`s.

    `max_events` and `max_bytes` cap each CWM text (see `render_cwm`); the JSONL is written whole.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for trace in traces:
            if fmt == "cwm":
                record = cwm_record(trace, max_events, max_bytes)
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                handle.write(trace.model_dump_json() + "\n")
    return path


# ---------------------------------------------------------------- CWM format

BEGIN_OF_TEXT = "<|begin_of_text|>"
END_OF_TEXT = "<|end_of_text|>"
TRACE_CONTEXT_START = "<|trace_context_start|>"
FRAME_SEP = "<|frame_sep|>"
CALL_SEP = "<|call_sep|>"
LINE_SEP = "<|line_sep|>"
RETURN_SEP = "<|return_sep|>"
EXCEPTION_SEP = "<|exception_sep|>"
ACTION_SEP = "<|action_sep|>"
ARG_SEP = "<|arg_sep|>"
START_MARKER = "  # << START_OF_TRACE"
"""Appended to the entry line in the context, as CWM's debugger demo (demos/cwmdbg.py) writes it."""
CwmCut = Literal["max_events", "max_bytes", "incomplete"]
_KIND_TOKEN: dict[EventKind, str] = {"call": CALL_SEP, "line": LINE_SEP, "return": RETURN_SEP, "exception": EXCEPTION_SEP}
_TOKEN_KIND: dict[str, EventKind] = {token: kind for kind, token in _KIND_TOKEN.items()}
_PROMPT_START = BEGIN_OF_TEXT + TRACE_CONTEXT_START


@dataclass
class CwmFrame:
    """One frame of a CWM-format trace, as parsed back."""

    kind: EventKind
    source: str
    locals: dict[str, str] | None = None
    value: str | None = None


@dataclass
class CwmTrace:
    """A CWM-format trace, as parsed back by `parse_cwm`."""

    context: str
    """The source code context, START_MARKER included."""
    entry_line: int
    """The line of `context` (from 1) that carries START_MARKER."""
    frames: list[CwmFrame]
    ended: bool
    """The text ends with <|end_of_text|>: the entry's scope was left. False for a cut or incomplete trace."""


def render_cwm(trace: Trace, max_events: int | None = None, max_bytes: int | None = None, context: str | None = None) -> str:
    """A trace in Code World Model's trace format (its PROMPTING_GUIDE.md, "Trace Prediction").

    Grammar (tokens are literal strings):

        trace   := <|begin_of_text|> <|trace_context_start|> CONTEXT <|frame_sep|> frame* [<|end_of_text|>]
        frame   := (<|call_sep|> | <|line_sep|>) LOCALS <|action_sep|> SOURCE <|frame_sep|>
                 | (<|return_sep|> | <|exception_sep|>) <|action_sep|> SOURCE <|arg_sep|> VALUE <|frame_sep|>
        CONTEXT := the entry's source (`entry.source`: its function, or module or class body, as
                   the tracer recorded it), each line ending in "\\n", with START_MARKER
                   ("  # << START_OF_TRACE") appended to the entry line; a trace without a
                   recorded source gets its first event's line alone
        LOCALS  := a JSON object, name -> JSON string (the value's repr); ".." when the repr is
                   the same as at the previous frame of the same scope (a call starts a scope)
        SOURCE  := the source line, indentation kept, followed by "\\n" (without the marker)
        VALUE   := a JSON string: the repr of the returned value or of the exception

    LOCALS and VALUE are written with Python's default `json.dumps` (separators ", " and ": ",
    non-ASCII as \\u escapes), as CWM's debugger writes them; a `full_locals` trace is written
    with ".." all the same. Nested calls appear in execution order with their own call and
    return frames. <|end_of_text|> ends the text when the entry's scope was left (the last
    frame is the entry's return or exception).

    A cut trace stops at a frame boundary: the text ends with the last whole frame's
    <|frame_sep|> and has no <|end_of_text|>; that missing end token is the marker (no token
    of CWM's vocabulary says "cut", and an invented one would be trained on). `cwm_record`
    names the reason. `context` replaces the CONTEXT built from the entry (a repository-level
    trace's sources, START_MARKER on its entry line; see `traces.corpus.repository_context`).
    Cuts come from the tracer's caps (`trace.cut`: the events are a
    prefix), from a program that ended inside the chain (`complete` false), or from the
    caps given here: at most `max_events` frames, at most `max_bytes` bytes of UTF-8 text
    (the prompt, `<|begin_of_text|>` to the first `<|frame_sep|>`, is always whole; the
    tracer bounds the context). `parse_cwm` reads the text back.
    """
    return _render(trace, max_events, max_bytes, context)[0]


def cwm_record(trace: Trace, max_events: int | None = None, max_bytes: int | None = None, context: str | None = None) -> dict[str, Any]:
    """One line of a `--format cwm` file: trace_id, task_id, cut and text.

    `cut` is None when the text ends with <|end_of_text|>; else why it stops early:
    "max_events" or "max_bytes" (the tracer's cap, `trace.cut`, or the one given here) or
    "incomplete" (the program ended while the chain was running).
    """
    text, cut = _render(trace, max_events, max_bytes, context)
    return {"trace_id": trace.trace_id, "task_id": trace.task_id, "cut": cut, "text": text}


def cwm_context(trace: Trace) -> str:
    """The CONTEXT of `render_cwm`: the entry's source with START_MARKER on the entry line."""
    entry = trace.entry
    lines = entry.source.removesuffix("\n").split("\n") if entry.source else []
    index = entry.line - entry.first_line if entry.first_line is not None else -1
    if not 0 <= index < len(lines):
        first = trace.events[0].source if trace.events and trace.events[0].line == entry.line else ""
        lines, index = [first], 0
    lines[index] += START_MARKER
    return "".join(line + "\n" for line in lines)


def _render(trace: Trace, max_events: int | None, max_bytes: int | None, context: str | None = None) -> tuple[str, CwmCut | None]:
    prompt = f"{_PROMPT_START}{cwm_context(trace) if context is None else context}{FRAME_SEP}"
    events = trace.events
    last = events[-1] if events else None
    ended = trace.complete and trace.cut is None and last is not None and last.depth == 0 and last.event in ("return", "exception")
    parts, size = [prompt], _size(prompt)
    cut: CwmCut | None = None
    for index, (event, local_values) in enumerate(zip(events, _scoped_locals(events), strict=True)):
        frame = _frame(event, local_values)
        need = _size(frame) + (_size(END_OF_TEXT) if ended and index == len(events) - 1 else 0)
        if max_events is not None and index >= max_events:
            cut = "max_events"
        elif max_bytes is not None and size + need > max_bytes:
            cut = "max_bytes"
        if cut:
            return "".join(parts), cut
        parts.append(frame)
        size += _size(frame)
    if ended:
        parts.append(END_OF_TEXT)
    return "".join(parts), None if ended else trace.cut or "incomplete"


def _scoped_locals(events: list[TraceEvent]) -> list[dict[str, str] | None]:
    """The LOCALS of each event: ".." for a value whose repr is unchanged since its frame's previous event."""
    known: dict[int, dict[str, str]] = {}
    result: list[dict[str, str] | None] = []
    for event in events:
        if event.event not in ("call", "line"):
            result.append(None)
            continue
        previous = known.get(event.frame, {}) if event.event == "line" else {}
        values = {name: previous.get(name, value) if value == UNCHANGED else value for name, value in (event.locals or {}).items()}
        result.append({name: UNCHANGED if previous.get(name) == value else value for name, value in values.items()})
        known[event.frame] = values
    return result


def _frame(event: TraceEvent, local_values: dict[str, str] | None) -> str:
    token, source = _KIND_TOKEN[event.event], event.source + "\n"
    if event.event in ("call", "line"):
        return f"{token}{json.dumps(local_values or {})}{ACTION_SEP}{source}{FRAME_SEP}"
    value = event.value if event.event == "return" else event.exception
    return f"{token}{ACTION_SEP}{source}{ARG_SEP}{json.dumps(value or '')}{FRAME_SEP}"


def _size(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogatepass"))


def parse_cwm(text: str) -> CwmTrace:
    """A trace rendered by `render_cwm`, read back; ValueError naming the part if malformed.

    The text is split at the token strings, so a context, source line or value that holds
    one of them literally (this project's own sources, say) cannot be read back.
    """
    if not text.startswith(_PROMPT_START):
        raise ValueError(f"a CWM trace starts with {_PROMPT_START}")
    context, sep, body = text[len(_PROMPT_START) :].partition(FRAME_SEP)
    if not sep:
        raise ValueError(f"the context is not followed by {FRAME_SEP}")
    marked = [n for n, line in enumerate(context.split("\n"), start=1) if line.rstrip().endswith(START_MARKER.strip())]
    if len(marked) != 1:
        raise ValueError(f"the context has {len(marked)} lines marked with {START_MARKER.strip()!r}, not one")
    ended = body.endswith(END_OF_TEXT)
    body = body.removesuffix(END_OF_TEXT)
    if END_OF_TEXT in body or BEGIN_OF_TEXT in body or TRACE_CONTEXT_START in body:
        raise ValueError("a CWM trace has one prompt and ends with at most one <|end_of_text|>")
    if body and not body.endswith(FRAME_SEP):
        raise ValueError(f"the frames of a CWM trace end with {FRAME_SEP}")
    frames = []
    for number, chunk in enumerate(body.split(FRAME_SEP)[:-1] if body else [], start=1):
        token = next((t for t in _TOKEN_KIND if chunk.startswith(t)), None)
        if token is None:
            raise ValueError(f"frame {number}: does not start with an event token")
        kind = _TOKEN_KIND[token]
        head, sep, rest = chunk[len(token) :].partition(ACTION_SEP)
        if not sep:
            raise ValueError(f"frame {number}: no {ACTION_SEP}")
        if kind in ("call", "line"):
            local_values = _loads(head, number)
            if not isinstance(local_values, dict) or not all(isinstance(v, str) for v in local_values.values()):
                raise ValueError(f"frame {number}: locals are not a JSON object of strings")
            frames.append(CwmFrame(kind, _source(rest, number), locals=local_values))
        else:
            if head:
                raise ValueError(f"frame {number}: {kind} frames have nothing before {ACTION_SEP}")
            source, sep, value = rest.rpartition(ARG_SEP)
            if not sep:
                raise ValueError(f"frame {number}: no {ARG_SEP}")
            parsed = _loads(value, number)
            if not isinstance(parsed, str):
                raise ValueError(f"frame {number}: the value is not a JSON string")
            frames.append(CwmFrame(kind, _source(source, number), value=parsed))
    return CwmTrace(context, marked[0], frames, ended)


def _loads(text: str, number: int) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"frame {number}: invalid JSON ({exc.msg})") from None


def _source(text: str, number: int) -> str:
    if not text.endswith("\n"):
        raise ValueError(f"frame {number}: the source line does not end with a newline")
    return text[:-1]


# ---------------------------------------------------------------- compact rendering (the agent's tool)


def render_compact(run: TraceRun, limit: int = 10_000) -> str:
    """A short text view of a traced run for an agent: each line with the locals it changed.

    Traces whose entry looks like a test come first; the program's output tail is shown
    before the traces, and the text is cut at `limit` characters, with a note.
    """
    code = "none (it did not finish)" if run.exit_code is None else run.exit_code
    lines = [f"[traced: exit code {code}, {len(run.traces)} trace(s), {run.event_count} events]"]
    lines += [f"[{note}]" for note in run.notes]
    output = run.output.strip()
    if output:
        lines += ["== program output (tail)", output[-1500:]]
    for trace in sorted(run.traces, key=lambda t: not _looks_like_test(t.entry)):
        mark = f" (cut: {trace.cut})" if trace.cut else ("" if trace.complete else " (incomplete)")
        lines.append(f"== trace {trace.trace_id}: {trace.entry.function} at {trace.entry.file}:{trace.entry.line}{mark}")
        effects = _line_effects(trace.events)
        for index, event in enumerate(trace.events):
            indent = "  " * (event.depth + 1)
            if event.event == "call":
                lines.append(f"{indent}call {event.function}({_changed(event.locals)})  [{event.file}:{event.line}]")
            elif event.event == "line":
                changed = _changed(effects.get(index))
                lines.append(f"{indent}{event.line:>4} {event.source.strip()}" + (f"    # -> {changed}" if changed else ""))
            elif event.event == "return":
                lines.append(f"{indent}return {event.value}  [{event.function}]")
            else:
                lines.append(f"{indent}raise {event.exception}  [{event.function} {event.file}:{event.line}]")
    text = "\n".join(lines)
    if len(text) > limit:
        text = text[:limit] + f"\n[... trace view cut at {limit} characters; trace a narrower command ...]"
    return text


def _looks_like_test(entry: TraceEntry) -> bool:
    name = entry.file.rsplit("/", 1)[-1]
    return name.startswith("test_") or name.endswith("_test.py") or entry.function.split(".")[-1].startswith("test")


def _line_effects(events: list[TraceEvent]) -> dict[int, dict[str, str]]:
    """For each line event, the locals recorded at its frame's next event: what the line changed."""
    effects: dict[int, dict[str, str]] = {}
    later: dict[Any, dict[str, str]] = {}
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if event.event == "line" and event.frame in later:
            effects[index] = later[event.frame]
        if event.locals is not None:
            later[event.frame] = event.locals
    return effects


def _changed(local_values: dict[str, str] | None) -> str:
    return ", ".join(f"{name}={value}" for name, value in (local_values or {}).items() if value != UNCHANGED)


def tool_observation(sandbox: Sandbox, command: str, timeout: float, limit: int) -> tuple[str, int | None, bool, bool]:
    """The agent's `trace` tool: (text, exit code, error?, timed out?) for a command like
    `pytest tests/x.py::t`. It runs through `Sandbox.run`, like `bash`: DiskLimitExceeded and
    ShellError come through."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return f"Error: cannot parse the command: {exc}", None, True, False
    try:
        run = run_traced(sandbox, argv, options=TraceOptions(max_events=2_000, repr_cap=80), timeout=timeout, max_bytes=TOOL_TRACE_FILE_BYTES)
    except TraceError as exc:
        return f"Error: {exc}", None, True, False
    return render_compact(run, limit), run.exit_code, run.exit_code is None, run.timed_out


def default_out(task_id: str, fmt: str) -> Path:
    """Where `swe-env trace` writes by default: runs/traces/<task>.jsonl (.cwm.jsonl for CWM)."""
    suffix = ".cwm.jsonl" if fmt == "cwm" else ".jsonl"
    return Path("runs") / "traces" / f"{task_id}{suffix}"


__all__ = [
    "CwmFrame",
    "CwmTrace",
    "Trace",
    "TraceEntry",
    "TraceError",
    "TraceEvent",
    "TraceOptions",
    "TraceRun",
    "apply_patch",
    "cwm_context",
    "cwm_record",
    "default_out",
    "parse_cwm",
    "parse_jsonl",
    "render_compact",
    "render_cwm",
    "run_traced",
    "tool_observation",
    "trace_task",
    "write_jsonl",
]
