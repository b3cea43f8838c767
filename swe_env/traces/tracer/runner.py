"""swe-env tracer: run a Python program traced and write its execution traces.

It hooks in with `sys.monitoring` (PEP 669) on Python 3.12+ and `sys.settrace` before that
(config `backend`: "auto", "settrace" or "monitoring"; else $SWE_ENV_TRACER_BACKEND); both
backends write the same events (see `_Monitor`).

Standard library only; it runs inside a task's container with the task's Python:

    python swe_env_tracer.py CONFIG.json

Why one module of this size: it is copied into the task's container as one file and run by the task's
own Python (3.9 to 3.13) with nothing of swe_env importable there, so the repr cap, the per-thread
chains, both backends, the program and function runners and the corpus plugin travel together.

CONFIG is a JSON object:
    argv          the program, as `python script.py ...`, `python -m mod ...`,
                  `python -c CODE ...` or a Python console script (`pytest ...`); or
    function      "module:qualname" to import (untraced) and call (traced) with
    args          a JSON list (positional), object (keywords) or {"args": [...], "kwargs": {...}};
    out           the JSONL file traces are appended to (one line per trace);
    workdir       the repository: its files are in scope, except site-packages;
    include       more path prefixes in scope;
    follow_depth  also trace calls leaving the scope, this many levels below a traced frame;
    max_events, max_bytes   caps per trace (a trace over a cap is cut and marked);
    repr_cap      characters kept of each repr (longer ones end in "...");
    full_locals   write every local at every event (default: unchanged ones as "..");
    trace_modules also trace module and class bodies (default: functions only);
    backend       "auto" (monitoring on 3.12+, else settrace), "settrace" or "monitoring";
    corpus        (optional) an object for `swe-env trace-corpus`: the program is a pytest run
                  and each test function is one trace (see CORPUS below).

A trace is one top-level call chain of one thread: it starts when a frame in scope is
entered while no traced frame of that thread is running, and ends when that frame is
left. Its entry also records the source of the entry's code (the whole function, or module
or class body, as far as its code reaches), at most CONTEXT_MAX_LINES lines and
CONTEXT_MAX_CHARS characters around the entry line, for CWM's source code context.
Frames out of scope get no local trace function (the global one returns None; under
monitoring their code's events are disabled), so their lines cost nothing. The tracer never raises into the program: its own errors are
counted and written into the trace.

CORPUS mode (config["corpus"], keys: outcomes, status, trace, max_traces, max_total_bytes,
part_bytes, sources): a pytest plugin (`-p swe_env_corpus_plugin`, a module made here; no
pytest import before pytest's own) names the test function about to run
(`pytest_runtest_setup`: its code object, unwrapped of decorators) and its node id. A trace
starts only when that code is entered, outside any trace; fixtures and pytest's own frames
are not traced, and the frames below the test follow the usual scope. The main thread's
trace function is set only from `pytest_runtest_call` (ours runs before pytest's, which
calls the test) to `pytest_runtest_teardown`, so pytest's work between tests runs
untraced; threads get the global one (`threading.settrace`) and start no trace of their own.
The trace's header carries `test_id` and, with `sources`, the source of every function
entered below the entry (`sources`, keyed "file:line:function" of its call event), from
which the host cuts function-level traces. Each test's outcome (passed, failed, skipped,
error, xfailed, xpassed: the worst of its phases) is appended to `outcomes` as one JSON
line, with or without tracing (`trace: false` runs the same plugin untraced: the baseline
the outcomes are compared with). `max_traces` and `max_total_bytes` stop writing traces
once reached (the tests still run); the traces file rotates to `OUT.1`, `OUT.2`, ... past
`part_bytes`; `status` gets {"written", "dropped", "stopped", "bytes"} at exit, and under
pytest {"collected", "exitstatus"} (so a run that ran nothing is told from one traced badly).
`shard` [index, count] keeps every count-th test file (sorted) of the collection.

`runner` "django" or "sympy" (default "pytest"): those runners call each test themselves, so
no plugin is used; a test is entered by name (`test...` in a test file in scope, see
`Tracer.named_test`) and its id is the one the grader's recorder writes for its outcome (the
host puts that recorder on PYTHONPATH with its outcomes going to `outcomes`).

Why one module of this size: it is copied into containers as one file and must run on the
task's own Python with the standard library only, so it cannot import siblings.
"""

from __future__ import annotations

import atexit
import builtins
import dis
import importlib
import inspect
import itertools
import json
import linecache
import os
import re
import runpy
import shutil
import sys
import threading
import traceback
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

VERSION = 1
UNCHANGED = ".."
CUT_SUFFIX = "..."
_CO_NEWLOCALS = 0x0002  # set for functions, clear for module and class bodies
_IMMUTABLE = frozenset({int, float, complex, str, bytes, bool, type(None)})
_NO_OBJECT = object()
_RETURN_OPS = frozenset(dis.opmap[name] for name in ("RETURN_VALUE", "RETURN_CONST") if name in dis.opmap)
_YIELD_OP = dis.opmap["YIELD_VALUE"]
_HIDDEN_LOCALS = frozenset(
    {
        ".0",
        "__builtins__",
        "__loader__",
        "__spec__",
        "__cached__",
        "__file__",
        "__doc__",
        "__package__",
        "__annotations__",
        "__name__",
        "__module__",
        "__qualname__",
    }
)
_PYTHON_NAME = re.compile(r"python(\d+(\.\d+)*)?")
_MAX_ERRORS_KEPT = 5
_MAX_SOURCES = 500
"""Corpus mode: distinct functions whose source one trace records (the rest get none)."""
CORPUS_PLUGIN = "swe_env_corpus_plugin"
CONTEXT_MAX_LINES = 200
"""Lines of the entry's source kept in a trace's entry (a longer code object is cut, keeping the entry line)."""
CONTEXT_MAX_CHARS = 16_000
"""Characters of the entry's source kept (whole lines; the entry line itself is always kept)."""


def capped_repr(value, cap: int) -> str:
    """repr(value) in at most cap characters plus CUT_SUFFIX; never raises.

    Long strings are sliced before repr, and the builtin containers (list, tuple, dict, set,
    frozenset, exactly those types) are written element by element only until the cap is
    passed, so a huge value, or a dict of objects with long reprs, costs little (see
    `_repr_prefix`).
    """
    try:
        kind = type(value)
        if kind in _SLICED and len(value) > cap:
            text = repr(value[: cap + 1])
        elif kind in _CONTAINERS:
            try:
                text = _repr_prefix(value, cap, set(), 0)
            except _TooDeep:
                text = repr(value)
        else:
            text = repr(value)
        if not isinstance(text, str):
            text = str(text)
    except Exception as exc:  # a broken __repr__ of the program's own classes
        text = f"<{type(value).__name__} object; repr failed: {type(exc).__name__}>"
    if len(text) > cap:
        text = text[:cap] + CUT_SUFFIX
    return text


_SLICED = frozenset({str, bytes, bytearray})
_CONTAINERS = frozenset({list, tuple, dict, set, frozenset})
_MAX_REPR_NESTING = 12
"""Builtin containers nested deeper than this: the whole value is written by repr() (as the cycles
of containers, `[...]`, must be seen from the outermost one, it cannot take over halfway down)."""


class _TooDeep(Exception):
    pass


def _repr_prefix(value, cap: int, active: set, nesting: int) -> str:
    """repr(value) of a builtin container, or a prefix of it longer than cap (what capped_repr keeps).

    Written as CPython's repr writes these types (`[a, b]`, `(a,)`, `{k: v}`, `{a}`, `set()`,
    `frozenset({a})`, `[...]` for a container inside itself), stopping once past `cap`:
    the elements after that are never repr'd. (The one difference from repr(): an element's own
    __repr__ that reprs a container around it sees that container unmarked, as when the
    container was sliced.)
    """
    kind = type(value)
    if not value:
        return "set()" if kind is set else "frozenset()" if kind is frozenset else repr(value)
    if kind is list:
        opening, closing = "[", "]"
    elif kind is tuple:
        opening, closing = "(", ",)" if len(value) == 1 else ")"
    elif kind is dict:
        opening, closing = "{", "}"
    elif kind is set:
        opening, closing = "{", "}"
    elif kind is frozenset:
        opening, closing = "frozenset({", "})"
    else:
        return repr(value)
    if nesting > _MAX_REPR_NESTING:
        raise _TooDeep
    key = id(value)
    if key in active:
        return opening[0] + "...)" if kind is tuple else opening[0] + "...]" if kind is list else "{...}"
    active.add(key)
    try:
        parts, size, deeper = [opening], len(opening), nesting + 1
        if kind is dict:
            for number, (item_key, item) in enumerate(value.items()):
                if number:
                    parts.append(", ")
                    size += 2
                text = repr(item_key) + ": "
                parts.append(text)
                size += len(text)
                if size > cap:
                    return "".join(parts)
                if type(item) in _CONTAINERS:
                    text = _repr_prefix(item, cap - size, active, deeper)
                else:
                    text = repr(item)
                parts.append(text)
                size += len(text)
                if size > cap:
                    return "".join(parts)
        else:
            for number, item in enumerate(value):
                if number:
                    parts.append(", ")
                    size += 2
                if type(item) in _CONTAINERS:
                    text = _repr_prefix(item, cap - size, active, deeper)
                else:
                    text = repr(item)
                parts.append(text)
                size += len(text)
                if size > cap:
                    return "".join(parts)
        parts.append(closing)
        return "".join(parts)
    finally:
        active.discard(key)


class _FrameState:
    """What the tracer remembers about one traced frame while it runs."""

    __slots__ = ("index", "depth", "level", "file", "function", "module_body", "values", "last", "exception", "file_json", "middle_json")

    def __init__(self, index, depth, level, file, function, module_body):
        self.index = index  # the frame's number within its trace
        self.depth = depth  # nesting within the trace (0: the entry frame)
        self.level = level  # calls out of scope between this frame and a frame in scope
        self.file = file
        self.function = function
        self.module_body = module_body
        self.values = {}  # name -> (object if immutable else _NO_OBJECT, repr, repr as JSON)
        self.last = None  # the kind of this frame's previous event
        self.exception = None  # repr of the last exception seen in this frame
        # The constant parts of this frame's events as JSON (see `_ThreadTracer.record`).
        self.file_json = _json_string(file)
        self.middle_json = f', "function": {_json_string(function)}, "frame": {index!r}, "depth": {depth!r}, "source": '


class _Chain:
    """The trace being collected for one top-level call chain."""

    def __init__(self, tracer, thread, entry):
        self.tracer = tracer
        self.thread = thread
        self.entry = entry
        self.events: list[str] = []
        self.size = 0
        self.cut = None
        self.open = 0
        self.frames = 0
        self.errors: list[str] = []
        self.test_id = None  # corpus mode: the pytest node id of the test this chain traces
        self.sources = None  # corpus mode: "file:line:function" -> entry source of frames below

    def add(self, text: str) -> None:
        """Add one event, as its JSON text (`json.dumps(event, ensure_ascii=False)`), unless a cap cuts the trace."""
        if self.cut is not None:
            return
        if len(self.events) >= self.tracer.max_events:
            self.cut = "max_events"
            return
        if self.size + len(text) + 1 > self.tracer.max_bytes:
            self.cut = "max_bytes"
            return
        self.events.append(text)
        self.size += len(text) + 1

    def line(self, complete: bool) -> str:
        header = {
            "version": VERSION,
            "trace_id": f"{os.getpid()}-{next(self.tracer.counter)}",
            "thread": self.thread,
            "entry": self.entry,
            "repr_cap": self.tracer.repr_cap,
            "full_locals": self.tracer.full_locals,
            "cut": self.cut,
            "complete": complete,
            "event_count": len(self.events),
            "tracer_errors": self.errors,
        }
        if self.test_id is not None:
            header["test_id"] = self.test_id
        if self.sources is not None:
            header["sources"] = self.sources
        return _dumps(header)[:-1] + ', "events": [' + ",".join(self.events) + "]}\n"


class _ThreadTracer:
    """Per-thread state: the open chain and the traced frames."""

    def __init__(self, tracer):
        self.tracer = tracer
        self.chain: _Chain | None = None
        self.frames: dict = {}

    def enter(self, frame, level: int):
        tracer = self.tracer
        chain = self.chain
        code = frame.f_code
        if chain is None:
            entry = {
                "file": tracer.display(code.co_filename),
                "function": tracer.qualname(frame, code),
                "line": frame.f_lineno,
                **tracer.entry_source(code, frame.f_lineno),
            }
            chain = self.chain = _Chain(tracer, threading.current_thread().name, entry)
            tracer.open_chains.add(chain)
        module_body = not code.co_flags & _CO_NEWLOCALS
        state = _FrameState(chain.frames, chain.open, level, tracer.display(code.co_filename), tracer.qualname(frame, code), module_body)
        chain.frames += 1
        chain.open += 1
        self.frames[frame] = state
        if chain.sources is not None and state.depth and len(chain.sources) < _MAX_SOURCES:
            key = f"{state.file}:{frame.f_lineno}:{state.function}"
            if key not in chain.sources:
                chain.sources[key] = tracer.entry_source(code, frame.f_lineno)
        if chain.cut is None:
            self.record(chain, frame, state, "call")
        else:
            frame.f_trace_lines = False
        return self.local_trace

    def local_trace(self, frame, event, arg):
        try:
            state = self.frames.get(frame)
            if state is None:
                return None
            chain = self.chain
            if event == "line":
                if chain.cut is None:
                    self.record(chain, frame, state, "line")
                else:
                    frame.f_trace_lines = False
            elif event == "return":
                self.leave(chain, frame, state, arg)
                return None
            elif event == "exception":
                state.exception = capped_repr(arg[1], self.tracer.repr_cap)
                self.record(chain, frame, state, "exception", exception=state.exception)
            return self.local_trace
        except Exception as exc:
            self.tracer.internal_error(self.chain, exc)
            return self.local_trace

    def leave(self, chain, frame, state, value, unwound=None) -> None:
        """The frame is left: by a return or yield, or (`unwound`, or guessed when None) by an exception."""
        del self.frames[frame]
        if chain.cut is None:
            if unwound if unwound is not None else _left_by_exception(frame, state, value):
                if state.last != "exception":  # e.g. a finally block ran after the raise
                    self.record(chain, frame, state, "exception", exception=state.exception or "<exception>")
            else:
                self.record(chain, frame, state, "return", value=capped_repr(value, self.tracer.repr_cap))
        chain.open -= 1
        if chain.open == 0:
            self.chain = None
            self.tracer.finish(chain, complete=True)

    def record(self, chain, frame, state, kind, lineno=None, exception=None, value=None) -> None:
        """Add one event; never raises, so the chain's bookkeeping around it always happens.

        The event is written as JSON text directly, byte for byte what `json.dumps(event,
        ensure_ascii=False)` writes for the dict {"event", "file", "line", "function", "frame",
        "depth", "source", then "locals" (call, line), "exception" or "value"}, from parts
        encoded once (the frame's file and function, each source line, each local's repr while
        it does not change): encoding every event whole was a fifth of the tracer's time.
        """
        state.last = kind
        if chain.cut is not None:
            return  # nothing more is written into a cut trace (state.values no longer matter)
        try:
            tracer = self.tracer
            if len(chain.events) >= tracer.max_events:
                chain.cut = "max_events"
                return
            if lineno is None:
                lineno = frame.f_lineno
            text = (
                f'{{"event": "{kind}", "file": {state.file_json}, "line": {_json_int(lineno)}'
                f"{state.middle_json}{tracer.source_json(frame.f_code.co_filename, lineno)}"
            )
            if kind == "call" or kind == "line":
                text = f'{text}, "locals": {self.local_json(frame, state)}}}'
            elif exception is not None:
                text = f'{text}, "exception": {_json_string(exception)}}}'
            elif value is not None:
                text = f'{text}, "value": {_json_string(value)}}}'
            else:
                text += "}"
            chain.add(text)
        except Exception as exc:  # e.g. RecursionError near the program's recursion limit
            self.tracer.internal_error(chain, exc)

    def local_json(self, frame, state) -> str:
        """The frame's locals as a JSON object of reprs (`".."` for one unchanged since the frame's previous event)."""
        cap = self.tracer.repr_cap
        diff = not self.tracer.full_locals
        module_body = state.module_body
        previous = state.values
        current = {}
        pieces = []
        names = _NAME_JSON
        for name, value in frame.f_locals.items():
            if name in _HIDDEN_LOCALS or (module_body and name.startswith("__")):
                continue
            old = previous.get(name)
            if old is not None and old[0] is value:
                text, encoded, same = old[1], old[2], True
            else:
                text = capped_repr(value, cap)
                if old is not None and old[1] == text:
                    encoded, same = old[2], True
                else:
                    encoded, same = _json_string(text), False
            current[name] = (value if type(value) in _IMMUTABLE else _NO_OBJECT, text, encoded)
            key = names.get(name)
            if key is None:
                key = _name_json(name)
            pieces.append(key + (_UNCHANGED_JSON if diff and same else encoded))
        state.values = current
        return "{" + ", ".join(pieces) + "}"


_json_string = json.encoder.encode_basestring
"""A str as JSON, as `json.dumps(text, ensure_ascii=False)` writes it (C-accelerated)."""
_dumps = json.JSONEncoder(ensure_ascii=False).encode
"""`json.dumps(obj, ensure_ascii=False)` without a new encoder per call."""
_UNCHANGED_JSON = _json_string(UNCHANGED)
_NAME_JSON: dict = {}
"""Local name -> its JSON key with the separator (`"name": `), filled as names are seen."""


def _name_json(name) -> str:
    text = (_json_string(name) if type(name) is str else _dumps({name: 0})[1:-3]) + ": "
    if len(_NAME_JSON) < 100_000:
        _NAME_JSON[name] = text
    return text


def _json_int(number) -> str:
    """A line number as json.dumps writes it (None, which f_lineno may be, as null)."""
    return "null" if number is None else int.__repr__(number)


def _code_span(code) -> tuple[int, int]:
    """First and last line of a code object, nested code (inner functions, comprehensions) included."""
    first = last = code.co_firstlineno
    pending = [code]
    while pending:
        current = pending.pop()
        lines = (
            current.co_lines() if hasattr(current, "co_lines") else ((None, None, line) for _offset, line in dis.findlinestarts(current))
        )  # Python < 3.10
        for _start, _end, line in lines:
            if line is not None and line > last:
                last = line
        for _line, end_line, _col, _end_col in current.co_positions() if hasattr(current, "co_positions") else ():
            if end_line is not None and end_line > last:
                last = end_line
        pending.extend(const for const in current.co_consts if isinstance(const, type(code)))
    return first, last


def _entry_source(lines: list[str], code, line: int) -> dict:
    """The source of `code` around `line`, within CONTEXT_MAX_LINES and CONTEXT_MAX_CHARS."""
    if not 0 < line <= len(lines):
        return {"source": "", "first_line": None, "source_cut": False}
    first, last = _code_span(code)
    first, last = max(1, min(first, line)), min(len(lines), max(last, line))
    start = first
    if last - first + 1 > CONTEXT_MAX_LINES and line - first >= CONTEXT_MAX_LINES:
        start = max(first, line - CONTEXT_MAX_LINES // 2)
    end = min(last, start + CONTEXT_MAX_LINES - 1)
    text = [lines[n - 1].rstrip("\r\n") + "\n" for n in range(start, end + 1)]
    size = sum(len(t) for t in text)
    if size > CONTEXT_MAX_CHARS:
        # Keep whole lines from the entry line on, then the lines before it that still fit.
        entry = line - start
        kept, size = [text[entry]], len(text[entry])
        after = entry + 1
        while after < len(text) and size + len(text[after]) <= CONTEXT_MAX_CHARS:
            size += len(text[after])
            kept.append(text[after])
            after += 1
        before = entry
        while before > 0 and size + len(text[before - 1]) <= CONTEXT_MAX_CHARS:
            before -= 1
            size += len(text[before])
            kept.insert(0, text[before])
        start, end, text = start + before, start + after - 1, kept
    cut = start > first or end < last
    return {"source": "".join(text), "first_line": start, "source_cut": cut}


def _left_by_exception(frame, state, value) -> bool:
    """Whether a 'return' event means the frame is being unwound by an exception.

    settrace reports both as 'return' with None; the instruction the frame stopped at
    tells them apart (a return or a yield, unless an exception was thrown into a yield).
    """
    if value is not None:
        return False
    try:
        op = frame.f_code.co_code[frame.f_lasti]
    except (IndexError, ValueError):
        return state.last == "exception"
    if op in _RETURN_OPS:
        return False
    if op == _YIELD_OP:
        return state.last == "exception"
    return True


BACKENDS = ("auto", "settrace", "monitoring")
BACKEND_ENV = "SWE_ENV_TRACER_BACKEND"
"""Environment variable that picks the backend when the config does not ("settrace" forces the old one)."""
MONITORING_TOOL_IDS = (4, 3)
"""sys.monitoring tool ids the tracer may take, in order (0-2 and 5 are the debugger's, coverage's,
profiler's and optimizer's, which the program itself may want)."""


def choose_backend(requested, version=None, has_monitoring=None) -> str:
    """The backend to run: "monitoring" (PEP 669, Python 3.12+) unless "settrace" is asked for or it is missing.

    `requested` is the config's `backend` (else $SWE_ENV_TRACER_BACKEND, else "auto"); an unknown
    value counts as "auto", and "monitoring" on a Python without it falls back to settrace.
    """
    wanted = str(requested or "auto").strip().lower()
    if wanted == "settrace":
        return "settrace"
    version = sys.version_info[:2] if version is None else tuple(version)[:2]
    available = (hasattr(sys, "monitoring") if has_monitoring is None else has_monitoring) and version >= (3, 12)
    return "monitoring" if available else "settrace"


def _line_table(code) -> dict:
    """Byte offset -> line of each instruction of `code` (None for instructions without a line)."""
    table = {}
    for start, end, line in code.co_lines():
        for offset in range(start, end, 2):
            table[offset] = line
    return table


def _same_line_backward_jump(table: dict, source: int, destination: int) -> bool:
    """Whether a jump makes settrace report a line event of its own: backwards, within one line.

    (A jump to another line gets the LINE event of its target; CPython's settrace adds a line
    event for every backward edge that stays on one line, such as a one-line loop or comprehension.)
    """
    if destination > source:
        return False
    line = table.get(source)
    return line is not None and line == table.get(destination)


class _Monitor:
    """The sys.monitoring (PEP 669) backend: the events settrace would give, from PEP 669 callbacks.

    PY_START/PY_RESUME/PY_THROW are settrace's "call" (the same scope decision, `Tracer.enter_frame`;
    code that can never be traced gets DISABLE, so it costs nothing after its first entry),
    LINE plus backward same-line JUMPs its "line", RAISE and STOP_ITERATION its "exception",
    PY_RETURN/PY_YIELD its "return" and PY_UNWIND a return by exception (known here, guessed
    under settrace). LINE, JUMP, PY_RETURN, PY_YIELD and STOP_ITERATION are set per code object,
    on the code of traced frames only; RAISE, PY_UNWIND and PY_THROW can only be global.
    Monitoring covers every thread, so no `threading.settrace` is needed.
    """

    def __init__(self, tracer):
        self.tracer = tracer
        self.tool = None
        self.watched: set = set()  # code objects with our local events set
        self.tables: dict = {}  # code -> line table (codes with a backward same-line jump)

    def start(self) -> bool:
        monitoring = sys.monitoring  # type: ignore[attr-defined]  # 3.12+, and mypy reads this as 3.11
        for tool in MONITORING_TOOL_IDS:
            if monitoring.get_tool(tool) is None:
                monitoring.use_tool_id(tool, "swe-env-tracer")
                self.tool = tool
                break
        else:
            return False
        events = monitoring.events
        self.disable = monitoring.DISABLE
        self.local_events = events.LINE | events.JUMP | events.PY_RETURN | events.PY_YIELD | events.STOP_ITERATION
        self.callbacks = {
            events.PY_START: self.on_start,
            events.PY_RESUME: self.on_start,
            events.PY_THROW: self.on_throw,
            events.LINE: self.on_line,
            events.JUMP: self.on_jump,
            events.PY_RETURN: self.on_return,
            events.PY_YIELD: self.on_return,
            events.PY_UNWIND: self.on_unwind,
            events.RAISE: self.on_raise,
            events.STOP_ITERATION: self.on_raise,
        }
        for event, callback in self.callbacks.items():
            monitoring.register_callback(tool, event, callback)
        monitoring.set_events(tool, events.PY_START | events.PY_RESUME | events.PY_THROW | events.RAISE | events.PY_UNWIND)
        return True

    def stop(self) -> None:
        tool, self.tool = self.tool, None
        if tool is None:
            return
        monitoring = sys.monitoring  # type: ignore[attr-defined]  # 3.12+, and mypy reads this as 3.11
        monitoring.set_events(tool, 0)
        for code in self.watched:
            monitoring.set_local_events(tool, code, 0)
        self.watched.clear()
        for event in self.callbacks:
            monitoring.register_callback(tool, event, None)
        monitoring.free_tool_id(tool)

    def _traced(self):
        """The monitored frame (the callback's caller), its thread tracer and state, or None."""
        thread = self.tracer.threads.get(threading.get_ident())
        if thread is None or thread.chain is None:
            return None
        frame = sys._getframe(2)
        state = thread.frames.get(frame)
        return None if state is None else (thread, frame, state)

    def on_start(self, code, offset):
        return self._begin(code, 2)

    def on_throw(self, code, offset, exception):
        self._begin(code, 2)  # settrace's "call" too (PY_THROW cannot be disabled)

    def _begin(self, code, up):
        tracer = self.tracer
        try:
            frame = sys._getframe(up)
            if tracer.enter_frame(frame, code) is not None:
                if code not in self.watched:
                    self.watched.add(code)
                    sys.monitoring.set_local_events(self.tool, code, self.local_events)
                return None
            if tracer.never_traced(code):
                return self.disable
        except Exception as exc:
            tracer.internal_error(self._chain(), exc)
        return None

    def on_line(self, code, line):
        try:
            found = self._traced()
            if found is not None:
                thread, frame, state = found
                if thread.chain.cut is None:
                    thread.record(thread.chain, frame, state, "line", line)
        except Exception as exc:
            self.tracer.internal_error(self._chain(), exc)

    def on_jump(self, code, source, destination):
        try:
            table = self.tables.get(code)
            if table is None:
                table = _line_table(code)
            if not _same_line_backward_jump(table, source, destination):
                return self.disable  # decided by the code alone: never asked again
            self.tables[code] = table
            found = self._traced()
            if found is not None:
                thread, frame, state = found
                if thread.chain.cut is None:
                    thread.record(thread.chain, frame, state, "line", table[source])
        except Exception as exc:
            self.tracer.internal_error(self._chain(), exc)
        return None

    # Keep each callback's frame layout as it is: `_traced` finds the monitored frame at a fixed
    # depth (sys._getframe(2)), and an extra Python frame between the callback and the tracer's
    # work (a shared helper for on_return and on_unwind, say) changed the records once. Re-run
    # tests/traces/test_tracer_monitoring.py after touching them.
    def on_return(self, code, offset, value):
        try:
            found = self._traced()
            if found is not None:
                thread, frame, state = found
                thread.leave(thread.chain, frame, state, value, unwound=False)
        except Exception as exc:
            self.tracer.internal_error(self._chain(), exc)

    def on_unwind(self, code, offset, exception):
        try:
            found = self._traced()
            if found is not None:
                thread, frame, state = found
                thread.leave(thread.chain, frame, state, None, unwound=True)
        except Exception as exc:
            self.tracer.internal_error(self._chain(), exc)

    def on_raise(self, code, offset, exception):
        try:
            found = self._traced()
            if found is not None:
                thread, frame, state = found
                state.exception = capped_repr(exception, self.tracer.repr_cap)
                thread.record(thread.chain, frame, state, "exception", exception=state.exception)
        except Exception as exc:
            self.tracer.internal_error(self._chain(), exc)

    def _chain(self):
        thread = self.tracer.threads.get(threading.get_ident())
        return thread.chain if thread is not None else None


class Tracer:
    """Scope decisions, caps, and the output file, shared by every thread."""

    def __init__(self, config: dict):
        self.workdir = os.path.normpath(config.get("workdir") or os.getcwd())
        self.includes = [os.path.normpath(os.path.join(self.workdir, p)) for p in config.get("include", [])]
        self.follow_depth = int(config.get("follow_depth", 0))
        self.max_events = int(config.get("max_events", 10_000))
        self.max_bytes = int(config.get("max_bytes", 1_000_000))
        self.repr_cap = int(config.get("repr_cap", 200))
        self.full_locals = bool(config.get("full_locals", False))
        self.trace_modules = bool(config.get("trace_modules", False))
        self.own_dir = os.path.dirname(os.path.abspath(__file__))
        self.prefixes = {os.path.normpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
        self.counter = itertools.count(1)
        self.scope: dict[str, bool] = {}
        self.sources: dict[str, list[str]] = {}
        self.source_texts: dict = {}  # (file name, line) -> that source line as JSON
        self.contexts: dict = {}
        self.names: dict = {}
        self.threads: dict[int, _ThreadTracer] = {}
        self.open_chains: set = set()
        self.lock = threading.Lock()
        self.closed = False
        self.errors = 0
        self.out = config["out"]
        self.fd = os.open(self.out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        corpus = config.get("corpus") or None
        self.corpus = corpus is not None
        corpus = corpus or {}
        self.tracing = bool(corpus.get("trace", True))
        self.want_sources = bool(corpus.get("sources", False))
        self.max_traces = corpus.get("max_traces")
        self.max_total_bytes = corpus.get("max_total_bytes")
        self.part_bytes = corpus.get("part_bytes")
        self.status_path = corpus.get("status")
        self.runner = corpus.get("runner") or "pytest"  # pytest: the plugin names each test; django, sympy: by name
        self.shard = tuple(corpus.get("shard") or (0, 1))  # corpus mode under pytest: (index, count) of test files
        self.session: dict = {}  # corpus mode under pytest: {"collected", "exitstatus"} from the plugin
        self.pending_code = None  # corpus mode: the code of the test function about to run
        self.pending_test = None
        self.stopped: str | None = None  # corpus mode: "max_traces" / "max_bytes" once a corpus cap is reached
        self.written = self.dropped = self.total_bytes = self.part_size = 0
        self.parts = 0
        requested = config.get("backend")
        if requested in (None, "", "auto"):
            requested = os.environ.get(BACKEND_ENV)
        self.backend = choose_backend(requested)
        self.monitor: _Monitor | None = None  # the _Monitor while the monitoring backend runs

    # ---------------------------------------------------------- scope

    def in_scope(self, filename: str) -> bool:
        if filename.startswith("<"):
            result = False
        else:
            path = os.path.normpath(os.path.join(self.workdir, filename))
            if path.startswith(self.own_dir + os.sep):
                result = False
            elif any(path == p or path.startswith(p + os.sep) for p in self.includes):
                result = True
            elif not path.startswith(self.workdir + os.sep):
                result = False
            else:
                parts = path.split(os.sep)
                result = (
                    "site-packages" not in parts
                    and "dist-packages" not in parts
                    and not any(path.startswith(p + os.sep) for p in self.prefixes if p != self.workdir)
                )
        self.scope[filename] = result
        return result

    def qualname(self, frame, code) -> str:
        """The code's qualified name: `co_qualname` (3.11+), else found through the first argument's class."""
        name = self.names.get(code)
        if name is None:
            name = getattr(code, "co_qualname", None)
            if name is None:
                name = code.co_name
                try:
                    if code.co_argcount and code.co_flags & _CO_NEWLOCALS:
                        first = frame.f_locals.get(code.co_varnames[0])
                        cls = first if isinstance(first, type) else type(first)
                        plain = code.co_name
                        for klass in cls.__mro__:
                            found = klass.__dict__.get(plain)
                            if getattr(getattr(found, "__func__", found), "__code__", None) is code:
                                name = f"{klass.__qualname__}.{plain}"
                                break
                except Exception:  # an odd first argument: the plain name will do
                    pass
            self.names[code] = name
        return name

    def display(self, filename: str) -> str:
        path = os.path.normpath(os.path.join(self.workdir, filename))
        if path.startswith(self.workdir + os.sep):
            return path[len(self.workdir) + 1 :]
        return filename

    def file_lines(self, filename: str) -> list[str]:
        lines = self.sources.get(filename)
        if lines is None:
            lines = self.sources[filename] = linecache.getlines(filename)
        return lines

    def source_line(self, filename: str, lineno: int) -> str:
        lines = self.sources.get(filename)  # file_lines, inlined: this runs at every event
        if lines is None:
            lines = self.sources[filename] = linecache.getlines(filename)
        if 0 < lineno <= len(lines):
            return lines[lineno - 1].rstrip("\r\n")
        return ""

    def source_json(self, filename: str, lineno: int) -> str:
        """`source_line` as JSON, cached (it is written at every event)."""
        key = (filename, lineno)
        found = self.source_texts.get(key)
        if found is None:
            found = self.source_texts[key] = _json_string(self.source_line(filename, lineno))
        return found

    def entry_source(self, code, line: int) -> dict:
        """`source` (the code object's lines, each ending in a newline), `first_line`, `source_cut`.

        Never raises; cached per (code, line). Empty source when the file cannot be read.
        """
        key = (code, line)
        found = self.contexts.get(key)
        if found is None:
            try:
                found = _entry_source(self.file_lines(code.co_filename), code, line)
            except Exception as exc:
                self.internal_error(None, exc)
                found = {"source": "", "first_line": None, "source_cut": False}
            self.contexts[key] = found
        return found

    # ---------------------------------------------------------- the trace functions

    def global_trace(self, frame, event, arg):
        """Called for every new frame (settrace); returns a local trace function only for traced ones."""
        try:
            return self.enter_frame(frame, frame.f_code)
        except Exception as exc:
            thread = self.threads.get(threading.get_ident())
            self.internal_error(thread.chain if thread else None, exc)
            return None

    def never_traced(self, code) -> bool:
        """Whether no frame of `code` can be traced (out of scope, no follow_depth), whatever runs.

        Corpus mode's test functions are in scope; one that is not re-enables events
        (`sys.monitoring.restart_events`) before it runs.
        """
        if self.follow_depth:
            return False
        wanted = self.scope.get(code.co_filename)
        if wanted is None:
            wanted = self.in_scope(code.co_filename)
        return not (wanted and (code.co_flags & _CO_NEWLOCALS or self.trace_modules))

    def enter_frame(self, frame, code):
        """The scope decision for a frame being entered: start (or extend) a trace, or not.

        Returns the thread's local trace function when the frame is traced, else None.
        """
        if self.corpus:
            # Outside a trace only the pending test function starts one.
            thread = self.threads.get(threading.get_ident())
            if thread is None or thread.chain is None:
                if self.stopped is not None:
                    return None
                if self.runner == "pytest":
                    if code is not self.pending_code:
                        return None
                    self.pending_code = None  # one trace per test (a coroutine's resumptions are not new traces)
                    test_id = self.pending_test
                else:
                    test_id = self.named_test(frame, code)
                    if test_id is None:
                        return None
                if thread is None:
                    thread = self.threads[threading.get_ident()] = _ThreadTracer(self)
                local = thread.enter(frame, 0)
                thread.chain.test_id = test_id
                thread.chain.sources = {} if self.want_sources else None
                return local
        wanted = self.scope.get(code.co_filename)
        if wanted is None:
            wanted = self.in_scope(code.co_filename)
        if wanted and (code.co_flags & _CO_NEWLOCALS or self.trace_modules):
            thread = self.threads.get(threading.get_ident())
            if thread is None:
                thread = self.threads[threading.get_ident()] = _ThreadTracer(self)
            return thread.enter(frame, 0)
        if self.follow_depth:
            thread = self.threads.get(threading.get_ident())
            if thread is not None and thread.chain is not None:
                parent = thread.frames.get(frame.f_back)
                if parent is not None and parent.level < self.follow_depth:
                    return thread.enter(frame, parent.level + 1)
        return None

    def named_test(self, frame, code):
        """Django's and sympy's runners: the test id of a test function being entered, else None.

        Their runners call each test themselves, so a test is known by its name (`test...`) and
        file (in scope, `test*.py` or under a `tests` folder), and its id is the one the grader's
        recorder writes for its outcome: `name (module.Class)` for unittest (Django), the file
        (relative to the workdir) and the name, `path:name`, for sympy.
        """
        name = code.co_name
        if not name.startswith("test") or not code.co_flags & _CO_NEWLOCALS:
            return None
        filename = code.co_filename
        wanted = self.scope.get(filename)
        if wanted is None:
            wanted = self.in_scope(filename)
        if not wanted:
            return None
        shown = self.display(filename)
        parts = shown.split("/")
        if not (parts[-1].startswith("test") or "tests" in parts[:-1]):
            return None
        if self.runner == "sympy":
            return f"{shown}:{name}"
        test = frame.f_locals.get("self") if code.co_argcount else None
        method = getattr(test, "_testMethodName", None)
        if test is None or method is None:
            return None  # a test-named helper, not a unittest test method
        cls = type(test)
        return "%s (%s.%s)" % (method, cls.__module__, getattr(cls, "__qualname__", cls.__name__))

    def internal_error(self, chain, exc: BaseException) -> None:
        self.errors += 1
        if chain is not None and len(chain.errors) < _MAX_ERRORS_KEPT:
            chain.errors.append(f"{type(exc).__name__}: {exc}"[:300])

    # ---------------------------------------------------------- output

    def finish(self, chain: _Chain, complete: bool) -> None:
        with self.lock:
            self.open_chains.discard(chain)
            if self.closed:
                return
            if self.stopped is not None:
                self.dropped += 1
                return
            data = chain.line(complete).encode("utf-8", errors="replace")
            if self.max_total_bytes is not None and self.total_bytes + len(data) > self.max_total_bytes:
                self.stopped = "max_bytes"
                self.dropped += 1
                return
            if self.part_bytes and self.part_size and self.part_size + len(data) > self.part_bytes:
                os.close(self.fd)
                self.parts += 1
                self.fd = os.open(f"{self.out}.{self.parts}", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                self.part_size = 0
            self.total_bytes += len(data)
            self.part_size += len(data)
            self.written += 1
            while data:
                written = os.write(self.fd, data)
                data = data[written:]
            if self.max_traces is not None and self.written >= self.max_traces:
                self.stopped = "max_traces"

    def start(self) -> None:
        if not self.tracing:
            return
        if self.backend == "monitoring":
            monitor = self.monitor = _Monitor(self)
            if monitor.start():
                return
            self.monitor, self.backend = None, "settrace"  # every tool id we may take is in use
        threading.settrace(self.global_trace)
        if not self.corpus or self.runner != "pytest":
            # pytest's corpus mode: the plugin turns this thread's tracing on around each test's call
            sys.settrace(self.global_trace)

    def stop(self) -> None:
        if self.backend == "monitoring":
            if self.monitor is not None:
                self.monitor.stop()
            return
        sys.settrace(None)
        threading.settrace(None)

    def close(self) -> None:
        """At exit: write chains still open (daemon threads, os-level exits) as incomplete."""
        self.stop()
        for chain in list(self.open_chains):
            chain.errors.append(
                "still open at exit: the program ended inside it, or CPython turned tracing off "
                "(the trace function hit the recursion limit, or the program called sys.settrace)"
            )
            self.finish(chain, complete=False)
        with self.lock:
            self.closed = True
            os.close(self.fd)
        if self.status_path:
            status = {
                "written": self.written,
                "dropped": self.dropped,
                "stopped": self.stopped,
                "bytes": self.total_bytes,
                "parts": self.parts + 1,
                "errors": self.errors,
                "backend": self.backend,
                **self.session,
            }
            with open(self.status_path, "w", encoding="utf-8") as handle:
                json.dump(status, handle)


# ---------------------------------------------------------------- running the program


class UsageError(Exception):
    """The program cannot be run under the tracer (exit code 2, message on stderr)."""


def _run_python_argv(argv: list[str], tracer: Tracer) -> None:
    """Run `python [-m mod | -c code | script] args` in this process, as python would."""
    rest = list(argv[1:])
    while rest and rest[0] in ("-u", "-B", "-E", "-s", "-q"):
        rest.pop(0)
    if not rest:
        raise UsageError("no script, -m or -c given to python")
    if rest[0] == "-m":
        if len(rest) < 2:
            raise UsageError("-m needs a module name")
        sys.argv = ["-m", *rest[2:]]
        sys.path.insert(0, os.getcwd())
        tracer.start()
        runpy.run_module(rest[1], run_name="__main__", alter_sys=True)
    elif rest[0] == "-c":
        if len(rest) < 2:
            raise UsageError("-c needs code")
        sys.argv = ["-c", *rest[2:]]
        sys.path.insert(0, "")
        main = type(sys)("__main__")
        setattr(main, "__builtins__", builtins)  # noqa: B010 - a module's attribute mypy does not model
        sys.modules["__main__"] = main
        code = compile(rest[1], "<string>", "exec")
        tracer.start()
        exec(code, main.__dict__)
    elif rest[0].startswith("-"):
        raise UsageError(f"python option {rest[0]} is not supported under the tracer")
    else:
        _run_script(rest[0], rest[1:], tracer)


def _run_script(path: str, args: list[str], tracer: Tracer) -> None:
    if not os.path.isfile(path):
        raise UsageError(f"can't open file {path!r}: no such file")
    sys.argv = [path, *args]
    sys.path.insert(0, os.path.dirname(os.path.realpath(path)))
    tracer.start()
    runpy.run_path(path, run_name="__main__")


def run_argv(argv: list[str], tracer: Tracer) -> None:
    if not argv:
        raise UsageError("no program given")
    if _PYTHON_NAME.fullmatch(os.path.basename(argv[0])):
        return _run_python_argv(argv, tracer)
    path = argv[0] if os.sep in argv[0] else shutil.which(argv[0])
    if path is None or not os.path.isfile(path):
        raise UsageError(f"{argv[0]}: command not found")
    with open(path, "rb") as handle:
        first = handle.readline()
    if not (first.startswith(b"#!") and b"python" in first) and not path.endswith(".py"):
        raise UsageError(f"{argv[0]} is not a Python program; trace `python ...` or a Python console script")
    _run_script(path, argv[1:], tracer)


def run_function(target: str, arguments, tracer: Tracer) -> int:
    module_name, _, qualname = target.partition(":")
    if not module_name or not qualname:
        raise UsageError(f"--function must be module:qualname, not {target!r}")
    sys.path.insert(0, os.getcwd())
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if isinstance(arguments, dict) and set(arguments) <= {"args", "kwargs"} and arguments:
        args, kwargs = list(arguments.get("args", [])), dict(arguments.get("kwargs", {}))
    elif isinstance(arguments, dict):
        args, kwargs = [], arguments
    else:
        args, kwargs = list(arguments or []), {}
    tracer.start()
    try:
        result = obj(*args, **kwargs)
    except BaseException:
        tracer.stop()
        traceback.print_exc()
        return 1
    tracer.stop()
    print(capped_repr(result, 10_000))
    return 0


_OUTCOME_RANK = {"passed": 0, "xpassed": 1, "xfailed": 1, "skipped": 2, "failed": 3, "error": 4}


def corpus_plugin(tracer: Tracer, outcomes_path: str):
    """The pytest plugin of corpus mode, as a module object (registered with `-p`)."""
    # PYTEST_DONT_REWRITE: the module is in sys.modules before pytest reads `-p`, so pytest
    # would warn that it cannot rewrite it, and under a suite's `filterwarnings = error`
    # (flask's, pytest's own) that warning is an error at start-up: no test runs at all.
    module = type(sys)(CORPUS_PLUGIN, "swe-env corpus plugin. PYTEST_DONT_REWRITE")
    fd = os.open(outcomes_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    results: dict = {}

    def pytest_runtest_setup(item):
        try:
            tracer.pending_code = tracer.pending_test = None
            if not tracer.tracing or tracer.stopped is not None:
                return
            obj = getattr(item, "obj", None)
            function = inspect.unwrap(getattr(obj, "__func__", obj))
            tracer.pending_code = getattr(function, "__code__", None)
            tracer.pending_test = item.nodeid
            if tracer.monitor is not None and tracer.pending_code is not None and tracer.never_traced(tracer.pending_code):
                sys.monitoring.restart_events()  # a test out of scope: its PY_START may have been disabled
        except Exception as exc:  # an odd item (a doctest, a plugin's own): it runs untraced
            tracer.internal_error(None, exc)

    def pytest_runtest_call(item):
        # Tracing is on only while the test is called (pytest's own hook, registered earlier,
        # runs after this one): pytest's frames between tests cost nothing.
        if tracer.pending_code is not None and tracer.backend == "settrace":
            sys.settrace(tracer.global_trace)

    def pytest_runtest_teardown(item):
        if tracer.tracing and tracer.backend == "settrace":
            sys.settrace(None)
        tracer.pending_code = None

    def pytest_runtest_logreport(report):
        outcome = report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        elif report.when != "call" and report.failed:
            outcome = "error"
        previous = results.get(report.nodeid)
        if previous is None or _OUTCOME_RANK.get(outcome, 4) > _OUTCOME_RANK.get(previous, 4):
            results[report.nodeid] = outcome

    def pytest_runtest_logfinish(nodeid):
        outcome = results.pop(nodeid, None)
        if outcome is not None:
            os.write(fd, (json.dumps({"test_id": nodeid, "outcome": outcome}) + "\n").encode("utf-8", "replace"))

    def pytest_collection_modifyitems(session, config, items):
        # A shard (index, count) keeps the tests of every count-th test file, in sorted order:
        # the same split in every container, whole files together (their fixtures and imports).
        index, count = tracer.shard
        if count <= 1:
            return
        files = sorted({item.nodeid.split("::")[0] for item in items})
        mine = set(files[index::count])
        kept = [item for item in items if item.nodeid.split("::")[0] in mine]
        dropped = [item for item in items if item.nodeid.split("::")[0] not in mine]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = kept

    def pytest_collection_finish(session):
        tracer.session["collected"] = len(getattr(session, "items", ()) or ())

    def pytest_sessionfinish(session, exitstatus):
        tracer.session["exitstatus"] = int(exitstatus)

    for hook in (
        pytest_runtest_setup,
        pytest_runtest_call,
        pytest_runtest_teardown,
        pytest_runtest_logreport,
        pytest_runtest_logfinish,
        pytest_collection_modifyitems,
        pytest_collection_finish,
        pytest_sessionfinish,
    ):
        setattr(module, hook.__name__, hook)
    return module


def with_corpus_plugin(argv: list[str]) -> list[str]:
    """A pytest command with `-p swe_env_corpus_plugin` first among its arguments."""
    if argv and _PYTHON_NAME.fullmatch(os.path.basename(argv[0])):
        index = 1
        while index < len(argv) and argv[index] in ("-u", "-B", "-E", "-s", "-q"):
            index += 1
        if argv[index : index + 2] in (["-m", "pytest"], ["-m", "py.test"]):
            return [*argv[: index + 2], "-p", CORPUS_PLUGIN, *argv[index + 2 :]]
    elif argv and os.path.basename(argv[0]) in ("pytest", "py.test"):
        return [argv[0], "-p", CORPUS_PLUGIN, *argv[1:]]
    raise UsageError("a corpus is traced from a pytest run (`python -m pytest ...` or `pytest ...`), not " + " ".join(argv[:3]))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: swe_env_tracer.py CONFIG.json", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        config = json.load(handle)
    del sys.path[0]  # the tracer's own folder: the program must not see it
    tracer = Tracer(config)
    atexit.register(tracer.close)
    try:
        if config.get("function"):
            return run_function(config["function"], config.get("args"), tracer)
        program = config.get("argv") or []
        if tracer.corpus and tracer.runner == "pytest":
            program = with_corpus_plugin(program)
            sys.modules[CORPUS_PLUGIN] = corpus_plugin(tracer, config["corpus"]["outcomes"])
        run_argv(program, tracer)
        return 0
    except UsageError as exc:
        print(f"swe-env trace: {exc}", file=sys.stderr)
        return 2
    finally:
        tracer.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
