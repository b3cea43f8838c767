"""Execution traces: the in-container tracer event by event, behaviour under tracing, caps,
the CWM format, the CLI and the agent's `trace` tool. Containers are real."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from swe_env import SWEEnv, tools
from swe_env.grading.testlogs import parse_pytest_summary
from swe_env.runtime.sandbox import Sandbox
from swe_env.traces import host as traces
from swe_env.traces.host import Trace, TraceError, TraceOptions
from swe_env.traces.tracer import runner

from ..helpers import run_cli as swe_env

SCRIPT_PATH = "/tmp/trace_subject.py"
SCRIPT = """\
def total(items):
    acc = 0
    for x in items:
        acc += x
    return acc


def parse(text):
    try:
        return int(text)
    except ValueError:
        return -1


def check(n):
    if n < 0:
        raise ValueError(f"negative: {n}")
    return n


def run_check():
    return check(-1)


def fact(n):
    if n <= 1:
        return 1
    return n * fact(n - 1)


def evens(n):
    for i in range(n):
        yield 2 * i


def consume():
    out = []
    for v in evens(2):
        out.append(v)
    return out


if __name__ == "__main__":
    print(total([1, 2]))
    print(parse("x"))
    try:
        run_check()
    except ValueError as exc:
        print(exc)
    print(fact(3))
    print(consume())
"""

BEHAVIOUR_PATH = "/tmp/trace_behaviour.py"
BEHAVIOUR = """\
import asyncio
import sys
import threading

results = []


def work(n):
    results.append(sum(i * i for i in range(n)))


async def double(x):
    await asyncio.sleep(0)
    return 2 * x


async def gather():
    return await asyncio.gather(double(1), double(2))


def countdown(n):
    while n:
        yield n
        n -= 1


threads = [threading.Thread(target=work, args=(k,)) for k in (3, 4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(sorted(results), asyncio.run(gather()), list(countdown(3)))
try:
    {}["missing"]
except KeyError as exc:
    print("caught", repr(exc))
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""


def line_of(text: str) -> int:
    """The line number of the one SCRIPT line that is exactly `text` once stripped."""
    matches = [n for n, line in enumerate(SCRIPT.splitlines(), start=1) if line.strip() == text]
    assert len(matches) == 1, text
    return matches[0]


def steps(trace: Trace) -> list[tuple]:
    """(event, line, depth, payload): locals for call/line, the value or exception otherwise."""
    result = []
    for event in trace.events:
        payload = event.locals if event.event in ("call", "line") else event.value if event.event == "return" else event.exception
        result.append((event.event, event.line, event.depth, payload))
    return result


@pytest.fixture(scope="module")
def sandbox(task, image):
    with Sandbox(image, task.limits, task.environment.workdir, kind="trace", labels={"task": task.id}) as box:
        box.write_file(SCRIPT_PATH, SCRIPT.encode())
        box.write_file(BEHAVIOUR_PATH, BEHAVIOUR.encode())
        yield box


@pytest.fixture(scope="module")
def subject(sandbox) -> dict[str, Trace]:
    run = traces.run_traced(sandbox, ["python", SCRIPT_PATH], options=TraceOptions(include=["/tmp"]))
    assert run.exit_code == 0, run.output
    assert run.output.splitlines() == ["3", "-1", "negative: -1", "6", "[0, 2]"]
    by_entry = {}
    for trace in run.traces:
        assert trace.complete and trace.cut is None and not trace.tracer_errors
        by_entry.setdefault(trace.entry.function, trace)
    return by_entry


# ---------------------------------------------------------------- event by event


def test_loop_event_by_event(subject):
    a, f, r = line_of("acc = 0"), line_of("for x in items:"), line_of("return acc")
    assert steps(subject["total"]) == [
        ("call", line_of("def total(items):"), 0, {"items": "[1, 2]"}),
        ("line", a, 0, {"items": ".."}),
        ("line", f, 0, {"items": "..", "acc": "0"}),
        ("line", f + 1, 0, {"items": "..", "acc": "..", "x": "1"}),
        ("line", f, 0, {"items": "..", "acc": "1", "x": ".."}),
        ("line", f + 1, 0, {"items": "..", "acc": "..", "x": "2"}),
        ("line", f, 0, {"items": "..", "acc": "3", "x": ".."}),
        ("line", r, 0, {"items": "..", "acc": "..", "x": ".."}),
        ("return", r, 0, "3"),
    ]
    first = subject["total"].events[0]
    assert first.file == SCRIPT_PATH and first.function == "total" and first.source == "def total(items):"
    assert subject["total"].events[3].source == "        acc += x"


def test_caught_exception(subject):
    t, e = line_of("return int(text)"), line_of("except ValueError:")
    assert steps(subject["parse"]) == [
        ("call", line_of("def parse(text):"), 0, {"text": "'x'"}),
        ("line", t - 1, 0, {"text": ".."}),
        ("line", t, 0, {"text": ".."}),
        ("exception", t, 0, "ValueError(\"invalid literal for int() with base 10: 'x'\")"),
        ("line", e, 0, {"text": ".."}),
        ("line", e + 1, 0, {"text": ".."}),
        ("return", e + 1, 0, "-1"),
    ]


def test_uncaught_exception_unwinds_without_return(subject):
    call_line, raise_line = line_of("return check(-1)"), line_of('raise ValueError(f"negative: {n}")')
    assert steps(subject["run_check"]) == [
        ("call", line_of("def run_check():"), 0, {}),
        ("line", call_line, 0, {}),
        ("call", line_of("def check(n):"), 1, {"n": "-1"}),
        ("line", raise_line - 1, 1, {"n": ".."}),
        ("line", raise_line, 1, {"n": ".."}),
        ("exception", raise_line, 1, "ValueError('negative: -1')"),
        ("exception", call_line, 0, "ValueError('negative: -1')"),
    ]


def test_recursion(subject):
    d, i, b, r = line_of("def fact(n):"), line_of("if n <= 1:"), line_of("return 1"), line_of("return n * fact(n - 1)")
    assert steps(subject["fact"]) == [
        ("call", d, 0, {"n": "3"}),
        ("line", i, 0, {"n": ".."}),
        ("line", r, 0, {"n": ".."}),
        ("call", d, 1, {"n": "2"}),
        ("line", i, 1, {"n": ".."}),
        ("line", r, 1, {"n": ".."}),
        ("call", d, 2, {"n": "1"}),
        ("line", i, 2, {"n": ".."}),
        ("line", b, 2, {"n": ".."}),
        ("return", b, 2, "1"),
        ("return", r, 1, "2"),
        ("return", r, 0, "6"),
    ]
    frames = [e.frame for e in subject["fact"].events]
    assert frames == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 1, 0]


def test_generator_yields_and_resumes(subject):
    loop, append, ret = line_of("for v in evens(2):"), line_of("out.append(v)"), line_of("return out")
    g_loop, g_yield = line_of("for i in range(n):"), line_of("yield 2 * i")
    assert steps(subject["consume"]) == [
        ("call", line_of("def consume():"), 0, {}),
        ("line", loop - 1, 0, {}),
        ("line", loop, 0, {"out": "[]"}),
        ("call", line_of("def evens(n):"), 1, {"n": "2"}),
        ("line", g_loop, 1, {"n": ".."}),
        ("line", g_yield, 1, {"n": "..", "i": "0"}),
        ("return", g_yield, 1, "0"),
        ("line", append, 0, {"out": "..", "v": "0"}),
        ("line", loop, 0, {"out": "[0]", "v": ".."}),
        ("call", g_yield, 1, {"n": "2", "i": "0"}),  # a resumed generator starts a new frame record
        ("line", g_loop, 1, {"n": "..", "i": ".."}),
        ("line", g_yield, 1, {"n": "..", "i": "1"}),
        ("return", g_yield, 1, "2"),
        ("line", append, 0, {"out": "..", "v": "2"}),
        ("line", loop, 0, {"out": "[0, 2]", "v": ".."}),
        ("call", g_yield, 1, {"n": "2", "i": "1"}),
        ("line", g_loop, 1, {"n": "..", "i": ".."}),
        ("return", g_loop, 1, "None"),
        ("line", ret, 0, {"out": "..", "v": ".."}),
        ("return", ret, 0, "[0, 2]"),
    ]


def test_full_locals_and_scope(sandbox, subject):
    run = traces.run_traced(sandbox, ["python", SCRIPT_PATH], options=TraceOptions(include=["/tmp"], full_locals=True))
    total = next(t for t in run.traces if t.entry.function == "total")
    assert total.full_locals
    assert [e.locals for e in total.events if e.event == "line"][-1] == {"items": "[1, 2]", "acc": "3", "x": "2"}
    assert all(v != traces.UNCHANGED for e in total.events for v in (e.locals or {}).values())
    # /tmp is outside the repository: without --include nothing of the script is traced.
    assert traces.run_traced(sandbox, ["python", SCRIPT_PATH]).traces == []


def test_follow_depth_enters_the_standard_library(sandbox):
    script = "import json\n\ndef dump(x):\n    return json.dumps(x)\n\ndump([1])\n"
    sandbox.write_file("/tmp/trace_follow.py", script.encode())
    shallow = traces.run_traced(sandbox, ["python", "/tmp/trace_follow.py"], options=TraceOptions(include=["/tmp"]))
    deep = traces.run_traced(sandbox, ["python", "/tmp/trace_follow.py"], options=TraceOptions(include=["/tmp"], follow_depth=1))
    assert {e.function for t in shallow.traces for e in t.events} == {"dump"}
    deep_events = [e for t in deep.traces for e in t.events]
    assert {"dump", "dumps"} <= {e.function for e in deep_events}
    assert all(e.depth <= 1 for e in deep_events) and any(e.file.endswith("json/__init__.py") for e in deep_events)


# ---------------------------------------------------------------- behaviour is unchanged


@pytest.mark.parametrize("exit_code", ["0", "3"])
def test_threads_async_generators_and_exit_code_unchanged(sandbox, exit_code):
    argv = ["python", BEHAVIOUR_PATH, exit_code]
    plain = sandbox.exec(argv)
    run = traces.run_traced(sandbox, argv, options=TraceOptions(include=["/tmp"]))
    assert (run.exit_code, run.output) == (plain.exit_code, plain.output)
    assert plain.exit_code == int(exit_code) and "caught KeyError('missing')" in plain.output
    threads = {t.thread for t in run.traces if t.entry.function == "work"}
    assert len(threads) == 2 and "MainThread" not in threads
    assert {"double", "countdown", "work"} <= {t.entry.function for t in run.traces}


def test_uncaught_exception_exit_code_unchanged(sandbox):
    argv = ["python", "-c", "import sys; sys.path.insert(0, '/tmp'); import trace_subject; trace_subject.run_check()"]
    plain = sandbox.exec(argv)
    run = traces.run_traced(sandbox, argv, options=TraceOptions(include=["/tmp"]))
    assert plain.exit_code == run.exit_code == 1
    assert "ValueError: negative: -1" in plain.stderr and "ValueError: negative: -1" in run.output
    assert [t.entry.function for t in run.traces] == ["run_check"]


def test_bundled_test_outcomes_unchanged_by_tracing(sandbox, task):
    traces.apply_patch(sandbox, task.tests.test_patch)  # hidden tests: some fail at base_commit
    try:
        argv = [*task.tests.command.split(), *task.tests.fail_to_pass, *task.tests.pass_to_pass]
        plain = sandbox.exec(argv)
        run = traces.run_traced(sandbox, argv)
    finally:
        sandbox.exec(["git", "checkout", "--", "."])
    expected = parse_pytest_summary(plain.output)
    assert expected and "failed" in expected.values() and "passed" in expected.values()
    assert parse_pytest_summary(run.output) == expected
    assert run.exit_code == plain.exit_code == 1
    test_entries = {f"{t.entry.file}::{t.entry.function}" for t in run.traces}
    assert set(task.tests.fail_to_pass) <= test_entries
    assert all(t.complete for t in run.traces)
    raised = [e for t in run.traces for e in t.events if e.event == "exception"]
    assert raised, "a failing test's assertion appears as an exception event"


def test_function_mode_and_bad_inputs(sandbox):
    run = traces.run_traced(sandbox, function="ledger.dates:days_in_month", args={"year": 2024, "month": 2})
    plain = sandbox.exec(["python", "-c", "from ledger.dates import days_in_month; print(repr(days_in_month(2024, 2)))"])
    assert run.exit_code == plain.exit_code == 0 and run.output == plain.stdout == "29\n"
    (trace,) = run.traces
    assert trace.entry.function == "days_in_month" and trace.events[0].locals == {"year": "2024", "month": "2"}
    assert trace.events[-1].event == "return" and trace.events[-1].value == "29"
    with pytest.raises(TraceError, match="not a Python program"):
        traces.run_traced(sandbox, ["bash", "-c", "true"])
    with pytest.raises(TraceError, match="does not apply"):
        traces.apply_patch(sandbox, "diff --git a/nope.py b/nope.py\n--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-a\n+b\n")


# ---------------------------------------------------------------- caps


def test_event_cap_cuts_and_marks(sandbox):
    run = traces.run_traced(sandbox, ["python", SCRIPT_PATH], options=TraceOptions(include=["/tmp"], max_events=4))
    assert run.exit_code == 0 and run.output.splitlines()[-1] == "[0, 2]"
    by_entry = {t.entry.function: t for t in run.traces}
    assert by_entry["total"].cut == "max_events" and len(by_entry["total"].events) == 4
    assert by_entry["total"].event_count == 4
    assert [e.event for e in by_entry["total"].events] == ["call", "line", "line", "line"]
    assert by_entry["run_check"].cut == "max_events"
    # a cut chain still ends where the program leaves it: the next call starts a new trace
    assert [t.entry.function for t in run.traces] == ["total", "parse", "run_check", "fact", "consume"]


def test_byte_cap_cuts_and_marks(sandbox):
    script = "def grow():\n    s = ''\n    for i in range(300):\n        s += 'x' * 50\n    return len(s)\n\nprint(grow())\n"
    sandbox.write_file("/tmp/trace_grow.py", script.encode())
    run = traces.run_traced(sandbox, ["python", "/tmp/trace_grow.py"], options=TraceOptions(include=["/tmp"], max_bytes=20_000, repr_cap=300))
    assert run.exit_code == 0 and run.output.strip() == "15000"
    (trace,) = run.traces
    assert trace.cut == "max_bytes" and trace.events[-1].event == "line"
    assert sum(len(e.model_dump_json()) for e in trace.events) <= 20_000 * 1.2
    long = [v for e in trace.events for v in (e.locals or {}).values() if len(v) > 300]
    assert long and all(v.endswith(runner.CUT_SUFFIX) and len(v) == 300 + len(runner.CUT_SUFFIX) for v in long)


def test_capped_repr_never_raises():
    class Broken:
        def __repr__(self):
            raise RuntimeError("no")

    assert runner.capped_repr(Broken(), 50).startswith("<Broken object; repr failed")
    assert runner.capped_repr("a" * 1000, 10) == "'aaaaaaaaa" + runner.CUT_SUFFIX
    assert runner.capped_repr(list(range(10_000)), 12) == "[0, 1, 2, 3," + runner.CUT_SUFFIX
    assert runner.capped_repr({i: i for i in range(100)}, 8) == "{0: 0, 1" + runner.CUT_SUFFIX


def _cyclic_values() -> list:
    class Long:
        def __repr__(self):
            return "<Long " + "x" * 300 + ">"

    class Empty:
        def __repr__(self):
            return ""

    itself = [1]
    itself.append(itself)
    mapping = {"a": 1}
    mapping["self"] = mapping
    inner: list = []
    wrapped = (inner,)
    inner.append(wrapped)
    ring: list = []
    ring += [None, ring, ring]
    for key in "abcdefghijklmnopqrstuvwxyz":  # a linked list of lists, as marshmallow's OrderedSet keeps
        current = ring[1]
        current[2] = ring[1] = [key, current, ring]
    deep: list = [1]
    for level in range(30):
        deep = [deep, {"k": (deep,)}] if level < 6 else [deep]
    return [
        [],
        (),
        {},
        set(),
        frozenset(),
        [1],
        (1,),
        (1, 2),
        {1: 2},
        {1},
        frozenset({1, 2}),
        itself,
        mapping,
        wrapped,
        inner,
        ring,
        deep,
        [Empty(), Empty(), 1],
        {Empty(): Empty()},
        [Long()] * 10,
        {n: Long() for n in range(30)},
        {n: [n, (n,), {n}] for n in range(50)},
        frozenset(range(500)),
        list(range(1000)),
        {"k" * 300: 1},
        ["é" * 100, "\ud800"],
        [b"x" * 300],
        [()],
        ([],),
        [{}, set(), frozenset()],
        (1.5, 2j, None, True, "a'b\""),
    ]


def test_capped_repr_of_containers_is_repr_cut():
    # Containers are written element by element only up to the cap: the same text as repr() cut.
    for value in _cyclic_values():
        whole = repr(value)
        for cap in (0, 1, 2, 5, 10, 50, 200, 1000, 100_000):
            expected = whole if len(whole) <= cap else whole[:cap] + runner.CUT_SUFFIX
            assert runner.capped_repr(value, cap) == expected, (value, cap)


EVENT_PROGRAM = """\
import collections


class Box:
    def __init__(self, items):
        self.items = items

    def __repr__(self):
        return f"Box({self.items!r})"


def gen(n):
    for i in range(n):
        yield {"é": i, "nl": "a\\nb", "tab": "\\t", "quote": '"'}


def work():
    box = Box([1, 2])
    seen = collections.OrderedDict()
    for item in gen(3):
        seen[len(seen)] = item
        box.items.append(item)
    try:
        {}["missing \u2603"]
    except KeyError as exc:
        caught = exc
    text = "x" * 500
    return box, seen, caught, text


work()
"""


def test_event_json_is_what_json_dumps_writes(tmp_path):
    # The tracer writes each event's JSON from cached parts; it must be json.dumps's text of the event.
    (tmp_path / "prog.py").write_text(EVENT_PROGRAM, encoding="utf-8")
    for extra in ({}, {"full_locals": True}, {"repr_cap": 10}):
        done = run_tracer_here(tmp_path, {"argv": ["python", "prog.py"], "backend": "settrace", **extra})
        assert done.returncode == 0, done.stderr
        (line,) = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
        (tmp_path / "out.jsonl").unlink()
        trace = json.loads(line)
        events = trace.pop("events")
        assert {e["event"] for e in events} == {"call", "line", "return", "exception"}
        expected = json.dumps(trace, ensure_ascii=False)[:-1] + ', "events": [' + ",".join(json.dumps(e, ensure_ascii=False) for e in events) + "]}"
        assert line == expected


# ---------------------------------------------------------------- CWM format


def test_cwm_rendering_parses_back(subject):
    for trace in subject.values():
        text = traces.render_cwm(trace)
        assert text.startswith("<|begin_of_text|><|trace_context_start|>") and text.endswith("<|end_of_text|>")
        parsed = traces.parse_cwm(text)
        assert parsed.ended and parsed.context.startswith(trace.entry.source.split("\n")[0] + traces.START_MARKER)
        assert trace.entry.first_line == trace.entry.line and not trace.entry.source_cut
        assert [(f.kind, f.source) for f in parsed.frames] == [(e.event, e.source) for e in trace.events]
        for frame, event in zip(parsed.frames, trace.events, strict=True):
            if event.event in ("call", "line"):
                assert frame.locals == event.locals and frame.value is None
            else:
                assert frame.locals is None and frame.value == (event.value or event.exception)
    assert subject["total"].entry.source == "".join(line + "\n" for line in SCRIPT.splitlines()[:5])


GOLDEN_MODULE = """\
def double(x):
    return x * 2


def entry(word):
    n = double(len(word))
    try:
        v = {}[word]
    except KeyError:
        v = n + 1
    return word + str(v)
"""

GOLDEN_CWM = (
    "<|begin_of_text|><|trace_context_start|>"
    "def entry(word):  # << START_OF_TRACE\n"
    "    n = double(len(word))\n"
    "    try:\n"
    "        v = {}[word]\n"
    "    except KeyError:\n"
    "        v = n + 1\n"
    "    return word + str(v)\n"
    "<|frame_sep|>"
    '<|call_sep|>{"word": "\'\\u00e9\'"}<|action_sep|>def entry(word):\n<|frame_sep|>'
    '<|line_sep|>{"word": ".."}<|action_sep|>    n = double(len(word))\n<|frame_sep|>'
    '<|call_sep|>{"x": "1"}<|action_sep|>def double(x):\n<|frame_sep|>'
    '<|line_sep|>{"x": ".."}<|action_sep|>    return x * 2\n<|frame_sep|>'
    '<|return_sep|><|action_sep|>    return x * 2\n<|arg_sep|>"2"<|frame_sep|>'
    '<|line_sep|>{"word": "..", "n": "2"}<|action_sep|>    try:\n<|frame_sep|>'
    '<|line_sep|>{"word": "..", "n": ".."}<|action_sep|>        v = {}[word]\n<|frame_sep|>'
    "<|exception_sep|><|action_sep|>        v = {}[word]\n<|arg_sep|>\"KeyError('\\u00e9')\"<|frame_sep|>"
    '<|line_sep|>{"word": "..", "n": ".."}<|action_sep|>    except KeyError:\n<|frame_sep|>'
    '<|line_sep|>{"word": "..", "n": ".."}<|action_sep|>        v = n + 1\n<|frame_sep|>'
    '<|line_sep|>{"word": "..", "n": "..", "v": "3"}<|action_sep|>    return word + str(v)\n<|frame_sep|>'
    "<|return_sep|><|action_sep|>    return word + str(v)\n<|arg_sep|>\"'\\u00e93'\"<|frame_sep|>"
    "<|end_of_text|>"
)


def run_tracer_here(tmp_path, config: dict) -> subprocess.CompletedProcess:
    """The tracer run by this interpreter, outside any container (it is standard library only)."""
    (tmp_path / "config.json").write_text(json.dumps({"out": str(tmp_path / "out.jsonl"), "workdir": str(tmp_path), **config}))
    return subprocess.run(
        [sys.executable, str(runner.__file__), str(tmp_path / "config.json")], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the expected frames are CPython 3.11's line events")
def test_cwm_golden_trace_of_a_function(tmp_path):
    (tmp_path / "golden.py").write_text(GOLDEN_MODULE)
    done = run_tracer_here(tmp_path, {"function": "golden:entry", "args": ["é"]})
    assert done.returncode == 0 and done.stdout == "'é3'\n", done.stderr
    (trace,) = traces.parse_jsonl((tmp_path / "out.jsonl").read_text(encoding="utf-8"))
    assert trace.entry.model_dump() == {
        "file": "golden.py",
        "function": "entry",
        "line": 5,
        "first_line": 5,
        "source": "".join(GOLDEN_MODULE.splitlines(True)[4:]),
        "source_cut": False,
    }
    assert traces.render_cwm(trace) == GOLDEN_CWM
    assert traces.cwm_record(trace)["cut"] is None
    parsed = traces.parse_cwm(GOLDEN_CWM)
    assert parsed.ended and parsed.entry_line == 1 and len(parsed.frames) == len(trace.events) == 12
    assert parsed.frames[0].locals == {"word": "'é'"} and parsed.frames[-1].value == "'é3'"


def hand_trace(events: list[dict], **fields) -> Trace:
    where = dict(file="m.py", function="C.f", frame=0, depth=0)
    entry = {"file": "m.py", "function": "C.f", "line": 2, "first_line": 2, "source": "    def f(self, x):\n        y = x + 1\n        return y\n"}
    return Trace(
        **{
            "trace_id": "1-1",
            "thread": "MainThread",
            "entry": entry,
            "repr_cap": 200,
            "full_locals": False,
            "event_count": len(events),
            "events": [{**where, **e} for e in events],
            **fields,
        }
    )


HAND_EVENTS = [
    dict(event="call", line=2, source="    def f(self, x):", locals={"self": "<C>", "x": "1"}),
    dict(event="line", line=3, source="        y = x + 1", locals={"self": "<C>", "x": "1"}),
    dict(event="exception", line=3, source="        y = x + 1", exception="KeyError('é')"),
    dict(event="line", line=4, source="        return y", locals={"self": "<C>", "x": "1", "y": "'a<|b'"}),
    dict(event="return", line=4, source="        return y", value="'a<|b'"),
]
HAND_PROMPT = "<|begin_of_text|><|trace_context_start|>    def f(self, x):  # << START_OF_TRACE\n        y = x + 1\n        return y\n<|frame_sep|>"
HAND_FRAMES = [
    '<|call_sep|>{"self": "<C>", "x": "1"}<|action_sep|>    def f(self, x):\n<|frame_sep|>',
    '<|line_sep|>{"self": "..", "x": ".."}<|action_sep|>        y = x + 1\n<|frame_sep|>',
    "<|exception_sep|><|action_sep|>        y = x + 1\n<|arg_sep|>\"KeyError('\\u00e9')\"<|frame_sep|>",
    '<|line_sep|>{"self": "..", "x": "..", "y": "\'a<|b\'"}<|action_sep|>        return y\n<|frame_sep|>',
    "<|return_sep|><|action_sep|>        return y\n<|arg_sep|>\"'a<|b'\"<|frame_sep|>",
]


def test_cwm_grammar_by_hand():
    # full locals are written with ".." all the same: the format's rule, not the tracer's option
    trace = hand_trace(HAND_EVENTS, full_locals=True)
    assert traces.render_cwm(trace) == HAND_PROMPT + "".join(HAND_FRAMES) + "<|end_of_text|>"
    diffed = hand_trace(
        [
            {**e, "locals": {k: ".." if n and k != "y" else v for k, v in e["locals"].items()}} if "locals" in e else e
            for n, e in enumerate(HAND_EVENTS)
        ]
    )
    assert traces.render_cwm(diffed) == traces.render_cwm(trace)
    parsed = traces.parse_cwm(traces.render_cwm(trace))
    assert parsed.ended and parsed.entry_line == 1 and parsed.context == HAND_PROMPT[40:-13]
    assert [f.kind for f in parsed.frames] == ["call", "line", "exception", "line", "return"]
    assert parsed.frames[2].value == "KeyError('é')" and parsed.frames[3].locals["y"] == "'a<|b'"


def test_cwm_cuts_stop_at_a_frame_boundary_without_the_end_token():
    trace = hand_trace(HAND_EVENTS)
    assert traces.render_cwm(trace, max_events=2) == HAND_PROMPT + "".join(HAND_FRAMES[:2])
    assert traces.cwm_record(trace, max_events=2)["cut"] == "max_events"
    whole = len((HAND_PROMPT + "".join(HAND_FRAMES) + "<|end_of_text|>").encode())
    assert traces.cwm_record(trace, max_bytes=whole) == traces.cwm_record(trace) | {"cut": None}
    # one byte less: the last frame and the end token no longer fit, the frame before them does
    assert traces.render_cwm(trace, max_bytes=whole - 1) == HAND_PROMPT + "".join(HAND_FRAMES[:4])
    assert traces.cwm_record(trace, max_bytes=10)["text"] == HAND_PROMPT  # the prompt is always whole
    # cut by the tracer (the events are a prefix), or the program ended inside the chain
    tracer_cut = hand_trace(HAND_EVENTS[:3], cut="max_bytes")
    assert traces.cwm_record(tracer_cut) == {"trace_id": "1-1", "task_id": None, "cut": "max_bytes", "text": HAND_PROMPT + "".join(HAND_FRAMES[:3])}
    assert traces.cwm_record(hand_trace(HAND_EVENTS, complete=False))["cut"] == "incomplete"
    for text in (traces.render_cwm(tracer_cut), traces.render_cwm(trace, max_events=2)):
        parsed = traces.parse_cwm(text)
        assert not parsed.ended and parsed.frames


def test_cwm_context_without_a_recorded_source():
    trace = hand_trace(HAND_EVENTS)
    trace.entry = traces.TraceEntry(file="m.py", function="C.f", line=2)  # a record from before `source`
    assert traces.cwm_context(trace) == "    def f(self, x):  # << START_OF_TRACE\n"
    trace.entry.source, trace.entry.first_line, trace.entry.line = "x = 1\n", 1, 7  # entry line outside it
    assert traces.cwm_context(trace) == "  # << START_OF_TRACE\n"


MARKED = "<|begin_of_text|><|trace_context_start|>f  # << START_OF_TRACE\n<|frame_sep|>"


@pytest.mark.parametrize(
    "bad",
    [
        "<|frame_sep|><|call_sep|>{}<|action_sep|>x\n<|frame_sep|>",  # no prompt
        "<|begin_of_text|><|trace_context_start|>def f():\n",  # no <|frame_sep|> after the context
        "<|begin_of_text|><|trace_context_start|>def f():\n<|frame_sep|>",  # no marked line
        "<|begin_of_text|><|trace_context_start|>a  # << START_OF_TRACE\nb  # << START_OF_TRACE\n<|frame_sep|>",
        MARKED + "<|line_sep|>[1]<|action_sep|>x\n<|frame_sep|>",
        MARKED + "<|return_sep|><|action_sep|>x\n<|arg_sep|>3<|frame_sep|>",
        MARKED + "<|line_sep|>{}<|action_sep|>x<|frame_sep|>",
        MARKED + "<|jump_sep|>{}<|frame_sep|>",
        MARKED + "<|line_sep|>{}<|action_sep|>x\n",
        MARKED + "<|end_of_text|><|end_of_text|>",
    ],
)
def test_cwm_parse_errors(bad):
    with pytest.raises(ValueError):
        traces.parse_cwm(bad)
    assert traces.parse_cwm(MARKED) == traces.CwmTrace("f  # << START_OF_TRACE\n", 1, [], False)
    assert traces.parse_cwm(MARKED + "<|end_of_text|>").ended


def test_entry_source_is_bounded():
    body = "".join(f"    x{n} = {n}\n" for n in range(500))
    text = f"import os\n\n\ndef long():\n{body}    return 1\n\n\ndef short(a):\n    return [a for _ in (1,)]\n"
    module = compile(text, "long.py", "exec")
    codes = {c.co_name: c for c in module.co_consts if hasattr(c, "co_firstlineno")}
    lines = text.splitlines(True)
    short = runner._entry_source(lines, codes["short"], 508)
    assert short == {"source": "def short(a):\n    return [a for _ in (1,)]\n", "first_line": 508, "source_cut": False}
    cut = runner._entry_source(lines, codes["long"], 4)
    assert cut["first_line"] == 4 and cut["source_cut"] and cut["source"].count("\n") == runner.CONTEXT_MAX_LINES
    # a generator resumed deep inside a long function: the window holds the entry line
    deep = runner._entry_source(lines, codes["long"], 400)
    first, kept = deep["first_line"], deep["source"].splitlines()
    assert first < 400 < first + len(kept) and kept[400 - first] == "    x395 = 395"
    wide = lines[:3] + ["def wide():\n"] + [f"    y = '{'z' * 3000}'\n"] * 10 + ["    return y\n"]
    code = next(c for c in compile("".join(wide), "wide.py", "exec").co_consts if getattr(c, "co_name", "") == "wide")
    bounded = runner._entry_source(wide, code, 4)
    assert bounded["source_cut"] and len(bounded["source"]) <= runner.CONTEXT_MAX_CHARS
    assert bounded["source"].startswith("def wide():\n") and bounded["first_line"] == 4
    assert runner._entry_source([], code, 4) == {"source": "", "first_line": None, "source_cut": False}


# ---------------------------------------------------------------- CLI and the agent's tool


@pytest.mark.docker  # starts containers through the CLI or the corpus, without the engine's fixture
def test_cli_trace_writes_cwm_lines(tmp_path, task):
    out = tmp_path / "traces.cwm.jsonl"
    node = task.tests.pass_to_pass[0]
    result = swe_env(
        "trace", "--task", task.id, "--format", "cwm", "--out", str(out), "--", "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", node
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "program exit code 0" in result.stdout and "1 passed" in result.stdout
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records and all(r["task_id"] == task.id and r["cut"] is None for r in records)
    assert all(traces.parse_cwm(r["text"]).ended for r in records)


def test_trace_tool_is_opt_in_and_compact(task, image):
    assert "trace" in tools.TOOLS and "trace" not in tools.DEFAULT_TOOLS
    env = SWEEnv(tasks=[task], tools=[*tools.DEFAULT_TOOLS, "trace"])
    try:
        observation, info = env.reset()
        assert "trace" in info["tools"] and "- trace:" in observation
        node = task.tests.pass_to_pass[0]
        observation, reward, terminated, truncated, _ = env.step({"tool": "trace", "command": f"python -m pytest -q {node}"})
        assert not terminated and not truncated
        assert observation.startswith("[traced: exit code 0,") and "== trace" in observation
        assert "call " in observation and "return " in observation and "[exit code 0]" in observation
        assert len(observation) <= env.config.output_limit + 200
        observation, *_ = env.step({"tool": "trace", "command": "ls -la"})
        assert observation.startswith("Error:") and "not a Python program" in observation
    finally:
        env.close()
    default_env = SWEEnv(tasks=[task])
    try:
        default_env.reset()
        observation, *_ = default_env.step({"tool": "trace", "command": "pytest"})
        assert "unknown tool 'trace'" in observation
    finally:
        default_env.close()


def test_a_program_flooding_the_trace_tools_file_costs_the_host_a_bounded_read(task, image):
    """Red team rt3, d1: the traced program appends megabytes of valid-looking events to the tracer's own
    file; the tool reads `TOOL_TRACE_FILE_BYTES` of it, says so, and the step is an observation."""
    from swe_env.traces import host

    flood = (
        "import glob, json\n"
        "head = {'version': 1, 'trace_id': '1', 'thread': 'T', 'entry': {'file': 'f', 'function': 'g', 'line': 1},"
        " 'repr_cap': 8, 'full_locals': False, 'event_count': 1}\n"
        "ev = json.dumps({'event': 'line', 'file': '', 'line': 0, 'function': '', 'frame': 0, 'depth': 0, 'source': ''})\n"
        "line = json.dumps({**head, 'events': []})[:-3] + '[' + ','.join([ev] * 20000) + ']}\\n'\n"
        "for out in glob.glob('/run/swe-env-tracer/traces.jsonl') + glob.glob('/tmp/swe-env-tracer-*/traces.jsonl'):\n"
        "    with open(out, 'a') as handle:\n"
        "        handle.write(line * 5)\n"
    )
    env = SWEEnv(tasks=[task], tools=[*tools.DEFAULT_TOOLS, "trace"])
    try:
        env.reset(options={"task_id": task.id})
        env.step({"tool": "create", "path": "flood_gen.py", "content": flood})
        observation, _reward, terminated, truncated, _info = env.step({"tool": "trace", "command": "python flood_gen.py"})
        assert not terminated and not truncated
        assert "bytes; only the first" in observation, observation[-600:]
        cut = int(observation.split("only the first ", 1)[1].split(" ", 1)[0])
        assert cut <= host.TOOL_TRACE_FILE_BYTES
    finally:
        env.close()


def test_recursion_limit_keeps_behaviour_and_marks_the_trace(sandbox):
    script = "def down(n):\n    return down(n + 1)\n\ntry:\n    down(0)\nexcept RecursionError:\n    print('caught')\n"
    sandbox.write_file("/tmp/trace_deep.py", script.encode())
    plain = sandbox.exec(["python", "/tmp/trace_deep.py"])
    run = traces.run_traced(sandbox, ["python", "/tmp/trace_deep.py"], options=TraceOptions(include=["/tmp"]))
    assert (run.exit_code, run.output) == (plain.exit_code, plain.output) == (0, "caught\n")
    (trace,) = run.traces
    assert trace.entry.function == "down" and trace.events[0].locals == {"n": "0"}
    assert not trace.complete and any("still open at exit" in note for note in trace.tracer_errors)
