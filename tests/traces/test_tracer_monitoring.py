"""The tracer's sys.monitoring (PEP 669) backend: the same JSONL events as its settrace one.

The unit tests run on the host's Python; the parity test runs the tracer with Python 3.13 in a
container from the trixie OS image (`ensure_os_image`: pulled, or bootstrapped offline with
debootstrap once, about two minutes; cached after that) on small programs, under both
backends, and compares the event streams.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap

import pytest

from swe_env.build.images import ensure_os_image
from swe_env.data.task import Limits
from swe_env.runtime.sandbox import Sandbox
from swe_env.traces.tracer import runner, runner_source

PROGRAM = textwrap.dedent("""
    import sys
    import threading


    def fact(n):
        if n <= 1:
            return 1
        return n * fact(n - 1)


    def fails(x):
        if x > 1:
            raise ValueError(f"bad {x}")
        return x


    def catches():
        total = 0
        for i in range(3):
            try:
                total += fails(i)
            except ValueError:
                total -= 1
            finally:
                total += 10
        return total


    def gen(n):
        for i in range(n):
            yield i * i
        return "done"


    def consume():
        squares = [x for x in gen(4)]
        g = gen(3)
        first = next(g)
        rest = list(g)
        evens = [v for v in squares if v % 2 == 0]
        return first, rest, evens, sum(squares)


    def thrower():
        try:
            yield 1
        except KeyError:
            yield 2
        yield 3


    def throws_in():
        g = thrower()
        a = next(g)
        b = g.throw(KeyError("k"))
        c = next(g)
        g.close()
        return a, b, c


    class Account:
        rate = 2

        def __init__(self, balance):
            self.balance = balance

        def grow(self, years):
            while years: years -= 1; self.balance *= self.rate
            return self.balance

        @classmethod
        def make(cls, n):
            return cls(n).grow(2)

        @property
        def doubled(self):
            return self.balance * 2


    def uncaught():
        def inner(v):
            return {"k": v}[v]
        return inner("missing")


    class Worker(threading.Thread):
        def __repr__(self):
            return "<worker>"  # a thread's own repr has its ident and a racy state


    RESULTS = []  # a global: the main thread's locals must not change under it while the worker runs


    def start_worker():
        worker = Worker(target=lambda: RESULTS.append(fact(4)), name="worker")
        worker.start()
        return worker


    def in_thread():
        start_worker().join()
        return len(RESULTS)


    def main():
        print(in_thread(), fact(5), catches(), consume(), throws_in(), Account.make(3), Account(4).doubled)
        try:
            uncaught()
        except KeyError:
            pass
        uncaught()


    monitoring = getattr(sys, "monitoring", None)
    print("tools:", [monitoring.get_tool(i) for i in range(6)] if monitoring else None)
    if __name__ == "__main__":
        main()
""")

CONFIGS = {
    "default": {},
    "follow+full": {"follow_depth": 1, "full_locals": True},
    "cut": {"max_events": 40},
    "modules": {"trace_modules": True},
}


# ---------------------------------------------------------------- pure logic (host Python)


def test_choose_backend():
    assert runner.choose_backend("auto", (3, 13), True) == "monitoring"
    assert runner.choose_backend(None, (3, 12), True) == "monitoring"
    assert runner.choose_backend("settrace", (3, 13), True) == "settrace"
    assert runner.choose_backend(" Settrace ", (3, 13), True) == "settrace"
    assert runner.choose_backend("auto", (3, 11), False) == "settrace"
    assert runner.choose_backend("monitoring", (3, 9), False) == "settrace"  # not there: the old one
    assert runner.choose_backend("nonsense", (3, 13), True) == "monitoring"  # unknown counts as auto
    expected = "monitoring" if sys.version_info >= (3, 12) else "settrace"
    assert runner.choose_backend(None) == expected


def test_backend_from_config_then_environment(tmp_path, monkeypatch):
    out = str(tmp_path / "t.jsonl")
    monkeypatch.setenv(runner.BACKEND_ENV, "settrace")
    assert runner.Tracer({"out": out, "workdir": str(tmp_path)}).backend == "settrace"
    assert runner.Tracer({"out": out, "workdir": str(tmp_path), "backend": "auto"}).backend == "settrace"
    monkeypatch.delenv(runner.BACKEND_ENV)
    assert runner.Tracer({"out": out, "workdir": str(tmp_path), "backend": "settrace"}).backend == "settrace"


def test_same_line_backward_jump():
    code = compile("total = 0\nwhile total < 3: total += 1\nfor i in range(2):\n    total += i\n", "<t>", "exec")
    table = runner._line_table(code)
    assert set(table.values()) >= {1, 2, 3, 4}
    by_line: dict = {}
    for offset, line in sorted(table.items()):
        by_line.setdefault(line, []).append(offset)
    first2, last2 = by_line[2][0], by_line[2][-1]
    assert runner._same_line_backward_jump(table, last2, first2)  # the one-line loop's back edge
    assert not runner._same_line_backward_jump(table, first2, last2)  # forward
    assert not runner._same_line_backward_jump(table, by_line[4][-1], by_line[3][0])  # back to another line
    assert not runner._same_line_backward_jump({0: None, 2: None}, 2, 0)  # no line: no event


def test_never_traced(tmp_path):
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    inside = compile("def f():\n    return 1\n", str(repo / "pkg" / "m.py"), "exec")
    function = next(c for c in inside.co_consts if hasattr(c, "co_code"))
    outside = compile("def g():\n    return 1\n", "/usr/lib/python3/x.py", "exec")
    tracer = runner.Tracer({"out": str(tmp_path / "t.jsonl"), "workdir": str(repo)})
    assert not tracer.never_traced(function)
    assert tracer.never_traced(inside)  # a module body, without trace_modules
    assert tracer.never_traced(outside)
    assert tracer.never_traced(compile("1", "<string>", "exec"))
    following = runner.Tracer({"out": str(tmp_path / "t.jsonl"), "workdir": str(repo), "follow_depth": 1})
    assert not following.never_traced(outside)  # may be followed from a traced frame
    modules = runner.Tracer({"out": str(tmp_path / "t.jsonl"), "workdir": str(repo), "trace_modules": True})
    assert not modules.never_traced(inside)


# ---------------------------------------------------------------- parity under Python 3.13


def _normalized(data: bytes) -> list[dict]:
    """The traces of a JSONL file, without what differs between runs (trace ids, addresses)."""
    traces = []
    for line in data.decode().splitlines():
        trace = json.loads(re.sub(r"0x[0-9a-f]+", "0x", line))
        trace.pop("trace_id")
        traces.append(trace)
    return sorted(traces, key=lambda t: (t["thread"], t["entry"]["line"]))


@pytest.fixture(scope="module")
def trixie(docker_client):
    image = ensure_os_image("debian:trixie")
    with Sandbox(image, Limits(), "/prog", kind="trace", labels={"test": "tracer-monitoring"}) as box:
        box.write_file("/opt/swe-env-tracer/swe_env_tracer.py", runner_source())
        box.write_file("/prog/progs.py", PROGRAM.encode())
        yield box


def _run(box, backend: str, extra: dict) -> tuple[list[dict], str]:
    out = f"/tmp/traces-{backend}.jsonl"
    config = {"argv": ["python3", "progs.py"], "out": out, "workdir": "/prog", "backend": backend, **extra}
    box.write_file("/tmp/config.json", json.dumps(config).encode())
    box.exec(["rm", "-f", out])
    result = box.exec(["python3", "/opt/swe-env-tracer/swe_env_tracer.py", "/tmp/config.json"], timeout=120, workdir="/prog")
    assert result.exit_code == 1 and "KeyError: 'missing'" in result.output  # the program's own uncaught error
    return _normalized(box.read(out).data), result.output


def test_python_313_has_monitoring(trixie):
    result = trixie.exec(["python3", "-c", "import sys; print(sys.version_info[:2] >= (3, 12))"])
    assert result.output.strip() == "True"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_backends_give_the_same_events(trixie, name):
    settrace, plain_output = _run(trixie, "settrace", CONFIGS[name])
    monitored, output = _run(trixie, "monitoring", CONFIGS[name])
    assert "'swe-env-tracer'" in output and "'swe-env-tracer'" not in plain_output  # the backend really ran
    assert [t["thread"] for t in settrace] == ["MainThread", "worker"]
    assert not any(t["tracer_errors"] for t in settrace + monitored)
    if name == "cut":
        assert settrace[0]["cut"] == "max_events" and settrace[0]["event_count"] == 40
    else:
        events = [e for t in settrace for e in t["events"]]
        assert {e["event"] for e in events} == {"call", "line", "return", "exception"}
        functions = {e["function"] for e in events}
        assert {"fact", "gen", "thrower", "Account.grow", "Account.make", "uncaught.<locals>.inner"} <= functions
    # The first differing event, for the message; the lists' lengths are compared whole below.
    for expected, got in zip(settrace, monitored, strict=False):
        for index, (a, b) in enumerate(zip(expected["events"], got["events"], strict=False)):
            assert a == b, f"{name}: event {index} of the {expected['thread']} trace differs"
    assert monitored == settrace
