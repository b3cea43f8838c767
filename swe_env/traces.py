"""Python execution traces, collected in a task's container: the host side.

The tracer (`swe_env/tracer/runner.py`, standard library only) is copied into the
container at run time and runs the program with the task's Python; it appends one JSON
line per trace to a file outside the repository, which is read back here, validated
against the models below, and written out as JSONL or rendered in CWM's format.

JSONL schema (one trace per line; `Trace` and `TraceEvent` are the reference):

    {"version": 1, "trace_id": "57-3", "task_id": "...", "thread": "MainThread",
     "entry": {"file": "ledger/money.py", "function": "Money.rounded", "line": 41},
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
program ended while the chain was still running.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import tracer
from .images import ImageBuilder
from .sandbox import Sandbox
from .task import Task

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


class TraceEntry(BaseModel):
    """Where a trace starts: its top-level frame."""

    file: str
    function: str
    line: int


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

    exit_code: int
    output: str
    traces: list[Trace] = field(default_factory=list)

    @property
    def event_count(self) -> int:
        return sum(len(t.events) for t in self.traces)


# ---------------------------------------------------------------- running


def run_traced(sandbox: Sandbox, argv: list[str] | None = None, function: str | None = None, args: Any = None,
               options: TraceOptions | None = None, timeout: float | None = None,
               task_id: str | None = None) -> TraceRun:
    """Run a program (argv) or call a function ("module:qualname" with JSON-able args) traced.

    The program runs as a one-off process in the sandbox's workdir (not in the agent's
    shell), with the image's `python`; its exit code and output are returned with the traces.
    """
    if (argv is None) == (function is None):
        raise TraceError("give either a command to run or --function, not both or neither")
    options = options or TraceOptions()
    out = f"{TRACER_DIR}/traces.jsonl"
    config = {"argv": argv, "function": function, "args": args, "out": out, "workdir": sandbox.workdir,
              **options.model_dump()}
    sandbox.write_file(TRACER_PATH, tracer.runner_source())
    sandbox.write_file(f"{TRACER_DIR}/config.json", json.dumps(config).encode())
    sandbox.exec(["rm", "-f", out])
    result = sandbox.exec(["python", TRACER_PATH, f"{TRACER_DIR}/config.json"],
                          timeout=timeout or sandbox.limits.command_timeout)
    try:
        data, _mode = sandbox.read_file(out)
    except FileNotFoundError:
        data = b""
    traces = parse_jsonl(data.decode("utf-8", errors="replace"), task_id=task_id)
    if result.exit_code == 2 and not traces and result.stderr.startswith(USAGE_PREFIX):
        raise TraceError(result.stderr[len(USAGE_PREFIX):].strip().splitlines()[0])
    return TraceRun(result.exit_code, result.output, traces)


def apply_patch(sandbox: Sandbox, patch: str) -> None:
    """Apply a unified diff to the workdir with `git apply`; TraceError if it does not apply."""
    if not patch.strip():
        return
    path = f"{TRACER_DIR}/patch.diff"
    sandbox.write_file(path, patch.encode("utf-8", errors="surrogateescape"))
    result = sandbox.exec(["git", "apply", "--whitespace=nowarn", path], timeout=60)
    if result.exit_code != 0:
        reason = (result.output.strip().splitlines() or ["git apply failed"])[0]
        raise TraceError(f"the patch does not apply: {reason}")


def trace_task(task: Task, argv: list[str] | None = None, function: str | None = None, args: Any = None,
               patch: str | None = None, options: TraceOptions | None = None, timeout: float | None = None,
               builder: ImageBuilder | None = None) -> TraceRun:
    """Start the task's container, apply the patch, run the program traced, remove the container."""
    image = (builder or ImageBuilder()).ensure(task)
    with Sandbox(image, task.limits, task.environment.workdir, task.environment.env, kind="trace",
                 labels={"task": task.id}) as sandbox:
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


def write_jsonl(traces: list[Trace], path: str | Path, fmt: Literal["jsonl", "cwm"] = "jsonl") -> Path:
    """Write traces to a file (replacing it): one trace per line, as JSON or as CWM text in JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for trace in traces:
            if fmt == "cwm":
                record = {"trace_id": trace.trace_id, "task_id": trace.task_id, "cut": trace.cut,
                          "text": render_cwm(trace)}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                handle.write(trace.model_dump_json() + "\n")
    return path


# ---------------------------------------------------------------- CWM format

FRAME_SEP = "<|frame_sep|>"
CALL_SEP = "<|call_sep|>"
LINE_SEP = "<|line_sep|>"
RETURN_SEP = "<|return_sep|>"
EXCEPTION_SEP = "<|exception_sep|>"
ACTION_SEP = "<|action_sep|>"
ARG_SEP = "<|arg_sep|>"
_KIND_TOKEN = {"call": CALL_SEP, "line": LINE_SEP, "return": RETURN_SEP, "exception": EXCEPTION_SEP}
_TOKEN_KIND = {token: kind for kind, token in _KIND_TOKEN.items()}


@dataclass
class CwmFrame:
    """One frame of a CWM-format trace, as parsed back."""

    kind: EventKind
    source: str
    locals: dict[str, str] | None = None
    value: str | None = None


def render_cwm(trace: Trace) -> str:
    """A trace in Code World Model's trace-prediction format.

    Grammar (tokens are literal strings; JSON is compact, `ensure_ascii=False`):

        trace     := FRAME_SEP frame*
        frame     := (CALL_SEP | LINE_SEP) locals ACTION_SEP source FRAME_SEP
                   | (RETURN_SEP | EXCEPTION_SEP) ACTION_SEP source ARG_SEP value FRAME_SEP
        locals    := a JSON object of name -> JSON string (the value's repr); ".." when the
                     value is unchanged since the previous frame of the same scope
        source    := the source line, indentation kept, followed by "\\n"
        value     := a JSON string: the repr of the returned value or of the exception

    FRAME_SEP = <|frame_sep|>, CALL_SEP = <|call_sep|>, LINE_SEP = <|line_sep|>,
    RETURN_SEP = <|return_sep|>, EXCEPTION_SEP = <|exception_sep|>,
    ACTION_SEP = <|action_sep|>, ARG_SEP = <|arg_sep|>. The trace starts with FRAME_SEP
    (CWM's start sentinel) and every frame ends with one. Nested calls of the chain appear
    in execution order with their own call/return frames. `parse_cwm` reads it back.
    """
    parts = [FRAME_SEP]
    for event in trace.events:
        token = _KIND_TOKEN[event.event]
        source = event.source + "\n"
        if event.event in ("call", "line"):
            parts.append(f"{token}{_json(event.locals or {})}{ACTION_SEP}{source}{FRAME_SEP}")
        else:
            value = event.value if event.event == "return" else event.exception
            parts.append(f"{token}{ACTION_SEP}{source}{ARG_SEP}{_json(value or '')}{FRAME_SEP}")
    return "".join(parts)


def parse_cwm(text: str) -> list[CwmFrame]:
    """Frames of a trace rendered by `render_cwm`; ValueError naming the frame if malformed."""
    if not text.startswith(FRAME_SEP):
        raise ValueError(f"a CWM trace starts with {FRAME_SEP}")
    body = text[len(FRAME_SEP):]
    if body and not body.endswith(FRAME_SEP):
        raise ValueError(f"a CWM trace ends with {FRAME_SEP}")
    frames = []
    for number, chunk in enumerate(body.split(FRAME_SEP)[:-1] if body else [], start=1):
        token = next((t for t in _TOKEN_KIND if chunk.startswith(t)), None)
        if token is None:
            raise ValueError(f"frame {number}: does not start with an event token")
        kind = _TOKEN_KIND[token]
        head, sep, rest = chunk[len(token):].partition(ACTION_SEP)
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
    return frames


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


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
    lines = [f"[traced: exit code {run.exit_code}, {len(run.traces)} trace(s), {run.event_count} events]"]
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
    effects, later = {}, {}
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if event.event == "line" and event.frame in later:
            effects[index] = later[event.frame]
        if event.locals is not None:
            later[event.frame] = event.locals
    return effects


def _changed(local_values: dict[str, str] | None) -> str:
    return ", ".join(f"{name}={value}" for name, value in (local_values or {}).items() if value != UNCHANGED)


def tool_observation(sandbox: Sandbox, command: str, timeout: float, limit: int) -> tuple[str, int | None, bool]:
    """The agent's `trace` tool: (text, exit code, error?) for a command like `pytest tests/x.py::t`."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return f"Error: cannot parse the command: {exc}", None, True
    try:
        run = run_traced(sandbox, argv, options=TraceOptions(max_events=2_000, repr_cap=80), timeout=timeout)
    except TraceError as exc:
        return f"Error: {exc}", None, True
    return render_compact(run, limit), run.exit_code, False


def default_out(task_id: str, fmt: str) -> Path:
    """Where `swe-env trace` writes by default: runs/traces/<task>.jsonl (.cwm.jsonl for CWM)."""
    suffix = ".cwm.jsonl" if fmt == "cwm" else ".jsonl"
    return Path("runs") / "traces" / f"{task_id}{suffix}"


__all__ = [
    "CwmFrame", "Trace", "TraceEntry", "TraceError", "TraceEvent", "TraceOptions", "TraceRun",
    "apply_patch", "default_out", "parse_cwm", "parse_jsonl", "render_compact", "render_cwm",
    "run_traced", "tool_observation", "trace_task", "write_jsonl",
]
