"""Results the code under test cannot forge, and tamper evidence from what it did (issue 23,
principles 1 and 2): unit tests of the sealed records, and attacks on the real engine with a
bundled task, each scoring 0 (or withheld under `reward_policy="strict"`), while the real fix
scores 1 with nothing flagged."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from swe_env.grading import seal, testlogs
from swe_env.grading.grader import Grader

from ..helpers import attack_code
from ..helpers import with_code as _with_code

KEY = b"k" * 32


def _record(seq: str, payload: bytes, key: bytes = KEY) -> bytes:
    body = seq.encode() + b" " + payload
    return body + b" " + hmac.new(key, body, hashlib.sha256).hexdigest().encode() + b"\n"


def _test(status: str, *ids: str) -> bytes:
    return f"test {status} ".encode() + b",".join(i.encode().hex().encode() for i in ids)


def _chain(*payloads: bytes, end: int | None = 0, key: bytes = KEY) -> bytes:
    records = [b"begin pytest 7", *payloads] + ([b"end %d" % end] if end is not None else [])
    return b"".join(_record(str(n), p, key) for n, p in enumerate(records))


def test_a_whole_chain_is_believed():
    sealed = seal.read(_chain(_test("passed", "t.py::a"), _test("xfailed", "t.py::b"), _test("failed", "t.py::c"), end=1), KEY, "pytest")
    assert sealed.error is None and sealed.flags == [] and sealed.exit_status == 1
    statuses = testlogs.statuses_for(["t.py::a", "t.py::b", "t.py::c"], sealed.results, "")
    assert statuses == {"t.py::a": "passed", "t.py::b": "passed", "t.py::c": "failed"}


def test_the_recorders_expected_failures_fail():
    sealed = seal.read(_chain(_test("xfailed", "a (m.T)"), _test("passed", "b (m.T)")), KEY, "django")
    assert sealed.results.by_id == {"a (m.T)": "failed", "b (m.T)": "passed"}


@pytest.mark.parametrize(
    "data, why",
    [
        (_chain(_test("passed", "t.py::a"), end=None), "without its end record"),
        (_chain(_test("passed", "t.py::a"), key=b"x" * 32), "no sealed record"),
        (_record("0", b"begin pytest 1") + _record("2", _test("passed", "t.py::a")) + _record("3", b"end 0"), "not whole"),
        (_record("0", _test("passed", "t.py::a")) + _record("1", b"end 0"), "not whole"),
        (b"unsealed python 3.7\n", "no audit hooks"),
        (b"", "no sealed record"),
    ],
)
def test_a_chain_that_is_not_whole_is_not_believed(data, why):
    sealed = seal.read(data, KEY, "pytest")
    assert sealed.results is None and why in sealed.error, sealed.error


def test_more_sealed_results_than_any_suite_runs_are_not_believed(monkeypatch):
    """The tables grow with the records: past `testlogs.MAX_TESTCASES` results nothing is believed (red team rt3, d2)."""
    monkeypatch.setattr(testlogs, "MAX_TESTCASES", 10)
    sealed = seal.read(_chain(*[_test("passed", f"t.py::t{n}") for n in range(11)]), KEY, "pytest")
    assert sealed.results is None and "more than 10 test results" in sealed.error
    sealed = seal.read(_chain(*[_test("passed", f"t.py::t{n}") for n in range(10)]), KEY, "pytest")
    assert sealed.error is None and len(sealed.results.by_id) == 10


def test_foreign_bytes_and_flags_are_tamper_evidence_and_bounded():
    forged = b'<testsuite><testcase classname="t" name="a"/></testsuite>\n' + _record("1", _test("passed", "t.py::a"), b"y" * 32)
    flags = b"".join(_record("c9", b"flag " + f"f{n}".encode().hex().encode()) for n in range(seal.MAX_FLAGS + 5))
    sealed = seal.read(forged + _chain(_test("failed", "t.py::a")) + flags + b"- flag " + b"early".hex().encode() + b" -\n", KEY, "pytest")
    assert sealed.results is not None and sealed.results.by_id["t.py::a"] == "failed"
    assert len(sealed.flags) == seal.MAX_FLAGS + 2 and sealed.flags[-2] == "... and 6 more"
    assert "2 line(s) on the results stream were not written" in sealed.flags[-1]


# ---------------------------------------------------------------- attacks on the real engine


ABORT_WITH_FAKE_REPORT = """
import os as _os, glob as _glob
def _fake(ids):
    cases = "".join('<testcase classname="%s" name="%s" file="%s"/>' % (i.split("::")[0][:-3].replace("/", "."),
                    i.split("::")[1], i.split("::")[0]) for i in ids)
    return ('<?xml version="1.0"?><testsuites><testsuite name="pytest">%s</testsuite></testsuites>' % cases).encode()
for _path in ["/proc/self/fd/3"] + _glob.glob("/proc/[0-9]*/fd/3"):
    try:
        _fd = _os.open(_path, _os.O_WRONLY | _os.O_APPEND)
        _os.write(_fd, _fake(F2P + P2P))
    except OSError:
        pass
_os.abort()
"""

TOKEN_FROM_CMDLINE = """
import os as _os, glob as _glob
for _cmd in _glob.glob("/proc/[0-9]*/cmdline"):
    try:
        _words = open(_cmd, "rb").read().split(b"\\0")
    except OSError:
        continue
    for _word in _words:
        if _word.startswith(b"__SWE_EXEC_"):
            for _path in _glob.glob("/proc/[0-9]*/fd/[123]"):
                try:
                    _fd = _os.open(_path, _os.O_WRONLY | _os.O_APPEND)
                    _os.write(_fd, b"0 begin pytest 1 " + b"0" * 64 + b"\\n" + _word)
                except OSError:
                    pass
"""

XFAIL_FROM_LIBRARY = """
import functools as _functools
from . import dates as _dates
def _xfailing(function):
    @_functools.wraps(function)
    def call(*args, **kwargs):
        import pytest
        pytest.xfail("not today")
    return call
for _name in ("add_months", "months_between"):
    setattr(_dates, _name, _xfailing(getattr(_dates, _name)))
    globals()[_name] = getattr(_dates, _name)
"""

GC_WALK = """
import gc as _gc
_found = [o for o in _gc.get_objects() if type(o).__name__ == "cell"][:1]
"""

PATCH_PYTEST_INTERNALS = """
import sys as _sys
if "_pytest.runner" in _sys.modules:
    _runner = _sys.modules["_pytest.runner"]
    _from_call = _runner.CallInfo.from_call.__func__
    def _swallowing(cls, func, when, reraise=None):
        info = _from_call(cls, func, when, reraise)
        info.excinfo = None
        return info
    _runner.CallInfo.from_call = classmethod(_swallowing)
"""

FAKE_LOGREPORT = """
import sys as _sys, weakref as _weakref
class _Report:
    when, outcome = "call", "passed"
    def __init__(self, nodeid):
        self.nodeid = nodeid
class _Anchor:
    pass
_plugin = _sys.modules.get("swe_env_seal")
if _plugin is not None:
    for _id in F2P:
        _anchor = _Anchor()
        _weakref.finalize(_anchor, _functools_partial(_plugin.pytest_runtest_logreport, _Report(_id)))
        del _anchor
"""


@pytest.mark.docker
@pytest.mark.parametrize(
    "name, code, strict_only, flagged",
    [
        ("fake report on the inherited descriptor, then abort", ABORT_WITH_FAKE_REPORT, False, None),
        ("forged through the framing token from /proc/*/cmdline", TOKEN_FROM_CMDLINE, False, None),
        ("pytest.xfail() from library code", XFAIL_FROM_LIBRARY, False, "xfail"),
        ("a weakref finalizer hands the plugin a fake report", FAKE_LOGREPORT, False, "handed over"),
        ("library code patches _pytest internals", PATCH_PYTEST_INTERNALS, True, "CallInfo"),
        ("a gc walk", GC_WALK, True, "gc.get_objects"),
    ],
)
def test_an_attack_scores_zero(task, image, name, code, strict_only, flagged):
    alone, with_fix = _with_code(image, task, attack_code(task, code))
    lenient, strict = Grader(), Grader(reward_policy="strict")
    report = (strict if strict_only else lenient).grade(task, with_fix if strict_only else alone, image=image)
    assert report.status == "graded" and not report.infrastructure_failure, (report.status, report.error)
    assert report.reward == 0.0, (report.test_results, report.error, report.tampering)
    if flagged:
        assert any(flagged in text for text in report.tampering), report.tampering


@pytest.mark.docker
def test_the_real_fix_scores_one_with_nothing_flagged_under_the_strict_policy(task, image):
    report = Grader(reward_policy="strict").grade(task, task.gold_patch, image=image)
    assert report.status == "graded" and report.resolved and report.reward == 1.0, (report.error, report.tampering)
    assert report.report_source == "sealed" and report.tampering == []
